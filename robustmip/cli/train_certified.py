"""``robustmip train --certified ibp|crown-ibp ...``: certified training (:mod:`robustmip.training.certified`).

A plug-in of ``robustmip train`` (:data:`robustmip.cli.train.OBJECTIVE_MODULES`): :func:`add_options`
registers the flags without importing torch, :func:`objective` builds the objective when
``--certified`` is given.
"""

from __future__ import annotations

import argparse

from robustmip.cli.common import nonneg_float, pos_int, unit_eps
from robustmip.errors import InvalidInput

METHODS = ("ibp", "crown-ibp")
WEIGHTS = ("single", "uniform", "inverse")


def add_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group(
        "certified training", "IBP / CROWN-IBP (Zhang et al. 2020) and global multi-radius training (Liang et "
        "al. 2023): loss kappa CE(z, y) + (1 - kappa) sum_i c_i CE(-m(x, i eps / N), y). CROWN-IBP's settings "
        "are --lr 5e-4 --batch-size 256.")
    g.add_argument("--certified", choices=METHODS,
                   help="train on the IBP margin bound, or on beta * CROWN-IBP + (1 - beta) * IBP")
    g.add_argument("--cert-eps", type=unit_eps, help="final l_inf training radius, pixels in [0,1] (required)")
    g.add_argument("--gm-n", type=pos_int, default=5, help="number N of radii i eps / N (default 5)")
    g.add_argument("--gm-weights", choices=WEIGHTS, default="single",
                   help="weights c_i of the radii: single = only eps (plain IBP/CROWN-IBP), uniform = 1/N (GRT), "
                   "inverse = proportional to 1/r_i (GM) (default single)")
    g.add_argument("--kappa", type=nonneg_float, nargs=2, default=[1.0, 0.0], metavar=("START", "END"),
                   help="weight of the clean cross-entropy, ramped with eps (default 1 0)")
    g.add_argument("--beta", type=nonneg_float, nargs=2, metavar=("START", "END"),
                   help="CROWN-IBP share of the margin, ramped with eps (default 1 0 for crown-ibp; 0 0 for ibp)")
    g.add_argument("--schedule-length", type=nonneg_float,
                   help="epochs over which eps, kappa and beta ramp (default: half of --epochs)")
    g.add_argument("--schedule-start", type=nonneg_float, default=0.0,
                   help="warm-up epochs at eps 0 before the ramp (default 0)")


def objective(args: argparse.Namespace):
    """The :class:`~robustmip.training.certified.CertifiedTraining` of the flags; None without ``--certified``."""
    if args.certified is None:
        if args.cert_eps is not None or args.beta is not None:
            raise InvalidInput("--cert-eps and --beta need --certified ibp|crown-ibp")
        return None
    if args.cert_eps is None or args.cert_eps <= 0:
        raise InvalidInput("--certified needs --cert-eps > 0")
    from robustmip.training.certified import CertifiedTraining

    beta = args.beta if args.beta is not None else ((1.0, 0.0) if args.certified == "crown-ibp" else (0.0, 0.0))
    length = args.schedule_length if args.schedule_length is not None else args.epochs / 2
    return CertifiedTraining(args.certified, args.cert_eps, args.gm_n, args.gm_weights, tuple(args.kappa),
                             tuple(beta), length, args.schedule_start)
