"""``robustmip verify``, ``verify-vnnlib`` and ``vnncomp``: exact verification from the command line."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from robustmip.cli.common import (
    add_data_options,
    check_writable,
    chosen_images,
    nonneg_int,
    pos_float,
    pos_int,
    print_json,
    print_verdict_table,
    reports_errors,
    unit_eps,
    verdict_row,
)
from robustmip.errors import InvalidInput, RobustMipError

SOLVER_CHOICES = ("highs", "gurobi", "scip")
BOUNDS_CHOICES = ("interval", "crown", "alpha", "lp", "milp")
ENGINE_CHOICES = ("milp", "bab", "auto")
DEFAULT_ENGINE = "auto"


def add_solver_options(parser: argparse.ArgumentParser, default_timeout: float | None) -> None:
    """``--engine``, ``--solver``, ``--timeout``, ``--bounds``, ``--threads``, ``--no-pgd`` of the exact commands."""
    parser.add_argument("--engine", choices=ENGINE_CHOICES, default=DEFAULT_ENGINE,
                        help="milp: one MILP per question; bab: branch-and-bound (optimised linear bounds, "
                        "the MILP for small subproblems); auto: the MILP when few ReLUs are unstable, else the "
                        f"branch-and-bound (default {DEFAULT_ENGINE})")
    parser.add_argument("--solver", choices=SOLVER_CHOICES, default="highs", help="MILP solver (default highs)")
    if default_timeout is not None:
        parser.add_argument("--timeout", type=pos_float, default=default_timeout,
                            help=f"seconds per question, every stage included (default {default_timeout:g})")
    parser.add_argument("--bounds", choices=BOUNDS_CHOICES, default="lp",
                        help="bound tightening before the MILP (default lp)")
    parser.add_argument("--threads", type=pos_int, default=1,
                        help="CPU threads for the solver and its LP bounds (default 1)")
    parser.add_argument("--no-pgd", action="store_true",
                        help="skip the PGD falsification that runs before every MILP")


def solve_options(args: argparse.Namespace, timeout: float | None, domain=(0.0, 1.0)):
    """The :class:`~robustmip.milp.SolveOptions` of the parsed solver options."""
    from robustmip.milp import SolveOptions
    from robustmip.solvers import MilpSolver

    falsifier = None
    if not args.no_pgd:
        from robustmip.attacks.falsify import property_falsifier

        falsifier = property_falsifier()
    return SolveOptions(MilpSolver(args.solver, timeout, args.threads), bounds=args.bounds, domain=domain,
                        falsifier=falsifier, engine=args.engine)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify", help="verify MNIST test images exactly (robust / adversarial / unknown)",
                       description="Exact robustness of MNIST test images: PGD first, then sound bounds "
                       "and the MILP or the branch-and-bound (--engine). Verdicts: robust (proved), "
                       "adversarial (re-checked counterexample), "
                       "unknown (with the reason).")
    p.add_argument("model", help="model: .onnx, .pt checkpoint or .npz network")
    p.add_argument("--eps", type=unit_eps, required=True, help="l-infinity radius in [0,1] pixel units")
    p.add_argument("--n", type=pos_int, default=10, help="first n test images (default 10)")
    p.add_argument("--indices", type=nonneg_int, nargs="+", help="test image indices (instead of --n)")
    p.add_argument("--images", type=Path, help=".npz with arrays 'images' (N, ...) in [0,1] and 'labels' (N,) "
                   "(instead of MNIST)")
    p.add_argument("--json", action="store_true", help="print the verdicts as JSON")
    add_data_options(p)
    add_solver_options(p, 60.0)
    p.set_defaults(func=run_verify)

    p = sub.add_parser("verify-vnnlib", help="decide one VNN-LIB property; write a VNN-COMP result file",
                       description="Decide one VNN-COMP instance: sat (a re-checked counterexample), "
                       "unsat (proved), timeout or unknown. Prints the verdict line; --out writes the "
                       "VNN-COMP result file.")
    p.add_argument("onnx", help="the network, an ONNX file (.onnx or .onnx.gz)")
    p.add_argument("vnnlib", help="the property, a VNN-LIB file (.vnnlib or .vnnlib.gz): the unsafe region")
    p.add_argument("--out", type=Path, help="result file (first line sat/unsat/timeout/unknown/error)")
    add_solver_options(p, 60.0)
    p.set_defaults(func=run_verify_vnnlib)

    p = sub.add_parser("vnncomp", help="run a VNN-COMP instances.csv (resumable)",
                       description="Run every instance of a VNN-COMP instances.csv, one JSON line per "
                       "finished instance in --out (a rerun resumes; other settings are refused), "
                       "counterexamples of sat instances beside it, and a CSV table at the end.")
    p.add_argument("instances", type=Path, help="instances.csv: onnx,vnnlib,timeout per row, no header")
    p.add_argument("--root", type=Path, help="folder the csv's paths are relative to (default: the csv's folder)")
    p.add_argument("--out", type=Path, default=Path("vnncomp_results.jsonl"),
                   help="results (JSON lines, appended as instances finish; default vnncomp_results.jsonl)")
    p.add_argument("--expected", type=Path, help="CSV of reference verdicts (columns onnx, vnnlib, expected|result)")
    p.add_argument("--timeout-scale", type=pos_float, default=1.0,
                   help="multiply every instance's timeout by this (default 1)")
    p.add_argument("--timeout-cap", type=pos_float, help="at most this many seconds per instance")
    p.add_argument("--json", action="store_true", help="print the summary as JSON (else a table)")
    add_solver_options(p, None)
    p.set_defaults(func=run_vnncomp)


@reports_errors
def run_verify(args: argparse.Namespace) -> int:
    from robustmip.bab.engine import verify
    from robustmip.io import load_network

    options = solve_options(args, args.timeout)
    net = load_network(args.model)
    indices, images, labels = chosen_images(args)
    rows = []
    for i in indices:
        verdict = verify(net, images[i], int(labels[i]), args.eps, options)
        rows.append(verdict_row(i, verdict))
        if not args.json:
            print_verdict_table(rows[-1:], header=len(rows) == 1)
    if args.json:
        print_json(rows)
    else:
        counts = {s: sum(r["status"] == s for r in rows) for s in ("robust", "adversarial", "unknown")}
        print(f"\n{len(rows)} images at eps {args.eps}: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    return 0


@reports_errors
def run_verify_vnnlib(args: argparse.Namespace) -> int:
    from robustmip.io import load_network
    from robustmip.io.vnnlib import load_vnnlib
    from robustmip.vnncomp import check_property

    if args.out is not None:
        check_writable(args.out)
        # Until a verdict is written the file says "unknown": an interrupted or killed run leaves no
        # stale or partial verdict (the final one replaces it atomically).
        _write_result(args.out, "unknown\n")
        args.on_interrupt = f"{args.out} says unknown"
    try:
        options = solve_options(args, args.timeout, domain=(None, None))
        net = load_network(args.onnx)
        prop = load_vnnlib(args.vnnlib)
        result = check_property(net, prop, options)
        if result.result == "error":
            raise InvalidInput(result.reason)
    except RobustMipError:
        if args.out is not None:  # VNN-COMP scripts read the result file: say "error" there too
            _write_result(args.out, "error\n")
        raise
    if args.out is not None:
        _write_result(args.out, result.result_file_text())
    print(f"{result.result} ({result.seconds:.2f} s){': ' + result.reason if result.reason else ''}")
    return 0


def _write_result(path: Path, text: str) -> None:
    """Write a result file atomically (a reader sees the old or the new content, never a part)."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def _print_row(row: dict) -> None:
    reason = f"  {row['reason']}" if row.get("reason") else ""
    print(f"{row['onnx']} {row['vnnlib']}: {row['result']} ({float(row['seconds']):.2f} s){reason}",
          file=sys.stderr, flush=True)


