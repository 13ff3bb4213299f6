"""VNN-COMP ``mnist_fc`` benchmark: every instance's verdict and seconds, solved counts, contradictions.

Usage::

    python benchmarks/vnncomp_mnistfc.py --root DIR [--out results/bench/vnncomp_mnistfc.csv]
        [--solver highs|gurobi] [--only 256x2] [--expected DIR/expected.csv]

``DIR`` holds ``instances.csv`` (``onnx,vnnlib,timeout`` rows, paths relative to ``DIR``), the ONNX
nets and the VNN-LIB properties, as in the VNN-COMP repository; ``--root`` defaults to the
``ROBUSTMIP_VNNCOMP`` environment variable. Results are appended per instance, so an interrupted run
resumes. The table shows each instance's verdict, the reference verdict and the seconds, then counts
per network.

``--make-proxy DIR`` instead writes a benchmark of the same shape for when the competition files are
not at hand: a 784-256-256-10 net trained on MNIST (``--data-dir`` / ``ROBUSTMIP_DATA``, else the
embedded subset) and 15 test images at eps 0.03 and 0.05 with the competition's 120 s timeout.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
from pathlib import Path

from robustmip.io import from_torch
from robustmip.vnncomp import contradicts, run_benchmark, summarize


def make_proxy(out: Path, data_dir: str | None, seed: int = 0) -> None:
    """Write ``out/{net.onnx, prop_*.vnnlib, instances.csv}`` for a freshly trained 256x2 net."""
    import numpy as np
    import onnx
    import torch

    from robustmip.data import load_dataset
    from robustmip.io.onnx_model import network_to_onnx
    from robustmip.models import build_model
    from robustmip.training import train

    torch.set_num_threads(1)
    out.mkdir(parents=True, exist_ok=True)
    train_set, test_set = load_dataset("train", "auto", data_dir), load_dataset("test", "auto", data_dir)
    model = build_model("mlp-256-256", seed=seed)
    train(model, train_set, epochs=3, seed=seed, device="cpu", progress=False)
    net = from_torch(model.eval(), input_shape=(1, 28, 28))
    onnx.save(network_to_onnx(net, "matmul"), out / "mnist-proxy_256x2.onnx")
    rng = np.random.default_rng(seed)
    rows = []
    picked = [int(i) for i in rng.permutation(len(test_set))
              if int(np.argmax(net.forward(test_set.images[i]))) == int(test_set.labels[i])][:15]
    for eps in (0.03, 0.05):
        for i in picked:
            x, label = test_set.images[i].reshape(-1).astype(np.float64), int(test_set.labels[i])
            lines = [f"(declare-const X_{k} Real)" for k in range(784)] + [f"(declare-const Y_{j} Real)" for j in range(10)]
            for k, v in enumerate(x):
                lines += [f"(assert (<= X_{k} {float(min(1.0, v + eps))!r}))", f"(assert (>= X_{k} {float(max(0.0, v - eps))!r}))"]
            lines += ["(assert (or"] + [f"    (and (>= Y_{j} Y_{label}))" for j in range(10) if j != label] + ["))"]
            name = f"prop_{i}_{eps}.vnnlib"
            (out / name).write_text("\n".join(lines) + "\n")
            rows.append(("mnist-proxy_256x2.onnx", name, 120))
    with (out / "instances.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    print(f"wrote {len(rows)} instances to {out} ({test_set.source} MNIST)")


def print_table(rows: list[dict]) -> None:
    print(f"{'network':<24} {'property':<28} {'result':<8} {'expected':<9} {'seconds':>8}")
    for r in rows:
        flag = "  WRONG" if r["expected"] and contradicts(r["result"], r["expected"]) else ""
        print(f"{Path(r['onnx']).name:<24} {Path(r['vnnlib']).name:<28} {r['result']:<8} {r['expected']:<9} {float(r['seconds']):>8.2f}{flag}")
    print()
    for net in sorted({Path(r["onnx"]).name for r in rows}):
        sub = [r for r in rows if Path(r["onnx"]).name == net]
        s = summarize(sub)
        secs = [float(r["seconds"]) for r in sub]
        print(f"{net}: {s['solved']}/{s['instances']} solved {s['counts']}, {s['contradictions']} contradicting the reference, "
              f"mean {statistics.mean(secs):.2f} s, median {statistics.median(secs):.2f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=os.environ.get("ROBUSTMIP_VNNCOMP"))
    parser.add_argument("--out", default="results/bench/vnncomp_mnistfc.csv")
    parser.add_argument("--solver", default="highs", choices=["highs", "gurobi"])
    parser.add_argument("--bounds", default="lp", choices=["interval", "crown", "lp", "milp"])
    parser.add_argument("--only", help="run only instances whose ONNX name contains this text (e.g. 256x2)")
    parser.add_argument("--expected", help="reference verdicts CSV (default: ROOT/expected.csv if present)")
    parser.add_argument("--make-proxy", type=Path, help="write a proxy benchmark to this folder and exit")
    parser.add_argument("--data-dir")
    parser.add_argument("--no-pgd", action="store_true", help="skip PGD falsification before the MILPs")
    args = parser.parse_args()
    if args.make_proxy:
        make_proxy(args.make_proxy, args.data_dir)
        return 0
    if not args.root:
        print("no benchmark: pass --root DIR or set ROBUSTMIP_VNNCOMP (or build one with --make-proxy DIR)", file=sys.stderr)
        return 2
    root = Path(args.root)
    instances = root / "instances.csv"
    if not instances.is_file():
        print(f"no benchmark at {root}: {instances} not found (the VNN-COMP mnist_fc folder holds "
              "instances.csv, the ONNX nets and the VNN-LIB files)", file=sys.stderr)
        return 2
    if args.only:
        filtered = Path(args.out).parent / f"instances_{args.only}.csv"
        filtered.parent.mkdir(parents=True, exist_ok=True)
        lines = [l for l in instances.read_text().splitlines() if args.only in l.split(",")[0]]
        filtered.write_text("\n".join(lines) + "\n")
        instances = filtered
    expected = args.expected or (root / "expected.csv" if (root / "expected.csv").is_file() else None)
    from robustmip.attacks.falsify import property_falsifier

    falsifier = None if args.no_pgd else property_falsifier()
    rows = run_benchmark(instances, root, args.out, solver=args.solver, bounds_method=args.bounds,
                         expected_csv=expected, falsifier=falsifier)
    print_table(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
