"""A/B of two solver option sets on the same targeted max-margin MILPs, in one process.

For every image (the first N correctly classified test images of ``--net``) robustmip builds one
persistent model (``ImageProblem`` with the PGD falsifier, as in ``milp_targeted.py``; ``--no-pgd``:
without it, so the MIP start is the clean image and the solver's focus is "balanced") and solves
each target's max-margin MILP to optimality twice: once with the options ``--a`` and once with
``--b`` (JSON objects of solver-specific names, passed as ``MilpSolver(options=...)``; they override
robustmip's own). The order alternates from one instance to the next, so drift on a noisy machine
hits both sides alike. The per-instance ratio is ``a / b`` (time of A over time of B: above 1 means
B is faster); optima must agree within ``--tol``.

Rows are appended to ``OUT_DIR/NAME.csv`` as each instance finishes, with the settings in
``NAME.json``: a rerun with the same settings resumes, one with other settings is refused.

Usage (the networks are checkpoints in ``results/models``, see benchmarks/README.md)::

    python benchmarks/solver_options_ab.py --net mlp-50-50 --eps 0.05 --images 8 \\
        --a '{"mip_pscost_minreliable": 8, "mip_allow_cut_separation_at_nodes": true}' --b '{}'
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from milp_targeted import load_net, net_path, pick_images, ratio_stats, test_set  # noqa: E402

FIELDS = ["image", "label", "target", "first", "a_s", "b_s", "ratio", "a_status", "b_status", "a_objective",
          "b_objective", "agree"]


def _options(text: str, flag: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SystemExit(f"{flag}: not JSON ({exc})")
    if not isinstance(value, dict):
        raise SystemExit(f"{flag}: a JSON object of solver options is needed, got {text!r}")
    return value


def _done(path: Path, settings: dict) -> set[tuple[int, int]]:
    """(image, target) pairs already measured under the same settings; refuse other settings."""
    config = path.with_suffix(".json")
    if config.exists() and json.loads(config.read_text()) != settings:
        raise SystemExit(f"{config} holds other settings: use another --name (or delete {path.stem}.*)")
    config.write_text(json.dumps(settings, indent=1))
    if not path.exists():
        return set()
    with path.open() as handle:
        return {(int(row["image"]), int(row["target"])) for row in csv.DictReader(handle)}


def _summary(path: Path, tol: float) -> None:
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        print("no instances")
        return
    a = [float(r["a_s"]) for r in rows]
    b = [float(r["b_s"]) for r in rows]
    stats = ratio_stats(a, b)
    both = [r for r in rows if r["a_status"] == r["b_status"] == "optimal"]
    disagree = [r for r in both if r["agree"] != "True"]
    print(f"{len(rows)} instances; A median {np.median(a):.2f} s (total {sum(a):.0f}), "
          f"B median {np.median(b):.2f} s (total {sum(b):.0f})")
    print(f"A/B per instance: median {stats['median_ratio']:.2f}x, geometric mean {stats['geomean_ratio']:.2f}x, "
          f"min {stats['min_ratio']:.2f}x, max {stats['max_ratio']:.2f}x; totals {stats['total_ratio']:.2f}x")
    print(f"optimal on both sides: {len(both)} of {len(rows)}; optima differing by more than {tol}: {len(disagree)}")
    for r in disagree:
        print(f"  BUG? image {r['image']} target {r['target']}: {r['a_objective']} vs {r['b_objective']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--net", default="mlp-50-50", help="name in results/models (NAME.pt) or a path")
    parser.add_argument("--eps", type=float, default=0.05, help="l_inf radius (pixels in [0, 1])")
    parser.add_argument("--images", type=int, default=8, help="first N correctly classified test images")
    parser.add_argument("--solver", default="highs", choices=["highs", "gurobi"])
    parser.add_argument("--a", default="{}", help="JSON object of solver options for side A")
    parser.add_argument("--b", default="{}", help="JSON object of solver options for side B")
    parser.add_argument("--no-pgd", action="store_true",
                        help="no PGD search: the MIP start is the clean image and the solver's focus is 'balanced'")
    parser.add_argument("--time-limit", type=float, default=300.0, help="seconds per MILP")
    parser.add_argument("--tol", type=float, default=1e-4,
                        help="objective agreement tolerance, relative: |a - b| <= tol (1 + |a|)")
    parser.add_argument("--out-dir", type=Path, default=Path("results/bench"))
    parser.add_argument("--name", default="solver_options_ab", help="result files OUT_DIR/NAME.{csv,json}")
    args = parser.parse_args()
    sides = {"a": _options(args.a, "--a"), "b": _options(args.b, "--b")}

    import torch

    from robustmip.attacks.falsify import property_falsifier
    from robustmip.errors import InvalidInput
    from robustmip.milp import ImageProblem, SolveOptions
    from robustmip.solvers import MilpSolver

    torch.set_num_threads(1)
    for flag, options in sides.items():
        try:
            MilpSolver(args.solver, options=options)  # unknown option names stop here, before any work
        except InvalidInput as exc:
            raise SystemExit(f"--{flag}: {exc}")
    path = str(net_path(args.net))
    settings = {"net": path, "eps": args.eps, "solver": args.solver, "a": sides["a"], "b": sides["b"],
                "time_limit": args.time_limit, "pgd": not args.no_pgd}
    args.out_dir.mkdir(parents=True, exist_ok=True)
    out = args.out_dir / f"{args.name}.csv"
    done = _done(out, settings)
    net, data = load_net(path), test_set()
    new_file = not out.exists()
    with out.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        if new_file:
            writer.writeheader()
        count = len(done)
        for image in pick_images(path, args.images):
            label = int(data.labels[image])
            x = data.images[image].astype(np.float64).reshape(-1)
            solver = MilpSolver(args.solver, args.time_limit, threads=1)
            falsifier = None if args.no_pgd else property_falsifier()
            problem = ImageProblem(net, x, label, args.eps, SolveOptions(solver, falsifier=falsifier))
            for target in range(net.n_outputs):
                if target == label or (image, target) in done:
                    continue
                order = ("a", "b") if count % 2 == 0 else ("b", "a")
                count += 1
                result = {}
                for side in order:
                    solver.options = sides[side]
                    verdict = problem.margin(target=target)
                    result[side] = (verdict.times["solve"], verdict.solver_status, verdict.objective)
                (a_s, a_status, a_obj), (b_s, b_status, b_obj) = result["a"], result["b"]
                agree = a_obj is not None and b_obj is not None and abs(a_obj - b_obj) <= args.tol * (1 + abs(a_obj))
                writer.writerow({"image": image, "label": label, "target": target, "first": order[0], "a_s": a_s,
                                 "b_s": b_s, "ratio": a_s / b_s, "a_status": a_status, "b_status": b_status,
                                 "a_objective": a_obj, "b_objective": b_obj, "agree": agree})
                handle.flush()
                print(f"image {image} target {target}: A {a_s:.2f} s ({a_status}), B {b_s:.2f} s ({b_status}), "
                      f"A/B {a_s / b_s:.2f}", flush=True)
    _summary(out, args.tol)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
