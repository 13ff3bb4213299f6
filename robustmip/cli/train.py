"""``robustmip train``, ``robustmip attack`` and ``robustmip info``.

:func:`add_parsers` registers them on an argparse subparsers object; each handler takes the parsed
arguments and returns the process exit code (0 on success, 2 on bad input or data, 130 when
interrupted), printing errors as one line on stderr. torch is imported by the handlers, not here.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from robustmip.cli.common import (
    add_data_options,
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
    unit_eps,
)


def _add_pgd_eval_options(parser: argparse.ArgumentParser, prefix: str, steps: int) -> None:
    parser.add_argument(f"--{prefix}steps", type=pos_int, default=steps,
                        help=f"PGD steps of the evaluation attack (default {steps})")
    parser.add_argument(f"--{prefix}step-size", type=pos_float,
                        help="PGD step size (default 2.5 * eps / steps)")
    parser.add_argument(f"--{prefix}restarts", type=pos_int, default=1,
                        help="PGD random restarts (default 1)")


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register ``train``, ``attack`` and ``info`` on ``subparsers``."""
    p = subparsers.add_parser("train", help="train a model (standard, PGD adversarial, ...)",
                              description="Train a named architecture on MNIST and save a checkpoint; "
                              "with --adv-eps > 0, PGD adversarial training (other methods: see their "
                              "options). The state after each epoch is kept beside --out (OUT.state) "
                              "until the end, so an interrupted run resumes with the same command.")
    p.add_argument("--arch", default="mlp-100-100",
                   help="mlp-H1-H2-..., lenet-300-100, cnn-small or cnn-crown-small (default mlp-100-100)")
    p.add_argument("--out", required=True, type=Path, help="checkpoint to write (.pt)")
    p.add_argument("--epochs", type=pos_int, default=10, help="epochs (default 10)")
    p.add_argument("--lr", type=pos_float, default=1e-3, help="learning rate (default 1e-3)")
    p.add_argument("--optimizer", choices=("adam", "sgd"), default="adam", help="optimiser (default adam)")
    p.add_argument("--momentum", type=nonneg_float, default=0.9, help="SGD momentum (default 0.9)")
    p.add_argument("--weight-decay", type=nonneg_float, default=0.0,
                   help="l2 coefficient on every parameter (default 0)")
    p.add_argument("--batch-size", type=pos_int, default=128, help="batch size (default 128)")
    p.add_argument("--adv-eps", type=nonneg_float, default=0.0,
                   help="l_inf radius of PGD adversarial training, pixels in [0,1] (default 0: "
                   "standard training)")
    p.add_argument("--pgd-steps", type=pos_int, default=10, help="PGD steps in training")
    p.add_argument("--pgd-step-size", type=pos_float,
                   help="PGD step size in training (default 2.5 * eps / steps)")
    p.add_argument("--eps-ramp-epochs", type=nonneg_int, default=0,
                   help="epochs over which the training eps grows linearly to --adv-eps")
    for module in OBJECTIVE_MODULES:
        importlib.import_module(module).add_options(p)
    _add_pgd_eval_options(p, "eval-", steps=40)
    p.add_argument("--quiet", action="store_true",
                   help="no progress bar (there is none when stderr is not a terminal)")
    add_data_options(p)
    add_runtime_options(p)
    p.set_defaults(func=run_train)

    p = subparsers.add_parser("attack", help="PGD accuracy of a model on MNIST test images",
                              description="Clean and PGD accuracy of a model on the first "
                              "N test images.")
    p.add_argument("checkpoint", type=Path, help="model: .pt checkpoint (robustmip train), .onnx or .npz network")
    p.add_argument("--eps", type=unit_eps, required=True, help="l_inf radius in [0,1] pixel units")
    p.add_argument("--n", type=pos_int, default=1000, help="first N test images (default 1000)")
    _add_pgd_eval_options(p, "", steps=40)
    p.add_argument("--batch-size", type=pos_int, default=500, help="images per batch")
    p.add_argument("--save-adv", type=Path, help="write the adversarial images to this .npz")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_data_options(p)
    add_runtime_options(p)
    p.set_defaults(func=run_attack)

    p = subparsers.add_parser("info", help="print a checkpoint's metadata")
    p.add_argument("checkpoint", type=Path, help="checkpoint written by `robustmip train`")
    p.add_argument("--json", action="store_true", help="print the metadata as JSON")
    p.set_defaults(func=run_info)


