"""Sensitivity-minimising training (seed 001's SM loss) and its baselines, as training objectives.

All four add a penalty to the clean cross-entropy (the l2 term of seed 001's losses is the
optimiser's weight decay, ``robustmip train --weight-decay``):

* :class:`SensitivityMinimization` (SM): ``CE + lam * mean_b S_dual(x_b)``, where ``S_dual`` is the
  volume ``prod_j (U_j - L_j)`` of Wong & Kolter's dual box of the logits over the ball
  ``|x' - x| <= eps`` (per feature, not clipped, as the seed), computed batched and differentiably
  by :func:`robustmip.bounds.lirpa.lirpa_bounds` (method ``kw``). The product is formed as
  ``exp(sum_j log(U_j - L_j))`` (the log-volume internally), which neither overflows nor underflows
  for volumes from ``1e-30`` to ``1e30``; the loss itself is the seed's ``lam * S``. With
  ``form="log"`` the penalty is ``lam * mean_b log10 S_dual`` instead (bounded gradients; not the
  seed's loss).
* :class:`JacobianRegularization` (jacobM, Jakubovitz & Giryes 2018): ``CE + lam * mean_b
  ||dz/dx (x_b)||_F`` with ``z`` the logits (one backward pass per logit, double backprop). The
  seed's three-stage schedule (plain, dropout, then the penalty) is not reproduced: the penalty
  applies from the first batch.
* :class:`SpectralRegularization` (specM, Yoshida & Miyato 2017): ``CE + lam / 2 sum_l
  sigma_max(W_l)^2`` over every Linear and Conv2d weight; a convolution's ``W`` is its kernel
  reshaped to ``(out, in * kh * kw)`` (as Yoshida & Miyato). ``sigma_max`` is exact (SVD), not a
  power iteration, so a resumed run needs no power-iteration state.
* :class:`KWRobust` (K&W, Wong & Kolter 2018): ``CE(-J(x, C_y, eps), y)``, ``J`` the dual lower bound
  of the margins ``y_label - y_j``: the logits are replaced by ``0`` at the label and the
  margins' negated lower bounds elsewhere. Its radius may ramp up over the first epochs.

:func:`sensitivity_metrics` gives seed 001's metrics of a model on a labelled set: CE, ERR,
ADV_LOSS, ADV_ERR, JACOB, SPECTRAL and ``log10 S_dual`` per example (SENSE is their mean).
"""

from __future__ import annotations

import copy
import hashlib
import math
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from robustmip.bounds.lirpa import lirpa_bounds, margin_specs
from robustmip.errors import InvalidInput
from robustmip.training.objectives import LossOutput, Objective, Ramp, StepContext

VOLUME_FLOOR = 1e-30
"""Box widths are floored here before the logarithm: a constant logit (width 0) would give ``log 0``."""


def radius_tensor(eps: float | np.ndarray | torch.Tensor) -> torch.Tensor:
    """``eps`` (a number, or one radius per input feature) as a scalar or flat ``(n_features,)`` tensor."""
    radius = torch.as_tensor(eps).detach().reshape(-1) if np.ndim(eps) else torch.as_tensor(float(eps))
    if not radius.is_floating_point() or not bool(torch.isfinite(radius).all()) or bool((radius < 0).any()):
        raise InvalidInput("eps must hold finite numbers >= 0")
    return radius


def _describe_radius(radius: torch.Tensor) -> dict[str, Any]:
    """JSON-ready identity of a radius (its value, or the sha256 of a per-feature vector)."""
    if radius.ndim == 0:
        return {"eps": float(radius)}
    values = radius.detach().cpu().numpy().astype(np.float32)
    return {"eps_sha256": hashlib.sha256(values.tobytes()).hexdigest(), "eps_max": float(values.max())}


