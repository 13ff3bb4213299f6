"""Float64 re-evaluation of a LiRPA bound: how a bound found in float32 can support a claim.

A float32 bound may be off by float32 rounding, in either direction. The relaxation, however, is valid
for *every* lower slope in ``[0, 1]`` and every split multiplier ``>= 0``, so evaluating the same
back-substitution again in float64 with the same parameters (cast up exactly, clamped into range),
the same specification and splits, and every bound moved outward by
:func:`robustmip.bounds.result.widen` (relative ``1e-9``, as the numpy bounds), gives a bound that is
sound up to float64 rounding: the standard of the numpy bounds.

Intermediate bounds are recomputed here in float64 (with the parameters' intermediate slopes where
they have them), or taken from the caller only as float64 tensors that are sound themselves (e.g. the
root bounds of an earlier call, clamped by this domain's splits here); float32 ones are refused.
The input box must be the exact box of the claim, given in float64.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from robustmip.bounds.lirpa.compute import Method, as_graph, lirpa_bounds
from robustmip.bounds.lirpa.crown import Refine
from robustmip.bounds.lirpa.graph import LirpaGraph
from robustmip.bounds.lirpa.ibp import Box
from robustmip.bounds.lirpa.result import BoundParams, LirpaBounds
from robustmip.errors import InvalidInput
from robustmip.network import Network


def reevaluate_float64(
    model: nn.Module | Network | LirpaGraph,
    lower: torch.Tensor | np.ndarray,
    upper: torch.Tensor | np.ndarray,
    C: torch.Tensor | np.ndarray | None = None,
    *,
    method: Method = "crown",
    params: BoundParams | None = None,
    splits: Sequence[torch.Tensor | None] | None = None,
    intermediate: Sequence[Box] | None = None,
    intersect: bool = True,
    refine: Refine = "all",
    bound_upper: bool = False,
    keep_coefficients: bool = False,
) -> LirpaBounds:
    """Sound float64 bounds of ``C y`` (detached, widened outward) for the given relaxation parameters.

    Args:
        lower, upper: the input boxes of the claim, float64, ``(B, *input_shape)``.
        method: the method whose slope rule fills parameters that ``params`` lacks; ``alpha-crown`` and
            ``beta-crown`` evaluate their ``params`` with the adaptive rule (no optimisation here).
        params: slopes and multipliers, e.g. from a float32 ``alpha-crown`` / ``beta-crown`` run.
        intermediate: sound float64 bounds per ReLU layer to use instead of recomputing them.
        Other arguments as :func:`robustmip.bounds.lirpa.lirpa_bounds`.
    """
    lower = torch.as_tensor(lower)
    upper = torch.as_tensor(upper)
    if lower.dtype != torch.float64 or upper.dtype != torch.float64:
        raise InvalidInput("re-evaluate the exact float64 box of the claim: lower and upper must be float64")
    if intermediate is not None and any(t.dtype != torch.float64 for pair in intermediate for t in pair):
        raise InvalidInput("intermediate bounds for a float64 re-evaluation must be sound float64 bounds")
    graph = as_graph(model, tuple(lower.shape[1:]))
    evaluated: Method = "crown" if method in ("alpha-crown", "beta-crown") else method
    with torch.no_grad():
        result = lirpa_bounds(
            graph, lower, upper, None if C is None else torch.as_tensor(C, dtype=torch.float64), evaluated,
            bound_upper=bound_upper, intersect=intersect, refine=refine, intermediate=intermediate,
            splits=splits, params=None if params is None else params.map(lambda t: t.detach().double()),
            widen=True, keep_coefficients=keep_coefficients,
        )
    return result
