"""``python -m robustmip``: the command line (:mod:`robustmip.cli`)."""

import sys

from robustmip.cli import main

sys.exit(main())
