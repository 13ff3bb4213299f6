"""SCIP against HiGHS on robustmip's max-margin MILPs: is SCIP worth a third solver? (issue 14, item 4)

For every network, eps, image and target class ``t != label``, robustmip builds its MILP exactly as
``ImageProblem.margin(target=t)`` solves it (its bounds, its big-M encoding with the objective-driven
relaxation of ``relax_for_objective``) and writes it to one MPS file. The *same file* is then solved,
one thread each, to the same optimality gaps (relative 1e-6, absolute 1e-9) and the same time limit by

* ``highs``: highspy with the options robustmip's ``MilpSolver`` sets for an optimisation
  (``MilpSolver._options(None, focus)``: its branching settings, heuristics on for ``balanced``), and
* ``scip``: SCIP through PySCIPOpt with its default settings, and
* ``scip-nosepa``: the same with SCIP's cutting-plane separation switched off
  (``setSeparating(SCIP_PARAMSETTING.OFF)``): on these MILPs its default root spends most of the time
  separating cuts that the big-M relaxation over tight bounds hardly needs.

With ``--start pgd`` (the default) both solvers receive the same MIP start: the forward pass of the
targeted PGD point robustmip's falsifier finds (``enc.set_point``), as robustmip's own solves do;
``--start none`` compares them cold. The focus is ``bound`` with a start (robustmip switches HiGHS's
heuristics off then) and ``balanced`` without.

Both optima must agree within ``--tol``; a disagreement is printed as a bug. Rows go to
``OUT_DIR/NAME.jsonl`` as each (image, target) finishes (``robustmip.parallel.run_instances``: an
interrupted run resumes, a rerun with other settings is refused), the summary to ``NAME_summary.csv``.

Needs ``pip install pyscipopt`` (not a dependency of robustmip). Usage::

    python benchmarks/scip_peer.py --nets mlp-50-50 --eps 0.05 --images 4 --time-limit 120
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from milp_targeted import load_net, net_path, pick_images, test_set  # noqa: E402

SOLVERS = ("highs", "scip", "scip-nosepa")
SCIP_VARIANTS = SOLVERS[1:]
REL_GAP, ABS_GAP = 1e-6, 1e-9


def write_mps(problem, target: int, folder: Path, start: np.ndarray | None) -> tuple[Path, dict[str, float]]:
    """The MILP of ``problem.margin(target=target)`` as an MPS file, and the MIP start by column name."""
    import pyomo.environ as pyo

    from robustmip.spec import margin_coefficients

    enc = problem.encoding
    enc.block.objective.set_value(problem.margin_expression(target, decision=False))
    enc.relax_for_objective(margin_coefficients(problem.net.n_outputs, problem.label, target))
    path = folder / f"t{target}.mps"
    _, symbols = enc.block.write(str(path), format="mps", io_options={"symbolic_solver_labels": False})
    values: dict[str, float] = {}
    if start is not None:
        enc.set_point(start)
        labels = enc.block.solutions.symbol_map[symbols].byObject
        for var in enc.block.component_data_objects(pyo.Var, active=True, descend_into=True):
            if id(var) in labels and var.value is not None:
                values[labels[id(var)]] = float(var.value)
    return path, values


def solve_highs(path: Path, start: dict[str, float], time_limit: float, focus: str) -> dict:
    import highspy

    from robustmip.solvers import MilpSolver, new_highs

    options = MilpSolver("highs", time_limit, threads=1)._options(None, focus)  # sets every heuristic option
    highs = new_highs(threads=1)
    for name, value in {**options, "time_limit": float(time_limit), "mip_rel_gap": REL_GAP,
                        "mip_abs_gap": ABS_GAP}.items():
        highs.setOptionValue(name, value)
    highs.readModel(str(path))
    if start:
        names = highs.getLp().col_names_
        solution = highspy.HighsSolution()
        solution.col_value = [start.get(name, 0.0) for name in names]
        highs.setSolution(solution)
    began = time.perf_counter()
    highs.run()
    seconds = time.perf_counter() - began
    info = highs.getInfo()
    status = highs.modelStatusToString(highs.getModelStatus())
    return {"status": "optimal" if status == "Optimal" else status.lower().replace(" ", "_"),
            "objective": float(info.objective_function_value), "bound": float(info.mip_dual_bound),
            "nodes": int(info.mip_node_count), "seconds": seconds}


def solve_scip(path: Path, start: dict[str, float], time_limit: float, separating: bool) -> dict:
    import pyscipopt

    model = pyscipopt.Model()
    model.hideOutput()
    model.readProblem(str(path))
    if not separating:
        model.setSeparating(pyscipopt.SCIP_PARAMSETTING.OFF)
    model.setParam("limits/time", float(time_limit))
    model.setParam("limits/gap", REL_GAP)
    model.setParam("limits/absgap", ABS_GAP)
    model.setParam("parallel/maxnthreads", 1)
    if start:
        solution = model.createPartialSol()
        for var in model.getVars():
            if var.name in start:
                model.setSolVal(solution, var, start[var.name])
        model.addSol(solution)
    began = time.perf_counter()
    model.optimize()
    seconds = time.perf_counter() - began
    status = model.getStatus()
    has_solution = model.getNSols() > 0
    return {"status": "optimal" if status in ("optimal", "gaplimit") else status,
            "objective": float(model.getObjVal()) if has_solution else math.nan,
            "bound": float(model.getDualbound()), "nodes": int(model.getNNodes()), "seconds": seconds}


def run_target(inst: dict) -> dict:
    """One (net, eps, image, target): the MPS file of robustmip's MILP, solved by both solvers."""
    import torch

    from robustmip.attacks.falsify import property_falsifier
    from robustmip.milp import ImageProblem, SolveOptions
    from robustmip.solvers import MilpSolver

    torch.set_num_threads(1)
    net = load_net(inst["net_path"])
    data = test_set()
    x = data.images[inst["image"]].reshape(-1).astype(np.float64)
    label = int(data.labels[inst["image"]])
    falsifier = property_falsifier() if inst["start"] == "pgd" else None
    problem = ImageProblem(net, x, label, inst["eps"],
                           SolveOptions(MilpSolver("highs", inst["time_limit"], threads=1), bounds=inst["bounds"],
                                        falsifier=falsifier))
    point = problem.search(inst["target"])[0] if falsifier is not None else None
    focus = "bound" if point is not None else "balanced"
    with tempfile.TemporaryDirectory() as folder:
        path, start = write_mps(problem, inst["target"], Path(folder), point)
        out = {"status": "ok", "label": label, "focus": focus, "unstable": int(problem.bounds.n_unstable()),
               "highs": solve_highs(path, start, inst["time_limit"], focus),
               "scip": solve_scip(path, start, inst["time_limit"], separating=True),
               "scip-nosepa": solve_scip(path, start, inst["time_limit"], separating=False)}
    return out


