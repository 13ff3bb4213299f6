"""Certified training and its exact verified error (seed 004, Liang et al. 2023): a thin script.

Usage: ``python experiments/certified_study.py --config certified_demo`` (or ``certified_full`` with
``--data-dir DIR`` holding full MNIST, or a JSON file); see ``--help``. Resumable: rerun the same command.
The study itself is :mod:`robustmip.studies.certified_study`.
"""

import sys

from robustmip.cli.common import reports_errors
from robustmip.studies.certified_study import build_parser, config_from_args, run_study


@reports_errors
def main(args) -> int:
    cfg = config_from_args(args)
    args.on_interrupt = f"finished epochs and rows are kept in {cfg.run_dir}; rerun the same command to resume"
    run_study(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main(build_parser().parse_args()))
