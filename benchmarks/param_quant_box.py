"""Seconds per image to decide the k-bit quantization box exactly (issue 17's target: 8 bits,
784-100-100-10, HiGHS, median below 5 s).

For each of the first N test images the network classifies correctly, :func:`verify_parameter_robustness`
decides whether any rounding of every weight to its ``bits``-bit grid (round to nearest, the box of
radius ``s/2`` per layer) can change the label, with the input fixed: interval bounds first, then
``param_pgd``, LP bounds over the box and one targeted decision MILP per class they leave open. One
torch thread and one solver thread; the stages of each image are timed separately (the MILP's time
is its build and solve).

Rows are appended to ``OUT_DIR/param_quant_box.jsonl`` as images finish (a rerun resumes) and
summarised (median, mean, max per stage and verdict counts) on stdout and in
``param_quant_box_summary.csv``.

Usage (the network: a checkpoint, ONNX or .npz file, e.g. the one ``make study`` trains)::

    python benchmarks/param_quant_box.py results/models/mlp-100-100.pt --bits 8 --images 20
"""

from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path

import numpy as np


def image_job(instance: dict) -> dict:
    """One image: the verdict over the box and its seconds per stage."""
    import torch

    from robustmip.io import load_network
    from robustmip.milp import SolveOptions
    from robustmip.params import ParamBox, verify_parameter_robustness

    torch.set_num_threads(1)
    net = load_network(instance["model"])
    box = ParamBox.quantization(net, instance["bits"], "nearest")
    options = SolveOptions.create(instance["solver"], instance["timeout"])
    verdict = verify_parameter_robustness(net, box, np.asarray(instance["x"]), instance["label"], options=options)
    return {"status": verdict.status, "proof": verdict.proof, "seconds": verdict.seconds,
            "milp_seconds": verdict.times["build"] + verdict.times["solve"], **verdict.times}


def main() -> None:
    from robustmip.data import load_dataset
    from robustmip.io import load_network
    from robustmip.parallel import run_instances

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="the network (.pt checkpoint, .onnx or .npz)")
    parser.add_argument("--bits", type=int, default=8)
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--solver", default="highs", choices=("highs", "gurobi"))
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per image")
    parser.add_argument("--out-dir", type=Path, default=Path("results/bench"))
    args = parser.parse_args()
    net = load_network(args.model)
    test = load_dataset("test", "embedded")
    correct = [i for i in range(len(test)) if int(np.argmax(net.forward(test.images[i]))) == int(test.labels[i])]
    instances = [{"key": f"{Path(args.model).name}/{args.bits}/{args.solver}/{i}", "model": str(args.model),
                  "bits": args.bits, "solver": args.solver, "timeout": args.timeout, "image": i,
                  "label": int(test.labels[i]), "x": test.images[i].reshape(-1).tolist()}
                 for i in correct[:args.images]]
    rows = run_instances(image_job, instances, args.out_dir / "param_quant_box.jsonl", key="key", backend="serial",
                         settings={"bits": args.bits, "solver": args.solver, "timeout": args.timeout})
    summary = []
    for stage in ("seconds", "milp_seconds", "falsify", "bounds"):
        values = [r[stage] for r in rows]
        summary.append([stage, statistics.median(values), statistics.mean(values), max(values)])
    counts = {s: sum(r["status"] == s for r in rows) for s in ("robust", "flips", "unknown")}
    print(f"{len(rows)} images, {args.bits}-bit box, {args.solver}: {counts}")
    print(f"{'stage':<14}{'median s':>10}{'mean s':>10}{'max s':>10}")
    for stage, median, mean, worst in summary:
        print(f"{stage:<14}{median:>10.3f}{mean:>10.3f}{worst:>10.3f}")
    with (args.out_dir / "param_quant_box_summary.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["stage", "median_s", "mean_s", "max_s"])
        writer.writerows(summary)


if __name__ == "__main__":
    main()
