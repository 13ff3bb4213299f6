"""Gradient attacks in l_inf: FGSM and PGD (Madry et al.), targeted or untargeted, batched.

Conventions: ``x`` is a float tensor ``(N, ...)`` of images in ``[0, 1]`` (e.g. ``(N, 1, 28, 28)``),
``y`` the int64 true labels ``(N,)``, ``target`` optional int64 target labels ``(N,)``, ``eps``
the l_inf radius in pixel units (same scale as ``x``). Every returned image lies, exactly (in
real arithmetic on the float values), in ``[x - eps, x + eps]`` and in ``[0, 1]``.

Untargeted attacks ascend the cross-entropy of the true label; targeted ones descend the
cross-entropy of the target. The model's mode and parameter gradients are left untouched.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from robustmip.errors import InvalidInput


@dataclass(frozen=True)
class PGDConfig:
    """Settings of an l_inf PGD attack.

    Attributes:
        eps: radius (pixel units, ``x`` in ``[0, 1]``), ``>= 0``.
        steps: gradient steps per restart, ``>= 1``.
        step_size: size of each signed step (pixel units); ``None`` is replaced by
            ``2.5 * eps / steps`` on construction.
        restarts: independent runs; per example the most successful one is kept.
        random_start: start each run from a uniform point of the eps-ball (else from ``x``).
    """

    eps: float
    steps: int = 10
    step_size: float | None = None
    restarts: int = 1
    random_start: bool = True

    def __post_init__(self) -> None:
        _check_eps(self.eps)
        if self.steps < 1:
            raise InvalidInput(f"PGD steps must be at least 1, got {self.steps}")
        if self.restarts < 1:
            raise InvalidInput(f"PGD restarts must be at least 1, got {self.restarts}")
        if self.step_size is None:
            object.__setattr__(self, "step_size", 2.5 * self.eps / self.steps)
        elif not self.step_size > 0:
            raise InvalidInput(f"PGD step size must be positive, got {self.step_size}")

    def scaled(self, eps: float) -> PGDConfig:
        """The same attack at radius ``eps > 0`` with the step size scaled by ``eps / self.eps``."""
        if not (eps > 0 and self.eps > 0):
            raise InvalidInput(f"cannot scale a PGD attack of eps {self.eps} to eps {eps}")
        return replace(self, eps=eps, step_size=self.step_size * eps / self.eps)


def _check_eps(eps: float) -> None:
    if not eps >= 0:
        raise InvalidInput(f"eps must be a non-negative number, got {eps}")


def _check_inputs(x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> None:
    if x.shape[0] != y.shape[0] or (target is not None and target.shape != y.shape):
        raise InvalidInput(f"batch sizes differ: x {tuple(x.shape)}, y {tuple(y.shape)}"
                           + ("" if target is None else f", target {tuple(target.shape)}"))
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise InvalidInput("images must lie in [0, 1]")


def _round_toward(values: torch.Tensor, exact: torch.Tensor, up: bool) -> torch.Tensor:
    """``exact`` (float64) rounded to ``values.dtype`` upward (``up``) or downward."""
    rounded = exact.to(values.dtype)
    off = rounded.double() < exact if up else rounded.double() > exact
    step_to = torch.full_like(rounded, float("inf") if up else float("-inf"))
    return torch.where(off, torch.nextafter(rounded, step_to), rounded)


def linf_box(x: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel bounds ``(lo, hi)`` of the eps-ball around ``x`` intersected with ``[0, 1]``.

    Computed in float64 and rounded inward to ``x.dtype``, so every value of ``x.dtype`` in
    ``[lo, hi]`` satisfies ``|v - x| <= eps`` and ``0 <= v <= 1`` exactly. Shapes as ``x``.
    """
    _check_eps(eps)
    exact = x.double()
    lo = _round_toward(x, (exact - eps).clamp(0.0, 1.0), up=True)
    hi = _round_toward(x, (exact + eps).clamp(0.0, 1.0), up=False)
    return lo, hi


Objective = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
"""``x (N, ...) -> (objective to maximise (N,), success flags (N,))``."""


