"""What one training step minimises: pluggable objectives for :func:`robustmip.training.loops.train`.

An :class:`Objective` turns a batch ``(x, y)`` (images ``(N, ...)`` in ``[0, 1]``, labels ``(N,)``)
into a scalar loss (mean over the batch, nats) and the logits whose accuracy is reported, given the
batch's place in the run (:class:`StepContext`). Objectives that change the update itself (AWP
perturbs the weights around the step) override :meth:`Objective.step`. Schedules that grow over the
first epochs (eps, mixing weights) are :class:`Ramp` s evaluated per batch.

Shipped here: :class:`CrossEntropy` (standard training) and :class:`PGDAdversarial` (Madry et al.
2018: cross-entropy on PGD images of a radius that may ramp up). Certified (IBP / CROWN-IBP / GM),
sensitivity (SM, Jacobian, spectral, K&W) and parameter-robust (APP, AWP) objectives live in their
own modules of :mod:`robustmip.training` and follow the same protocol.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from robustmip.attacks.gradient import PGDConfig, pgd
from robustmip.errors import InvalidInput


@dataclass(frozen=True)
class StepContext:
    """Where a batch sits in a training run.

    Attributes:
        epoch: 1-based epoch number.
        step: 0-based index of the batch over the whole run.
        steps_per_epoch: batches per epoch.
        generator: the run's seeded torch generator (random starts, noise); draw from it only.
    """

    epoch: int
    step: int
    steps_per_epoch: int
    generator: torch.Generator

    @property
    def epoch_progress(self) -> float:
        """Epochs completed at the end of this batch, e.g. 0.5 halfway through the first epoch."""
        return (self.step + 1) / self.steps_per_epoch


@dataclass(frozen=True)
class Ramp:
    """A value that moves linearly from ``start`` to ``end`` over ``length`` epochs, per batch.

    It holds ``start`` for the first ``delay`` epochs, then reaches ``end`` after ``delay + length``
    epochs (counted in batches: the value of batch ``s`` is taken at ``(s + 1) / steps_per_epoch``
    epochs), and stays there. ``length = 0`` is ``end`` from the first batch after the delay.
    """

    start: float
    end: float
    length: float = 0.0
    delay: float = 0.0

    def __post_init__(self) -> None:
        if not (self.length >= 0 and self.delay >= 0):
            raise InvalidInput(f"a ramp needs length and delay >= 0 epochs, got {self.length} and {self.delay}")

    def __call__(self, ctx: StepContext) -> float:
        done = ctx.epoch_progress - self.delay
        if done <= 0 and self.delay > 0:
            return self.start
        if self.length == 0:
            return self.end
        fraction = min(1.0, max(0.0, done / self.length))
        return self.start + fraction * (self.end - self.start)


@dataclass
class LossOutput:
    """A batch's loss (scalar tensor, mean nats), the logits whose accuracy is reported ``(N, classes)``,
    and scalar statistics to show and record (e.g. the current eps)."""

    loss: torch.Tensor
    logits: torch.Tensor
    stats: dict[str, float] = field(default_factory=dict)


class Objective:
    """Base class: subclasses implement :meth:`loss` and :meth:`config` (and may override :meth:`step`)."""

    name = "objective"

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, ctx: StepContext) -> LossOutput:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """JSON-serialisable settings; recorded in checkpoints and compared when a run resumes."""
        return {"name": self.name}

    def step(self, model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
             ctx: StepContext) -> LossOutput:
        """One update: ``loss`` backward and an optimiser step. Returns the loss output (detached)."""
        out = self.loss(model, x, y, ctx)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()
        return LossOutput(out.loss.detach(), out.logits.detach(), out.stats)

    def epoch_metrics(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """Extra test metrics after each epoch (e.g. verified error); none by default."""
        return {}


class CrossEntropy(Objective):
    """Standard training: mean cross-entropy of the clean batch."""

    name = "standard"

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, ctx: StepContext) -> LossOutput:
        logits = model(x)
        return LossOutput(F.cross_entropy(logits, y), logits)


class PGDAdversarial(Objective):
    """Madry et al.'s min-max training: cross-entropy on PGD images of radius ``eps`` (pixel units).

    With ``ramp_epochs > 0`` the radius grows linearly per batch from ``eps / ramp_steps`` to ``eps``
    over the first ``ramp_epochs`` epochs, and the PGD step size with it. Random starts come from
    the run's generator, so a seeded run is reproducible.
    """

    name = "pgd"

    def __init__(self, attack: PGDConfig, ramp_epochs: int = 0):
        if ramp_epochs < 0:
            raise InvalidInput(f"eps ramp epochs must be non-negative, got {ramp_epochs}")
        if not attack.eps > 0:
            raise InvalidInput(f"PGD training needs eps > 0, got {attack.eps}")
        self.attack, self.ramp_epochs = attack, int(ramp_epochs)
        self.ramp = Ramp(0.0, attack.eps, float(ramp_epochs))

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, ctx: StepContext) -> LossOutput:
        eps = self.ramp(ctx)
        attack = self.attack.scaled(eps) if 0 < eps < self.attack.eps else self.attack
        x_adv = pgd(model, x, y, **asdict(attack), generator=ctx.generator)
        logits = model(x_adv)
        return LossOutput(F.cross_entropy(logits, y), logits, {"eps": eps})

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "attack": asdict(self.attack), "ramp_epochs": self.ramp_epochs}
