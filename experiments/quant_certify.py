"""The bits table of issue 17 (agreement, interval- and MILP-certified, flips, time): a thin script.

Usage: ``python experiments/quant_certify.py --config demo`` (or ``full``, or a JSON file); see
:mod:`robustmip.studies.quant_certify`.
"""

import sys

from robustmip.studies.quant_certify import main

if __name__ == "__main__":
    sys.exit(main())
