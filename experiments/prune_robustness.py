"""The pruning-robustness study (Bai et al. 2020): a thin script over ``robustmip study``.

Usage: ``python experiments/prune_robustness.py --config demo`` (a shipped config by name, or a
JSON file; see ``--help``). The study itself is :mod:`robustmip.studies.prune_robustness`.
"""

import sys

from robustmip.cli import main

if __name__ == "__main__":
    sys.exit(main(["study", *sys.argv[1:]]))
