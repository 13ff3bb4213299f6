"""Linear relaxation with back-substitution (CROWN, Wong & Kolter's dual, alpha/beta-CROWN), batched.

Lower bound of rows ``S`` on block ``k``'s pre-activation ``a_k`` (Zhang et al. 2018): with ``A``
the coefficients on ``h_j`` and ``const`` the constant so far, each ReLU layer ``j < k`` replaces
``A h_j`` by the line that bounds it from below, coefficient-wise,
``A+ alpha a_j + A- (s a_j + t)`` (:class:`~robustmip.bounds.lirpa.relu.ReluRelaxation`), so
``A <- A+ alpha + A- s`` and ``const += A- t``; every affine operator maps ``A`` back through its
transpose; at the input, ``min`` over the box is ``A c - |A| r``. With the same-slope rule
(``alpha = s``) this is Wong & Kolter's dual bound ``J``.

Split constraints (beta-CROWN, Wang et al. 2021): for a split ``sigma a_j >= 0`` (``sigma = +1``
active, ``-1`` inactive) and any ``beta >= 0``, ``f(x) >= f(x) - beta sigma a_j(x)`` on the domain,
so ``A <- A - beta sigma`` on ``a_j`` still gives a valid lower bound; ``beta = 0`` is the plain
bound with the split's clamped interval.

Rows of one target are batched: ``A`` is ``(1 or B, m, *shape)``; rows shared by the batch stay
unbatched until the first ReLU. Intermediate layers are bounded by ``2 n_k`` identity rows
(lower and upper), in chunks that cap the size of ``A``.

Cost: bounding layer ``k`` carries ``2 n_k`` rows per example back to the input, so work and memory
grow as batch x rows x input size (convolutions included: ``A`` is dense, not in patches). Without
gradients the chunks cap the memory; with gradients autograd keeps every chunk. For batch training
of conv nets, ``crown-ibp`` (rows only for the specification) or ``refine="unstable"`` fit.
"""

from __future__ import annotations

from typing import Literal, Mapping, Sequence

import torch
import torch.nn.functional as F

from robustmip.bounds.lirpa.graph import LirpaGraph
from robustmip.bounds.lirpa.ibp import Box, box_minimum, ibp_block, rows_lower_bound
from robustmip.bounds.lirpa.relu import (
    ReluRelaxation,
    SlopeRule,
    apply_splits,
    clamp_value,
)
from robustmip.bounds.result import widen as widen_outward

IntermediateMode = Literal["ibp", "crown"]
Refine = Literal["all", "unstable"]
CHUNK_ELEMENTS = 2**24
"""Most values of one coefficient tensor ``A`` while bounding an intermediate layer (rows are chunked)."""


