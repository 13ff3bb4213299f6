"""``robustmip study``: the pruning-robustness study (:mod:`robustmip.studies.prune_robustness`)."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from robustmip.cli.common import (
    add_deprecated_alias,
    nonneg_float,
    nonneg_int,
    pos_float,
    pos_int,
    reports_errors,
    unit_eps,
)
from robustmip.cli.verify import BOUNDS_CHOICES, SOLVER_CHOICES

BACKEND_CHOICES = ("serial", "processes", "ray")


def add_study_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The study's options; every default is None so that only flags given explicitly override the config."""
    parser.add_argument("--config", help="study settings: a JSON file of StudyConfig fields, or the name of a "
                        "shipped config (demo, full); flags given explicitly win over it")
    parser.add_argument("--run", help="run name: results go to OUT_ROOT/RUN (default 'default')")
    parser.add_argument("--out-root", help="folder of the runs (default results/prune_robustness)")
    parser.add_argument("--report-dir", help="also copy the report (markdown, CSVs, PNGs, JSON) to this folder")
    parser.add_argument("--model", help="original checkpoint (.pt; '{seed}' in the name is replaced by each seed); "
                        "trained with --arch when omitted")
    parser.add_argument("--arch", help="architecture of the original net when trained here (default mlp-100-100)")
    parser.add_argument("--train-eps", type=unit_eps, help="PGD radius of (re)training (default 0.1)")
    parser.add_argument("--train-epochs", type=pos_int, help="epochs of the original net (default 20)")
    parser.add_argument("--pgd-steps", type=pos_int, help="PGD steps in training (default 10)")
    parser.add_argument("--pgd-step-size", type=pos_float, help="PGD step size in training (default 0.025)")
    parser.add_argument("--eps-ramp-epochs", type=nonneg_int, help="epochs of the linear eps ramp (default 5)")
    parser.add_argument("--prune-threshold", type=nonneg_float, help="prune neurons scoring below this (default 0.1)")
    parser.add_argument("--prune-lambda", type=nonneg_float, help="loss weight of the importance MIP (default 5)")
    parser.add_argument("--images-per-class", type=pos_int, help="images per class of the importance MIP (default 1)")
    parser.add_argument("--prune-timeout", dest="prune_time_limit", type=pos_float,
                        help="seconds for the importance MIP (default 600)")
    add_deprecated_alias(parser, "--prune-time-limit", "--prune-timeout", "prune_time_limit", type=pos_float)
    parser.add_argument("--retrain-epochs", type=nonneg_int, help="PGD retraining epochs after pruning (default 2)")
    parser.add_argument("--seeds", type=nonneg_int, nargs="+", help="training seeds, each trained, pruned and "
                        "retrained the same way (default 0 1 2)")
    parser.add_argument("--images", type=pos_int, help="test images per net (default 100)")
    parser.add_argument("--eps", type=unit_eps, nargs="+", help="l-inf radii of the MILPs, besides the calibrated "
                        "one (default 0.05 0.1)")
    parser.add_argument("--no-calibrate", dest="calibrate", action="store_false", default=None,
                        help="skip the eps calibration (targeted PGD rate of the original vs the published 148/900)")
    parser.add_argument("--calibration-eps", type=unit_eps, nargs="+", help="grid of the calibration (default "
                        "0.01 .. 0.3 by 0.01)")
    parser.add_argument("--calibration-images", type=pos_int, help="test images of the calibration (default 100)")
    parser.add_argument("--engine", help="exact engine of each target's optimisation: milp (default), or another "
                        "registered in robustmip.studies.engines.ENGINES")
    parser.add_argument("--solver", choices=SOLVER_CHOICES, help="MILP solver (default highs)")
    parser.add_argument("--timeout", dest="time_limit", type=pos_float,
                        help="seconds of an optimisation's first attempt (default 60)")
    add_deprecated_alias(parser, "--time-limit", "--timeout", "time_limit", type=pos_float)
    parser.add_argument("--max-timeout", dest="max_time_limit", type=pos_float,
                        help="seconds of its last attempt: an optimisation left open is rerun with time_factor "
                             "times more, up to this; raising it on a finished run reruns only the open ones "
                             "(default 3600)")
    parser.add_argument("--time-factor", type=pos_float, help="growth of the time limit between attempts (default 4)")
    parser.add_argument("--mip-gap", type=pos_float, help="relative gap at which an optimisation is optimal "
                        "(default 1e-4)")
    parser.add_argument("--decide-timeout", dest="decide_time_limit", type=nonneg_float,
                        help="seconds for the decision MILP that settles an optimisation still open after its last "
                             "attempt (default: --max-timeout; 0: none)")
    add_deprecated_alias(parser, "--decide-time-limit", "--decide-timeout", "decide_time_limit", type=nonneg_float)
    parser.add_argument("--bounds", choices=BOUNDS_CHOICES, help="bound level before each MILP (default lp)")
    parser.add_argument("--no-pgd-start", dest="pgd_start", action="store_false", default=None,
                        help="start each MILP from the clean image instead of a targeted PGD point")
    parser.add_argument("--no-retrain-control", dest="retrain_control", action="store_false", default=None,
                        help="skip the control net (the original retrained like the pruned one, not pruned)")
    parser.add_argument("--no-robust-prune", dest="robust_prune", action="store_false", default=None,
                        help="skip robustness-aware pruning (scores from clean plus adversarial images)")
    parser.add_argument("--sweep-thresholds", type=nonneg_float, nargs="*",
                        help="thresholds of the sparsity sweep (none: no sweep; default 0.3 0.5 0.7)")
    parser.add_argument("--sweep-images", type=pos_int, help="test images of the sweep's exact rates (default 20)")
    parser.add_argument("--workers", type=pos_int, help="parallel MILP workers (default: every core)")
    parser.add_argument("--backend", choices=BACKEND_CHOICES, help="where MILP jobs run (default processes)")
    parser.add_argument("--torch-threads", type=pos_int, help="torch CPU threads for training (default 1)")
    parser.add_argument("--data-dir", help="folder holding MNIST/raw (default: $ROBUSTMIP_DATA, then the embedded subset)")
    parser.add_argument("--embedded", action="store_true", default=None, help="use the embedded MNIST subset")
    parser.add_argument("--redo-errors", action="store_true", help="retry MILP jobs that ended in an error")
    return parser


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("study", help="the pruning-robustness study (train, prune, retrain, MILP attack, report)",
                       description="The pruning-robustness study of Bai et al. 2020, resumable: train (or "
                       "load) the original net, MIP-importance pruning, PGD retraining, targeted max-margin "
                       "MILPs on both nets, reverse testing, report.md with CSVs and PNGs. A rerun under "
                       "other settings is refused; more --images or --eps extend a run.")
    add_study_arguments(p)
    p.set_defaults(func=run_study)


def config_from_args(args: argparse.Namespace):
    """Defaults, overridden by ``--config``, overridden by the flags given on the command line."""
    from robustmip.studies.prune_robustness import StudyConfig, load_config

    values = asdict(load_config(args.config) if args.config else StudyConfig())
    for name, value in vars(args).items():
        if name in values and value is not None:
            values[name] = value
    return StudyConfig(**values)


@reports_errors
def run_study(args: argparse.Namespace) -> int:
    from robustmip.studies.prune_robustness import run_study as run

    cfg = config_from_args(args)
    args.on_interrupt = f"finished stages and MILP rows are kept in {cfg.run_dir}; rerun the same command to resume"
    run(cfg, redo_errors=args.redo_errors)
    return 0