def _box(x: torch.Tensor, radius: torch.Tensor, clip: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``[x - eps, x + eps]``, clipped to ``[0, 1]`` with ``clip``; ``x`` ``(B, *input_shape)``."""
    r = radius.to(x.device, x.dtype)
    if r.ndim:
        if r.numel() != math.prod(x.shape[1:]):
            raise InvalidInput(f"eps has {r.numel()} values; the inputs have {math.prod(x.shape[1:])}")
        r = r.reshape(1, *x.shape[1:])
    lower, upper = x - r, x + r
    if clip:
        lower, upper = lower.clamp(0.0, 1.0), upper.clamp(0.0, 1.0)
    return lower, upper


def log10_dual_volume(model: nn.Module, x: torch.Tensor, radius: torch.Tensor, clip: bool = False) -> torch.Tensor:
    """``log10 S_dual`` per example ``(B,)``, differentiable: the kw box of the logits over the ball."""
    lower, upper = _box(x, radius, clip)
    bounds = lirpa_bounds(model, lower, upper, method="kw", bound_upper=True)
    widths = (bounds.upper - bounds.lower).clamp(min=VOLUME_FLOOR)
    return widths.log10().sum(dim=1)


def kw_margin_bounds(model: nn.Module, x: torch.Tensor, y: torch.Tensor, radius: torch.Tensor,
                     clip: bool = False) -> torch.Tensor:
    """Wong & Kolter's lower bounds ``J`` of the margins ``y_label - y_j`` (``j != label``), ``(B, m - 1)``."""
    lower, upper = _box(x, radius, clip)
    n_out = model(x[:1]).shape[1]
    C = margin_specs(y, n_out, dtype=x.dtype).to(x.device)
    return lirpa_bounds(model, lower, upper, C, method="kw").lower


def robust_logits(margin_lower: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The logits of the K&W loss ``(B, m)``: 0 at the label, ``-J_j`` (minus a margin's lower bound) elsewhere."""
    batch, m = margin_lower.shape[0], margin_lower.shape[1] + 1
    others = torch.ones(batch, m, dtype=torch.bool, device=y.device)
    others[torch.arange(batch, device=y.device), y] = False
    z = margin_lower.new_zeros(batch, m)
    return z.masked_scatter(others, -margin_lower)


def jacobian_norm(model: nn.Module, x: torch.Tensor, create_graph: bool = False) -> torch.Tensor:
    """``||dz/dx||_F`` per example ``(B,)``, ``z`` the logits (one backward pass per logit)."""
    with torch.enable_grad():
        point = x.detach().requires_grad_(True)
        logits = model(point)
        squares = point.new_zeros(point.shape[0])
        for k in range(logits.shape[1]):
            (grad,) = torch.autograd.grad(logits[:, k].sum(), point, create_graph=create_graph, retain_graph=True)
            squares = squares + grad.flatten(1).pow(2).sum(dim=1)
    return squares.clamp(min=1e-30).sqrt()


def spectral_penalty(model: nn.Module) -> torch.Tensor:
    """``1/2 sum_l sigma_max(W_l)^2`` over the Linear and Conv2d weights (kernels as ``(out, in*kh*kw)``)."""
    terms = [torch.linalg.matrix_norm(m.weight.flatten(1), ord=2).pow(2) for m in model.modules()
             if isinstance(m, (nn.Linear, nn.Conv2d))]
    if not terms:
        raise InvalidInput("the model has no Linear or Conv2d weight for the spectral penalty")
    return 0.5 * torch.stack(terms).sum()


def _check_lambda(lam: float, what: str) -> float:
    value = float(lam)
    if not math.isfinite(value) or value < 0:
        raise InvalidInput(f"{what} must be a finite number >= 0, got {lam}")
    return value


class PenalizedCrossEntropy(Objective):
    """``CE + lam * penalty``: subclasses give :meth:`penalty` and the name of the statistic it reports."""

    statistic = "penalty"

    def __init__(self, lam: float, what: str):
        self.lam = _check_lambda(lam, what)

    def penalty(self, model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, float]:
        """``(the batch's penalty, a scalar statistic to show)``."""
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        """Settings beyond ``lam`` for :meth:`config`."""
        return {}

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, ctx: StepContext) -> LossOutput:
        logits = model(x)
        penalty, statistic = self.penalty(model, x)
        return LossOutput(F.cross_entropy(logits, y) + self.lam * penalty, logits, {self.statistic: statistic})

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "lam": self.lam, **self.settings()}


class SensitivityMinimization(PenalizedCrossEntropy):
    """Seed 001's SM loss ``CE + lam * mean S_dual`` (module docstring).

    Args:
        lam: weight of the volume (seed 001: 1e-6).
        eps: radius, a number or one value per input feature (seed 001: ``0.05 * range_j``,
            :func:`robustmip.sensitivity.measure.feature_eps`).
        form: ``"volume"`` (the seed's ``lam * S``) or ``"log"`` (``lam * log10 S``).
        clip: clip the ball to ``[0, 1]`` (the seed does not).
    """

    name = "sm"
    statistic = "log10_sense"

    def __init__(self, lam: float = 1e-6, eps: float | np.ndarray = 0.05, form: Literal["volume", "log"] = "volume",
                 clip: bool = False):
        if form not in ("volume", "log"):
            raise InvalidInput(f"form must be 'volume' or 'log', got {form!r}")
        super().__init__(lam, "the sensitivity weight")
        self.radius, self.form, self.clip = radius_tensor(eps), form, bool(clip)

    def penalty(self, model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, float]:
        """``mean S_dual`` (or ``mean log10 S_dual``) of the batch, and the mean ``log10 S_dual``."""
        log10_volume = log10_dual_volume(model, x, self.radius, self.clip)
        statistic = float(log10_volume.detach().mean())
        if self.form == "log":
            return log10_volume.mean(), statistic
        return torch.exp(log10_volume * math.log(10.0)).mean(), statistic

    def settings(self) -> dict[str, Any]:
        return {"form": self.form, "clip": self.clip, **_describe_radius(self.radius)}


class JacobianRegularization(PenalizedCrossEntropy):
    """jacobM: ``CE + lam * mean ||dz/dx||_F`` (module docstring)."""

    name = "jacobm"
    statistic = "jacob"

    def __init__(self, lam: float):
        super().__init__(lam, "the Jacobian weight")

    def penalty(self, model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, float]:
        norm = jacobian_norm(model, x, create_graph=True)
        return norm.mean(), float(norm.detach().mean())


class SpectralRegularization(PenalizedCrossEntropy):
    """specM: ``CE + lam/2 sum_l sigma_max(W_l)^2`` (module docstring)."""

    name = "specm"
    statistic = "spectral"

    def __init__(self, lam: float):
        super().__init__(lam, "the spectral weight")

    def penalty(self, model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, float]:
        value = spectral_penalty(model)
        return value, float(value.detach())


class KWRobust(Objective):
    """Wong & Kolter's robust loss ``CE(-J(x, C_y, eps), y)`` (module docstring).

    Args:
        eps: radius, a number or one value per input feature; not clipped unless ``clip``.
        ramp_epochs: the radius grows linearly from 0 over these first epochs (per batch).
    """

    name = "kw"

    def __init__(self, eps: float | np.ndarray, ramp_epochs: float = 0.0, clip: bool = False):
        self.radius, self.clip = radius_tensor(eps), bool(clip)
        if not float(self.radius.max()) > 0:
            raise InvalidInput("K&W training needs a radius > 0")
        self.ramp = Ramp(0.0, 1.0, float(ramp_epochs))

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, ctx: StepContext) -> LossOutput:
        scale = self.ramp(ctx)
        margins = kw_margin_bounds(model, x, y, self.radius * scale, self.clip)
        z = robust_logits(margins, y)
        return LossOutput(F.cross_entropy(z, y), model(x),
                          {"eps_scale": scale, "adv_err": float((margins.detach() < 0).any(dim=1).float().mean())})

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "ramp_epochs": self.ramp.length, "clip": self.clip, **_describe_radius(self.radius)}


