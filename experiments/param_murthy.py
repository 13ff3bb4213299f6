"""Murthy, Das & Islam's parameter-robustness tables, decided exactly: a thin script over the study.

Usage: ``python experiments/param_murthy.py --config demo`` (or ``full``, or a JSON file); see
:mod:`robustmip.studies.param_murthy`.
"""

import sys

from robustmip.studies.param_murthy import main

if __name__ == "__main__":
    sys.exit(main())
