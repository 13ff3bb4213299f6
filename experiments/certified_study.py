"""Certified training and its exact verified error (seed 004, Liang et al. 2023): a thin script over the study.

Usage: ``python experiments/certified_study.py --config demo`` (or ``full`` with ``--data-dir DIR``
holding full MNIST, or a JSON file); resumable: rerun the same command. See
:mod:`robustmip.studies.certified_study`.
"""

import sys

from robustmip.studies.certified_study import main

if __name__ == "__main__":
    sys.exit(main())