def sensitivity_metrics(model: nn.Module, x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor,
                        eps: float | np.ndarray, *, clip: bool = False, batch_size: int = 200,
                        dtype: torch.dtype = torch.float64) -> dict[str, Any]:
    """Seed 001's metrics of ``model`` on ``(x, y)`` (images ``(N, ...)``, labels ``(N,)``), batched.

    ``CE`` (mean cross-entropy), ``ERR`` (error rate), ``ADV_LOSS`` (mean ``CE(-J(x, C_y, eps), y)``),
    ``ADV_ERR`` (share with a margin lower bound < 0), ``JACOB`` (mean ``||dz/dx||_F``), ``SPECTRAL``
    (``1/2 sum sigma_max^2``) and ``log10_volumes``, float64 ``(N,)``: ``log10 S_dual`` per example
    (SENSE is their mean in linear space: :func:`robustmip.sensitivity.measure.sense`). Computed on a
    copy of the model in ``dtype`` (float64 by default: these are measurements).
    """
    work = copy.deepcopy(model).to(dtype).eval()
    device = next(work.parameters()).device
    x = torch.as_tensor(np.asarray(x), dtype=dtype, device=device)
    y = torch.as_tensor(np.asarray(y), dtype=torch.long, device=device)
    if len(x) != len(y) or len(y) == 0:
        raise InvalidInput(f"need as many labels as images (and at least one), got {len(x)} and {len(y)}")
    radius = radius_tensor(eps)
    sums = {"CE": 0.0, "ERR": 0.0, "ADV_LOSS": 0.0, "ADV_ERR": 0.0, "JACOB": 0.0}
    logs = []
    for start in range(0, len(y), batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        with torch.no_grad():
            logits = work(xb)
            sums["CE"] += float(F.cross_entropy(logits, yb, reduction="sum"))
            sums["ERR"] += float((logits.argmax(1) != yb).sum())
            margins = kw_margin_bounds(work, xb, yb, radius, clip)
            sums["ADV_LOSS"] += float(F.cross_entropy(robust_logits(margins, yb), yb, reduction="sum"))
            sums["ADV_ERR"] += float((margins < 0).any(dim=1).sum())
            logs.append(log10_dual_volume(work, xb, radius, clip).double().cpu())
        sums["JACOB"] += float(jacobian_norm(work, xb).sum())
    with torch.no_grad():
        spectral = float(spectral_penalty(work))
    return {**{k: v / len(y) for k, v in sums.items()}, "SPECTRAL": spectral,
            "log10_volumes": torch.cat(logs).numpy()}
