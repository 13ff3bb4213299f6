"""The training loop: any :class:`~robustmip.training.objectives.Objective`, resumable per epoch.

:func:`train` trains the model it is given in place, so fine-tuning or retraining an existing
model (e.g. a pruned one, or adversarial fine-tuning of a standard one) is the same call on that
model; :data:`retrain` is an alias that reads better at such call sites.

Data are ``(images, labels)`` pairs or :class:`robustmip.data.Dataset` objects: images float32
``(N, 1, 28, 28)`` in ``[0, 1]``, labels int64 ``(N,)``. The optimiser is Adam (or SGD with
momentum); batches are shuffled with ``numpy.random.default_rng(seed)`` and the objective's
randomness (PGD starts) comes from a torch generator seeded with ``seed``, so on the CPU a run is a
function of the initial weights and the seed. With ``resume_path`` the full state (weights,
optimiser, both generators, history) is saved atomically after every epoch and a rerun continues
after the last finished epoch, bit for bit as if it had not stopped; a state saved under other
settings is refused.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from robustmip.attacks.evaluate import clean_accuracy
from robustmip.data import Dataset
from robustmip.errors import DataError, InvalidInput
from robustmip.io.checkpoint import atomic_torch_save
from robustmip.training.objectives import CrossEntropy, Objective, StepContext

TrainData = Dataset | tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class EpochStats:
    """Summary of one epoch.

    Attributes:
        epoch: 1-based epoch number.
        loss: mean cross-entropy over the epoch's training batches (on the PGD images when
            training adversarially), nats per example.
        train_accuracy: fraction of training examples (PGD images if adversarial) classified
            correctly while training, in ``[0, 1]``.
        eps: the objective's radius in the epoch's last batch (0 when it has none).
        test_accuracy: clean accuracy on the test data after the epoch, or None without them.
        seconds: wall time of the epoch, including the test evaluation.
        stats: the objective's statistics of the last batch (e.g. ``kappa``) and its test metrics
            after the epoch (prefixed ``test_``, e.g. a verified error).
    """

    epoch: int
    loss: float
    train_accuracy: float
    eps: float
    test_accuracy: float | None
    seconds: float
    stats: dict[str, float] = field(default_factory=dict)


@dataclass
class History:
    """Per-epoch statistics of a :func:`train` run."""

    epochs: list[EpochStats] = field(default_factory=list)

    @property
    def last(self) -> EpochStats:
        return self.epochs[-1]

    def to_dict(self) -> dict[str, Any]:
        return {"epochs": [asdict(e) for e in self.epochs]}


def default_device() -> torch.device:
    """CUDA when available, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _tensors(data: TrainData, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = (data.images, data.labels) if isinstance(data, Dataset) else data
    if len(images) != len(labels) or len(labels) == 0:
        raise InvalidInput(f"need as many labels as images (and at least one): "
                           f"{len(images)} images, {len(labels)} labels")
    return (torch.as_tensor(images, dtype=torch.float32, device=device),
            torch.as_tensor(labels, dtype=torch.int64, device=device))


def _check_settings(epochs: int, lr: float, batch_size: int, optimizer: str, momentum: float,
                    weight_decay: float) -> None:
    if epochs < 1:
        raise InvalidInput(f"epochs must be at least 1, got {epochs}")
    if not lr > 0:
        raise InvalidInput(f"learning rate must be positive, got {lr}")
    if batch_size < 1:
        raise InvalidInput(f"batch size must be at least 1, got {batch_size}")
    if optimizer not in OPTIMIZERS:
        raise InvalidInput(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    if not (0 <= momentum < 1) or not weight_decay >= 0:
        raise InvalidInput(f"momentum must lie in [0, 1) and weight decay be >= 0, got {momentum}, {weight_decay}")


OPTIMIZERS = ("adam", "sgd")


def make_optimizer(model: nn.Module, name: str, lr: float, momentum: float = 0.9,
                   weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """Adam (``momentum`` unused) or SGD with ``momentum``; ``weight_decay`` is the l2 coefficient."""
    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)


def ramp_eps(eps: float, step: int, ramp_steps: int) -> float:
    """Radius at 0-based batch ``step`` of a linear ramp reaching ``eps`` after ``ramp_steps``."""
    return eps if ramp_steps <= 0 else eps * min(1.0, (step + 1) / ramp_steps)


def _load_state(path: Path, settings: dict[str, Any]) -> dict[str, Any] | None:
    """The saved state of an interrupted run with the same ``settings``; None when there is none."""
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file: say so, do not guess
        raise DataError(f"cannot read the training state {path} ({type(exc).__name__}: {exc}); delete it to "
                        "start over") from exc
    if not isinstance(state, dict) or "settings" not in state:
        raise DataError(f"{path} is not a robustmip training state; delete it to start over")
    if state["settings"] != settings:
        changed = sorted(k for k in set(state["settings"]) | set(settings)
                         if state["settings"].get(k) != settings.get(k))
        raise InvalidInput(f"{path} holds a run with other settings ({', '.join(changed)}); resume it with the "
                           "same settings, or delete it to start over")
    return state


def train(model: nn.Module, train_data: TrainData, test_data: TrainData | None = None, *,
          epochs: int, lr: float = 1e-3, batch_size: int = 128, seed: int = 0,
          objective: Objective | None = None, optimizer: str = "adam", momentum: float = 0.9,
          weight_decay: float = 0.0, device: torch.device | str | None = None, progress: bool = True,
          on_epoch: Callable[[EpochStats], None] | None = None,
          resume_path: str | Path | None = None) -> History:
    """Train ``model`` in place on ``objective`` (default: clean cross-entropy).

    Args:
        epochs, lr, batch_size, seed: the usual; the last batch of an epoch may be smaller.
        objective: what each step minimises (:mod:`robustmip.training.objectives`).
        optimizer: ``"adam"`` or ``"sgd"`` (with ``momentum``); ``weight_decay`` is l2 on every parameter.
        device: where to train (default: CUDA when available); the model is left there.
        progress: a tqdm bar with the running loss and accuracy.
        on_epoch: called with each finished epoch's :class:`EpochStats` (also for epochs restored
            from ``resume_path``, so a caller's log is complete).
        resume_path: a file for the run's state after every epoch (see the module docstring); it is
            left in place at the end, so a caller that keeps the final model deletes it.

    Returns:
        The :class:`History` of every epoch.
    """
    objective = objective or CrossEntropy()
    _check_settings(epochs, lr, batch_size, optimizer, momentum, weight_decay)
    device = torch.device(device) if device is not None else default_device()
    model.to(device)
    x, y = _tensors(train_data, device)
    test = _tensors(test_data, device) if test_data is not None else None
    opt = make_optimizer(model, optimizer, lr, momentum, weight_decay)
    order_rng = np.random.default_rng(seed)
    generator = torch.Generator(device=device).manual_seed(seed)
    n_batches = math.ceil(len(y) / batch_size)
    history = History()
    settings = {"objective": objective.config(), "epochs": epochs, "lr": lr, "batch_size": batch_size,
                "seed": seed, "optimizer": optimizer, "momentum": momentum, "weight_decay": weight_decay,
                "n_train": int(len(y))}
    first_epoch = 1
    resume_path = Path(resume_path) if resume_path is not None else None
    state = _load_state(resume_path, settings) if resume_path is not None else None
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        order_rng.bit_generator.state = state["order_rng"]
        generator.set_state(state["generator"])
        history.epochs = [EpochStats(**e) for e in state["history"]]
        first_epoch = len(history.epochs) + 1
        if on_epoch is not None:
            for stats in history.epochs:
                on_epoch(stats)
    for epoch in range(first_epoch, epochs + 1):
        history.epochs.append(_run_epoch(model, objective, opt, x, y, test, epoch, epochs, batch_size,
                                         n_batches, order_rng, generator, device, progress))
        if resume_path is not None:
            atomic_torch_save({
                "settings": settings, "model": model.state_dict(), "optimizer": opt.state_dict(),
                "order_rng": order_rng.bit_generator.state, "generator": generator.get_state(),
                "history": [asdict(e) for e in history.epochs]}, resume_path)
        if on_epoch is not None:
            on_epoch(history.epochs[-1])
    return history


def _run_epoch(model: nn.Module, objective: Objective, opt: torch.optim.Optimizer, x: torch.Tensor,
               y: torch.Tensor, test: tuple[torch.Tensor, torch.Tensor] | None, epoch: int, epochs: int,
               batch_size: int, n_batches: int, order_rng: np.random.Generator, generator: torch.Generator,
               device: torch.device, progress: bool) -> EpochStats:
    start = time.perf_counter()
    model.train()
    order = torch.as_tensor(order_rng.permutation(len(y)), device=device)
    total_loss, correct, seen, stats = 0.0, 0, 0, {}
    bar = tqdm(range(n_batches), desc=f"epoch {epoch}/{epochs}", disable=not progress, leave=False)
    for b in bar:
        idx = order[b * batch_size:(b + 1) * batch_size]
        xb, yb = x[idx], y[idx]
        ctx = StepContext(epoch=epoch, step=(epoch - 1) * n_batches + b, steps_per_epoch=n_batches,
                          generator=generator)
        out = objective.step(model, opt, xb, yb, ctx)
        total_loss += float(out.loss) * len(yb)
        correct += int((out.logits.argmax(1) == yb).sum())
        seen += len(yb)
        stats = out.stats
        bar.set_postfix(loss=f"{total_loss / seen:.4f}", acc=f"{correct / seen:.4f}",
                        **{k: f"{v:.4g}" for k, v in stats.items()})
    bar.close()
    model.eval()
    test_acc = clean_accuracy(model, *test, device=device) if test is not None else None
    if test is not None:
        with torch.no_grad():
            stats = {**stats, **{f"test_{k}": v for k, v in objective.epoch_metrics(model, *test).items()}}
    return EpochStats(epoch, total_loss / seen, correct / seen, float(stats.get("eps", 0.0)), test_acc,
                      time.perf_counter() - start, dict(stats))


retrain = train
