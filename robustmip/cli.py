"""The ``robustmip`` command line.

Subcommands: ``verify`` (MILP verification of MNIST test images), ``verify-vnnlib`` (one VNN-LIB
instance, VNN-COMP result file), ``vnncomp`` (a whole benchmark, resumable), and ``train``,
``attack``, ``info`` (from :mod:`robustmip.cli_train`). Errors print one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from robustmip.bounds import BOUNDS_METHODS
from robustmip.cli_common import (
    add_data_options,
    nonneg_float,
    pos_float,
    pos_int,
    reports_errors,
)
from robustmip.cli_prune import add_subcommands as add_prune_subcommands
from robustmip.cli_train import add_subcommands
from robustmip.errors import DataError, RobustMipError
from robustmip.milp.solve import SOLVERS, MilpSolver, check_solver
from robustmip.milp.verify import Verdict, verify
from robustmip.network import Network


def load_network(path: str | Path) -> Network:
    """A :class:`Network` from an ONNX file, a robustmip checkpoint (``.pt``) or a saved network (``.npz``)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"model file not found: {path}")
    name = path.name.lower()
    if name.endswith((".onnx", ".onnx.gz")):
        return Network.from_onnx(path)
    if name.endswith(".npz"):
        return Network.load(path)
    if name.endswith((".pt", ".pth")):
        from robustmip.models import load_checkpoint

        model, _ = load_checkpoint(path)
        return Network.from_torch(model, input_shape=(1, 28, 28))
    raise DataError(f"unknown model format {path.suffix!r}: use .onnx, .pt (robustmip checkpoint) or .npz")


def _add_solver_options(parser: argparse.ArgumentParser, default_timeout: float | None) -> None:
    parser.add_argument("--solver", choices=SOLVERS, default="highs", help="MILP solver (default highs)")
    if default_timeout is not None:
        parser.add_argument("--timeout", type=pos_float, default=default_timeout,
                            help=f"seconds per question (default {default_timeout:g})")
    parser.add_argument("--bounds", choices=BOUNDS_METHODS, default="lp",
                        help="bound tightening before the MILP (default lp)")
    parser.add_argument("--threads", type=pos_int, default=1, help="solver threads (default 1)")
    parser.add_argument("--no-pgd", action="store_true",
                        help="skip the PGD falsification that runs before every MILP")


def _falsifier(args: argparse.Namespace):
    from robustmip.attacks.falsify import property_falsifier

    return None if args.no_pgd else property_falsifier()


def verdict_row(index: int, verdict: Verdict) -> dict:
    row = {"image": index, **verdict.to_dict()}
    row["time_s"] = sum(verdict.times.values())
    return row


def print_verdict_table(rows: list[dict], header: bool = True, stream=None) -> None:
    """A fixed-width table of verdict rows (``header=False`` appends rows to a table already printed)."""
    stream = stream or sys.stdout
    title = f"{'image':>5} {'label':>5} {'eps':>6} {'verdict':<11} {'proof':<6} {'adv':>4} {'margin':>9} {'time s':>7}  reason"
    if header:
        print(title, file=stream)
        print("-" * len(title), file=stream)
    for r in rows:
        margin = "" if r["counterexample_margin"] is None else f"{r['counterexample_margin']:.4f}"
        adv = "" if r["predicted"] is None else str(r["predicted"])
        print(
            f"{r['image']:>5} {r['label']:>5} {r['eps']:>6.3f} {r['status']:<11} {r['proof'] or '':<6} {adv:>4} "
            f"{margin:>9} {r['time_s']:>7.2f}  {r['reason']}",
            file=stream,
        )


