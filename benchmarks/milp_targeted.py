"""Targeted max-margin MILPs solved to optimality: robustmip (HiGHS, Gurobi) and OMLT (HiGHS) side by side.

For every network, eps and image, and for every target class ``t != label``, minimise the margin
``z_label - z_t`` over the l-infinity ball (clipped to [0, 1]) to optimality: the OFV of
Bai et al. 2020. robustmip answers an image's 9 targets on one persistent model
(``ImageProblem(net, x, label, eps, SolveOptions(falsifier=property_falsifier())).margin(target=t)``: a targeted
PGD search seeds each MILP with a near-optimal MIP start and the solver focuses on the bound;
``--clean-start`` adds the same engines without the search, started from the clean image, to
measure what that buys: engines ``ours-SOLVER-clean``); the OMLT peer (``--omlt``, see
``benchmarks/omlt_peer.py``) builds OMLT's ``ReluBigMFormulation`` over the same box, lets OMLT
compute its own big-M bounds, and is solved by the same HiGHS through the same solver layer, also
one persistent model per image. Both answer the same (image, target) questions, and their optimal
objectives must agree (within ``--tol``, 1e-4): a disagreement is reported as a bug.

Times. Each image's wall time is split into bounds (robustmip's bound computation; OMLT's FBBT
is inside its build), build (creating the Pyomo model, plus APPSI's translation of it into the
solver and the per-target updates), optimize (the solver's own run) and other (loading solutions,
the float64 re-check, Python). An instance is one (image, target); its time is its solve call plus
its share (1/number of targets) of the image's bounds and model building. Speed-ups are medians of
per-instance time ratios on the instances both engines ran.

Gurobi's size-limited pip licence (2000 variables, 2000 constraints) refuses large models: such an
image is listed as "too large for licence".

Results are appended per image to ``OUT_DIR/NAME.jsonl`` (an interrupted run resumes; a rerun with
the same settings only prints the tables) and summarised in ``NAME_targets.csv``,
``NAME_summary.csv`` and ``NAME_ratios.csv``.

Usage (the networks are checkpoints in ``results/models``, see benchmarks/README.md)::

    python benchmarks/milp_targeted.py --nets mlp-50-50 --eps 0.05 --images 5 --solver highs,gurobi --omlt
"""

from __future__ import annotations

import argparse
import csv
import functools
import math
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # omlt_peer, also in worker processes

MODELS_DIR = Path("results/models")
DEFAULT_NETS = "mlp-50-50,mlp-100-100,mlp-50-50-pgd0.1,mlp-100-100-pgd0.1"
TRAIN_HINT = {
    "mlp-50-50": "--arch mlp-50-50 --epochs 5",
    "mlp-100-100": "--arch mlp-100-100 --epochs 5",
    "mlp-50-50-pgd0.1": "--arch mlp-50-50 --epochs 5 --adv-eps 0.1 --pgd-steps 10 --pgd-step-size 0.025 --eps-ramp-epochs 3",
    "mlp-100-100-pgd0.1": "--arch mlp-100-100 --epochs 20 --adv-eps 0.1 --pgd-steps 10 --pgd-step-size 0.025 --eps-ramp-epochs 5",
}


# --------------------------------------------------------------------------------------------------
# One image, one engine (runs in the worker: a top-level function of plain-data instances)


def net_path(name: str) -> Path:
    path = Path(name)
    if path.suffix in (".pt", ".onnx", ".npz") and path.is_file():
        return path
    path = MODELS_DIR / f"{name}.pt"
    if path.is_file():
        return path
    hint = TRAIN_HINT.get(name, f"--arch {name}")
    raise SystemExit(
        f"network {name!r}: no file {path}. Train it first:\n  ROBUSTMIP_DATA=/path/to/data "
        f".venv/bin/robustmip train {hint} --threads 1 --out {path}"
    )


@functools.lru_cache(maxsize=8)
def load_net(path: str):
    from robustmip.io import load_network

    return load_network(path)


@functools.lru_cache(maxsize=1)
def test_set():
    """The first 1000 MNIST test images (the embedded subset: no download, the same images as full MNIST)."""
    from robustmip.data import load_dataset

    return load_dataset("test", "embedded")


