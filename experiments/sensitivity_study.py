"""Seed 001's sensitivity study, measured exactly: a thin script over ``robustmip sensitivity-study``.

Usage: ``python experiments/sensitivity_study.py --config demo`` (a shipped config by
name, or a JSON file; see ``--help``). The study itself is :mod:`robustmip.studies.sensitivity_study`.
"""

import sys

from robustmip.cli import main

if __name__ == "__main__":
    sys.exit(main(["sensitivity-study", *sys.argv[1:]]))