OBJECTIVE_MODULES: tuple[str, ...] = ("robustmip.cli.train_params", "robustmip.cli.train_certified",
                                     "robustmip.cli.train_sensitivity")
"""Modules that add a training method: ``add_options(parser)`` registers its flags (without importing
torch) and ``objective(args)`` returns its :class:`~robustmip.training.objectives.Objective`, or None
when its flags are not given."""


def training_objective(args: argparse.Namespace):
    """The objective the flags ask for: PGD with ``--adv-eps > 0``, one plug-in's, or clean cross-entropy."""
    from robustmip.errors import InvalidInput
    from robustmip.training.objectives import CrossEntropy, PGDAdversarial

    chosen = [obj for obj in (importlib.import_module(m).objective(args) for m in OBJECTIVE_MODULES) if obj is not None]
    if args.adv_eps > 0:
        from robustmip.attacks.gradient import PGDConfig

        chosen.append(PGDAdversarial(PGDConfig(args.adv_eps, args.pgd_steps, args.pgd_step_size),
                                     args.eps_ramp_epochs))
    if len(chosen) > 1:
        raise InvalidInput("choose one training method: the flags ask for " + ", ".join(o.name for o in chosen))
    return chosen[0] if chosen else CrossEntropy()


def describe_objective(objective) -> str:
    """One line naming the objective and its settings."""
    config = {k: v for k, v in objective.config().items() if k != "name"}
    if objective.name == "pgd":
        from robustmip.attacks.gradient import PGDConfig

        return "PGD " + attack_description(PGDConfig(**config["attack"]))
    return objective.name + (f" {json.dumps(config)}" if config else "")


def _test_metrics(model, test_set, args: argparse.Namespace, device) -> dict[str, Any]:
    """Clean test accuracy and, after adversarial training, PGD accuracy at the training eps."""
    from robustmip.attacks.evaluate import clean_accuracy, evaluate_pgd
    from robustmip.attacks.gradient import PGDConfig

    model.eval()
    metrics: dict[str, Any] = {
        "clean_test_accuracy": clean_accuracy(model, test_set.images, test_set.labels,
                                              device=device),
        "n_test": len(test_set)}
    print(f"clean test accuracy: {100 * metrics['clean_test_accuracy']:.2f} % "
          f"({len(test_set)} images)")
    if args.adv_eps > 0:
        attack = PGDConfig(args.adv_eps, args.eval_steps, args.eval_step_size, args.eval_restarts)
        metrics["pgd_test_accuracy"] = evaluate_pgd(
            model, test_set.images, test_set.labels, device=device, seed=args.seed,
            **asdict(attack)).robust_accuracy
        metrics["pgd_eval"] = asdict(attack)
        print(f"PGD test accuracy ({attack_description(attack)}): "
              f"{100 * metrics['pgd_test_accuracy']:.2f} %")
    return metrics


