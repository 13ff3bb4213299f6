"""AWP, Adversarial Weight Perturbation (Wu et al. 2020), the baseline of seed 003.

Each step: PGD images of the batch (radius ``eps``; none with ``attack=None``); a proxy copy of the
model takes one gradient-ascent step (SGD, ``proxy_lr``) on their cross-entropy; every weight tensor
with more than one dimension is moved by ``gamma ||w|| / ||Delta|| Delta`` (``Delta`` = proxy minus
model, norms over the tensor; biases are left alone); the model's gradient is taken at the moved
weights; the move is undone and the optimiser steps from the original weights.
"""

from __future__ import annotations

import copy
from dataclasses import asdict
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from robustmip.attacks.gradient import PGDConfig, pgd
from robustmip.errors import InvalidInput
from robustmip.training.objectives import LossOutput, Objective, StepContext


class AWP(Objective):
    """Adversarial weight perturbation around every step (see the module docstring)."""

    name = "awp"

    def __init__(self, attack: PGDConfig | None, gamma: float = 0.01, proxy_lr: float = 0.01):
        if not (gamma >= 0 and proxy_lr > 0):
            raise InvalidInput(f"AWP needs gamma >= 0 and proxy_lr > 0, got {gamma} and {proxy_lr}")
        self.attack, self.gamma, self.proxy_lr = attack, float(gamma), float(proxy_lr)

    def _adversarial(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        if self.attack is None or self.attack.eps == 0:
            return x
        return pgd(model, x, y, **asdict(self.attack), generator=ctx.generator)

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, ctx: StepContext) -> LossOutput:
        logits = model(self._adversarial(model, x, y, ctx))
        return LossOutput(F.cross_entropy(logits, y), logits)

    def perturbation(self, model: nn.Module, x: torch.Tensor,
                     y: torch.Tensor) -> list[tuple[nn.Parameter, torch.Tensor]]:
        """``(weight, gamma ||w|| / ||Delta|| Delta)`` for every weight tensor of more than one dimension."""
        proxy = copy.deepcopy(model)
        proxy.train(model.training)
        proxy_opt = torch.optim.SGD(proxy.parameters(), lr=self.proxy_lr)
        proxy_opt.zero_grad(set_to_none=True)
        (-F.cross_entropy(proxy(x), y)).backward()
        proxy_opt.step()
        moves = []
        with torch.no_grad():
            for w, w_proxy in zip(model.parameters(), proxy.parameters()):
                if w.dim() > 1:
                    delta = w_proxy - w
                    norm = delta.norm()
                    if norm > 0:
                        moves.append((w, self.gamma * w.norm() / norm * delta))
        return moves

    def step(self, model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
             ctx: StepContext) -> LossOutput:
        x_adv = self._adversarial(model, x, y, ctx)
        moves = self.perturbation(model, x_adv, y)
        with torch.no_grad():
            for w, move in moves:
                w.add_(move)
        logits = model(x_adv)
        loss = F.cross_entropy(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        with torch.no_grad():
            for w, move in moves:
                w.sub_(move)
        optimizer.step()
        return LossOutput(loss.detach(), logits.detach(), {"eps": 0.0 if self.attack is None else self.attack.eps})

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "attack": None if self.attack is None else asdict(self.attack),
                "gamma": self.gamma, "proxy_lr": self.proxy_lr}
