"""``robustmip prune``: MIP neuron-importance pruning of a checkpoint, then (PGD) retraining.

:func:`add_parsers` registers it on an argparse subparsers object, like :mod:`robustmip.cli.train`;
the handler returns the exit code (0, 2 on bad input or data, 130 when interrupted) and prints
errors as one line on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from robustmip.cli.common import (
    add_data_options,
    add_deprecated_alias,
    add_runtime_options,
    attack_description,
    check_writable,
    load_split,
    nonneg_float,
    nonneg_int,
    pos_float,
    pos_int,
    print_epoch,
    print_json,
    reports_errors,
    setup_runtime,
)
from robustmip.cli.verify import SOLVER_CHOICES

if TYPE_CHECKING:
    from robustmip.pruning.iterate import RoundResult

LOSS_CHOICES = ("hinge",)
IMPORTANCE_BOUNDS_CHOICES = ("published", "sound")
LAYER_TERMS_CHOICES = ("published", "all")


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register ``prune`` on ``subparsers``."""
    p = subparsers.add_parser(
        "prune", help="MIP neuron-importance pruning, then retraining",
        description="Score every hidden neuron of a checkpoint with the ElAraby et al. MIP on a "
        "class-balanced batch of training images, remove the neurons scoring below the threshold "
        "(a physically smaller model), retrain it (PGD adversarial with --adv-eps > 0) and save it.")
    p.add_argument("checkpoint", type=Path, help="fully connected checkpoint (robustmip train)")
    p.add_argument("--out", required=True, type=Path, help="pruned checkpoint to write (.pt)")
    p.add_argument("--images-per-class", type=pos_int, default=1,
                   help="training images per class in the MIP batch (default 1)")
    p.add_argument("--threshold", type=nonneg_float, default=0.1,
                   help="remove neurons with score below this (default 0.1 as the published code; "
                   "the paper uses 0.001)")
    p.add_argument("--lam", type=nonneg_float, default=5.0,
                   help="weight of the loss in the MIP objective; larger prunes less (default 5)")
    p.add_argument("--loss", choices=LOSS_CHOICES, default="hinge", help="MIP loss (default hinge)")
    p.add_argument("--margin", type=nonneg_float, default=1.0, help="hinge margin in logits (default 1)")
    p.add_argument("--importance-bounds", choices=IMPORTANCE_BOUNDS_CHOICES, default="published",
                   help="bounds of the importance MIP. published: clean-pass intervals as the published "
                   "code (fast, restricts the scores); sound: valid for every score (exact, much harder). "
                   "Default published")
    add_deprecated_alias(p, "--bounds", "--importance-bounds", "importance_bounds",
                         choices=IMPORTANCE_BOUNDS_CHOICES)
    p.add_argument("--layer-terms", choices=LAYER_TERMS_CHOICES, default="published",
                   help="penalty keeps the L-1 largest layer terms (published) or all (default published)")
    p.add_argument("--relax", action="store_true", help="relax the ReLU binaries to [0, 1]")
    p.add_argument("--solver", choices=SOLVER_CHOICES, default="highs", help="MILP solver (default highs)")
    p.add_argument("--timeout", type=pos_float, default=120.0,
                   help="seconds for each MIP solve (default 120)")
    add_deprecated_alias(p, "--time-limit", "--timeout", "timeout", type=pos_float)
    p.add_argument("--solver-threads", type=pos_int, default=1, help="solver threads (default 1)")
    p.add_argument("--rounds", type=pos_int, default=1, help="prune -> retrain rounds (default 1)")
    p.add_argument("--retrain-epochs", type=nonneg_int, default=2,
                   help="retraining epochs after each pruning (default 2; 0: none)")
    p.add_argument("--lr", type=pos_float, default=1e-3, help="Adam learning rate (default 1e-3)")
    p.add_argument("--batch-size", type=pos_int, default=128, help="batch size (default 128)")
    p.add_argument("--adv-eps", type=nonneg_float, default=0.0,
                   help="retrain with PGD at this l_inf radius and report PGD accuracy (default 0: "
                   "standard retraining)")
    p.add_argument("--pgd-steps", type=pos_int, default=10, help="PGD steps in retraining")
    p.add_argument("--pgd-step-size", type=pos_float, help="PGD step size (default 2.5 * eps / steps)")
    p.add_argument("--eval-steps", type=pos_int, default=40, help="PGD steps of the evaluation attack")
    p.add_argument("--eval-n", type=pos_int, default=1000,
                   help="test images for the PGD evaluation (default 1000)")
    p.add_argument("--json", action="store_true", help="print the rounds as JSON at the end")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_data_options(p)
    add_runtime_options(p)
    p.set_defaults(func=run_prune)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f} %"


def _print_pruned(result: RoundResult, adv: bool) -> None:
    imp, mask = result.importance, result.mask
    bound = "-" if imp["bound"] is None else f"{imp['bound']:.4f}"
    print(f"round {result.round}: MIP {imp['status']} in {imp['seconds']:.1f} s "
          f"(build {imp['build_seconds']:.1f} s, {imp['n_binaries']} binaries, "
          f"objective {imp['objective']:.4f}, bound {bound})")
    for layer in mask["layers"]:
        print(f"  layer {layer['layer']}: kept {layer['kept']}/{layer['total']} neurons")
    if mask["forced"]:
        print(f"  (layers {mask['forced']}: every score below the threshold; kept the best one)")
    print(f"  accuracy before pruning {_pct(result.accuracy_before)}, after pruning {_pct(result.accuracy_pruned)}")
    if adv:
        print(f"  PGD accuracy before pruning {_pct(result.pgd_before)}, after pruning {_pct(result.pgd_pruned)}")
    sys.stdout.flush()