def pick_images(path: str, n: int) -> list[int]:
    """Indices of the first ``n`` test images the network classifies correctly."""
    net, data = load_net(path), test_set()
    predicted = np.argmax(net.forward(data.images.reshape(len(data), -1).astype(np.float64)), axis=1)
    correct = np.flatnonzero(predicted == data.labels)
    if len(correct) < n:
        raise SystemExit(f"only {len(correct)} correctly classified test images for {path}")
    return [int(i) for i in correct[:n]]


def _instrument(solver) -> list[dict]:
    """Record APPSI's own timers (translation vs optimisation) of every solve of a MilpSolver.

    Benchmark-only: wraps the persistent APPSI object that MilpSolver keeps in ``_appsi``.
    """
    from pyomo.common.timing import HierarchicalTimer

    calls: list[dict] = []
    appsi = getattr(solver, "_appsi", None)
    if appsi is None:
        return calls
    original = appsi.solve

    def solve(model, timer=None):
        timer = HierarchicalTimer()
        try:
            return original(model, timer=timer)
        finally:
            record = {}
            for name in ("set_instance", "update", "optimize"):
                try:
                    record[name] = timer.get_total_time(name)
                except Exception:  # noqa: BLE001 - the timer was never started (e.g. an error)
                    record[name] = 0.0
            calls.append(record)

    appsi.solve = solve
    return calls


def _split(calls: list[dict]) -> tuple[float, float]:
    translate = sum(c["set_instance"] + c["update"] for c in calls)
    optimize = sum(c["optimize"] for c in calls)
    return translate, optimize


PEERS = ("omlt-highs", "gurobiml-gurobi")
"""Peer engines: their own formulation and bounds, one thread."""


def _run_gurobi_ml(inst: dict, net, x: np.ndarray, label: int, targets: list[int]) -> dict:
    from gurobi_ml_peer import GurobiMlProblem

    from robustmip.spec import input_box

    start = time.perf_counter()
    lower, upper = input_box(x, inst["eps"])  # the same box as ImageProblem's
    problem = GurobiMlProblem(net, lower, upper, inst["time_limit"])
    rows = [{"target": target, **problem.margin(label, target)} for target in targets]
    return {"wall_s": time.perf_counter() - start, "bounds_s": 0.0, "encode_s": problem.build_seconds,
            "size": problem.size(), "targets": rows}


def run_image(inst: dict) -> dict:
    """All targets of one (net, eps, image) with one engine; returns per-target rows and the time split."""
    import torch

    torch.set_num_threads(1)
    net = load_net(inst["net_path"])
    data = test_set()
    index = inst["image"]
    x = data.images[index].reshape(-1).astype(np.float64)
    label = int(data.labels[index])
    targets = [t for t in range(net.n_outputs) if t != label][: inst["targets"]]
    out = {"status": "ok", "net": inst["net"], "eps": inst["eps"], "image": index, "label": label,
           "engine": inst["engine"], "bounds_method": inst["bounds"] if inst["engine"] not in PEERS else "own",
           "time_limit": inst["time_limit"]}
    if inst["engine"] == "omlt-highs":
        out.update(_run_omlt(inst, net, x, label, targets))
    elif inst["engine"] == "gurobiml-gurobi":
        out.update(_run_gurobi_ml(inst, net, x, label, targets))
    else:
        out.update(_run_ours(inst, net, x, label, targets))
    return out


