"""Exact verified error of certified-trained nets: wall time, MILPs needed, and training seconds per epoch.

Two parts, both on full MNIST when found (``--data-dir`` or ``ROBUSTMIP_DATA``), else the embedded subset:

1. training cost: one epoch of each certified objective (IBP; CROWN-IBP and GM-CROWN-IBP with N = 5,
   inverse weights, in the costly phase of the ramp: beta = 1, kappa = 0.5) on ``cnn-crown-small`` and
   on the MLP, with ``--train-threads`` torch threads;
2. ``robustmip.certify.run_certify`` on the first ``--images`` test images at one ``--eps``, every bound
   (ibp, crown-ibp, crown, lp), PGD and the exact verdict (``--timeout`` s per image, HiGHS), with
   ``--workers`` worker processes, on a CROWN-IBP-trained ``cnn-crown-small`` and a CROWN-IBP-trained MLP
   (trained here for ``--train-epochs`` epochs at ``--train-eps``, or given with ``--models``): wall time,
   median and 90th percentile seconds per image, how many images needed a MILP, unknowns, and the errors.

Usage (about an hour on 2 idle cores at the defaults on full MNIST; see benchmarks/README.md):
    python benchmarks/certify_speed.py --data-dir /work/shared/data --workers 2
    python benchmarks/certify_speed.py --models cnn.pt mlp.pt --images 100 --eps 0.1   # skip training
Writes ``results/bench/certify_speed_training.csv`` and ``results/bench/certify_speed.csv``; the certify
rows are kept in ``results/bench/certify_speed_<net>.jsonl`` (a rerun with the same settings resumes).
Other jobs on the same cores distort the timings: run it alone.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from robustmip.certify import CertifySettings, run_certify, summarize
from robustmip.data import load_dataset
from robustmip.io.checkpoint import save_checkpoint
from robustmip.models import build_model
from robustmip.report import write_csv
from robustmip.training import train
from robustmip.training.certified import CertifiedTraining

OUT = Path("results/bench")
ARCHS = ("cnn-crown-small", "mlp-100-100")


def objectives(eps: float) -> dict[str, CertifiedTraining]:
    """The three objectives in the costly phase of their ramp (kappa 0.5, beta 1 where it applies)."""
    return {"ibp": CertifiedTraining("ibp", eps, 1, "single", (0.5, 0.5), (0.0, 0.0)),
            "crown-ibp": CertifiedTraining("crown-ibp", eps, 1, "single", (0.5, 0.5), (1.0, 1.0)),
            "gm-crown-ibp": CertifiedTraining("crown-ibp", eps, 5, "inverse", (0.5, 0.5), (1.0, 1.0))}


def epoch_seconds(arch: str, goal: CertifiedTraining, data, batch_size: int) -> float:
    model = build_model(arch, seed=0)
    start = time.perf_counter()
    train(model, data, epochs=1, lr=5e-4, batch_size=batch_size, seed=0, objective=goal, device="cpu", progress=False)
    return time.perf_counter() - start


def trained_model(arch: str, data, args) -> Path:
    """A CROWN-IBP-trained checkpoint of ``arch`` (eps ramp over half the epochs, kappa 1 -> 0.5, beta 1 -> 0)."""
    path = OUT / f"certify_speed_{arch}_crown-ibp{args.train_eps:g}_{args.train_epochs}ep.pt"
    if path.is_file():
        return path
    goal = CertifiedTraining("crown-ibp", args.train_eps, 1, "single", (1.0, 0.5), (1.0, 0.0),
                             args.train_epochs / 2, 0.0)
    model = build_model(arch, seed=0)
    history = train(model, data, epochs=args.train_epochs, lr=5e-4, batch_size=256, seed=0, objective=goal,
                    device="cpu", progress=False, resume_path=path.with_name(path.name + ".state"))
    save_checkpoint(path, model, arch, {"objective": goal.config(), "epochs": args.train_epochs}, data.fingerprint, 0,
                    {"epoch_seconds": [e.seconds for e in history.epochs]})
    path.with_name(path.name + ".state").unlink(missing_ok=True)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100, help="first N test images (default 100)")
    parser.add_argument("--eps", type=float, default=0.1, help="radius of the exact verified error (default 0.1)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per image for the exact verdict")
    parser.add_argument("--workers", type=int, default=2, help="certify worker processes (default 2)")
    parser.add_argument("--models", nargs=2, metavar=("CNN", "MLP"), help="certify these instead of training")
    parser.add_argument("--train-eps", type=float, default=0.2, help="training radius of the nets (default 0.2)")
    parser.add_argument("--train-epochs", type=int, default=10, help="training epochs of the nets (default 10)")
    parser.add_argument("--train-threads", type=int, default=2, help="torch threads while training (default 2)")
    parser.add_argument("--skip-epoch-timing", action="store_true", help="skip part 1")
    parser.add_argument("--data-dir", help="folder holding MNIST/raw")
    parser.add_argument("--embedded", action="store_true", help="use the embedded subset")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    source = "embedded" if args.embedded else "auto"
    train_set, test_set = load_dataset("train", source, args.data_dir), load_dataset("test", source, args.data_dir)
    torch.set_num_threads(args.train_threads)
    common = {"data_source": train_set.source, "cpu": platform.processor() or platform.machine(),
              "torch": str(torch.__version__)}

    if not args.skip_epoch_timing:
        rows = []
        for arch in ARCHS:
            for name, goal in objectives(args.train_eps).items():
                load = os.getloadavg()[0]
                seconds = epoch_seconds(arch, goal, train_set, 256)
                rows.append({"arch": arch, "objective": name, "n_train": len(train_set), "batch_size": 256,
                             "threads": args.train_threads, "epoch_seconds": round(seconds, 1),
                             "load_avg_before": round(load, 2), **common})
                print(f"{arch:>16} {name:>13}: {seconds:8.1f} s per epoch ({len(train_set)} images)", flush=True)
        write_csv(OUT / "certify_speed_training.csv", list(rows[0]), [list(r.values()) for r in rows])

    models = [Path(m) for m in args.models] if args.models else [trained_model(a, train_set, args) for a in ARCHS]
    settings = CertifySettings(exact=True, timeout=args.timeout)
    results = []
    for model in models:
        load = os.getloadavg()[0]
        start = time.perf_counter()
        rows = run_certify(model, test_set.images, test_set.labels, range(args.images), [args.eps], settings,
                           OUT / f"certify_speed_{model.stem}.jsonl", data_id=test_set.fingerprint,
                           workers=args.workers, progress=True)
        wall = time.perf_counter() - start
        per_image = np.array([sum(r.seconds.values()) for r in rows])
        (s,) = summarize(rows)
        results.append({"model": model.name, "eps": args.eps, "images": len(rows), "workers": args.workers,
                        "wall_seconds_this_run": round(wall, 1),
                        "median_s_per_image": round(float(np.median(per_image)), 3),
                        "p90_s_per_image": round(float(np.percentile(per_image, 90)), 3),
                        "needed_milp": s.milps, "unknown": s.unknown, "clean_error": s.clean_error,
                        "pgd_error": s.pgd_error, "exact_lo": s.exact_lower, "exact_hi": s.exact_upper,
                        **{f"verified_{m}": v for m, v in s.verified_error.items()},
                        "load_avg_before": round(load, 2), **common})
        print(f"{model.name}: {len(rows)} images at eps {args.eps} in {wall:.1f} s with {args.workers} workers; "
              f"median {np.median(per_image):.2f} s per image; {s.milps} needed a MILP, {s.unknown} unknown; "
              f"exact {100 * s.exact_lower:.1f}-{100 * s.exact_upper:.1f} %, "
              + ", ".join(f"{m} {100 * v:.1f} %" for m, v in s.verified_error.items()), flush=True)
    write_csv(OUT / "certify_speed.csv", list(results[0]), [list(r.values()) for r in results])
    print(f"wrote {OUT / 'certify_speed.csv'}")


if __name__ == "__main__":
    main()