def _print_retrained(result: RoundResult, adv: bool) -> None:
    if result.accuracy_retrained is None:
        return
    print(f"  accuracy after retraining {_pct(result.accuracy_retrained)}")
    if adv:
        print(f"  PGD accuracy after retraining {_pct(result.pgd_retrained)}")


def _print_summary(result) -> None:
    print("summary (round: kept per layer, accuracy before / after pruning / after retraining, MIP seconds):")
    for r in result.rounds:
        print(f"  {r.round}: {r.mask['kept']} of {r.mask['total']}, {_pct(r.accuracy_before)} / "
              f"{_pct(r.accuracy_pruned)} / {_pct(r.accuracy_retrained)}, {r.importance['seconds']:.1f} s")


@reports_errors
def run_prune(args: argparse.Namespace) -> int:
    """Handler of ``robustmip prune``; with ``--json`` the progress goes to stderr and stdout holds only JSON."""
    if not args.json:
        return _prune(args)
    with contextlib.redirect_stdout(sys.stderr):
        result = _prune(args)
    print_json(args.result_dict)
    return result


def _prune(args: argparse.Namespace) -> int:
    from robustmip.attacks.gradient import PGDConfig
    from robustmip.io.checkpoint import load_checkpoint, save_checkpoint
    from robustmip.pruning.iterate import ImportanceSettings, prune_and_retrain
    from robustmip.solvers import check_solver

    device = setup_runtime(args)
    check_solver(args.solver)
    check_writable(args.out)
    model, meta = load_checkpoint(args.checkpoint)
    train_set, test_set = load_split(args, "train"), load_split(args, "test")
    adv = PGDConfig(args.adv_eps, args.pgd_steps, args.pgd_step_size) if args.adv_eps > 0 else None
    eval_attack = PGDConfig(args.adv_eps, args.eval_steps) if args.adv_eps > 0 else None
    settings = ImportanceSettings(lam=args.lam, loss=args.loss, margin=args.margin, bounds=args.importance_bounds,
                                  layer_terms=args.layer_terms, relax_binaries=args.relax,
                                  solver=args.solver, time_limit=args.timeout,
                                  threads=args.solver_threads)
    print(f"pruning {meta.arch} ({args.checkpoint}) with {args.images_per_class} image(s) per class, "
          f"threshold {args.threshold:g}, lam {args.lam:g}, {args.importance_bounds} bounds, {args.solver}; "
          f"retraining {args.retrain_epochs} epoch(s) "
          f"{'with PGD ' + attack_description(adv) if adv else '(standard)'} on "
          f"{len(train_set)} {train_set.source} images", flush=True)
    start = time.perf_counter()
    result = prune_and_retrain(
        model, train_set, test_set, threshold=args.threshold, images_per_class=args.images_per_class,
        rounds=args.rounds, importance=settings, retrain_epochs=args.retrain_epochs, adv=adv, lr=args.lr,
        batch_size=args.batch_size, seed=args.seed, eval_attack=eval_attack, eval_attack_n=args.eval_n,
        device=device, progress=not args.quiet and sys.stderr.isatty(),
        on_pruned=lambda r: _print_pruned(r, adv is not None),
        on_round=lambda r: _print_retrained(r, adv is not None),
        on_epoch=lambda stats: print_epoch(stats, args.retrain_epochs))
    seconds = time.perf_counter() - start
    last = result.rounds[-1]
    final_acc = last.accuracy_retrained if last.accuracy_retrained is not None else last.accuracy_pruned
    arch = result.reports[-1].arch
    config = {
        "pruning": {"method": "mip-importance (ElAraby et al. 2020)", "threshold": args.threshold,
                    "lam": args.lam, "loss": args.loss, "margin": args.margin, "bounds": args.importance_bounds,
                    "layer_terms": args.layer_terms, "relax_binaries": args.relax, "solver": args.solver,
                    "time_limit": args.timeout, "images_per_class": args.images_per_class,
                    "rounds": args.rounds, "kept": result.kept,
                    "total": result.rounds[0].mask["total"]},
        "retrain": {"epochs": args.retrain_epochs, "lr": args.lr, "batch_size": args.batch_size,
                    "optimizer": "adam", "adv": asdict(adv) if adv else None,
                    "data_source": train_set.source, "n_train": len(train_set),
                    "test_fingerprint": test_set.fingerprint},
        "parent": {"checkpoint": str(args.checkpoint), "sha256": _sha256(args.checkpoint),
                   "arch": meta.arch, "data_fingerprint": meta.data_fingerprint, "seed": meta.seed,
                   "train_config": meta.train_config},
    }
    metrics = {"clean_test_accuracy": final_acc, "n_test": len(test_set), "prune_seconds": seconds,
               **{k: v for k, v in result.to_dict().items()}}
    if last.pgd_retrained is not None or last.pgd_pruned is not None:
        metrics["pgd_test_accuracy"] = last.pgd_retrained if last.pgd_retrained is not None else last.pgd_pruned
        metrics["pgd_eval"] = asdict(eval_attack) if eval_attack else None
        metrics["pgd_eval_n"] = min(args.eval_n, len(test_set))
    save_checkpoint(args.out, result.model, arch, config, train_set.fingerprint, args.seed, metrics)
    args.result_dict = result.to_dict()
    _print_summary(result)
    print(f"saved {args.out} ({arch}, {seconds:.1f} s)")
    return 0
