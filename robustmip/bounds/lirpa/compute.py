"""One entry point for every LiRPA method: :func:`lirpa_bounds`.

Methods (intermediate bounds / final rows):

``ibp``         IBP / IBP with ``C`` folded into the last block (Gowal et al. 2018).
``crown``       back-substitution / back-substitution, adaptive lower slope (Zhang et al. 2018).
``kw``          as ``crown`` with the same-slope lower line ``u / (u - l)``: Wong & Kolter's dual bound J.
``crown-ibp``   IBP / back-substitution with the adaptive slope (Zhang et al. 2020).
``alpha-crown`` ``crown`` / optimised slopes (:mod:`robustmip.bounds.lirpa.alpha`).
``beta-crown``  ``alpha-crown`` plus optimised multipliers of the split constraints.

``intersect`` intersects every back-substituted bound with the interval of its block over the
previous layer's bounds (the numpy ``crown`` level does this). ``refine="unstable"`` back-substitutes
only the neurons that this interval leaves unstable: stable neurons' relaxations are exact whatever
their bounds, so with ``intersect`` the final bound is the same, for a fraction of the work.
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np
import torch
from torch import nn

from robustmip.bounds.lirpa.alpha import OptimizeOptions, optimize_bounds
from robustmip.bounds.lirpa.crown import (
    IntermediateMode,
    Refine,
    final_bound,
    intermediate_bounds,
)
from robustmip.bounds.lirpa.graph import LirpaGraph
from robustmip.bounds.lirpa.ibp import Box
from robustmip.bounds.lirpa.relu import ReluRelaxation, SlopeRule, apply_splits
from robustmip.bounds.lirpa.result import BoundParams, LirpaBounds
from robustmip.errors import InvalidInput
from robustmip.network import Network

Method = Literal["ibp", "crown", "kw", "crown-ibp", "alpha-crown", "beta-crown"]
METHODS: tuple[str, ...] = ("ibp", "crown", "kw", "crown-ibp", "alpha-crown", "beta-crown")


def as_graph(model: nn.Module | Network | LirpaGraph, input_shape: Sequence[int]) -> LirpaGraph:
    """``model`` as a :class:`LirpaGraph` (a Network keeps its own input shape)."""
    if isinstance(model, LirpaGraph):
        return model
    return LirpaGraph(model, None if isinstance(model, Network) else input_shape)


def _check_splits(graph: LirpaGraph, splits: Sequence[torch.Tensor | None] | None, batch: int) -> None:
    if splits is None:
        return
    graph.check_layers(splits, batch, "splits")
    for k, split in enumerate(splits):
        if split is not None and bool(((split != 0) & (split != 1) & (split != -1)).any()):
            raise InvalidInput(f"splits[{k}] must hold -1 (inactive), 0 (free) or +1 (active) only")


def _check_params(graph: LirpaGraph, params: BoundParams, batch: int, final_rows: int) -> None:
    last, shapes = graph.n_relu_layers, graph.relu_shapes
    for (k, j), alpha in params.alphas.items():
        if not 0 <= j < k <= last:
            raise InvalidInput(f"alpha key {(k, j)} is not (target block, earlier ReLU layer) of this graph")
        rows = final_rows if k == last else 2 * int(np.prod(shapes[k]))
        if tuple(alpha.shape) != (batch, rows, *shapes[j]):
            raise InvalidInput(f"alphas[{(k, j)}] has shape {tuple(alpha.shape)}, expected {(batch, rows, *shapes[j])}")
    for j, beta in params.betas.items():
        if not 0 <= j < last or tuple(beta.shape) != (batch, final_rows, *shapes[j]):
            raise InvalidInput(f"betas[{j}] must be ({batch}, {final_rows}, *shape of ReLU layer {j})")


def lirpa_bounds(
    model: nn.Module | Network | LirpaGraph,
    lower: torch.Tensor,
    upper: torch.Tensor,
    C: torch.Tensor | np.ndarray | None = None,
    method: Method = "crown",
    *,
    bound_upper: bool = False,
    intersect: bool = False,
    refine: Refine = "all",
    intermediate: Sequence[Box] | None = None,
    splits: Sequence[torch.Tensor | None] | None = None,
    params: BoundParams | None = None,
    optimize: OptimizeOptions | None = None,
    widen: bool = False,
    keep_coefficients: bool = False,
) -> LirpaBounds:
    """Bounds of ``C y`` for every input in the boxes ``[lower, upper]``, batched and differentiable.

    Args:
        model: ``nn.Sequential`` (see :class:`LirpaGraph` for the layers), a Network, or a graph.
        lower, upper: the input boxes, ``(B, *input_shape)`` (or ``(B, n_inputs)``), float32 or
            float64; the bounds are computed in that dtype.
        C: specification ``(m, n_out)`` or ``(B, m, n_out)``; None bounds the logits (``C = I``).
        method: one of :data:`METHODS` (module docstring).
        bound_upper: also return upper bounds (rows ``-C`` are bounded too).
        intersect, refine: see the module docstring.
        intermediate: fixed pre-activation bounds ``(lower, upper)`` per ReLU layer, ``(B, *shape_k)``
            (e.g. a parent domain's); they are clamped by ``splits`` and not recomputed.
        splits: per ReLU layer, ``(B, *shape_k)`` in {-1, 0, +1} or None (:mod:`robustmip.bounds.lirpa.relu`).
        params: slopes / multipliers (:class:`BoundParams`): used as given by the back-substitution
            methods (the method's slope rule fills the missing ones); the starting point of the
            optimised methods.
        optimize: settings of ``alpha-crown`` / ``beta-crown`` (default :class:`OptimizeOptions`).
        widen: move every computed bound outward by :func:`robustmip.bounds.result.widen` (float64
            re-evaluation; :func:`robustmip.bounds.lirpa.reevaluate_float64`).
        keep_coefficients: also return the final linear bounds' coefficients.
    """
    if method not in METHODS:
        raise InvalidInput(f"unknown LiRPA method {method!r}; choose one of {METHODS}")
    if refine not in ("all", "unstable"):
        raise InvalidInput(f"refine must be 'all' or 'unstable', got {refine!r}")
    optimise = method in ("alpha-crown", "beta-crown")
    options = optimize or OptimizeOptions()
    if optimise and widen:
        raise InvalidInput("widen is for re-evaluation: evaluate the optimised params with method='crown'")
    if optimise and options.intermediate and intermediate is not None:
        raise InvalidInput("optimising intermediate slopes recomputes the intermediate bounds: do not give them")
    if not isinstance(lower, torch.Tensor):
        raise InvalidInput("lower and upper must be torch tensors of shape (B, *input_shape)")
    graph = as_graph(model, tuple(lower.shape[1:]))
    box = graph.check_box(lower, upper)
    batch = box[0].shape[0]
    rows = graph.spec_rows(C, box[0], bound_upper)
    _check_splits(graph, splits, batch)
    if params is not None:
        _check_params(graph, params, batch, rows.shape[1])
    mode: IntermediateMode = "ibp" if method in ("ibp", "crown-ibp") else "crown"  # of the intermediate layers
    rule: SlopeRule = "kw" if method == "kw" else "adaptive"
    bounds: list[Box] | None = None
    if intermediate is not None:
        bounds = _given_bounds(graph, intermediate, splits, box[0])
    elif not (optimise and options.intermediate):
        bounds, _ = intermediate_bounds(graph, box, mode, rule, alphas=params.alphas if params else None,
                                        splits=splits, intersect=intersect, refine=refine, widen=widen)
    keep: list[torch.Tensor] | None = [] if keep_coefficients else None
    if optimise:
        value, bounds, params = optimize_bounds(graph, box, rows, bounds, options, beta=method == "beta-crown",
                                                splits=splits, intersect=intersect, refine=refine, init=params)
        if keep is not None:
            _final(graph, box, bounds, rows, "crown", rule, params, splits, intersect, widen, keep)
    else:
        assert bounds is not None
        value = _final(graph, box, bounds, rows, "ibp" if method == "ibp" else "crown", rule, params, splits,
                       intersect, widen, keep)
    m = rows.shape[1] // 2 if bound_upper else rows.shape[1]
    return LirpaBounds(
        lower=value[:, :m],
        upper=-value[:, m:] if bound_upper else None,
        intermediate=list(bounds),
        params=params,
        input_coefficients=keep[-1] if keep else None,
        relu_coefficients=keep[-2::-1] if keep else None,
    )


def _given_bounds(
    graph: LirpaGraph, intermediate: Sequence[Box], splits: Sequence[torch.Tensor | None] | None, like: torch.Tensor
) -> list[Box]:
    """The caller's intermediate bounds, checked, in the box's dtype, clamped by the splits."""
    lowers, uppers = [lo for lo, _ in intermediate], [up for _, up in intermediate]
    if any(t is None for t in lowers + uppers):
        raise InvalidInput("intermediate bounds need a (lower, upper) pair of tensors for every ReLU layer")
    graph.check_layers(lowers, like.shape[0], "intermediate lower bounds")
    graph.check_layers(uppers, like.shape[0], "intermediate upper bounds")
    layer_splits = splits if splits is not None else [None] * graph.n_relu_layers
    return [apply_splits(lo.to(like.dtype), up.to(like.dtype), split)
            for lo, up, split in zip(lowers, uppers, layer_splits)]


def _final(
    graph: LirpaGraph, box: Box, bounds: Sequence[Box], rows: torch.Tensor, mode: IntermediateMode,
    rule: SlopeRule, params: BoundParams | None, splits: Sequence[torch.Tensor | None] | None, intersect: bool,
    widen: bool, keep: list[torch.Tensor] | None,
) -> torch.Tensor:
    """The final rows' lower bounds with the given (or the rule's) slopes and multipliers."""
    last = graph.n_relu_layers
    relaxations = [ReluRelaxation.of(lo, up, rule) for lo, up in bounds]
    alphas = {j: a for (k, j), a in params.alphas.items() if k == last} if params else None
    return final_bound(graph, box, bounds, relaxations, rows, mode, alphas=alphas,
                       betas=params.betas if params else None, splits=splits, intersect=intersect,
                       widen=widen, keep=keep)
