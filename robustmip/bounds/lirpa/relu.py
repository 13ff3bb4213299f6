"""Linear relaxation of ReLU neurons, and the split constraints of a branch-and-bound domain.

For a pre-activation ``a`` with bounds ``l <= a <= u`` (tensors ``(B, *shape)``), ``h = relu(a)``
lies between two lines:

* upper: ``h <= s a + t`` with ``s = u / (u - l)``, ``t = -u l / (u - l)`` for an unstable neuron
  (``l < 0 < u``, the triangle's chord); ``s = 1, t = 0`` when active (``l >= 0``); ``0, 0`` when
  inactive (``u <= 0``).
* lower: ``h >= alpha a`` with any ``alpha`` in ``[0, 1]`` for an unstable neuron; exact (1 or 0)
  for a stable one. Rules (:data:`SlopeRule`): ``"adaptive"`` (CROWN: ``alpha = 1`` if
  ``u > -l`` else 0), ``"kw"`` (``alpha = s``, parallel lines: Wong & Kolter's dual / DeepPoly),
  or given per-row alphas (alpha-CROWN), clamped into ``[0, 1]`` so that every value is sound.

Splits: one int tensor ``(B, *shape)`` per ReLU layer (or None), ``+1`` for a neuron fixed active
(``a >= 0``), ``-1`` fixed inactive (``a <= 0``), ``0`` free. :func:`apply_splits` clamps the bounds
(``l <- max(l, 0)`` or ``u <- min(u, 0)``), which makes the split neuron's relaxation exact; the
constraint itself enters the bound through beta-CROWN's multipliers (:mod:`robustmip.bounds.lirpa.crown`).
A domain whose clamped bounds have ``l > u`` is empty: every bound on it is vacuously sound.
A split domain's bound holds on the domain but can come out below the bound without the split (the
relaxation is not the LP; beta-CROWN attains the LP, which only tightens with a split, at its optimum
only), so a branch-and-bound keeps the larger of a child's bound and its parent's: both hold on the child.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

SlopeRule = Literal["adaptive", "kw"]
SLOPE_RULES: tuple[str, ...] = ("adaptive", "kw")


@dataclass(frozen=True)
class ReluRelaxation:
    """The two lines of one ReLU layer; all tensors ``(B, *shape)``."""

    upper_slope: torch.Tensor
    upper_offset: torch.Tensor
    unstable: torch.Tensor
    rule_slope: torch.Tensor
    """lower slope of the rule, exact (1 or 0) at stable neurons."""

    @classmethod
    def of(cls, lower: torch.Tensor, upper: torch.Tensor, rule: SlopeRule) -> "ReluRelaxation":
        active = lower >= 0
        unstable = (lower < 0) & (upper > 0)
        width = torch.where(unstable, upper - lower, torch.ones_like(upper))
        slope = torch.where(unstable, upper / width, active.to(upper.dtype))
        offset = torch.where(unstable, -upper * lower / width, torch.zeros_like(upper))
        if rule == "kw":
            lower_slope = slope
        else:
            lower_slope = torch.where(unstable, (upper > -lower).to(upper.dtype), active.to(upper.dtype))
        return cls(slope, offset, unstable, lower_slope)

    def lower_slope(self, alpha: torch.Tensor | None) -> torch.Tensor:
        """Lower slopes ``(B, 1, *shape)`` from the rule, or ``(B, m, *shape)`` from per-row ``alpha``."""
        if alpha is None:
            return self.rule_slope.unsqueeze(1)
        return torch.where(self.unstable.unsqueeze(1), clamp_value(alpha, 0.0, 1.0), self.rule_slope.unsqueeze(1))


def clamp_value(t: torch.Tensor, low: float, high: float | None = None) -> torch.Tensor:
    """``t`` clamped into ``[low, high]`` in value, with the gradient of the identity.

    The values keep the bound sound whatever the caller passes; the gradient keeps flowing at the
    boundary, where the optimiser's starting slopes (0 or 1) and multipliers (0) sit (``clamp``'s own
    gradient is zero there).
    """
    return t + (t.clamp(low, high) - t).detach()


def apply_splits(
    lower: torch.Tensor, upper: torch.Tensor, split: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounds clamped by the split constraints (``split`` ``(B, *shape)`` in {-1, 0, 1}, or None)."""
    if split is None:
        return lower, upper
    return (
        torch.where(split > 0, lower.clamp(min=0.0), lower),
        torch.where(split < 0, upper.clamp(max=0.0), upper),
    )
