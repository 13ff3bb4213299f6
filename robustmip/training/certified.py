"""Certified training: IBP, CROWN-IBP and the global multi-radius strategies GRT and GM.

For a batch ``x`` (images in ``[0, 1]``) with labels ``y``, the l-infinity ball of radius ``r`` around
each image, clipped to ``[0, 1]``, and the margin specification ``C_y`` (row ``j``: ``z_y - z_j``,
``j != y``; :func:`robustmip.bounds.lirpa.margin_specs`), a lower bound ``m(x, r)`` ``(B, classes - 1)``
on the margins comes from the batched torch bounds of :mod:`robustmip.bounds.lirpa`, ``C`` folded into
the last layer:

* IBP (Gowal et al. 2018): ``c' = W c + b``, ``r' = |W| r`` layer by layer, ReLU on ``[c' - r', c' + r']``:
  ``m_IBP``;
* CROWN-IBP (Zhang et al. 2020): IBP for the intermediate bounds, then CROWN back-substitution of
  ``C`` with the adaptive lower slope: ``m_CROWN-IBP``; the margin trained on is
  ``m = beta m_CROWN-IBP + (1 - beta) m_IBP`` (pure IBP when ``beta = 0``).

The loss (Zhang et al. eq. 11 with Liang et al. 2023's robust term) is

    ``kappa CE(z(x), y) + (1 - kappa) sum_i c_i CE(-m(x, r_i), y)``,  ``r_i = i eps / N``, ``i = 1..N``,

where ``CE(-m, y)`` is the cross-entropy of the logits ``(0, -m_1, ..., -m_{classes-1})`` for the first
class, ``log(1 + sum_j exp(-m_j))`` (CROWN-IBP's form: the label's own row, identically 0, is
prepended), averaged over the batch. Weights ``c`` (:func:`gm_weights`): ``single`` = only ``r_N = eps``
(local robustness training, LRT: plain IBP / CROWN-IBP), ``uniform`` = ``1/N`` (GRT), ``inverse``
``c_i ∝ 1/r_i`` normalised to sum 1 (GM, monotonically decreasing). The radii with non-zero weight are
stacked into one bound batch of ``N B`` boxes. With ``N = 1`` (or ``single`` weights) the loss is plain
single-radius training, operation for operation.

Schedules, per batch (:class:`~robustmip.training.objectives.Ramp`): ``eps`` grows linearly from 0 to
its final value over ``schedule_length`` epochs after ``schedule_start`` epochs of warm-up (eps 0); ``kappa``
and ``beta`` move linearly from their start to their end values over the same epochs (CROWN-IBP's
defaults: kappa 1 -> 0 (or 0.5), beta 1 -> 0; Adam 5e-4, batch 256, given to the training loop).
While ``kappa = 1`` the robust term has weight 0 and is not computed. At eps 0 the robust margins are
the clean margins.

These float32 bounds only train. A verified error claimed of the trained net comes from the float64
bounds and the MILP of :mod:`robustmip.certify`; the per-epoch test metrics here (float32 IBP and
CROWN-IBP verified error at the final eps) are progress indicators.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from robustmip.bounds.lirpa import lirpa_bounds, margin_specs
from robustmip.errors import InvalidInput
from robustmip.training.objectives import LossOutput, Objective, Ramp, StepContext

CERTIFIED_METHODS: tuple[str, ...] = ("ibp", "crown-ibp")
GM_WEIGHTS: tuple[str, ...] = ("single", "uniform", "inverse")
EVAL_BATCH = 500


def gm_weights(n: int, kind: str) -> np.ndarray:
    """Weights ``c_1..c_N`` of the robust losses at radii ``r_i = i eps / N``, float64 ``(n,)``, sum 1.

    ``single``: ``(0, ..., 0, 1)``; ``uniform``: ``1/N`` each; ``inverse``: ``c_i ∝ 1/r_i ∝ 1/i``, i.e.
    ``(1/i) / H_N`` with ``H_N = sum_k 1/k`` (strictly decreasing for ``N > 1``).
    """
    if not (isinstance(n, (int, np.integer)) and n >= 1):
        raise InvalidInput(f"the number of radii must be an integer >= 1, got {n}")
    if kind == "single":
        weights = np.zeros(n)
        weights[-1] = 1.0
        return weights
    if kind == "uniform":
        return np.full(n, 1.0 / n)
    if kind == "inverse":
        inverse = 1.0 / np.arange(1, n + 1)
        return inverse / inverse.sum()
    raise InvalidInput(f"unknown radius weights {kind!r}; choose one of {GM_WEIGHTS}")


def gm_radii(eps: float, n: int) -> np.ndarray:
    """``r_i = i eps / N`` for ``i = 1..N``, float64 ``(n,)``."""
    return np.arange(1, n + 1) * (float(eps) / n)


def robust_cross_entropy(margins: torch.Tensor) -> torch.Tensor:
    """``mean_b CE((0, -m_b), 0) = mean_b log(1 + sum_j exp(-m_bj))``; margins ``(B, classes - 1)``."""
    padded = torch.cat([margins.new_zeros(margins.shape[0], 1), -margins], dim=1)
    return F.cross_entropy(padded, margins.new_zeros(margins.shape[0], dtype=torch.long))


def margin_bounds(model: nn.Module, x: torch.Tensor, y: torch.Tensor, radii: torch.Tensor, beta: float,
                  n_classes: int = 10) -> torch.Tensor:
    """``beta m_CROWN-IBP + (1 - beta) m_IBP`` for every radius: ``(R, B, n_classes - 1)``, differentiable.

    Args:
        x, y: images ``(B, *input_shape)`` in ``[0, 1]`` and labels ``(B,)``.
        radii: ``(R,)`` l-inf radii; the ``R`` balls of every image are bounded as one batch of ``R B``
            boxes (radius-major), each clipped to ``[0, 1]``.
        beta: the CROWN-IBP share; 0 computes IBP only.
    """
    n_radii, batch = radii.shape[0], x.shape[0]
    stacked = x.repeat(n_radii, *([1] * (x.dim() - 1)))
    r = radii.to(x.dtype).repeat_interleave(batch).view(-1, *([1] * (x.dim() - 1)))
    lower, upper = (stacked - r).clamp(0.0, 1.0), (stacked + r).clamp(0.0, 1.0)
    C = margin_specs(y.repeat(n_radii), n_classes, x.dtype)
    ibp = lirpa_bounds(model, lower, upper, C, "ibp")
    if beta == 0:
        margins = ibp.lower
    else:
        crown = lirpa_bounds(model, lower, upper, C, "crown-ibp", intermediate=ibp.intermediate).lower
        margins = crown if beta == 1 else beta * crown + (1.0 - beta) * ibp.lower
    return margins.view(n_radii, batch, -1)


class CertifiedTraining(Objective):
    """IBP / CROWN-IBP training at one radius (LRT) or at ``n_radii`` radii (GRT, GM); see the module doc.

    Args:
        method: ``"ibp"`` (the margin is ``m_IBP``; ``beta`` must stay 0) or ``"crown-ibp"``.
        eps: final training radius (pixel units); n_radii: ``N``; weights: ``single``, ``uniform`` or
            ``inverse`` (:func:`gm_weights`).
        kappa, beta: ``(start, end)`` in ``[0, 1]``; schedule_length, schedule_start: epochs of the
            ramp and of the warm-up before it.
        n_classes: outputs of the model.
    """

    name = "certified"

    def __init__(self, method: str, eps: float, n_radii: int = 1, weights: str = "single",
                 kappa: tuple[float, float] = (1.0, 0.0), beta: tuple[float, float] = (1.0, 0.0),
                 schedule_length: float = 0.0, schedule_start: float = 0.0, n_classes: int = 10):
        if method not in CERTIFIED_METHODS:
            raise InvalidInput(f"unknown certified training method {method!r}; choose one of {CERTIFIED_METHODS}")
        if not 0 < eps <= 1:
            raise InvalidInput(f"the certified training eps must lie in (0, 1], got {eps}")
        kappa, beta = tuple(float(k) for k in kappa), tuple(float(b) for b in beta)
        if len(kappa) != 2 or len(beta) != 2 or not all(0 <= v <= 1 for v in (*kappa, *beta)):
            raise InvalidInput(f"kappa and beta are (start, end) pairs in [0, 1], got {kappa} and {beta}")
        if method == "ibp" and beta != (0.0, 0.0):
            raise InvalidInput(f"IBP training has no CROWN-IBP share: beta must be (0, 0), got {beta}")
        self.method, self.eps, self.n_radii, self.weights_kind = method, float(eps), int(n_radii), weights
        self.weights = gm_weights(self.n_radii, weights)
        self.kappa, self.beta = kappa, beta
        self.schedule_length, self.schedule_start = float(schedule_length), float(schedule_start)
        self.eps_ramp = Ramp(0.0, self.eps, self.schedule_length, self.schedule_start)
        self.kappa_ramp = Ramp(*kappa, self.schedule_length, self.schedule_start)
        self.beta_ramp = Ramp(*beta, self.schedule_length, self.schedule_start)
        self.n_classes = int(n_classes)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "method": self.method, "eps": self.eps, "n_radii": self.n_radii,
                "weights": self.weights_kind, "kappa": list(self.kappa), "beta": list(self.beta),
                "schedule_length": self.schedule_length, "schedule_start": self.schedule_start}

    def robust_loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float,
                    beta: float) -> tuple[torch.Tensor, torch.Tensor]:
        """``sum_i c_i CE(-m(x, r_i), y)`` over the radii with ``c_i > 0``, and the margins at ``r_N = eps``."""
        used = np.flatnonzero(self.weights > 0)
        radii = torch.as_tensor(gm_radii(eps, self.n_radii)[used], dtype=x.dtype, device=x.device)
        margins = margin_bounds(model, x, y, radii, beta, self.n_classes)
        losses = torch.stack([robust_cross_entropy(m) for m in margins])
        weights = torch.as_tensor(self.weights[used], dtype=x.dtype, device=x.device)
        return (weights * losses).sum(), margins[-1]

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, ctx: StepContext) -> LossOutput:
        eps, kappa, beta = self.eps_ramp(ctx), self.kappa_ramp(ctx), self.beta_ramp(ctx)
        logits = model(x)
        natural = F.cross_entropy(logits, y)
        stats = {"eps": eps, "kappa": kappa, "beta": beta}
        if kappa >= 1.0:
            return LossOutput(natural, logits, stats)
        robust, margins = self.robust_loss(model, x, y, eps, beta)
        stats["robust_loss"] = float(robust.detach())
        stats["batch_verified_error"] = float((margins.detach().min(dim=1).values <= 0).double().mean())
        return LossOutput(kappa * natural + (1.0 - kappa) * robust, logits, stats)

    def epoch_metrics(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """Float32 IBP (and, for CROWN-IBP training, CROWN-IBP) verified error at the final eps."""
        methods = {"ibp": 0.0} if self.method == "ibp" else {"ibp": 0.0, "crown_ibp": 1.0}
        unverified = dict.fromkeys(methods, 0)
        radius = torch.tensor([self.eps], dtype=x.dtype, device=x.device)
        for start in range(0, x.shape[0], EVAL_BATCH):
            xb, yb = x[start:start + EVAL_BATCH], y[start:start + EVAL_BATCH]
            for name, beta in methods.items():
                margins = margin_bounds(model, xb, yb, radius, beta, self.n_classes)[0]
                unverified[name] += int((margins.min(dim=1).values <= 0).sum())
        return {f"{name}_verified_error": count / x.shape[0] for name, count in unverified.items()}
