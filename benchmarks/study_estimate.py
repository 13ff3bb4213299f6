"""Estimate a full pruning-robustness study's duration per stage from a small run of the same settings.

Make the small run with the full config and fewer seeds and images, under another run name, e.g.::

    robustmip study --config full --run estimate --seeds 0 --images 3 --sweep-images 1 --workers 2

then extrapolate to the full config::

    python benchmarks/study_estimate.py results/prune_robustness/estimate --config full --workers 2

Per stage: training, pruning, retraining and importance scale with the seeds; the calibration with
nets x images; each optimisation stage with its number of optimisations (seeds x nets x eps x images x
9 targets) times the small run's mean seconds per optimisation of the same net and eps, divided by
the workers. Optimisations that ended at the small run's last time limit make the estimate a lower
bound; the script says how many there were.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from robustmip.parallel import read_results
from robustmip.studies.prune_robustness import CONTROL_NET, NETS, ROBUST_NET, StudyConfig, load_config

PER_SEED = ("original", "pruned", "neurons", CONTROL_NET, ROBUST_NET)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", type=Path, help="the small run's folder (holding config.json and timings.json)")
    parser.add_argument("--config", default="full", help="the full run's config (name or JSON file)")
    parser.add_argument("--workers", type=int, default=2, help="parallel optimisation workers of the full run")
    args = parser.parse_args(argv)
    small = StudyConfig(**json.loads((args.run_dir / "config.json").read_text())["config"])
    full = load_config(args.config)
    timings = json.loads((args.run_dir / "timings.json").read_text())
    rows = [r for v in read_results(args.run_dir / "milp_rows.jsonl").values() for r in v.get("rows", [])]
    calibration = json.loads((args.run_dir / "calibration.json").read_text()) if full.calibrate else None
    focus = calibration["eps"] if calibration else max(full.eps)
    eps_all = sorted(set(full.eps) | {focus})
    seeds = len(full.seeds) / len(small.seeds)

    def seconds(stage: str) -> float:
        return timings.get(stage, {}).get("seconds", 0.0)

    def per_optimisation(net: str, eps: float) -> float:
        times = [r["time_s"] for r in rows if (r["net"] == net or net == "sweep_t" and r["net"].startswith(net))
                 and abs(r["eps"] - eps) < 1e-12]
        return float(np.mean(times)) if times else float("nan")

    extra = [n for n, on in ((CONTROL_NET, full.retrain_control), (ROBUST_NET, full.robust_prune)) if on]
    counts = {
        "milp": [(net, eps, len(full.seeds) * full.images * 9) for net in NETS for eps in eps_all],
        "milp_extra": [(net, focus, len(full.seeds) * full.images * 9) for net in extra],
        "milp_sweep": [("sweep_t", focus, len(full.sweep_thresholds) * full.sweep_images * 9)],
    }
    table = [(stage, seeds * seconds(stage), "per seed") for stage in PER_SEED if stage in timings]
    table.append(("calibration", seconds("calibration") * seeds * full.calibration_images / small.calibration_images,
                  "nets x images"))
    table.append(("sweep", seconds("sweep") * len(full.sweep_thresholds) / max(len(small.sweep_thresholds), 1),
                  "thresholds"))
    for stage, parts in counts.items():
        total = sum(n * per_optimisation(net, eps) for net, eps, n in parts if n)
        detail = ", ".join(f"{n} x {per_optimisation(net, eps):.2f} s ({net}, eps {eps:g})"
                           for net, eps, n in parts if n)
        table.append((stage, total / args.workers, f"{detail} / {args.workers} workers"))
    table.append(("report", seconds("report"), "as measured"))
    capped = sum(r.get("time_limit") == small.ladder[-1] and r.get("solver_status") != "optimal" for r in rows)
    print(f"estimate for {args.config} ({len(full.seeds)} seeds, {full.images} images, eps {eps_all}) from "
          f"{args.run_dir} ({len(small.seeds)} seeds, {small.images} images, {len(rows)} optimisations, "
          f"{capped} left open at its last limit {small.ladder[-1]:g} s: then a lower bound)")
    for stage, value, how in table:
        print(f"  {stage:13s} {value:9.0f} s {value / 3600:7.2f} h   {how}")
    total = sum(v for _, v, _ in table if np.isfinite(v))
    print(f"  {'total':13s} {total:9.0f} s {total / 3600:7.2f} h")
    return 0


if __name__ == "__main__":
    sys.exit(main())