def _run_ours(inst: dict, net, x: np.ndarray, label: int, targets: list[int]) -> dict:
    from omlt_peer import model_size

    from robustmip.attacks.falsify import property_falsifier
    from robustmip.errors import SolverLicenseLimit
    from robustmip.milp import ImageProblem, SolveOptions
    from robustmip.solvers import MilpSolver

    start = time.perf_counter()
    _, solver_name, *start_kind = inst["engine"].split("-")
    solver = MilpSolver(solver_name, inst["time_limit"], threads=1)
    calls = _instrument(solver)
    falsifier = None if start_kind == ["clean"] else property_falsifier()
    problem = ImageProblem(net, x, label, inst["eps"], SolveOptions(solver, bounds=inst["bounds"], falsifier=falsifier))
    encoding = problem.encoding
    size = model_size(encoding.block)
    rows = []
    for target in targets:
        before = len(calls)
        t0 = time.perf_counter()
        try:
            verdict = problem.margin(target=target)
        except SolverLicenseLimit as exc:
            return {"status": "licence", "message": str(exc).split(":")[0], "size": size,
                    "wall_s": time.perf_counter() - start, "targets": []}
        translate, optimize = _split(calls[before:])
        rows.append({"target": target, "status": verdict.solver_status, "verdict": verdict.status,
                     "objective": verdict.objective, "bound": verdict.bound, "wall_s": time.perf_counter() - t0,
                     "translate_s": translate, "optimize_s": optimize})
    return {"wall_s": time.perf_counter() - start, "bounds_s": problem.bounds.seconds,
            "encode_s": problem.build_seconds, "size": size, "targets": rows}


def _run_omlt(inst: dict, net, x: np.ndarray, label: int, targets: list[int]) -> dict:
    from omlt_peer import (
        build_omlt_model,
        input_point,
        model_size,
        set_margin_objective,
    )

    from robustmip.solvers import MilpSolver
    from robustmip.spec import input_box

    start = time.perf_counter()
    lower, upper = input_box(x, inst["eps"])  # the same box as ImageProblem's
    model, build = build_omlt_model(net, lower, upper)
    size = model_size(model)
    solver = MilpSolver("highs", inst["time_limit"], threads=1)
    calls = _instrument(solver)
    rows = []
    for target in targets:
        before = len(calls)
        t0 = time.perf_counter()
        set_margin_objective(model, label, target)
        result = solver.solve(model)
        wall = time.perf_counter() - t0
        point_margin = None
        if result.has_solution:
            logits = net.forward(input_point(model, net.n_inputs, lower, upper))
            point_margin = float(logits[label] - logits[target])
        translate, optimize = _split(calls[before:])
        rows.append({"target": target, "status": result.status, "objective": result.objective,
                     "bound": result.bound, "point_margin": point_margin, "wall_s": wall,
                     "translate_s": translate, "optimize_s": optimize})
    return {"wall_s": time.perf_counter() - start, "bounds_s": 0.0, "encode_s": build, "size": size,
            "targets": rows}


# --------------------------------------------------------------------------------------------------
# Tables


def _fmt(value, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.1e}" if digits < 0 else f"{value:.{digits}f}"
    return str(value)


def print_table(title: str, rows: list[dict], columns: list[tuple[str, str, int]]) -> None:
    """``columns``: (field, header, digits)."""
    print(f"\n{title}")
    cells = [[_fmt(r.get(f), d) for f, _, d in columns] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, (_, h, _) in enumerate(columns)]
    print("  ".join(h.rjust(w) for (_, h, _), w in zip(columns, widths)))
    for c in cells:
        print("  ".join(v.rjust(w) for v, w in zip(c, widths)))


def write_csv(path: Path, rows: list[dict]) -> None:
    if not rows:
        return
    fields: list[str] = []
    for r in rows:
        fields += [k for k in r if k not in fields]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def target_rows(image_rows: list[dict]) -> list[dict]:
    """One row per (engine, net, eps, image, target) with its instance time."""
    out = []
    for r in image_rows:
        if r.get("status") != "ok" or not r.get("targets"):
            continue
        setup = (r["bounds_s"] + r["encode_s"]) / len(r["targets"])
        for t in r["targets"]:
            out.append({
                "net": r["net"], "eps": r["eps"], "engine": r["engine"], "bounds_method": r["bounds_method"],
                "image": r["image"], "label": r["label"], "target": t["target"], "status": t["status"],
                "objective": t["objective"], "bound": t["bound"], "instance_s": t["wall_s"] + setup,
                "solve_call_s": t["wall_s"], "translate_s": t["translate_s"], "optimize_s": t["optimize_s"],
                "point_margin": t.get("point_margin"),
            })
    return out