@reports_errors
def run_verify(args: argparse.Namespace) -> int:
    from robustmip.data import load_dataset

    check_solver(args.solver)
    net = load_network(args.model)
    data = load_dataset("test", "embedded" if args.embedded else "auto", args.data_dir)
    engine = MilpSolver(args.solver, args.timeout, args.threads)
    falsifier = _falsifier(args)
    rows = []
    for i in range(min(args.n, len(data))):
        verdict = verify(net, data.images[i], int(data.labels[i]), args.eps, solver=engine,
                         bounds_method=args.bounds, threads=args.threads, falsifier=falsifier)
        rows.append(verdict_row(i, verdict))
        if not args.json:
            print_verdict_table(rows[-1:], header=i == 0)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        counts = {s: sum(r["status"] == s for r in rows) for s in ("robust", "adversarial", "unknown")}
        print(f"\n{len(rows)} images at eps {args.eps}: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    return 0


@reports_errors
def run_verify_vnnlib(args: argparse.Namespace) -> int:
    from robustmip.vnnlib import VnnResult, check_property, load_vnnlib

    try:
        check_solver(args.solver)
        net = Network.from_onnx(args.onnx)
        prop = load_vnnlib(args.vnnlib)
        result = check_property(net, prop, timeout=args.timeout, solver=args.solver,
                                bounds_method=args.bounds, threads=args.threads, falsifier=_falsifier(args))
    except RobustMipError as exc:
        result = VnnResult("error", 0.0, reason=str(exc))
    text = result.result_file_text()
    if args.out:
        Path(args.out).write_text(text)
    print(f"{result.result} ({result.seconds:.2f} s){': ' + result.reason if result.reason else ''}")
    if result.result == "error":
        print(f"robustmip verify-vnnlib: error: {result.reason}", file=sys.stderr)
        return 2
    return 0


@reports_errors
def run_vnncomp(args: argparse.Namespace) -> int:
    from robustmip.vnncomp import run_benchmark, summarize

    check_solver(args.solver)
    rows = run_benchmark(args.instances, args.root, args.out, solver=args.solver,
                         bounds_method=args.bounds, expected_csv=args.expected, falsifier=_falsifier(args))
    summary = summarize(rows)
    print(json.dumps(summary, indent=2))
    return 0


def _study_module():
    """``experiments/prune_robustness.py`` of the source checkout this package runs from."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "experiments" / "prune_robustness.py"
    if not path.is_file():
        raise DataError(f"robustmip study needs the source checkout's {path}; run it from a clone of the repository")
    spec = importlib.util.spec_from_file_location("robustmip_study_prune_robustness", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@reports_errors
def run_study(args: argparse.Namespace) -> int:
    module = _study_module()
    module.run_study(module.config_from_args(args, args.study_parser))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="robustmip", description="Exact MILP robustness of ReLU networks")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("verify", help="verify MNIST test images with the MILP (robust / adversarial / unknown)")
    p.add_argument("model", help="model: .onnx, .pt checkpoint or .npz network")
    p.add_argument("--eps", type=nonneg_float, required=True, help="l-infinity radius in [0,1] pixel units")
    p.add_argument("--n", type=pos_int, default=10, help="first n test images (default 10)")
    p.add_argument("--json", action="store_true", help="print the verdicts as JSON")
    add_data_options(p)
    _add_solver_options(p, 60.0)
    p.set_defaults(func=run_verify)

    p = sub.add_parser("verify-vnnlib", help="decide one VNN-LIB property; write a VNN-COMP result file")
    p.add_argument("onnx")
    p.add_argument("vnnlib")
    p.add_argument("--out", help="result file (first line sat/unsat/timeout/unknown/error)")
    _add_solver_options(p, 60.0)
    p.set_defaults(func=run_verify_vnnlib)

    p = sub.add_parser("vnncomp", help="run a VNN-COMP instances.csv (resumable)")
    p.add_argument("instances", help="instances.csv: onnx,vnnlib,timeout per row")
    p.add_argument("--root", help="folder the csv's paths are relative to (default: the csv's folder)")
    p.add_argument("--out", default="results.csv", help="results CSV, appended as instances finish")
    p.add_argument("--expected", help="CSV of reference verdicts (columns onnx, vnnlib, expected|result)")
    _add_solver_options(p, None)
    p.set_defaults(func=run_vnncomp)

    p = sub.add_parser("study", help="the pruning-robustness study (train, prune, retrain, MILP attack, report)")
    try:
        _study_module().build_parser(p)
        p.set_defaults(func=run_study, study_parser=p)
    except DataError as exc:
        message = str(exc)
        p.set_defaults(func=lambda args: print(f"robustmip study: error: {message}", file=sys.stderr) or 2)

    add_subcommands(sub)
    add_prune_subcommands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
