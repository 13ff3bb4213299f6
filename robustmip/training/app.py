"""APP, Adversarial Parameter Propagation (Szász, seed 003): train against the worst case over inputs and
parameters together, bounded by interval propagation.

Every ``Linear``'s weights and biases may move by ``lam tanh(s p^2) / m`` (``"tanh"``: the radius
narrowing that spares small weights) or by ``lam |p|`` (``"abs"``), and the input by ``eps`` (clipped to
``[0, 1]``). :func:`robustmip.training.param_interval.interval_bounds` bounds the logits over both
boxes; the worst-case margins ``lower(z_y) - upper(z_j)`` enter the cross-entropy as logits
``upper(z_j) - lower(z_y)`` (0 for ``y``). The loss is ``kappa CE(clean) + (1 - kappa) CE(worst)``,
with ``eps`` and ``lam`` ramped from 0 and ``kappa`` from 1 over the first ``ramp_epochs`` epochs.
The same radii as :meth:`robustmip.params.ParamBox.app`, so a trained net is verified over the box
it was trained for.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from robustmip.errors import InvalidInput
from robustmip.training.objectives import LossOutput, Objective, Ramp, StepContext
from robustmip.training.param_interval import Radius, interval_bounds


def app_radius(lam: float, kind: Literal["tanh", "abs"] = "tanh", s: float = 10.0, m: float = 1.0) -> Radius:
    """The radius function ``p -> lam tanh(s p^2) / m`` (``tanh``) or ``p -> lam |p|`` (``abs``)."""
    if kind == "tanh":
        return lambda p: lam * torch.tanh(s * p * p) / m
    if kind == "abs":
        return lambda p: lam * p.abs()
    raise InvalidInput(f"APP radius must be 'tanh' or 'abs', got {kind!r}")


def worst_case_logits(lower: torch.Tensor, upper: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``upper_j - lower_y`` for ``j != y`` and 0 for ``y``: minus the worst-case margins, ``(B, classes)``."""
    worst = upper - lower.gather(1, y[:, None])
    return worst.scatter(1, y[:, None], 0.0)


class APP(Objective):
    """``kappa CE(clean) + (1 - kappa) CE(worst case over the (eps, lam) boxes)`` (see the module docstring)."""

    name = "app"

    def __init__(self, eps: float, lam: float, radius: Literal["tanh", "abs"] = "tanh", s: float = 10.0,
                 m: float = 1.0, kappa: float = 0.5, ramp_epochs: float = 0.0):
        if not (0 <= eps <= 1 and lam >= 0 and 0 <= kappa <= 1 and s > 0 and m > 0 and ramp_epochs >= 0):
            raise InvalidInput(f"APP needs eps in [0, 1], lambda >= 0, kappa in [0, 1], s, m > 0 and ramp_epochs >= 0;"
                               f" got eps={eps}, lambda={lam}, kappa={kappa}, s={s}, m={m}, ramp={ramp_epochs}")
        app_radius(lam, radius)  # checks the kind
        self.eps, self.lam, self.radius, self.s, self.m, self.kappa = eps, lam, radius, s, m, kappa
        self.ramp_epochs = float(ramp_epochs)
        self.eps_ramp = Ramp(0.0, eps, self.ramp_epochs)
        self.lam_ramp = Ramp(0.0, lam, self.ramp_epochs)
        self.kappa_ramp = Ramp(1.0, kappa, self.ramp_epochs)

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, ctx: StepContext) -> LossOutput:
        eps, lam, kappa = self.eps_ramp(ctx), self.lam_ramp(ctx), self.kappa_ramp(ctx)
        logits = model(x)
        lower, upper = interval_bounds(model, (x - eps).clamp(0.0, 1.0), (x + eps).clamp(0.0, 1.0),
                                       app_radius(lam, self.radius, self.s, self.m))
        worst = F.cross_entropy(worst_case_logits(lower, upper, y), y)
        loss = kappa * F.cross_entropy(logits, y) + (1.0 - kappa) * worst
        return LossOutput(loss, logits, {"eps": eps, "lambda": lam, "kappa": kappa, "worst_ce": float(worst.detach())})

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "eps": self.eps, "lambda": self.lam, "radius": self.radius, "s": self.s,
                "m": self.m, "kappa": self.kappa, "ramp_epochs": self.ramp_epochs}
