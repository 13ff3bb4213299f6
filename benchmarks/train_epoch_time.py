"""Wall time of one epoch of PGD adversarial training of mlp-100-100 on this CPU.

One epoch of Madry PGD training (eps 0.1, 10 steps of 0.025, batch 128, Adam) on full MNIST's
60000 training images (the embedded 5000-image subset when full MNIST is not found), once per
thread count. Prints a table and writes ``results/bench/train_epoch_time.csv``.

Usage: python benchmarks/train_epoch_time.py [--threads 1,2] [--data-dir DIR] [--embedded]
Other jobs on the same cores distort the timings badly (the 1-minute load average before each
run is printed and saved with it): run it alone.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import time
from pathlib import Path

import torch

from robustmip.attacks.gradient import PGDConfig
from robustmip.data import Dataset, load_dataset
from robustmip.models import build_model
from robustmip.training import PGDAdversarial, train

ARCH = "mlp-100-100"
ATTACK = PGDConfig(eps=0.1, steps=10, step_size=0.025)
BATCH_SIZE = 128
OUT = Path("results/bench/train_epoch_time.csv")


def time_epoch(data: Dataset, threads: int) -> float:
    """Seconds of one PGD-AT epoch of a fresh ``ARCH`` model with ``threads`` torch threads."""
    torch.set_num_threads(threads)
    model = build_model(ARCH, seed=0)
    start = time.perf_counter()
    train(model, data, epochs=1, batch_size=BATCH_SIZE, seed=0, objective=PGDAdversarial(ATTACK), device="cpu",
          progress=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--data-dir", help="folder holding MNIST/raw")
    parser.add_argument("--embedded", action="store_true", help="use the embedded subset")
    args = parser.parse_args()
    thread_counts = [int(t) for t in args.threads.split(",")]

    data = load_dataset("train", "embedded" if args.embedded else "auto", args.data_dir)
    rows = []
    for threads in thread_counts:
        load_before = os.getloadavg()[0]
        seconds = time_epoch(data, threads)
        rows.append({"arch": ARCH, "data_source": data.source, "n_train": len(data),
                     "eps": ATTACK.eps, "pgd_steps": ATTACK.steps, "step_size": ATTACK.step_size,
                     "batch_size": BATCH_SIZE, "threads": threads,
                     "epoch_seconds": round(seconds, 2),
                     "images_per_second": round(len(data) / seconds, 1),
                     "load_avg_before": round(load_before, 2),
                     "cpu": platform.processor() or platform.machine(),
                     "torch": str(torch.__version__)})

    print(f"one PGD-AT epoch of {ARCH} ({len(data)} {data.source} MNIST images, eps {ATTACK.eps},"
          f" {ATTACK.steps} steps of {ATTACK.step_size}, batch {BATCH_SIZE})")
    print(f"{'threads':>7}  {'seconds':>8}  {'images/s':>9}  {'speed-up':>8}  {'load avg':>8}")
    for row in rows:
        speedup = rows[0]["epoch_seconds"] / row["epoch_seconds"]
        print(f"{row['threads']:>7}  {row['epoch_seconds']:>8.2f}  "
              f"{row['images_per_second']:>9.1f}  {speedup:>8.2f}  {row['load_avg_before']:>8.2f}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