@reports_errors
def run_vnncomp(args: argparse.Namespace) -> int:
    from robustmip.vnncomp import read_expected, run_benchmark, summarize, write_csv

    expected = read_expected(args.expected)
    check_writable(args.out)
    args.on_interrupt = f"finished instances are kept in {args.out}; rerun the same command to resume"
    start = time.perf_counter()
    rows = run_benchmark(args.instances, args.root, args.out, solver=args.solver, threads=args.threads,
                         bounds=args.bounds, engine=args.engine, pgd=not args.no_pgd,
                         timeout_scale=args.timeout_scale, timeout_cap=args.timeout_cap,
                         progress=sys.stderr.isatty(), on_row=_print_row)
    table = args.out.with_suffix(".csv")
    write_csv(rows, table, expected)
    summary = {**summarize(rows, expected), "results": str(args.out), "table": str(table),
               "seconds_this_run": time.perf_counter() - start}
    if args.json:
        print_json(summary)
    else:
        counts = ", ".join(f"{v} {k}" for k, v in sorted(summary["counts"].items()))
        print(f"{summary['instances']} instances: {summary['solved']} solved ({counts}); table {table}")
        if expected:
            print(f"contradictions with {args.expected}: {summary['contradictions']}")
    if summary["contradictions"]:
        for line in summary["contradicted"]:
            print(f"robustmip vnncomp: contradiction: {line}", file=sys.stderr)
        return 1
    return 0