def _rows_dot(A: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``sum A * v`` over the shape: ``A`` ``(N, m, *shape)``, ``v`` ``(B, *shape)`` -> ``(B, m)``."""
    return A.flatten(2).matmul(v.flatten(1).unsqueeze(-1)).squeeze(-1)


def block_input_box(box: Box, bounds: Sequence[Box], k: int) -> Box:
    """Bounds of ``h_{k-1}``, the input of block ``k`` (the input box for ``k = 0``)."""
    if k == 0:
        return box
    lower, upper = bounds[k - 1]
    return lower.clamp(min=0.0), upper.clamp(min=0.0)


def backsubstitute(
    graph: LirpaGraph,
    k: int,
    rows: torch.Tensor,
    box: Box,
    relaxations: Sequence[ReluRelaxation],
    alphas: Mapping[int, torch.Tensor] | None = None,
    betas: Mapping[int, torch.Tensor] | None = None,
    splits: Sequence[torch.Tensor | None] | None = None,
    keep: list[torch.Tensor] | None = None,
) -> torch.Tensor:
    """Lower bounds ``(B, m)`` of ``rows . a_k`` (``rows`` ``(1 or B, m, *shape_k)``) over the box.

    Args:
        relaxations: the lines of ReLU layers ``0 .. k-1``.
        alphas: ReLU layer ``j`` -> per-row lower slopes ``(B, m, *shape_j)``; the rule's slope elsewhere.
        betas: ReLU layer ``j`` -> multipliers ``(B, m, *shape_j)`` of ``splits[j]`` (``(B, *shape_j)``).
        keep: if given, receives the coefficients on ``h_{k-1}, ..., h_0`` and then on the input.
    """
    alphas, betas = alphas or {}, betas or {}
    A, const = graph.blocks[k].backward(rows)
    for j in range(k - 1, -1, -1):
        if keep is not None:
            keep.append(A)
        relax = relaxations[j]
        negative = A.clamp(max=0.0)
        const = const + _rows_dot(negative, relax.upper_offset)
        A = A.clamp(min=0.0) * relax.lower_slope(alphas.get(j)) + negative * relax.upper_slope.unsqueeze(1)
        if j in betas and splits is not None and splits[j] is not None:
            A = A - clamp_value(betas[j], 0.0) * splits[j].to(A.dtype).unsqueeze(1)
        A, c = graph.blocks[j].backward(A)
        const = const + c
    if keep is not None:
        keep.append(A)
    return const + box_minimum(A, box)


def _take_rows(alpha: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """``alpha[b, rows[b, i]]``: ``alpha`` ``(B, M, *shape)``, ``rows`` ``(1 or B, r)`` -> ``(B, r, *shape)``."""
    index = rows.reshape(*rows.shape, *([1] * (alpha.ndim - 2)))
    return alpha.gather(1, index.expand(alpha.shape[0], rows.shape[1], *alpha.shape[2:]))


def _crown_layer(
    graph: LirpaGraph, k: int, box: Box, relaxations: Sequence[ReluRelaxation],
    alphas: Mapping[tuple[int, int], torch.Tensor], refine: Refine, reference: Box, widen: bool,
) -> Box:
    """Back-substituted bounds of ReLU layer ``k`` (``(B, *shape_k)`` each).

    ``refine="unstable"`` bounds only the neurons that ``reference`` leaves unstable (per example);
    the others keep ``reference``.
    """
    shape = graph.blocks[k].out_shape
    ref_lower, ref_upper = (t.flatten(1) for t in reference)
    batch, n = ref_lower.shape
    if refine == "all":
        index = torch.arange(n, device=ref_lower.device).unsqueeze(0)
        valid = None
    else:
        unstable = (ref_lower < 0) & (ref_upper > 0)
        count = int(unstable.sum(dim=1).max())
        if count == 0:
            return reference
        index = torch.argsort((~unstable).to(torch.int8), dim=1, stable=True)[:, :count]
        valid = unstable.gather(1, index)
    chunk = max(1, CHUNK_ELEMENTS // (2 * batch * graph.max_width(k)))
    lowers, uppers = [], []
    for start in range(0, index.shape[1], chunk):
        part = index[:, start:start + chunk]
        one_hot = F.one_hot(part, n).to(ref_lower.dtype)
        rows = torch.cat([one_hot, -one_hot], dim=1).reshape(part.shape[0], 2 * part.shape[1], *shape)
        row_index = torch.cat([part, part + n], dim=1)
        layer_alphas = {j: _take_rows(alphas[(k, j)], row_index) for j in range(k) if (k, j) in alphas}
        values = backsubstitute(graph, k, rows, box, relaxations, layer_alphas)
        lowers.append(values[:, : part.shape[1]])
        uppers.append(-values[:, part.shape[1]:])
    lower, upper = torch.cat(lowers, dim=1), torch.cat(uppers, dim=1)
    if widen:
        lower, upper = widen_outward(lower, upper)
    if valid is not None:
        index = index.expand(batch, -1)
        lower = ref_lower.scatter(1, index, torch.where(valid, lower, ref_lower.gather(1, index)))
        upper = ref_upper.scatter(1, index, torch.where(valid, upper, ref_upper.gather(1, index)))
    return lower.reshape(batch, *shape), upper.reshape(batch, *shape)


def intermediate_bounds(
    graph: LirpaGraph,
    box: Box,
    mode: IntermediateMode,
    rule: SlopeRule,
    *,
    alphas: Mapping[tuple[int, int], torch.Tensor] | None = None,
    splits: Sequence[torch.Tensor | None] | None = None,
    intersect: bool = False,
    refine: Refine = "all",
    widen: bool = False,
) -> tuple[list[Box], list[ReluRelaxation]]:
    """Pre-activation bounds of every ReLU layer, layer by layer, and their relaxations.

    Layer ``k`` gets IBP (``mode="ibp"``) or back-substitution through the relaxations of layers
    ``< k`` (``"crown"``; layer 0 with at most one Linear/Conv2d is exact by IBP); ``intersect`` takes
    the intersection with the interval of the block over the previous bounds (as the numpy ``crown``
    level does); ``widen`` moves every computed bound outward as :func:`robustmip.bounds.result.widen`;
    then the layer's splits clamp it.
    """
    alphas = alphas or {}
    bounds: list[Box] = []
    relaxations: list[ReluRelaxation] = []
    for k in range(graph.n_relu_layers):
        block = graph.blocks[k]
        reference = ibp_block(block, block_input_box(box, bounds, k))
        if widen:
            reference = widen_outward(*reference)
        if mode == "ibp" or (k == 0 and block.n_mixing <= 1):
            lower, upper = reference
        else:
            lower, upper = _crown_layer(graph, k, box, relaxations, alphas, refine, reference, widen)
            if intersect:
                lower, upper = torch.maximum(lower, reference[0]), torch.minimum(upper, reference[1])
        lower, upper = apply_splits(lower, upper, None if splits is None else splits[k])
        bounds.append((lower, upper))
        relaxations.append(ReluRelaxation.of(lower, upper, rule))
    return bounds, relaxations


def final_bound(
    graph: LirpaGraph,
    box: Box,
    bounds: Sequence[Box],
    relaxations: Sequence[ReluRelaxation],
    rows: torch.Tensor,
    mode: IntermediateMode,
    *,
    alphas: Mapping[int, torch.Tensor] | None = None,
    betas: Mapping[int, torch.Tensor] | None = None,
    splits: Sequence[torch.Tensor | None] | None = None,
    intersect: bool = False,
    widen: bool = False,
    keep: list[torch.Tensor] | None = None,
) -> torch.Tensor:
    """Lower bounds ``(B, m)`` of the final rows: IBP with the rows folded into the last block
    (``mode="ibp"``), or back-substitution (``"crown"``), optionally intersected with the former."""
    last = graph.n_relu_layers
    if mode == "ibp" or intersect:
        reference = rows_lower_bound(graph.blocks[last], rows, block_input_box(box, bounds, last))
        if widen:
            reference = widen_outward(reference, reference)[0]
        if mode == "ibp":
            return reference
    value = backsubstitute(graph, last, rows, box, relaxations, alphas, betas, splits, keep)
    if widen:
        value = widen_outward(value, value)[0]
    return torch.maximum(value, reference) if intersect else value
