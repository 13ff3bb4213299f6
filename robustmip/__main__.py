"""``python -m robustmip``: the command line (:mod:`robustmip.cli`)."""

from robustmip.cli import entry

entry()
