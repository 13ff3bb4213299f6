"""MIP neuron-importance pruning (ElAraby et al. 2020) against magnitude and random pruning.

For each model: one class-balanced batch of 10 training images (one per class, correctly
classified, seeded), the importance MIP with ``published`` (clean-pass) and ``sound`` bounds (HiGHS,
one thread), the neurons kept per layer at thresholds 0.001 (paper) and 0.1 (published code), test
accuracy after pruning (MIP, magnitude = L1 norm of incoming weights, random over several seeds, all
at the MIP's per-layer counts), and after 1 and 2 epochs of retraining (standard, or PGD for a
PGD-trained model, as it was trained). An iterative row repeats importance -> prune -> retrain.

Writes ``results/pruning/<name>/``: ``config.json`` (arguments, versions, seeds, batch),
``importance.jsonl`` (solve statistics and scores), ``rows.jsonl`` / ``rows.csv`` (one row per
model, bounds, threshold, method, seed) and ``summary.md``. Rows already in ``rows.jsonl`` are not
recomputed (the run can be interrupted and resumed).

Usage (full MNIST from $ROBUSTMIP_DATA)::

    python experiments/pruning_report.py --name main \\
        --model lenet-300-100=results/models/lenet-300-100.pt \\
        --model mlp-100-100-pgd0.1=results/models/mlp-100-100-pgd0.1.pt
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

import robustmip
from robustmip.attacks.evaluate import clean_accuracy, robust_accuracy
from robustmip.attacks.gradient import PGDConfig
from robustmip.data import load_dataset
from robustmip.io import from_torch
from robustmip.io.checkpoint import load_checkpoint
from robustmip.pruning import (
    ImportanceSettings,
    apply_masks,
    balanced_batch,
    magnitude_masks,
    masks_from_scores,
    neuron_importance,
    prune_and_retrain,
    random_masks,
)
from robustmip.training import PGDAdversarial, train


def _versions() -> dict:
    import highspy
    import pyomo

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "pyomo": pyomo.__version__, "highspy": getattr(highspy, "__version__", "?"),
            "robustmip": robustmip.__version__, "git_commit": commit, "machine": platform.machine()}


class Store:
    """Append-only JSONL with keyed rows, so a rerun skips finished work."""

    def __init__(self, path: Path):
        self.path = path
        self.rows: dict[str, dict] = {}
        if path.exists():
            for line in path.read_text().splitlines():
                if line.strip():
                    row = json.loads(line)
                    self.rows[row["key"]] = row

    def get(self, key: str) -> dict | None:
        return self.rows.get(key)

    def put(self, row: dict) -> dict:
        self.rows[row["key"]] = row
        with self.path.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
        return row


def _pgd_eval(model, test, attack: PGDConfig | None, n: int, seed: int) -> float | None:
    if attack is None:
        return None
    model.eval()
    return robust_accuracy(model, test.images[:n], test.labels[:n], seed=seed, **asdict(attack))


def _evaluate(model, masks, method, seed, ctx) -> dict:
    """Accuracy after pruning and after each retraining epoch of one masked model."""
    smaller, report = apply_masks(model, masks, method=method)
    smaller.eval()
    row = {"kept": report.kept, "total": report.total, "params": report.params_after,
           "acc_pruned": clean_accuracy(smaller, ctx["test"].images, ctx["test"].labels),
           "pgd_pruned": _pgd_eval(smaller, ctx["test"], ctx["attack"], ctx["pgd_n"], ctx["seed"])}
    if ctx["retrain"] and seed in ctx["retrain_seeds"]:
        start = time.perf_counter()
        history = train(smaller, ctx["train"], ctx["test"], epochs=ctx["epochs"], lr=ctx["lr"], seed=ctx["seed"],
                        objective=PGDAdversarial(ctx["adv"]) if ctx["adv"] else None, device="cpu",
                        progress=False)
        row["retrain_seconds"] = time.perf_counter() - start
        for e in history.epochs:
            row[f"acc_retrained_{e.epoch}"] = e.test_accuracy
        row["pgd_retrained"] = _pgd_eval(smaller.eval(), ctx["test"], ctx["attack"], ctx["pgd_n"], ctx["seed"])
    return row


def run_model(name: str, path: Path, args, train_set, test_set, imp_store: Store, row_store: Store) -> None:
    model, meta = load_checkpoint(path)
    model.eval()
    adv_cfg = meta.train_config.get("adv")
    adv = PGDConfig(adv_cfg["eps"], adv_cfg["steps"], adv_cfg["step_size"]) if adv_cfg else None
    attack = PGDConfig(adv.eps, 40) if adv else None
    ctx = {"train": train_set, "test": test_set, "attack": attack, "pgd_n": args.pgd_n, "seed": args.seed,
           "adv": adv, "epochs": args.retrain_epochs, "lr": args.lr, "retrain": args.retrain_epochs > 0,
           "retrain_seeds": set(range(args.retrain_random_seeds)) | {-1}}
    base_key = f"{name}|original"
    if row_store.get(base_key) is None:
        row_store.put({"key": base_key, "model": name, "method": "original",
                       "acc_pruned": clean_accuracy(model, test_set.images, test_set.labels),
                       "pgd_pruned": _pgd_eval(model, test_set, attack, args.pgd_n, args.seed)})
    batch_x, batch_y, idx = balanced_batch(train_set.images, train_set.labels, 1, args.seed, model=model)
    net = from_torch(model, input_shape=(1, 28, 28))
    for bounds in args.bounds:
        key = f"{name}|{bounds}"
        imp = imp_store.get(key)
        if imp is None:
            limit = args.sound_time_limit if bounds == "sound" else args.time_limit
            print(f"[{name}] importance MIP, {bounds} bounds, time limit {limit} s", flush=True)
            result = neuron_importance(net, batch_x, batch_y, lam=args.lam, bounds=bounds, time_limit=limit,
                                       margin=args.margin, threads=1)
            imp = imp_store.put({"key": key, "model": name, "bounds": bounds, "batch_indices": idx.tolist(),
                                 **result.to_dict(with_scores=True)})
            print(f"[{name}] {bounds}: {imp['status']} in {imp['seconds']:.1f} s, objective {imp['objective']:.4f}, "
                  f"bound {imp['bound']}, {imp['n_binaries']} binaries", flush=True)
        scores = [np.asarray(s) for s in imp["scores"]]
        for threshold in args.thresholds:
            masks, _ = masks_from_scores(scores, threshold)
            kept = [int(m.sum()) for m in masks]
            plans = [("mip", -1, masks), ("magnitude", -1, magnitude_masks(model, kept))]
            plans += [("random", s, random_masks(model, kept, s)) for s in range(args.random_seeds)]
            for method, seed, method_masks in plans:
                rkey = f"{name}|{bounds}|{threshold}|{method}|{seed}"
                if row_store.get(rkey) is not None:
                    continue
                row = _evaluate(model, method_masks, method, seed, ctx)
                row_store.put({"key": rkey, "model": name, "bounds": bounds, "threshold": threshold,
                               "method": method, "seed": seed, "mip_seconds": imp["seconds"],
                               "mip_status": imp["status"], **row})
                print(f"[{name}] {bounds} t={threshold} {method}{'' if seed < 0 else seed}: kept {row['kept']}, "
                      f"acc {row['acc_pruned']:.4f} -> {row.get(f'acc_retrained_{args.retrain_epochs}')}", flush=True)
    if args.iterative_rounds > 1:
        rkey = f"{name}|published|0.1|iterative{args.iterative_rounds}|-1"
        if row_store.get(rkey) is None:
            settings = ImportanceSettings(lam=args.lam, margin=args.margin, bounds="published", threads=1)
            result = prune_and_retrain(model, train_set, test_set, threshold=0.1, rounds=args.iterative_rounds,
                                       importance=settings, retrain_epochs=args.retrain_epochs, adv=adv,
                                       lr=args.lr, seed=args.seed, device="cpu")
            last = result.rounds[-1]
            row_store.put({"key": rkey, "model": name, "bounds": "published", "threshold": 0.1,
                           "method": f"iterative{args.iterative_rounds}", "seed": -1, "kept": result.kept,
                           "total": result.rounds[0].mask["total"],
                           "mip_seconds": sum(r.importance["seconds"] for r in result.rounds),
                           "acc_pruned": last.accuracy_pruned,
                           f"acc_retrained_{args.retrain_epochs}": last.accuracy_retrained,
                           "pgd_retrained": _pgd_eval(result.model, test_set, attack, args.pgd_n, args.seed),
                           "rounds": [r.to_dict() for r in result.rounds]})


def _fmt(v, pct=True) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "-"
    return f"{100 * v:.2f}" if pct else str(v)


def write_tables(out: Path, rows: list[dict], imps: list[dict], epochs: int) -> None:
    fields = ["model", "bounds", "threshold", "method", "seed", "kept", "total", "params", "mip_status",
              "mip_seconds", "acc_pruned", "pgd_pruned"] + [f"acc_retrained_{e}" for e in range(1, epochs + 1)] + [
              "pgd_retrained", "retrain_seconds"]
    with (out / "rows.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: ("-".join(map(str, r[k])) if isinstance(r.get(k), list) else r.get(k)) for k in fields})
    lines = ["# MIP importance pruning vs magnitude and random pruning", "",
             "Accuracies in % on the 10000 MNIST test images; `pgd` = PGD accuracy (eps of the model's "
             "training, 40 steps) on the first test images. Random = mean ± std over seeds (retrained: "
             "mean over the retrained seeds). All pruned models keep the MIP's per-layer neuron counts.", ""]
    lines += ["## Importance MIP solves (HiGHS, 1 thread)", "",
              "| model | bounds | status | solve s | build s | binaries | objective | bound | loss | penalty |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for i in imps:
        bound = "-" if i["bound"] is None else f"{i['bound']:.4f}"
        lines.append(f"| {i['model']} | {i['bounds']} | {i['status']} | {i['seconds']:.1f} | {i['build_seconds']:.1f} | "
                     f"{i['n_binaries']} | {i['objective']:.4f} | {bound} | {i['loss_value']:.4f} | "
                     f"{i['penalty_value']:.4f} |")
    by = {}
    for r in rows:
        by.setdefault((r["model"], r.get("bounds"), r.get("threshold")), []).append(r)
    e = f"acc_retrained_{epochs}"
    lines += ["", "## Accuracy", "",
              "| model | bounds | threshold | kept per layer | MIP pruned | magnitude pruned | random pruned | "
              f"MIP +1 ep | MIP +{epochs} ep | magnitude +{epochs} ep | random +{epochs} ep | MIP pgd pruned | MIP pgd retrained |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for (model, bounds, threshold), group in by.items():
        if bounds is None:
            orig = group[0]
            lines.append(f"| {model} | (unpruned) | | | {_fmt(orig['acc_pruned'])} | | | | | | | {_fmt(orig.get('pgd_pruned'))} | |")
            continue
        get = {(g["method"], g["seed"]): g for g in group}
        mip, mag = get.get(("mip", -1)), get.get(("magnitude", -1))
        rand = [g for g in group if g["method"] == "random"]
        it = [g for g in group if g["method"].startswith("iterative")]
        if mip is not None:
            ra = np.array([g["acc_pruned"] for g in rand])
            rr = [g.get(e) for g in rand if g.get(e) is not None]
            lines.append(
                f"| {model} | {bounds} | {threshold} | {'/'.join(map(str, mip['kept']))} of {'/'.join(map(str, mip['total']))} | "
                f"{_fmt(mip['acc_pruned'])} | {_fmt(mag['acc_pruned']) if mag else '-'} | "
                f"{100 * ra.mean():.2f} ± {100 * ra.std():.2f} | {_fmt(mip.get('acc_retrained_1'))} | {_fmt(mip.get(e))} | "
                f"{_fmt(mag.get(e)) if mag else '-'} | {_fmt(float(np.mean(rr)) if rr else None)} | "
                f"{_fmt(mip.get('pgd_pruned'))} | {_fmt(mip.get('pgd_retrained'))} |")
        for g in it:
            lines.append(f"| {model} | {bounds} | {threshold} | {'/'.join(map(str, g['kept']))} of "
                         f"{'/'.join(map(str, g['total']))} ({g['method']}) | {_fmt(g['acc_pruned'])} (last round) | | | | "
                         f"{_fmt(g.get(e))} | | | | {_fmt(g.get('pgd_retrained'))} |")
    (out / "summary.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", default="main", help="results go to results/pruning/<name>/")
    parser.add_argument("--model", action="append", required=True, metavar="NAME=PATH",
                        help="checkpoint to prune (repeatable)")
    parser.add_argument("--bounds", nargs="+", default=["published", "sound"], choices=["published", "sound"])
    parser.add_argument("--thresholds", nargs="+", type=float, default=[0.001, 0.1])
    parser.add_argument("--lam", type=float, default=5.0)
    parser.add_argument("--margin", type=float, default=1.0)
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds, published bounds")
    parser.add_argument("--sound-time-limit", type=float, default=120.0, help="seconds, sound bounds")
    parser.add_argument("--random-seeds", type=int, default=5)
    parser.add_argument("--retrain-random-seeds", type=int, default=3, help="random seeds that are also retrained")
    parser.add_argument("--retrain-epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--iterative-rounds", type=int, default=2, help="rounds of the iterative row (<2: none)")
    parser.add_argument("--pgd-n", type=int, default=1000, help="test images for PGD accuracy")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--embedded", action="store_true", help="use the embedded MNIST subset (smoke test)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    out = Path("results/pruning") / args.name
    out.mkdir(parents=True, exist_ok=True)
    source = "embedded" if args.embedded else "full"
    train_set, test_set = load_dataset("train", source), load_dataset("test", source)
    models = [m.split("=", 1) for m in args.model]
    config = {"args": vars(args), "versions": _versions(), "data": {"source": source, "train": train_set.fingerprint,
              "test": test_set.fingerprint}, "command": " ".join(sys.argv)}
    (out / "config.json").write_text(json.dumps(config, indent=2))
    imp_store, row_store = Store(out / "importance.jsonl"), Store(out / "rows.jsonl")
    for name, path in models:
        run_model(name, Path(path), args, train_set, test_set, imp_store, row_store)
        write_tables(out, list(row_store.rows.values()), list(imp_store.rows.values()), args.retrain_epochs)
    print(f"wrote {out}/summary.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
