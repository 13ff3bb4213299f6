"""``robustmip sensitivity``: boxes around the reachable outputs (interval, kw, crown, lp, exact) and their volumes.

One row per (input, method): the box ``lower``/``upper`` (one value per output), ``log10_volume``
(``log10 prod_i (upper_i - lower_i)``) and, for ``exact``, the inner box of attained outputs and the
status (``exact`` when every face was proven). With ``--out`` the rows of each input are appended to a
JSONL file as it finishes (a rerun resumes; other settings are refused).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

from robustmip.cli.common import (
    add_data_options,
    check_writable,
    chosen_images,
    nonneg_float,
    nonneg_int,
    pos_float,
    pos_int,
    print_json,
    reports_errors,
    unit_eps,
)
from robustmip.cli.verify import BOUNDS_CHOICES, SOLVER_CHOICES
from robustmip.errors import InvalidInput

METHOD_CHOICES = ("interval", "kw", "crown", "lp", "exact")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sensitivity", help="output boxes and their volumes (relaxations and the exact MILP box)",
                       description="Boxes containing every output reachable from an l-inf ball around each "
                       "input, by interval arithmetic, Wong & Kolter's dual (kw, seed 001's S_dual), CROWN, LP "
                       "or exactly (one persistent MILP per input: an inner box of attained outputs and an "
                       "outer box of proven bounds, sound under --timeout). Volumes as log10.")
    p.add_argument("model", help="model: .onnx, .pt checkpoint or .npz network")
    radius = p.add_mutually_exclusive_group()
    radius.add_argument("--eps", type=unit_eps, help="l-inf radius in [0,1] pixel units, the same for every input")
    radius.add_argument("--sigma", type=nonneg_float,
                        help="per-feature radius sigma * range_j, range_j feature j's range over the MNIST "
                        "training set (seed 001: sigma 0.05; pixels that never change get radius 0)")
    p.add_argument("--n", type=pos_int, default=10, help="first n test images (default 10)")
    p.add_argument("--indices", type=nonneg_int, nargs="+", help="test image indices (instead of --n)")
    p.add_argument("--images", type=Path, help=".npz with arrays 'images' (N, ...) and 'labels' (N,) instead of MNIST")
    p.add_argument("--vnnlib", type=Path, help="take the input box(es) from this VNN-LIB property instead of images "
                   "(no clipping; rows have index null)")
    p.add_argument("--methods", nargs="+", choices=METHOD_CHOICES, default=list(METHOD_CHOICES),
                   help="box methods (default: all)")
    p.add_argument("--no-clip", action="store_true", help="do not clip the ball to [0, 1] (seed 001 does not)")
    p.add_argument("--solver", choices=SOLVER_CHOICES, default="highs", help="MILP solver of exact (default highs)")
    p.add_argument("--timeout", type=pos_float, default=60.0,
                   help="seconds for one input's exact box, every MILP included (default 60); the outer box "
                   "stays sound when it runs out")
    p.add_argument("--bounds", choices=BOUNDS_CHOICES, default="lp",
                   help="bound level of the exact MILP's big-M constants (default lp)")
    p.add_argument("--exact-engine", choices=("auto", "milp", "lp-bab"), default="auto",
                   help="exact box engine: the MILP, branch-and-bound on one LP (HiGHS), or auto (LP "
                   "branch-and-bound when the bounds leave few ReLUs unstable; default)")
    p.add_argument("--threads", type=pos_int, default=1, help="solver and torch threads (default 1)")
    p.add_argument("--workers", type=pos_int, default=1,
                   help="inputs in parallel, one process each (default 1: in this process)")
    p.add_argument("--out", type=Path, help="append each input's rows to this JSONL file (a rerun resumes)")
    p.add_argument("--json", action="store_true", help="print the rows as a JSON list")
    add_data_options(p)
    p.set_defaults(func=run_sensitivity)

    p = sub.add_parser("sensitivity-study", help="seed 001's sensitivity study, measured exactly (resumable)",
                       description="Train seed 001's methods (Table 1: Base, specM, jacobM, SM; Tables 2/3: Base, "
                       "K&W, SM), measure their metrics, the exact output boxes and adversarial errors of a "
                       "subset, the Iris energy landscape, and write report.md beside the published figures. "
                       "Finished stages are reused; a rerun under other settings is refused.")
    p.add_argument("--config", default="demo",
                   help="a shipped config, demo (default) or full, or a JSON file of SensitivityStudyConfig fields")
    p.add_argument("--run", help="run name (results in OUT_ROOT/RUN; default: the config's)")
    p.add_argument("--out-root", help="folder of the runs (default results/sensitivity_study)")
    p.add_argument("--workers", type=pos_int, help="parallel MILP workers (default: every core)")
    p.add_argument("--device", help="torch device for training (default cpu)")
    p.add_argument("--data-dir", help="folder holding MNIST/raw (default: $ROBUSTMIP_DATA, then the embedded subset)")
    p.add_argument("--redo-errors", action="store_true", help="retry MILP jobs that ended in an error")
    p.set_defaults(func=run_sensitivity_study)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _instances(args: argparse.Namespace, network: str, net) -> tuple[list[dict], dict]:
    """The input boxes as job instances, and what identifies the data for the resume guard."""
    import numpy as np

    from robustmip.sensitivity.box import ball

    if args.vnnlib is not None:
        from robustmip.io.vnnlib import load_vnnlib

        if args.indices is not None or args.images is not None:
            raise InvalidInput("give either --vnnlib or images (--indices, --images), not both")
        prop = load_vnnlib(args.vnnlib)
        if prop.n_inputs != net.n_inputs:
            raise InvalidInput(f"{args.vnnlib} has {prop.n_inputs} inputs, the model {net.n_inputs}")
        boxes = [(f"vnnlib/{k}", None, case.lower, case.upper) for k, case in enumerate(prop.cases)]
        return _as_instances(args, network, boxes), {"vnnlib": str(args.vnnlib), "sha256": _sha256(args.vnnlib)}
    if args.eps is None and args.sigma is None:
        raise InvalidInput("give the radius: --eps E, or --sigma S for seed 001's per-feature radius")
    indices, images, _ = chosen_images(args)
    data = {"images": str(args.images) if args.images else "mnist-test"}  # more indices extend a run
    eps = args.eps
    if args.sigma is not None:
        from robustmip.data import load_dataset
        from robustmip.sensitivity.measure import feature_eps

        train = load_dataset("train", "embedded" if args.embedded else "auto", args.data_dir)
        eps = feature_eps(train.images, args.sigma)
        data["train_fingerprint"] = train.fingerprint
    domain = (None, None) if args.no_clip else (0.0, 1.0)
    boxes = [(str(i), i, *ball(net, np.asarray(images[i]), eps, domain)) for i in indices]
    return _as_instances(args, network, boxes), data


def _as_instances(args: argparse.Namespace, network: str, boxes) -> list[dict]:
    exact = {"solver": args.solver, "time_limit": args.timeout, "threads": args.threads, "bounds": args.bounds,
             "engine": args.exact_engine}
    return [{"key": key, "network": network, "index": index, "lower": lower.tolist(), "upper": upper.tolist(),
             "methods": list(dict.fromkeys(args.methods)), "exact": exact} for key, index, lower, upper in boxes]


def _print_rows(rows: list[dict], header: bool, stream=None) -> None:
    stream = stream or sys.stdout
    title = f"{'index':>6} {'method':<9} {'log10 S':>10} {'vs exact':>9} {'status':<11} {'inner':>10} {'time s':>8}"
    if header:
        print(title, file=stream)
        print("-" * len(title), file=stream)
    for r in rows:
        ratio = "" if r.get("log10_ratio") is None else f"{r['log10_ratio']:.3f}"
        inner = "" if r.get("inner_log10_volume") is None else f"{r['inner_log10_volume']:.4f}"
        index = "-" if r["index"] is None else str(r["index"])
        print(f"{index:>6} {r['method']:<9} {r['log10_volume']:>10.4f} {ratio:>9} {r.get('status', ''):<11} "
              f"{inner:>10} {r['seconds']:>8.2f}", file=stream, flush=True)


@reports_errors
def run_sensitivity(args: argparse.Namespace) -> int:
    from robustmip.io import load_network
    from robustmip.parallel import run_instances
    from robustmip.sensitivity.measure import box_job, sense
    from robustmip.solvers import check_solver

    if "exact" in args.methods:
        check_solver(args.solver)
    import torch

    # The gradient search and the torch bounds are small: more threads only spin-wait beside the solver.
    torch.set_num_threads(args.threads)
    net = load_network(args.model)
    network = str(Path(args.model).resolve())
    instances, data = _instances(args, network, net)
    if args.out is not None:
        check_writable(args.out)
        args.on_interrupt = f"finished inputs are kept in {args.out}; rerun the same command to resume"
        settings = {"model_sha256": _sha256(Path(args.model)), "eps": args.eps, "sigma": args.sigma,
                    "clip": not args.no_clip, "methods": instances[0]["methods"] if instances else [],
                    "exact": instances[0]["exact"] if instances else {}, "data": data}
        results = run_instances(box_job, instances, args.out, key="key",
                                backend="serial" if args.workers == 1 else "processes", workers=args.workers,
                                progress=sys.stderr.isatty(), desc="sensitivity", settings=settings)
        failed = [r for r in results if r.get("status") == "error"]
        if failed:
            raise InvalidInput(f"{len(failed)} input(s) failed, e.g. {failed[0]['key']}: {failed[0].get('error')}; "
                               f"the others are kept in {args.out}")
        rows = [row for result in results for row in result["rows"]]
        if not args.json:
            _print_rows(rows, header=True)
    else:
        rows = []
        for instance in instances:
            new = box_job(instance)["rows"]
            rows.extend(new)
            if not args.json:
                _print_rows(new, header=len(rows) == len(new))
    if args.json:
        print_json(rows)
    else:
        print()
        for method in dict.fromkeys(r["method"] for r in rows):
            agg = sense([r["log10_volume"] for r in rows if r["method"] == method])
            closed = [r for r in rows if r["method"] == method and r.get("status") == "exact"]
            extra = f", {len(closed)} exact" if method == "exact" else ""
            print(f"{method}: SENSE (mean S) 10^{agg['log10_mean']:.3f}, geometric mean 10^{agg['log10_geomean']:.3f} "
                  f"over {sum(r['method'] == method for r in rows)} inputs{extra}")
    return 0


@reports_errors
def run_sensitivity_study(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from robustmip.studies.sensitivity_study import (
        SensitivityStudyConfig,
        load_config,
        run_study,
    )

    values = asdict(load_config(args.config))
    values.update({name: getattr(args, name) for name in ("run", "out_root", "workers", "device", "data_dir")
                   if getattr(args, name) is not None})
    cfg = SensitivityStudyConfig(**values)
    args.on_interrupt = f"finished stages and MILP rows are kept in {cfg.run_dir}; rerun the same command to resume"
    run_study(cfg, redo_errors=args.redo_errors)
    return 0