@reports_errors
def run_train(args: argparse.Namespace) -> int:
    """Handler of ``robustmip train``."""
    import torch

    from robustmip.io.checkpoint import save_checkpoint
    from robustmip.models import build_model
    from robustmip.training.loops import train

    objective = training_objective(args)
    device = setup_runtime(args)
    check_writable(args.out)
    model = build_model(args.arch, seed=args.seed)
    train_set, test_set = load_split(args, "train"), load_split(args, "test")
    state = args.out.with_name(args.out.name + ".state")
    print(f"training {args.arch} on {len(train_set)} {train_set.source} MNIST images "
          f"({describe_objective(objective)}) on {device}", flush=True)
    if state.is_file():
        print(f"resuming from {state}", flush=True)
    args.on_interrupt = f"the finished epochs are kept in {state}; rerun the same command to resume"
    start = time.perf_counter()
    history = train(model, train_set, test_set, epochs=args.epochs, lr=args.lr,
                    batch_size=args.batch_size, seed=args.seed, objective=objective, optimizer=args.optimizer,
                    momentum=args.momentum, weight_decay=args.weight_decay, device=device,
                    progress=not args.quiet and sys.stderr.isatty(),
                    on_epoch=lambda stats: print_epoch(stats, args.epochs), resume_path=state)
    metrics = {"train_seconds": time.perf_counter() - start, "history": history.to_dict(),
               **_test_metrics(model, test_set, args, device)}
    config = {"epochs": args.epochs, "lr": args.lr, "batch_size": args.batch_size,
              "optimizer": args.optimizer, "momentum": args.momentum, "weight_decay": args.weight_decay,
              "objective": objective.config(), "data_source": train_set.source,
              "n_train": len(train_set), "test_fingerprint": test_set.fingerprint,
              "device": str(device), "threads": torch.get_num_threads()}
    save_checkpoint(args.out, model, args.arch, config, train_set.fingerprint, args.seed, metrics)
    state.unlink(missing_ok=True)
    print(f"saved {args.out}")
    return 0


@reports_errors
def run_attack(args: argparse.Namespace) -> int:
    """Handler of ``robustmip attack``."""
    import numpy as np

    from robustmip.attacks.evaluate import evaluate_pgd
    from robustmip.attacks.gradient import PGDConfig
    from robustmip.io import load_torch_model

    device = setup_runtime(args)
    if args.save_adv is not None:
        check_writable(args.save_adv)
    model, arch = load_torch_model(args.checkpoint)
    model.to(device)
    attack = PGDConfig(args.eps, args.steps, args.step_size, args.restarts)
    test_set = load_split(args, "test")
    if args.n > len(test_set):
        print(f"note: only {len(test_set)} {test_set.source} test images; using all of them",
              file=sys.stderr)
    data = test_set.head(args.n)
    outcome = evaluate_pgd(model, data.images, data.labels, batch_size=args.batch_size,
                           device=device, seed=args.seed, **asdict(attack))
    clean, robust = outcome.clean_accuracy, outcome.robust_accuracy
    result = {"checkpoint": str(args.checkpoint), "arch": arch, "n": len(data),
              "data_source": data.source, "data_fingerprint": data.fingerprint,
              "clean_accuracy": clean, "pgd_accuracy": robust, "attack": asdict(attack),
              "seed": args.seed}
    if args.save_adv is not None:
        np.savez_compressed(args.save_adv, x_adv=outcome.x_adv, labels=data.labels,
                            indices=np.arange(len(data)), eps=np.float64(args.eps),
                            adv_correct=outcome.adv_correct)
        result["saved_adv"] = str(args.save_adv)
    if args.json:
        print_json(result)
    else:
        print(f"{arch} on {len(data)} {data.source} test images")
        print(f"clean accuracy: {100 * clean:.2f} %")
        print(f"PGD accuracy ({attack_description(attack)}): {100 * robust:.2f} %")
        if args.save_adv is not None:
            print(f"saved adversarial images to {args.save_adv}")
    return 0


def _summarize(value: Any) -> str:
    """One-line text of a metadata value; a training history as its epoch count."""
    if isinstance(value, dict) and "epochs" in value and isinstance(value["epochs"], list):
        return f"{len(value['epochs'])} epochs"
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)


@reports_errors
def run_info(args: argparse.Namespace) -> int:
    """Handler of ``robustmip info``."""
    from robustmip.io.checkpoint import load_checkpoint

    _, meta = load_checkpoint(args.checkpoint)
    info = meta.to_dict()
    if args.json:
        print_json(info)
        return 0
    for key in ("arch", "seed", "data_fingerprint", "torch_version", "format_version"):
        print(f"{key}: {info[key]}")
    for section in ("train_config", "metrics"):
        print(f"{section}:")
        for key, value in info[section].items():
            print(f"  {key}: {_summarize(value)}")
    return 0
