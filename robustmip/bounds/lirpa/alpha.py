"""alpha-CROWN and beta-CROWN: the relaxation's free parameters optimised by projected gradient ascent.

Every lower slope ``alpha`` in ``[0, 1]`` and every split multiplier ``beta >= 0`` gives a valid
bound (:mod:`robustmip.bounds.lirpa.crown`), so the bound can be maximised over them (Xu et al.
2021; Wang et al. 2021). The parameters are per (domain, row, neuron): the final rows get
``alphas[(last, j)]`` ``(B, m, *shape_j)`` and ``betas[j]`` ``(B, m, *shape_j)``; with
``OptimizeOptions.intermediate`` every intermediate layer ``k``'s ``2 n_k`` rows get their own
``alphas[(k, j)]`` too, its bounds are recomputed at each step, and the final loss trains them all
through those bounds (alpha-CROWN at the root of a branch-and-bound).

Adam on ``-sum(lower bounds)``, then ``alpha <- clamp(alpha, 0, 1)`` and ``beta <- max(beta, 0)``.
Alphas start at CROWN's adaptive slopes (or the caller's, e.g. a parent domain's), betas at 0; the
best iterate is kept per row (per domain when intermediate slopes are optimised, since they are shared
by the domain's rows), so the result is never looser than CROWN with the same intermediate bounds.
The returned parameters reproduce the returned bound when evaluated again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import torch

from robustmip.bounds.lirpa.crown import Refine, final_bound, intermediate_bounds
from robustmip.bounds.lirpa.graph import LirpaGraph
from robustmip.bounds.lirpa.ibp import Box
from robustmip.bounds.lirpa.relu import ReluRelaxation
from robustmip.bounds.lirpa.result import BoundParams
from robustmip.errors import InvalidInput


@dataclass(frozen=True)
class OptimizeOptions:
    """Settings of the slope (and multiplier) optimisation.

    Attributes:
        iterations: gradient steps (0: evaluate the initial parameters only).
        lr_alpha, lr_beta: Adam step sizes of the slopes and of the split multipliers.
        lr_decay: factor applied to both step sizes after every step.
        intermediate: also optimise the slopes used by the intermediate layers' bounds, recomputing
            them at every step (costly: ``2 n_k`` rows per layer; meant for few domains).
        stop_above: stop as soon as every row's best lower bound exceeds this value (e.g. 0 when
            only the sign matters).
        time_limit: stop stepping after this many seconds (the best iterate so far is kept); None: no limit.
    """

    iterations: int = 20
    lr_alpha: float = 0.1
    lr_beta: float = 0.05
    lr_decay: float = 0.98
    intermediate: bool = False
    stop_above: float | None = None
    time_limit: float | None = None

    def __post_init__(self) -> None:
        if self.iterations < 0 or not (self.lr_alpha > 0 and self.lr_beta > 0 and 0 < self.lr_decay <= 1):
            raise InvalidInput("optimisation needs iterations >= 0, positive step sizes and 0 < lr_decay <= 1")
        if self.time_limit is not None and not self.time_limit >= 0:
            raise InvalidInput(f"time_limit must be >= 0 seconds or None, got {self.time_limit}")


def initial_params(
    graph: LirpaGraph,
    bounds: Sequence[Box],
    n_rows: int,
    splits: Sequence[torch.Tensor | None] | None,
    intermediate: bool,
    beta: bool,
    init: BoundParams | None = None,
) -> BoundParams:
    """Leaf tensors to optimise: adaptive slopes (or ``init``'s where it has the key), zero betas.

    Args:
        bounds: intermediate bounds giving the adaptive starting slopes.
        n_rows: rows of the final target.
        intermediate: also create the slopes of intermediate targets ``k >= 1`` (``2 n_k`` rows each).
        beta: create multipliers for every ReLU layer with a split.
    """
    last = graph.n_relu_layers
    targets = {last: n_rows}
    if intermediate:
        targets.update({k: 2 * bounds[k][0][0].numel() for k in range(1, last)})
    adaptive = [ReluRelaxation.of(lower, upper, "adaptive").rule_slope for lower, upper in bounds]
    params = BoundParams()
    for k, rows in targets.items():
        for j in range(k):
            slope = adaptive[j].detach().unsqueeze(1)
            params.alphas[(k, j)] = slope.expand(slope.shape[0], rows, *slope.shape[2:]).clone()
    if beta and splits is not None:
        for j, split in enumerate(splits):
            if split is not None and bool((split != 0).any()):
                params.betas[j] = split.new_zeros((split.shape[0], n_rows, *split.shape[1:]), dtype=adaptive[j].dtype)
    if init is not None:
        for key, value in init.alphas.items():
            if key in params.alphas:
                params.alphas[key] = value.detach().to(params.alphas[key].dtype).expand_as(params.alphas[key]).clone()
        for key, value in init.betas.items():
            if key in params.betas:
                params.betas[key] = value.detach().to(params.betas[key].dtype).expand_as(params.betas[key]).clone()
    return params.map(lambda t: t.requires_grad_(True))


class _ProjectedAdam:
    """Adam ascent on ``-loss`` with step sizes decayed geometrically, then alphas clamped into
    ``[0, 1]`` (the first ``n_alphas`` tensors) and betas to ``>= 0``, all in place on the leaf tensors.

    Written out (a dozen lines) because the first use of ``torch.optim`` imports ``torch._dynamo``,
    which costs seconds of start-up in every process that bounds anything.
    """

    def __init__(self, tensors: list[torch.Tensor], rates: list[float], decay: float,
                 momentum: float = 0.9, scale: float = 0.999, eps: float = 1e-8):
        self.tensors, self.rates, self.decay = tensors, list(rates), decay
        self.momentum, self.scale, self.eps, self.t = momentum, scale, eps, 0
        self.first = [torch.zeros_like(t) for t in tensors]
        self.second = [torch.zeros_like(t) for t in tensors]

    @torch.no_grad()
    def step(self, grads: Sequence[torch.Tensor | None], n_alphas: int) -> None:
        self.t += 1
        for i, (tensor, grad) in enumerate(zip(self.tensors, grads)):
            if grad is None:
                continue
            self.first[i].mul_(self.momentum).add_(grad, alpha=1 - self.momentum)
            self.second[i].mul_(self.scale).addcmul_(grad, grad, value=1 - self.scale)
            mean = self.first[i] / (1 - self.momentum**self.t)
            rms = (self.second[i] / (1 - self.scale**self.t)).sqrt_().add_(self.eps)
            tensor.sub_(self.rates[i] * mean / rms)
            if i < n_alphas:
                tensor.clamp_(0.0, 1.0)
            else:
                tensor.clamp_(min=0.0)
            self.rates[i] *= self.decay


@dataclass
class _Evaluation:
    value: torch.Tensor
    bounds: list[Box]


def optimize_bounds(
    graph: LirpaGraph,
    box: Box,
    rows: torch.Tensor,
    bounds: Sequence[Box] | None,
    options: OptimizeOptions,
    *,
    beta: bool = False,
    splits: Sequence[torch.Tensor | None] | None = None,
    intersect: bool = False,
    refine: Refine = "all",
    init: BoundParams | None = None,
) -> tuple[torch.Tensor, list[Box], BoundParams]:
    """Optimised lower bounds ``(B, m)`` of the final ``rows``, the intermediate bounds used, the parameters.

    ``bounds``: the fixed intermediate bounds (after split clamps); None exactly when
    ``options.intermediate`` asks to optimise their slopes too (they are then recomputed by CROWN at
    every step). With gradients enabled the returned bound is evaluated once more at the kept
    parameters, so that it is differentiable with respect to the model (the parameters are detached).
    """
    last = graph.n_relu_layers
    joint = options.intermediate
    if joint != (bounds is None):
        raise InvalidInput("give fixed intermediate bounds, or none when their slopes are optimised too")
    track_model = torch.is_grad_enabled()
    kwargs = dict(splits=splits, intersect=intersect, refine=refine)
    if bounds is None:
        with torch.no_grad():
            start = intermediate_bounds(graph, box, "crown", "adaptive", **kwargs)[0]
        fixed = None
    else:
        start = list(bounds)
        detached = [(lower.detach(), upper.detach()) for lower, upper in bounds]
        fixed = (detached, [ReluRelaxation.of(lower, upper, "adaptive") for lower, upper in detached])

    def evaluate(params: BoundParams, given: tuple[list[Box], list[ReluRelaxation]] | None) -> _Evaluation:
        if given is None:
            used, relaxations = intermediate_bounds(graph, box, "crown", "adaptive", alphas=params.alphas, **kwargs)
        else:
            used, relaxations = given
        alphas = {j: params.alphas[(last, j)] for j in range(last)}
        value = final_bound(graph, box, used, relaxations, rows, "crown", alphas=alphas, betas=params.betas,
                            splits=splits, intersect=intersect)
        return _Evaluation(value, list(used))

    params = initial_params(graph, start, rows.shape[1], splits, joint, beta, init)
    tensors = params.tensors()
    steps = options.iterations if tensors else 0
    rates = [options.lr_alpha] * len(params.alphas) + [options.lr_beta] * len(params.betas)
    optimizer = _ProjectedAdam(tensors, rates, options.lr_decay)
    best: _Evaluation | None = None
    best_params = params.map(lambda t: t.detach().clone())
    stop_at = None if options.time_limit is None else time.perf_counter() + options.time_limit
    for step in range(steps + 1):
        with torch.enable_grad():
            current = evaluate(params, fixed)
            loss = -current.value.sum()
        if best is None:
            best = _Evaluation(current.value.detach(), [(lo.detach(), up.detach()) for lo, up in current.bounds])
        else:
            best = _keep_best(best, current, best_params, params, last, joint)
        if step == steps or (options.stop_above is not None and bool((best.value > options.stop_above).all())):
            break
        if stop_at is not None and time.perf_counter() >= stop_at:
            break
        optimizer.step(torch.autograd.grad(loss, tensors, allow_unused=True), len(params.alphas))
    if track_model:
        given = None if bounds is None else (list(bounds), [ReluRelaxation.of(lo, up, "adaptive") for lo, up in bounds])
        best = evaluate(best_params, given)
    return best.value, best.bounds, best_params


def _keep_best(
    best: _Evaluation, current: _Evaluation, best_params: BoundParams, params: BoundParams, last: int, joint: bool
) -> _Evaluation:
    """Keep, row by row (domain by domain when ``joint``), the better of ``best`` and ``current``;
    ``best_params`` is updated in place to the kept parameters."""
    value = current.value.detach()
    if joint:
        better = (value.sum(dim=1) > best.value.sum(dim=1)).unsqueeze(1).expand_as(value)
    else:
        better = value > best.value

    def pick(new: torch.Tensor, old: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return torch.where(mask.reshape(*mask.shape, *([1] * (new.ndim - mask.ndim))), new.detach(), old)

    for key, alpha in params.alphas.items():
        best_params.alphas[key] = pick(alpha, best_params.alphas[key], better if key[0] == last else better[:, 0])
    for key, multiplier in params.betas.items():
        best_params.betas[key] = pick(multiplier, best_params.betas[key], better)
    bounds = best.bounds
    if joint:
        bounds = [(pick(lo.detach(), old_lo, better[:, 0]), pick(up.detach(), old_up, better[:, 0]))
                  for (lo, up), (old_lo, old_up) in zip(current.bounds, best.bounds)]
    return _Evaluation(torch.where(better, value, best.value), bounds)
