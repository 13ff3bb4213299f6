"""APP against AWP on MNIST (seed 003's two tables) with exact joint (eps, lambda) certificates: a thin script.

Usage: ``python experiments/app_vs_awp.py --config demo`` (or ``full``, or a JSON file); see
:mod:`robustmip.studies.app_vs_awp`.
"""

import sys

from robustmip.studies.app_vs_awp import main

if __name__ == "__main__":
    sys.exit(main())
