"""Accuracy of a model on clean, PGD-attacked and transferred adversarial images, in batches.

Inputs are numpy arrays or torch tensors: images ``(N, 1, 28, 28)`` (any shape the model takes)
in ``[0, 1]``, labels ``(N,)`` int. Accuracies are fractions in ``[0, 1]``. Work is done in
batches of ``batch_size`` images on ``device`` (default: the device of the model's parameters),
so 10000 images do not need 10000 images' worth of activations at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from robustmip.attacks.gradient import pgd
from robustmip.errors import InvalidInput

ArrayLike = np.ndarray | torch.Tensor


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a model without parameters)."""
    return next((p.device for p in model.parameters()), torch.device("cpu"))


def _slices(n: int, batch_size: int) -> Iterator[slice]:
    """Consecutive slices of at most ``batch_size`` covering ``range(n)``."""
    if batch_size < 1:
        raise InvalidInput(f"batch_size must be at least 1, got {batch_size}")
    return (slice(start, start + batch_size) for start in range(0, n, batch_size))


def _images(x: ArrayLike, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(x, dtype=torch.float32, device=device)


def _labels(y: ArrayLike, device: torch.device | str = "cpu") -> torch.Tensor:
    return torch.as_tensor(y, dtype=torch.int64, device=device)


def _check_sizes(x: ArrayLike, y: ArrayLike) -> None:
    if len(x) != len(y):
        raise InvalidInput(f"{len(x)} images but {len(y)} labels")
    if len(y) == 0:
        raise InvalidInput("no images given")


def predict(model: nn.Module, x: ArrayLike, batch_size: int = 1000,
            device: torch.device | str | None = None) -> np.ndarray:
    """Predicted classes ``(N,)`` int64 (argmax of the logits)."""
    device = torch.device(device) if device is not None else model_device(model)
    with torch.no_grad():
        out = [model(_images(x[s], device)).argmax(1).cpu() for s in _slices(len(x), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros(0, dtype=np.int64)


def clean_accuracy(model: nn.Module, x: ArrayLike, y: ArrayLike, batch_size: int = 1000,
                   device: torch.device | str | None = None) -> float:
    """Fraction of ``x`` classified as ``y``."""
    _check_sizes(x, y)
    return float(np.mean(predict(model, x, batch_size, device) == _labels(y).numpy()))


def transfer_accuracy(model: nn.Module, x_adv: ArrayLike, y: ArrayLike, batch_size: int = 1000,
                      device: torch.device | str | None = None) -> float:
    """Accuracy of ``model`` on adversarial images ``x_adv`` crafted on another model.

    ``y`` are the true labels of the images ``x_adv`` were made from.
    """
    return clean_accuracy(model, x_adv, y, batch_size, device)


def pgd_examples(model: nn.Module, x: ArrayLike, y: ArrayLike, eps: float, batch_size: int = 500,
                 device: torch.device | str | None = None, seed: int | None = 0,
                 **pgd_kwargs: Any) -> np.ndarray:
    """PGD adversarial images ``(N, ...)`` float32 for all of ``x``, batch by batch.

    ``pgd_kwargs`` go to :func:`robustmip.attacks.gradient.pgd` (steps, step_size, restarts,
    random_start, target is not supported here). One generator seeded with ``seed`` serves all
    batches, so the result depends on the seed and the batch size only.
    """
    if "target" in pgd_kwargs or "generator" in pgd_kwargs:
        raise InvalidInput("pgd_examples takes neither target nor generator")
    device = torch.device(device) if device is not None else model_device(model)
    generator = torch.Generator(device=device)
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    _check_sizes(x, y)
    out = [pgd(model, _images(x[s], device), _labels(y[s], device), eps, generator=generator,
               **pgd_kwargs).cpu() for s in _slices(len(x), batch_size)]
    return torch.cat(out).numpy()


@dataclass(frozen=True)
class PGDEvaluation:
    """Outcome of a PGD attack on a labelled set.

    Attributes:
        x_adv: adversarial images, float32, shape of the input images.
        clean_correct: bool ``(N,)``, clean image classified correctly.
        adv_correct: bool ``(N,)``, adversarial image classified correctly.
    """

    x_adv: np.ndarray
    clean_correct: np.ndarray
    adv_correct: np.ndarray

    @property
    def clean_accuracy(self) -> float:
        return float(self.clean_correct.mean())

    @property
    def robust_accuracy(self) -> float:
        """Fraction correct both clean and attacked."""
        return float((self.clean_correct & self.adv_correct).mean())


def evaluate_pgd(model: nn.Module, x: ArrayLike, y: ArrayLike, eps: float, batch_size: int = 500,
                 device: torch.device | str | None = None, seed: int | None = 0,
                 **pgd_kwargs: Any) -> PGDEvaluation:
    """Attack all of ``x`` with PGD and record which examples stay correct.

    ``pgd_kwargs`` as in :func:`pgd_examples`.
    """
    x_adv = pgd_examples(model, x, y, eps, batch_size, device, seed, **pgd_kwargs)
    labels = _labels(y).numpy()
    return PGDEvaluation(x_adv, predict(model, x, batch_size, device) == labels,
                         predict(model, x_adv, batch_size, device) == labels)


def robust_accuracy(model: nn.Module, x: ArrayLike, y: ArrayLike, eps: float,
                    batch_size: int = 500, device: torch.device | str | None = None,
                    seed: int | None = 0, **pgd_kwargs: Any) -> float:
    """Fraction of examples classified correctly both clean and under PGD at radius ``eps``.

    An upper bound on the true robust accuracy (PGD may miss adversarial examples; the MILP
    gives the exact value). ``pgd_kwargs`` as in :func:`pgd_examples`.
    """
    return evaluate_pgd(model, x, y, eps, batch_size, device, seed, **pgd_kwargs).robust_accuracy