def summarize(rows: list[dict], tol: float) -> list[dict]:
    """Per (net, eps): solved counts, median seconds, and per SCIP variant its time ratios over HiGHS
    (on the MILPs both solved to optimality) and how often it was faster."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        if row.get("status") == "ok":
            groups.setdefault((row["net"], row["eps"]), []).append(row)
    summary = []
    for (net, eps), group in groups.items():
        line = {"net": net, "eps": eps, "milps": len(group),
                **{f"{s}_optimal": sum(r[s]["status"] == "optimal" for r in group) for s in SOLVERS},
                **{f"{s}_median_s": round(statistics.median(r[s]["seconds"] for r in group), 3) for s in SOLVERS},
                **{f"{s}_total_s": round(sum(r[s]["seconds"] for r in group), 1) for s in SOLVERS}}
        for variant in SCIP_VARIANTS:
            both = [r for r in group if r["highs"]["status"] == r[variant]["status"] == "optimal"]
            for r in both:
                if abs(r["highs"]["objective"] - r[variant]["objective"]) > tol * (1.0 + abs(r["highs"]["objective"])):
                    print(f"BUG: optima disagree on {r['key']}: highs {r['highs']['objective']} "
                          f"{variant} {r[variant]['objective']}")
            ratios = [r[variant]["seconds"] / max(r["highs"]["seconds"], 1e-3) for r in both]
            line.update({
                f"{variant}_over_highs_median": round(statistics.median(ratios), 2) if ratios else math.nan,
                f"{variant}_over_highs_geomean": (round(math.exp(statistics.fmean(map(math.log, ratios))), 2)
                                                  if ratios else math.nan),
                f"{variant}_faster": sum(x < 1.0 for x in ratios),
                f"{variant}_faster_by_2x": sum(x < 0.5 for x in ratios),
            })
        summary.append(line)
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nets", default="mlp-50-50", help="comma-separated names in results/models or paths")
    parser.add_argument("--eps", default="0.05", help="comma-separated l_inf radii (pixels in [0, 1])")
    parser.add_argument("--images", type=int, default=4, help="first N correctly classified test images per net")
    parser.add_argument("--targets", type=int, default=9, help="first N target classes per image")
    parser.add_argument("--bounds", default="lp", choices=["interval", "crown", "lp"], help="robustmip's bounds")
    parser.add_argument("--start", default="pgd", choices=["pgd", "none"], help="MIP start for both solvers")
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds per MILP and solver")
    parser.add_argument("--tol", type=float, default=1e-4, help="relative objective agreement tolerance")
    parser.add_argument("--out-dir", type=Path, default=Path("results/bench"))
    parser.add_argument("--name", default="scip_peer", help="base name of the result files")
    args = parser.parse_args()
    try:
        import pyscipopt  # noqa: F401
    except ImportError:
        raise SystemExit("pyscipopt is not installed: pip install pyscipopt") from None

    from robustmip.parallel import run_instances

    instances = []
    for name in [n.strip() for n in args.nets.split(",") if n.strip()]:
        path = str(net_path(name))
        for eps in (float(e) for e in args.eps.split(",")):
            for image in pick_images(path, args.images):
                label = int(test_set().labels[image])
                for target in [t for t in range(10) if t != label][: args.targets]:
                    instances.append({"net": name, "net_path": path, "eps": eps, "image": image, "target": target,
                                      "bounds": args.bounds, "start": args.start, "time_limit": args.time_limit})
    settings = {"bounds": args.bounds, "start": args.start, "time_limit": args.time_limit,
                "rel_gap": REL_GAP, "abs_gap": ABS_GAP, "threads": 1}
    rows = run_instances(run_target, instances, args.out_dir / f"{args.name}.jsonl", backend="serial",
                         key=lambda i: f"{i['net']}|eps={i['eps']}|img={i['image']}|t={i['target']}",
                         desc="scip_peer", settings=settings)
    for row, inst in zip(rows, instances):
        row.update({k: inst[k] for k in ("net", "eps", "image", "target")})
    summary = summarize(rows, args.tol)
    if summary:
        with open(args.out_dir / f"{args.name}_summary.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(summary[0]))
            writer.writeheader()
            writer.writerows(summary)
        for line in summary:
            print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
