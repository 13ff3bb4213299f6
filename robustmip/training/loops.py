"""Training loops: standard training and PGD adversarial training (Madry et al. 2018).

:func:`train` trains the model it is given in place, so fine-tuning or retraining an existing
model (e.g. a pruned one, or adversarial fine-tuning of a standard one) is the same call on that
model; :data:`retrain` is an alias that reads better at such call sites.

Data are ``(images, labels)`` pairs or :class:`robustmip.data.Dataset` objects: images float32
``(N, 1, 28, 28)`` in ``[0, 1]``, labels int64 ``(N,)``. The optimiser is Adam; batches are
shuffled with ``numpy.random.default_rng(seed)`` and PGD's random starts use a torch generator
seeded with ``seed``, so on the CPU a run is a function of the initial weights and the seed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from robustmip.attacks.evaluate import clean_accuracy
from robustmip.attacks.gradient import PGDConfig, pgd
from robustmip.data import Dataset
from robustmip.errors import InvalidInput

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
        eps: PGD radius used in the epoch's last batch (0 for standard training).
        test_accuracy: clean accuracy on the test data after the epoch, or None without them.
        seconds: wall time of the epoch, including the test evaluation.
    """

    epoch: int
    loss: float
    train_accuracy: float
    eps: float
    test_accuracy: float | None
    seconds: float


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


def _check_settings(epochs: int, lr: float, batch_size: int, eps_ramp_epochs: int) -> None:
    if epochs < 1:
        raise InvalidInput(f"epochs must be at least 1, got {epochs}")
    if not lr > 0:
        raise InvalidInput(f"learning rate must be positive, got {lr}")
    if batch_size < 1:
        raise InvalidInput(f"batch size must be at least 1, got {batch_size}")
    if eps_ramp_epochs < 0:
        raise InvalidInput(f"eps ramp epochs must be non-negative, got {eps_ramp_epochs}")


def ramp_eps(eps: float, step: int, ramp_steps: int) -> float:
    """Radius at 0-based batch ``step`` of a linear ramp reaching ``eps`` after ``ramp_steps``."""
    return eps if ramp_steps <= 0 else eps * min(1.0, (step + 1) / ramp_steps)


def _adversarial_batch(model: nn.Module, x: torch.Tensor, y: torch.Tensor, adv: PGDConfig,
                       eps: float, generator: torch.Generator) -> torch.Tensor:
    """PGD images of ``x`` for ``adv`` run at radius ``eps`` (step size scaled alike)."""
    attack = adv.scaled(eps) if 0 < eps < adv.eps else adv
    return pgd(model, x, y, **asdict(attack), generator=generator)


def _optimizer_step(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor,
                    y: torch.Tensor) -> tuple[float, int]:
    """One cross-entropy step on ``(x, y)``; returns the batch's summed loss and #correct."""
    logits = model(x)
    loss = F.cross_entropy(logits, y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item() * len(y), int((logits.argmax(1) == y).sum())


def train(model: nn.Module, train_data: TrainData, test_data: TrainData | None = None, *,
          epochs: int, lr: float = 1e-3, batch_size: int = 128, seed: int = 0,
          adv: PGDConfig | None = None, eps_ramp_epochs: int = 0,
          device: torch.device | str | None = None, progress: bool = True,
          on_epoch: Callable[[EpochStats], None] | None = None) -> History:
    """Train ``model`` in place with Adam, on clean images or (``adv``) on PGD images.

    With ``adv``, every batch is replaced by :func:`robustmip.attacks.gradient.pgd` images of
    radius ``adv.eps`` (Madry's min-max training); with ``eps_ramp_epochs > 0`` the radius (and
    the step size with it) grows linearly per batch from ``adv.eps / ramp_steps`` to ``adv.eps``
    over the first ``eps_ramp_epochs`` epochs. The model is moved to ``device`` (default: CUDA
    when available) and left there. ``on_epoch`` is called with each epoch's statistics; a tqdm
    bar shows the running loss and accuracy when ``progress``. Returns the :class:`History`.
    """
    _check_settings(epochs, lr, batch_size, eps_ramp_epochs)
    device = torch.device(device) if device is not None else default_device()
    model.to(device)
    x, y = _tensors(train_data, device)
    test = _tensors(test_data, device) if test_data is not None else None
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    order_rng = np.random.default_rng(seed)
    attack_rng = torch.Generator(device=device).manual_seed(seed)
    n_batches = math.ceil(len(y) / batch_size)
    ramp_steps = eps_ramp_epochs * n_batches
    history = History()
    step = 0
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        model.train()
        order = torch.as_tensor(order_rng.permutation(len(y)), device=device)
        total_loss, correct, seen, eps = 0.0, 0, 0, 0.0
        bar = tqdm(range(n_batches), desc=f"epoch {epoch}/{epochs}", disable=not progress,
                   leave=False)
        for b in bar:
            idx = order[b * batch_size:(b + 1) * batch_size]
            xb, yb = x[idx], y[idx]
            if adv is not None:
                eps = ramp_eps(adv.eps, step, ramp_steps)
                xb = _adversarial_batch(model, xb, yb, adv, eps, attack_rng)
            batch_loss, batch_correct = _optimizer_step(model, optimizer, xb, yb)
            total_loss += batch_loss
            correct += batch_correct
            seen += len(yb)
            step += 1
            bar.set_postfix(loss=f"{total_loss / seen:.4f}", acc=f"{correct / seen:.4f}")
        bar.close()
        test_acc = clean_accuracy(model, *test, device=device) if test is not None else None
        stats = EpochStats(epoch, total_loss / seen, correct / seen, eps, test_acc,
                           time.perf_counter() - start)
        history.epochs.append(stats)
        if on_epoch is not None:
            on_epoch(stats)
    return history


retrain = train
