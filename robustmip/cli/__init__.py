"""The ``robustmip`` command line: one module per command group, shared pieces in :mod:`robustmip.cli.common`.

``verify`` (verify, verify-vnnlib, vnncomp), ``train`` (train, attack, info), ``prune``, ``study``,
``params``, ``certify`` and ``sensitivity`` (sensitivity, sensitivity-study). Building the parser imports
no torch, Pyomo or solver, so ``--help`` and argument errors answer at once; each handler imports what
it needs. Errors print one line on stderr and exit 2; an interrupt exits 130.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

COMMAND_MODULES = ("verify", "train", "prune", "study", "demo", "params", "certify", "sensitivity")
"""Modules of :mod:`robustmip.cli` that each register their subcommands with ``add_parsers``."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="robustmip", description="Exact MILP robustness of ReLU networks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"robustmip.cli.{name}").add_parsers(sub)
    return parser


BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")
"""Read once, when numpy (OpenBLAS) and torch (OpenMP) load. The command line sets them to 1 unless the
user did: robustmip's numpy work is small matrix products, which a second BLAS thread only slows when
the cores are busy (spinning threads), and the commands that use torch or the solvers set their
threads explicitly (``--threads``)."""


FAST_EXIT_COMMANDS = frozenset({"verify-vnnlib"})
"""Commands whose process ends with ``os._exit`` once stdout and stderr are flushed. A competition runs
one process per instance and counts its whole wall time; unloading torch (which the branch-and-bound
imports) adds about a second at interpreter exit. These commands start no pool, Ray or thread that
outlives their handler and write their result file atomically before returning, so no exit handler has
work left."""


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for variable in BLAS_THREAD_VARIABLES:
        os.environ.setdefault(variable, "1")
    return int(args.func(args))


def entry() -> None:
    """The console script and ``python -m robustmip``: :func:`main`, then exit (fast for FAST_EXIT_COMMANDS)."""
    code = main()
    if sys.argv[1:2] and sys.argv[1] in FAST_EXIT_COMMANDS:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    entry()
