"""``robustmip train`` options of seed 001's methods: SM, jacobM, specM and K&W robust training.

A plug-in of :data:`robustmip.cli.train.OBJECTIVE_MODULES`: :func:`add_options` registers the flags
(no torch import), :func:`objective` returns the :mod:`robustmip.training.sensitivity` objective they
ask for, or None. SM and K&W use seed 001's per-feature radius ``eps_j = sigma * range_j``, with
``range_j`` pixel ``j``'s range over the training set (so pixels that never change get radius 0).
"""

from __future__ import annotations

import argparse

from robustmip.cli.common import load_split, nonneg_float, nonneg_int, pos_float


def add_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("seed 001: sensitivity minimisation and its baselines")
    group.add_argument("--sens-lambda", type=pos_float,
                       help="SM training: CE + LAMBDA * mean S_dual (the volume of Wong & Kolter's box of the "
                       "logits; seed 001: 1e-6); l2 via --weight-decay")
    group.add_argument("--sens-sigma", type=nonneg_float, default=0.05,
                       help="SM radius: sigma * each pixel's training range (default 0.05)")
    group.add_argument("--sens-log", action="store_true",
                       help="SM penalty LAMBDA * mean log10 S_dual instead of LAMBDA * mean S_dual")
    group.add_argument("--jacobian-lambda", type=pos_float,
                       help="jacobM training: CE + LAMBDA * mean ||d logits / d x||_F")
    group.add_argument("--spectral-lambda", type=pos_float,
                       help="specM training: CE + LAMBDA/2 * sum of squared largest singular values of the weights")
    group.add_argument("--kw-eps", type=pos_float,
                       help="K&W robust training: CE(-J(x, C_y, eps), y) with radius KW_EPS * each pixel's "
                       "training range (seed 001: 0.05)")
    group.add_argument("--kw-ramp-epochs", type=nonneg_int, default=0,
                       help="epochs over which the K&W radius grows linearly from 0 (default 0)")


def objective(args: argparse.Namespace):
    """The objective the flags ask for, or None; InvalidInput when they ask for several."""
    from robustmip.errors import InvalidInput

    asked = [flag for flag, value in (("--sens-lambda", args.sens_lambda), ("--jacobian-lambda", args.jacobian_lambda),
                                      ("--spectral-lambda", args.spectral_lambda), ("--kw-eps", args.kw_eps))
             if value is not None]
    if len(asked) > 1:
        raise InvalidInput(f"choose one training method: the flags ask for {', '.join(asked)}")
    if not asked:
        return None
    from robustmip.sensitivity.measure import feature_eps
    from robustmip.training import sensitivity as methods

    if args.jacobian_lambda is not None:
        return methods.JacobianRegularization(args.jacobian_lambda)
    if args.spectral_lambda is not None:
        return methods.SpectralRegularization(args.spectral_lambda)
    images = load_split(args, "train").images
    if args.sens_lambda is not None:
        return methods.SensitivityMinimization(args.sens_lambda, feature_eps(images, args.sens_sigma),
                                               form="log" if args.sens_log else "volume")
    return methods.KWRobust(feature_eps(images, args.kw_eps), ramp_epochs=args.kw_ramp_epochs)
