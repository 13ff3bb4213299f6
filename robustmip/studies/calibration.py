"""Calibrating eps: the l-inf radius at which a net's targeted PGD adversarial rate matches a published one.

The rate of a net at ``eps`` counts (image, target) pairs: for each image (correctly classified) and
each of the other classes, a targeted PGD attack within ``eps`` succeeds when the target's logit
exceeds the label's at its point, i.e. when the targeted margin ``z_label - z_target`` is negative,
the event the exact max-margin MILP decides (its optimum is below 0). PGD finds a subset of those
pairs, so its rate is a lower bound on the exact rate at the same eps.

:func:`targeted_pgd_rates` sweeps a grid of radii; :func:`pick_eps` takes the radius whose rate is
nearest the target.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from robustmip.attacks import pgd
from robustmip.errors import InvalidInput


def targeted_pairs(images: np.ndarray, labels: np.ndarray,
                   classes: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (image, target != label) pair, image-major: ``(images (N*(C-1), ...), labels, targets)``."""
    labels = np.asarray(labels, dtype=np.int64)
    targets = np.asarray([[t for t in range(classes) if t != y] for y in labels], dtype=np.int64).reshape(-1)
    repeat = classes - 1
    return np.repeat(np.asarray(images, dtype=np.float32), repeat, axis=0), np.repeat(labels, repeat), targets


def targeted_pgd_success(model: nn.Module, images: np.ndarray, labels: np.ndarray, eps: float, *, steps: int = 50,
                         restarts: int = 2, seed: int = 0, batch_size: int = 1000, classes: int = 10) -> np.ndarray:
    """Bool ``(N, classes - 1)``: did targeted PGD within ``eps`` make target ``t`` beat the label?

    Row ``i`` lists image ``i``'s targets in increasing order (the label skipped). PGD: ``steps``
    signed steps of ``2.5 eps / steps``, ``restarts`` random starts, seeded; the model runs on the CPU
    in its own dtype.
    """
    if not eps > 0:
        raise InvalidInput(f"eps must be > 0 for a PGD attack, got {eps}")
    x, y, t = targeted_pairs(images, labels, classes)
    generator = torch.Generator().manual_seed(seed)
    success = []
    model = model.cpu().eval()
    for s in range(0, len(y), batch_size):
        xb, yb, tb = (torch.as_tensor(a[s:s + batch_size]) for a in (x, y, t))
        adv = pgd(model, xb, yb, eps, steps=steps, restarts=restarts, target=tb, generator=generator)
        with torch.no_grad():
            logits = model(adv)
        rows = torch.arange(len(yb))
        success.append((logits[rows, tb] > logits[rows, yb]).numpy())
    return np.concatenate(success).reshape(len(labels), classes - 1)


def targeted_pgd_rates(model: nn.Module, images: np.ndarray, labels: np.ndarray, eps_grid: Sequence[float],
                       **attack) -> dict[float, float]:
    """``{eps: fraction of (image, target) pairs PGD made adversarial}`` over ``eps_grid``.

    ``attack``: keyword arguments of :func:`targeted_pgd_success` (steps, restarts, seed, ...).
    """
    return {float(eps): float(targeted_pgd_success(model, images, labels, eps, **attack).mean()) for eps in eps_grid}


def pick_eps(rates: Mapping[float, float], target: float) -> float:
    """The eps whose rate is nearest ``target`` (a fraction); the smallest such eps on a tie."""
    if not rates:
        raise InvalidInput("pick_eps needs the rates of at least one eps")
    return min(sorted(rates), key=lambda eps: abs(rates[eps] - target))
