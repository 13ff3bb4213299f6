"""VNN-COMP mnist_fc instances through each engine, one at a time: verdict and seconds per stage.

For choosing the engine defaults (``--engine milp|bab|auto``) and the branch-and-bound's settings on a
handful of real instances; the whole benchmark is ``vnncomp_mnistfc.py`` / ``robustmip vnncomp``.
Each instance runs in this process with the CLI's options (PGD falsifier, one thread), after a warm-up
that imports torch and the solvers, so start-up is excluded. Prints one line per (instance, engine)
and writes them as CSV.

    ROBUSTMIP_VNNCOMP=../shared/bench/vnncomp_mnistfc .venv/bin/python benchmarks/bab_instances.py \\
        --instances 256x2:prop_6_0.03,256x4:prop_3_0.05 --engines milp,bab --timeout 120 --out results/bench/bab.csv

``--set key=value`` overrides a :class:`robustmip.bab.BabOptions` field (repeatable).
"""

from __future__ import annotations

import argparse
import ast
import csv
import os
import sys
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=os.environ.get("ROBUSTMIP_VNNCOMP"), help="the vnncomp_mnistfc folder")
    parser.add_argument("--instances", required=True, help="comma-separated NET:PROP, e.g. 256x2:prop_6_0.03")
    parser.add_argument("--engines", default="milp,bab",
                        help="comma-separated engines (milp, bab, auto); ENGINE@N runs it with N threads")
    parser.add_argument("--timeout", type=float, help="seconds per instance (default: the instance's own)")
    parser.add_argument("--bounds", default="lp", help="bound level of the MILP engine (default lp)")
    parser.add_argument("--threads", type=int, default=1, help="threads (auto with 2: both engines race)")
    parser.add_argument("--set", action="append", default=[], help="BabOptions field=value (repeatable)")
    parser.add_argument("--out", type=Path, help="CSV of the rows")
    args = parser.parse_args()
    if not args.root or not (Path(args.root) / "instances.csv").is_file():
        print("give --root or ROBUSTMIP_VNNCOMP: the folder holding instances.csv, onnx/ and vnnlib/", file=sys.stderr)
        return 2
    import robustmip.bab.search  # noqa: F401  (imports torch before the first timed instance)
    from robustmip.attacks.falsify import property_falsifier
    from robustmip.bab import BabOptions
    from robustmip.io import load_network
    from robustmip.io.vnnlib import load_vnnlib
    from robustmip.milp import SolveOptions
    from robustmip.solvers import MilpSolver
    from robustmip.vnncomp import check_property, read_expected, read_instances

    root = Path(args.root)
    overrides = {key: ast.literal_eval(value) for key, value in (item.split("=", 1) for item in args.set)}
    bab = BabOptions(**overrides)
    expected = read_expected(root / "expected.csv") if (root / "expected.csv").is_file() else {}
    limits = {(Path(i.onnx).name, Path(i.vnnlib).name): i.timeout for i in read_instances(root / "instances.csv")}
    rows = []
    for item in args.instances.split(","):
        net_name, prop_name = item.split(":")
        onnx_name, vnnlib_name = f"mnist-net_{net_name}.onnx", f"{prop_name}.vnnlib"
        net = load_network(root / "onnx" / onnx_name)
        prop = load_vnnlib(root / "vnnlib" / vnnlib_name)
        timeout = args.timeout or limits.get((onnx_name, vnnlib_name), 300.0)
        for spec in args.engines.split(","):
            engine, _, threads = spec.partition("@")
            threads = int(threads) if threads else args.threads
            options = SolveOptions(MilpSolver("highs", timeout, threads), bounds=args.bounds, domain=(None, None),
                                   falsifier=property_falsifier(), engine=engine, bab=bab)
            start = time.perf_counter()
            result = check_property(net, prop, options)
            row = {"net": net_name, "prop": prop_name, "engine": spec, "timeout": timeout, "result": result.result,
                   "expected": expected.get((onnx_name, vnnlib_name), ""), "seconds": time.perf_counter() - start,
                   **{f"{k}_s": v for k, v in result.times.items()}, "reason": result.reason}
            rows.append(row)
            print(f"{net_name} {prop_name} {spec:7s} {row['result']:8s} (expected {row['expected'] or '?'}) "
                  f"{row['seconds']:7.2f} s  " + " ".join(f"{k}={v:.2f}" for k, v in result.times.items()),
                  flush=True)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
