"""``robustmip train --method app|awp``: the parameter-robust training objectives as a plug-in of ``train``.

Registers its flags on the ``train`` parser without importing torch; :func:`objective` builds
:class:`robustmip.training.app.APP` or :class:`robustmip.training.awp.AWP` when ``--method`` is given.
"""

from __future__ import annotations

import argparse

from robustmip.cli.common import nonneg_float, pos_float


def add_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("parameter-robust training (--method app|awp)")
    group.add_argument("--method", choices=("app", "awp"),
                       help="app: worst case over input and parameter boxes by interval bounds (Szász); "
                       "awp: adversarial weight perturbation (Wu et al.)")
    group.add_argument("--app-eps", type=nonneg_float, default=0.01, help="APP input radius (default 0.01)")
    group.add_argument("--app-lambda", type=nonneg_float, default=0.05, help="APP parameter scale (default 0.05)")
    group.add_argument("--app-radius", choices=("tanh", "abs"), default="tanh",
                       help="APP radius: lambda tanh(s p^2)/m (default) or lambda |p|")
    group.add_argument("--app-s", type=pos_float, default=10.0,
                       help="APP tanh radius s (default 10: below lambda |p| for |p| < 0.1, at most lambda)")
    group.add_argument("--app-m", type=pos_float, default=1.0, help="APP tanh radius m (default 1)")
    group.add_argument("--app-kappa", type=nonneg_float, default=0.5,
                       help="APP weight of the clean cross-entropy, in [0, 1] (default 0.5)")
    group.add_argument("--app-ramp-epochs", type=nonneg_float, default=0.0,
                       help="epochs over which eps and lambda grow from 0 and kappa falls from 1 (default 0)")
    group.add_argument("--awp-eps", type=nonneg_float, default=0.0,
                       help="AWP's PGD radius (default 0: clean batches); steps from --pgd-steps")
    group.add_argument("--awp-gamma", type=nonneg_float, default=0.01, help="AWP relative weight move (default 0.01)")
    group.add_argument("--awp-proxy-lr", type=pos_float, default=0.01, help="AWP proxy step size (default 0.01)")


def objective(args: argparse.Namespace):
    """APP or AWP as the flags ask, or None without ``--method``."""
    if getattr(args, "method", None) is None:
        return None
    if args.method == "app":
        from robustmip.training.app import APP

        return APP(args.app_eps, args.app_lambda, args.app_radius, args.app_s, args.app_m, args.app_kappa,
                   args.app_ramp_epochs)
    from robustmip.attacks.gradient import PGDConfig
    from robustmip.training.awp import AWP

    attack = PGDConfig(args.awp_eps, args.pgd_steps, args.pgd_step_size) if args.awp_eps > 0 else None
    return AWP(attack, args.awp_gamma, args.awp_proxy_lr)