def summary_rows(image_rows: list[dict], targets: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in image_rows:
        groups[(r["net"], r["eps"], r["engine"])].append(r)
    out = []
    for (net, eps, engine), rows in groups.items():
        ok = [r for r in rows if r.get("status") == "ok"]
        inst = [t for t in targets if (t["net"], t["eps"], t["engine"]) == (net, eps, engine)]
        times = [t["instance_s"] for t in inst]
        row = {"net": net, "eps": eps, "engine": engine, "bounds": rows[0].get("bounds_method"),
               "images": len(rows), "instances": len(inst),
               "optimal": sum(t["status"] == "optimal" for t in inst),
               "time_limit": sum(t["status"] == "time_limit" for t in inst)}
        licence = [r for r in rows if r.get("status") == "licence"]
        errors = [r for r in rows if r.get("status") == "error"]
        row["note"] = ("too large for licence: %d images" % len(licence) if licence else "") + (
            f" errors: {len(errors)} ({errors[0].get('error', '')[:60]})" if errors else "")
        if times:
            row.update(median_s=statistics.median(times), mean_s=statistics.mean(times), max_s=max(times))
        wall = sum(r["wall_s"] for r in ok)
        if wall > 0:
            bounds = sum(r["bounds_s"] for r in ok)
            build = sum(r["encode_s"] + sum(t["translate_s"] for t in r["targets"]) for r in ok)
            optimize = sum(sum(t["optimize_s"] for t in r["targets"]) for r in ok)
            row.update(wall_s=wall, bounds_pct=100 * bounds / wall, build_pct=100 * build / wall,
                       optimize_pct=100 * optimize / wall, other_pct=100 * (wall - bounds - build - optimize) / wall)
        sizes = [r["size"] for r in rows if r.get("size")]
        if sizes:
            row.update(vars=statistics.mean(s["vars"] for s in sizes),
                       binaries=statistics.mean(s["binaries"] for s in sizes),
                       constraints=statistics.mean(s["constraints"] for s in sizes))
        out.append(row)
    return out


COMPARISONS = [("ours-highs-clean", "ours-highs", "PGD start speed-up (HiGHS)"),
               ("ours-gurobi-clean", "ours-gurobi", "PGD start speed-up (Gurobi)"),
               ("omlt-highs", "ours-highs", "robustmip/HiGHS speed-up over OMLT/HiGHS"),
               ("ours-highs", "ours-gurobi", "Gurobi speed-up over HiGHS (robustmip model)"),
               ("omlt-highs", "ours-gurobi", "robustmip/Gurobi speed-up over OMLT/HiGHS"),
               ("gurobiml-gurobi", "ours-highs", "robustmip/HiGHS speed-up over gurobi-ml/Gurobi"),
               ("gurobiml-gurobi", "ours-gurobi", "robustmip/Gurobi speed-up over gurobi-ml/Gurobi")]


def ratio_stats(slow: list[float], fast: list[float]) -> dict:
    """Per-instance time ratios slow/fast (paired lists of seconds): median, geometric mean, range, totals."""
    ratios = [a / b for a, b in zip(slow, fast)]
    return {
        "median_ratio": statistics.median(ratios),
        "geomean_ratio": math.exp(statistics.mean(math.log(r) for r in ratios)),
        "min_ratio": min(ratios), "max_ratio": max(ratios),
        "total_ratio": sum(slow) / sum(fast),
    }


def ratio_rows(targets: list[dict], tol: float) -> tuple[list[dict], list[dict]]:
    """Per setup and engine pair: per-instance time ratios and objective agreement; and the disagreements."""
    by = {(t["net"], t["eps"], t["engine"], t["image"], t["target"]): t for t in targets}
    setups = sorted({(t["net"], t["eps"]) for t in targets}, key=str)
    out, disagreements = [], []
    for net, eps in setups:
        for slow, fast, what in COMPARISONS:
            pairs = [(by[k], by[(net, eps, fast, k[3], k[4])]) for k in by
                     if k[:3] == (net, eps, slow) and (net, eps, fast, k[3], k[4]) in by]
            if not pairs:
                continue
            solve_ratios = [a["optimize_s"] / b["optimize_s"] for a, b in pairs if b["optimize_s"] > 0]
            both = [(a, b) for a, b in pairs if a["status"] == b["status"] == "optimal"]
            diffs = [abs(a["objective"] - b["objective"]) for a, b in both]
            for (a, b), d in zip(both, diffs):
                if d > tol:
                    disagreements.append({"net": net, "eps": eps, "image": a["image"], "target": a["target"],
                                          slow: a["objective"], fast: b["objective"], "diff": d})
            capped = sum(a["status"] == "time_limit" for a, _ in pairs)
            out.append({
                "net": net, "eps": eps, "comparison": what, "slow": slow, "fast": fast, "pairs": len(pairs),
                **ratio_stats([a["instance_s"] for a, _ in pairs], [b["instance_s"] for _, b in pairs]),
                "median_optimize_ratio": statistics.median(solve_ratios) if solve_ratios else None,
                "slow_time_limited": capped,
                "both_optimal": len(both), "max_objective_diff": max(diffs) if diffs else None,
                "disagree": sum(d > tol for d in diffs),
            })
    return out, disagreements


def report(image_rows: list[dict], out_dir: Path, name: str, tol: float) -> None:
    targets = target_rows(image_rows)
    summary = summary_rows(image_rows, targets)
    ratios, disagreements = ratio_rows(targets, tol)
    print_table("Per-instance times (instance = one image and target; seconds) and where the wall time goes", summary, [
        ("net", "net", 0), ("eps", "eps", 3), ("engine", "engine", 0), ("bounds", "bounds", 0),
        ("images", "img", 0), ("instances", "inst", 0), ("optimal", "opt", 0), ("time_limit", "TL", 0),
        ("median_s", "median", 2), ("mean_s", "mean", 2), ("max_s", "max", 2), ("wall_s", "wall", 1),
        ("bounds_pct", "bounds%", 1), ("build_pct", "build%", 1), ("optimize_pct", "solve%", 1),
        ("other_pct", "other%", 1), ("vars", "vars", 0), ("binaries", "bins", 0), ("constraints", "cons", 0),
        ("note", "note", 0),
    ])
    print_table("Speed-ups on the same instances (ratio = slow / fast time per instance) and objective agreement",
                ratios, [
        ("net", "net", 0), ("eps", "eps", 3), ("comparison", "comparison", 0), ("pairs", "pairs", 0),
        ("median_ratio", "median", 2), ("geomean_ratio", "geomean", 2), ("min_ratio", "min", 2),
        ("max_ratio", "max", 2), ("total_ratio", "total", 2), ("median_optimize_ratio", "solve-only", 2),
        ("slow_time_limited", "slow TL", 0), ("both_optimal", "both opt", 0),
        ("max_objective_diff", "max |dOFV|", -1), ("disagree", f">{tol:g}", 0),
    ])
    if disagreements:
        print(f"\nBUG: {len(disagreements)} optimal objectives disagree by more than {tol:g}:")
        for d in disagreements:
            print("  ", d)
    else:
        print(f"\nAll optimal objectives agree within {tol:g} across engines.")
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(out_dir / f"{name}_targets.csv", targets)
    write_csv(out_dir / f"{name}_summary.csv", summary)
    write_csv(out_dir / f"{name}_ratios.csv", ratios)
    print(f"\nwrote {out_dir / name}_{{targets,summary,ratios}}.csv")


# --------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nets", default=DEFAULT_NETS,
                        help="comma-separated names in results/models (NAME.pt) or paths to .pt/.onnx/.npz")
    parser.add_argument("--eps", default="0.05,0.1", help="comma-separated l_inf radii (pixels in [0, 1])")
    parser.add_argument("--images", type=int, default=20, help="first N correctly classified test images per net")
    parser.add_argument("--targets", type=int, default=9, help="first N target classes per image (default all 9)")
    parser.add_argument("--solver", default="highs,gurobi",
                        help="robustmip's solvers: highs, gurobi, scip (comma-separated)")
    parser.add_argument("--bounds", default="lp", choices=["interval", "crown", "lp", "milp"], help="robustmip's bounds")
    parser.add_argument("--clean-start", action="store_true",
                        help="also run robustmip without the PGD search (MIP start: the clean image) to "
                             "measure what the PGD start buys (engines ours-SOLVER-clean)")
    parser.add_argument("--clean-start-images", type=int,
                        help="run the clean-start engines on the first N images only (HiGHS is slow there)")
    parser.add_argument("--time-limit", type=float, default=600.0, help="seconds per MILP (each target)")
    parser.add_argument("--omlt", action="store_true", help="also solve every MILP with OMLT's formulation + HiGHS")
    parser.add_argument("--omlt-images", type=int, help="run the OMLT peer on the first N images only (it is slow)")
    parser.add_argument("--omlt-time-limit", type=float, help="seconds per OMLT MILP (default: --time-limit)")
    parser.add_argument("--gurobi-ml", action="store_true",
                        help="also solve every MILP with gurobi-machinelearning's embedding + Gurobi (a peer)")
    parser.add_argument("--gurobi-ml-images", type=int, help="run the gurobi-ml peer on the first N images only")
    parser.add_argument("--tol", type=float, default=1e-4, help="objective agreement tolerance")
    parser.add_argument("--out-dir", type=Path, default=Path("results/bench"))
    parser.add_argument("--name", default="milp_targeted", help="base name of the result files")
    parser.add_argument("--backend", default="serial", choices=["serial", "processes", "ray"],
                        help="serial (default: timings are only comparable one solve at a time)")
    parser.add_argument("--workers", type=int)
    args = parser.parse_args()

    import torch

    from robustmip.parallel import run_instances

    torch.set_num_threads(1)
    solvers = [s.strip() for s in args.solver.split(",") if s.strip()]
    if not solvers or any(s not in ("highs", "gurobi", "scip") for s in solvers):
        parser.error("--solver takes a comma-separated list of highs, gurobi, scip")
    engines = [f"ours-{s}" for s in solvers] + ([f"ours-{s}-clean" for s in solvers] if args.clean_start else [])
    engines += ["omlt-highs"] if args.omlt else []
    engines += ["gurobiml-gurobi"] if args.gurobi_ml else []
    eps_values = [float(e) for e in args.eps.split(",")]
    instances = []
    for name in [n.strip() for n in args.nets.split(",") if n.strip()]:
        path = str(net_path(name))
        for eps in eps_values:
            for rank, image in enumerate(pick_images(path, args.images)):
                for engine in engines:
                    if engine == "omlt-highs" and args.omlt_images is not None and rank >= args.omlt_images:
                        continue
                    if engine == "gurobiml-gurobi" and args.gurobi_ml_images is not None and rank >= args.gurobi_ml_images:
                        continue
                    if engine.endswith("-clean") and args.clean_start_images is not None and rank >= args.clean_start_images:
                        continue
                    limit = args.omlt_time_limit if engine == "omlt-highs" and args.omlt_time_limit else args.time_limit
                    instances.append({"net": name, "net_path": path, "eps": eps, "image": image,
                                      "engine": engine, "bounds": args.bounds, "time_limit": limit,
                                      "targets": args.targets})

    def key(inst: dict) -> str:
        bounds = "fbbt" if inst["engine"] == "omlt-highs" else "own" if inst["engine"] in PEERS else inst["bounds"]
        start = "" if inst["engine"] in PEERS else ("|start=clean" if inst["engine"].endswith("-clean") else "|start=pgd")
        return (f"{inst['net']}|eps={inst['eps']}|img={inst['image']}|{inst['engine']}{start}|bounds={bounds}"
                f"|tl={inst['time_limit']}|targets={inst['targets']}")

    started = time.perf_counter()
    rows = run_instances(run_image, instances, args.out_dir / f"{args.name}.jsonl", key=key,
                         backend=args.backend, workers=args.workers, desc="milp_targeted")
    print(f"{len(rows)} (net, eps, image, engine) rows in {time.perf_counter() - started:.0f} s "
          f"(engines: {', '.join(engines)}; threads 1; {os.cpu_count()} cores here)")
    report(rows, args.out_dir, args.name, args.tol)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
