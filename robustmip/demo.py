"""``make demo``: exact MILP verification of the shipped 784-32-32-10 MNIST net on a few test images.

Runs offline (embedded MNIST subset, HiGHS) and prints one verdict row per (image, eps) plus a
summary. Usage: ``python -m robustmip.demo [--n 10] [--eps 0.05 0.1] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import importlib.resources
import json
import time

from robustmip.attacks.falsify import property_falsifier
from robustmip.cli import print_verdict_table, verdict_row
from robustmip.data import load_dataset
from robustmip.milp import MilpSolver, verify
from robustmip.network import Network

DEMO_NET = "demo_mlp_32_32.npz"


def load_demo_network() -> Network:
    """The shipped demo network (see scripts/make_demo_net.py for how it was trained)."""
    with importlib.resources.as_file(importlib.resources.files("robustmip") / "assets" / DEMO_NET) as path:
        return Network.load(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=10, help="number of test images (default 10)")
    parser.add_argument("--eps", type=float, nargs="+", default=[0.05, 0.1], help="l-inf radii")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per MILP")
    parser.add_argument("--json", help="also write the rows as JSON to this file")
    parser.add_argument("--no-pgd", action="store_true", help="skip the PGD pass before each MILP")
    args = parser.parse_args(argv)

    net = load_demo_network()
    data = load_dataset("test", "embedded")
    solver = MilpSolver("highs", args.timeout)
    falsifier = None if args.no_pgd else property_falsifier()
    print(f"robustmip demo: {net} on {args.n} embedded MNIST test images: PGD first, then the exact MILP "
          "(HiGHS, LP-tightened bounds)\n")
    start = time.perf_counter()
    rows = []
    for eps in args.eps:
        for i in range(args.n):
            verdict = verify(net, data.images[i], int(data.labels[i]), eps, solver=solver, falsifier=falsifier)
            rows.append(verdict_row(i, verdict))
            print_verdict_table(rows[-1:], header=len(rows) == 1)
    print()
    for eps in args.eps:
        sub = [r for r in rows if r["eps"] == eps]
        counts = {s: sum(r["status"] == s for r in sub) for s in ("robust", "adversarial", "unknown")}
        print(f"eps {eps:.3f}: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    print(f"total wall time {time.perf_counter() - start:.1f} s; every 'adversarial' passed a float64 re-check")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
