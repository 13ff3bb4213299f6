"""Seconds for the exact output box of one MNIST image on the shipped 784-32-32-10 net (20 MILPs), HiGHS.

The goal of issue 18: median under 5 s per image. Variants (``--variants``), each on the first
``--images`` test images of the embedded subset, one image at a time, in this process:

* ``auto``: :func:`robustmip.sensitivity.exact.exact_box` with its defaults (those of ``robustmip
  sensitivity``): the LP branch-and-bound when the bounds leave at most
  ``LP_BAB_UNSTABLE`` ReLUs unstable, the MILP otherwise;
* ``lp-bab``: every image through the LP branch-and-bound (``ExactOptions(engine="lp-bab")``);
* ``persistent``: every image through the MILP engine, one model per image, each face started from
  the gradient search;
* ``presolve-off``: the same with HiGHS's presolve off (``ExactOptions(solver_options=...)``);
* ``threads2``: the same with two HiGHS threads;
* ``rebuild``: the former way, :func:`robustmip.milp.outputs.OutputProblem` built anew for every face
  (bounds, model and solve per MILP, no start): the 43-91 s baseline (``--rebuild-images`` images).

Per image: wall and CPU seconds, faces closed by bounds, optimisations run, the engine, the status,
log10 volume. Printed as a table (median, mean, max per variant, and the median per-image speed-up
of each variant over ``persistent``), with the largest disagreement of exact boxes' log10 volumes
between variants, outer (proven) and inner (attained) boxes: a bug above ``AGREE``; written to
``results/bench/sensitivity_speed.csv``.

Usage: python benchmarks/sensitivity_speed.py [--images 20] [--eps 0.05] [--variants persistent,rebuild]
       [--rebuild-images 3] [--timeout 600]
One solver thread and one torch/BLAS thread unless a variant says otherwise; other jobs on the same
cores distort the timings (the load average before each image is recorded): run it alone.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import time
from pathlib import Path

import numpy as np

from robustmip.data import load_dataset, load_demo_network
from robustmip.milp import OutputProblem
from robustmip.sensitivity.exact import ExactOptions, exact_box
from robustmip.sensitivity.result import OutputBox, log10_volume
from robustmip.spec import input_box

OUT = Path("results/bench/sensitivity_speed.csv")
AGREE = 1e-4
"""log10-volume tolerance between two exact boxes of one image: the MILP widens each face by
``1e-6 (1 + |bound|)`` against its solver's tolerances and either engine stops at a relative gap of
1e-6, which over 20 faces of width ~1-10 moves log10 S by up to about 5e-5."""
VARIANTS = {
    "auto": {},
    "lp-bab": {"engine": "lp-bab"},
    "persistent": {"engine": "milp"},
    "presolve-off": {"engine": "milp", "solver_options": {"presolve": "off"}},
    "threads2": {"engine": "milp", "threads": 2},
}


def rebuilt_box(net, lower: np.ndarray, upper: np.ndarray, options: ExactOptions) -> OutputBox:
    """The exact box with a new model per face (bounds, build and solve each time), no start."""
    start = time.perf_counter()
    lo, up, statuses = np.zeros(net.n_outputs), np.zeros(net.n_outputs), []
    for i in range(net.n_outputs):
        for sense in ("min", "max"):
            optimum = OutputProblem(net, lower, upper, options.solve_options()).optimize(i, sense)
            (lo if sense == "min" else up)[i] = optimum.bound
            statuses.append(optimum.status)
    status = "exact" if all(s == "optimal" for s in statuses) else "time_limit"
    return OutputBox("exact", lo, up, time.perf_counter() - start, status=status,
                     solves=[{"status": s} for s in statuses])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20, help="test images per variant (default 20)")
    parser.add_argument("--rebuild-images", type=int, default=3, help="images of the rebuild variant (default 3)")
    parser.add_argument("--eps", type=float, default=0.05, help="l_inf radius, pixels in [0, 1] (default 0.05)")
    parser.add_argument("--variants", default="auto,lp-bab,persistent",
                        help=f"comma-separated, of {', '.join([*VARIANTS, 'rebuild'])}")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per image's box (default 600)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    net = load_demo_network()
    test = load_dataset("test", "embedded")
    rows = []
    for variant in args.variants.split(","):
        if variant != "rebuild" and variant not in VARIANTS:
            raise SystemExit(f"unknown variant {variant!r}")
        n = args.rebuild_images if variant == "rebuild" else args.images
        options = ExactOptions(time_limit=args.timeout, **VARIANTS.get(variant, {}))
        for i in range(n):
            lower, upper = input_box(test.images[i], args.eps)
            load = os.getloadavg()[0]
            wall, cpu = time.perf_counter(), time.process_time()
            box = rebuilt_box(net, lower, upper, options) if variant == "rebuild" else exact_box(net, lower, upper,
                                                                                                   options)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            milps = sum(s["status"] != "closed_by_bounds" for s in box.solves)
            engines = sorted({s["engine"] for s in box.solves if "engine" in s}) or ["milp"]
            rows.append({"variant": variant, "image": i, "wall_s": wall, "cpu_s": cpu, "milps": milps,
                         "engine": "+".join(engines),
                         "closed_by_bounds": len(box.solves) - milps, "status": box.status,
                         "log10_volume": log10_volume(box.lower, box.upper),
                         "log10_inner_volume": log10_volume(box.inner_lower, box.inner_upper)
                         if box.inner_lower is not None else None, "load_before": load})
            print(f"{variant:>13} image {i:>3}: {wall:7.2f} s wall, {cpu:7.2f} s CPU, {milps:>2} questions "
                  f"({rows[-1]['engine']}), {box.status}, log10 S {rows[-1]['log10_volume']:.4f} "
                  f"(load {load:.2f})", flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    base = {r["image"]: r["wall_s"] for r in rows if r["variant"] == "persistent"}
    print(f"\n{'variant':>13} {'images':>6} {'median s':>9} {'mean s':>7} {'max s':>7} {'median CPU s':>12} "
          f"{'speed-up vs persistent':>23}")
    for variant in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == variant]
        wall, cpu = [r["wall_s"] for r in mine], [r["cpu_s"] for r in mine]
        ratios = [base[r["image"]] / r["wall_s"] for r in mine if r["image"] in base]
        print(f"{variant:>13} {len(wall):>6} {statistics.median(wall):>9.2f} {statistics.mean(wall):>7.2f} "
              f"{max(wall):>7.2f} {statistics.median(cpu):>12.2f} "
              f"{'' if not ratios else f'{statistics.median(ratios):.2f}x':>23}")
    for column in ("log10_volume", "log10_inner_volume"):
        volumes: dict[int, list[float]] = {}
        for r in rows:
            if r["status"] == "exact" and r[column] is not None:
                volumes.setdefault(r["image"], []).append(r[column])
        spread = max((max(v) - min(v) for v in volumes.values()), default=0.0)
        print(f"largest {column} disagreement between exact boxes of one image: {spread:.2e}"
              + ("  <-- BUG" if spread > AGREE else ""))
    print(f"written {OUT}")


if __name__ == "__main__":
    main()