def _attack_loss(model: nn.Module, y: torch.Tensor, target: torch.Tensor | None) -> Objective:
    """The classification attack objective: cross-entropy of ``y`` (or minus that of ``target``)."""

    def objective(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = model(x)
        if target is None:
            return F.cross_entropy(logits, y, reduction="none"), logits.argmax(1) != y
        return -F.cross_entropy(logits, target, reduction="none"), logits.argmax(1) == target

    return objective


def signed_gradient_step(objective_fn: Objective, x_adv: torch.Tensor, step_size: float | torch.Tensor,
                         lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One l_inf step: ``clip(x_adv + step_size * sign(grad objective), lo, hi)``.

    Returns ``(x_next, objective, success)`` where the last two are evaluated at ``x_adv``
    (before the step), shapes ``(N, ...)``, ``(N,)``, ``(N,)``.
    """
    with torch.enable_grad():
        point = x_adv.detach().requires_grad_(True)
        objective, success = objective_fn(point)
        (grad,) = torch.autograd.grad(objective.sum(), point)
    x_next = torch.clamp(point.detach() + step_size * grad.sign(), lo, hi)
    return x_next, objective.detach(), success


def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float,
         target: torch.Tensor | None = None) -> torch.Tensor:
    """Fast gradient sign method: one step of size ``eps`` from ``x``; returns ``(N, ...)``."""
    _check_inputs(x, y, target)
    lo, hi = linf_box(x, eps)
    x_adv, _, _ = signed_gradient_step(_attack_loss(model, y, target), x, eps, lo, hi)
    return x_adv


class _Best:
    """Per-example best point so far: successful beats unsuccessful, then higher objective."""

    def __init__(self, x: torch.Tensor) -> None:
        self.x = x.detach().clone()
        self.objective = torch.full((x.shape[0],), float("-inf"), device=x.device, dtype=torch.float64)
        self.success = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)

    def update(self, x: torch.Tensor, objective: torch.Tensor, success: torch.Tensor) -> None:
        objective = objective.double()
        better = ((success & ~self.success)
                  | ((success == self.success) & (objective > self.objective)))
        self.x[better] = x[better]
        self.objective = torch.where(better, objective, self.objective)
        self.success = self.success | success


def projected_gradient_ascent(objective_fn: Objective, x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, *,
                              steps: int, step_size: float | torch.Tensor, restarts: int = 1,
                              random_start: bool = True, radius: float | torch.Tensor = 0.0,
                              generator: torch.Generator | None = None) -> torch.Tensor:
    """Maximise ``objective_fn`` over the box ``[lo, hi]`` by signed gradient steps, with restarts.

    Each restart starts at ``x`` or (``random_start``) at ``clip(x + U(-radius, radius), lo, hi)`` and
    takes ``steps`` steps of ``step_size``, each projected onto the box. Of all iterates of all
    restarts, each example keeps one that succeeds if any, choosing by the highest objective among
    equals. Returns points of the shape and dtype of ``x``.
    """
    best = _Best(x)
    for _ in range(restarts):
        if random_start:
            noise = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            x_adv = torch.clamp(x + (2 * noise - 1) * radius, lo, hi)
        else:
            x_adv = x.detach()
        for _ in range(steps):
            x_next, objective, success = signed_gradient_step(objective_fn, x_adv, step_size, lo, hi)
            best.update(x_adv, objective, success)
            x_adv = x_next
        with torch.no_grad():
            objective, success = objective_fn(x_adv)
        best.update(x_adv, objective, success)
    return best.x


def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, steps: int = 40,
        step_size: float | None = None, restarts: int = 1, random_start: bool = True,
        target: torch.Tensor | None = None, seed: int | None = None,
        generator: torch.Generator | None = None) -> torch.Tensor:
    """Projected gradient descent in l_inf (Madry et al. 2018), batched, with restarts.

    Each restart starts at ``x`` or (``random_start``) at a uniform point of the eps-ball and
    takes ``steps`` signed steps of ``step_size`` (default ``2.5 * eps / steps``), each projected
    onto the eps-ball and ``[0, 1]``. Of all iterates of all restarts, each example keeps one
    that succeeds (misclassified, or classified as ``target``) if any, choosing by the highest
    objective (cross-entropy of ``y``, or minus that of ``target``) among equals.

    Randomness comes from ``generator`` if given, else from a generator seeded with ``seed``,
    else from torch's global RNG. Returns the adversarial images, shape and dtype of ``x``.
    """
    config = PGDConfig(eps, steps, step_size, restarts, random_start)
    _check_inputs(x, y, target)
    if generator is None and seed is not None:
        generator = torch.Generator(device=x.device).manual_seed(seed)
    lo, hi = linf_box(x, eps)
    return projected_gradient_ascent(
        _attack_loss(model, y, target), x, lo, hi, steps=config.steps, step_size=config.step_size,
        restarts=config.restarts, random_start=config.random_start, radius=eps, generator=generator,
    )


def pgd_in_box(model: nn.Module, x: torch.Tensor, y: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor,
               steps: int = 40, restarts: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
    """Untargeted PGD over any box ``[lo, hi]`` around ``x`` (shapes as ``x``), e.g. per-pixel radii.

    Random starts in the box, ``steps`` signed steps of ``2.5 (hi - lo) / (2 steps)`` per pixel, the
    cross-entropy of ``y`` ascended; the box need not lie in ``[0, 1]`` (seed 001 does not clip).
    Returns points of the box, shape and dtype of ``x``.
    """
    if steps < 1 or restarts < 1:
        raise InvalidInput(f"PGD needs steps and restarts >= 1, got {steps} and {restarts}")
    if x.shape[0] != y.shape[0] or lo.shape != x.shape or hi.shape != x.shape or bool((lo > hi).any()):
        raise InvalidInput("pgd_in_box needs lo <= hi of the shape of x and one label per example")
    radius = (hi - lo) / 2
    return projected_gradient_ascent(
        _attack_loss(model, y, None), (lo + hi) / 2, lo, hi, steps=steps, step_size=2.5 * radius / steps,
        restarts=restarts, random_start=True, radius=radius, generator=generator,
    )
