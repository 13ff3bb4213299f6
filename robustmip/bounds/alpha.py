"""The ``alpha`` bound level: alpha-CROWN intermediate bounds, searched in float32, certified in float64.

alpha-CROWN (Xu et al. 2021) gives every unstable ReLU a lower slope per bounded row and optimises
them by projected gradient ascent; with ``intermediate`` slopes the bounds of every hidden layer are
recomputed at each step and trained by the loss on the output rows (:mod:`robustmip.bounds.lirpa.alpha`).
The search runs in float32 (a float32 copy of the network); the slopes it finds are then evaluated
again in float64 with every bound widened outward (:func:`robustmip.bounds.lirpa.reevaluate_float64`),
which is sound whatever the slopes are, and the result is intersected with the ``reference`` bounds
(CROWN): never looser than them.

The rows the slopes are optimised for: ``spec`` ``(m, n_outputs)`` when the caller knows the question
(a property's rows, a margin), else every logit from both sides. torch is imported here only, when
this level is used. Networks whose hidden layers are not all ReLU keep the reference bounds.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from robustmip.bounds.result import Bounds
from robustmip.deadline import Deadline
from robustmip.network import Network

ALPHA_ITERATIONS = 20
"""Gradient steps of the root alpha-CROWN (the bound changes little after 20 on mnist_fc nets)."""


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run torch with ``threads`` intra-op threads inside the block, restoring the count after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(threads)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass
class AlphaResult:
    """Certified alpha-CROWN bounds.

    Attributes:
        bounds: float64 pre-activation bounds of every layer (intersected with the reference).
        spec_lower: float64 certified lower bounds ``(m,)`` of the ``spec`` rows, or None without spec.
        params: the float32 slopes found (:class:`robustmip.bounds.lirpa.BoundParams`), or None when
            the reference was kept; a branch-and-bound starts its root domains from their final slopes.
    """

    bounds: Bounds
    spec_lower: np.ndarray | None
    params: object | None


def relu_layers_supported(net: Network) -> bool:
    """Whether every hidden layer is a ReLU and the last is identity (the layout LiRPA graphs map 1:1)."""
    return net.layers[-1].activation == "identity" and all(layer.activation == "relu" for layer in net.layers[:-1])


def alpha_bounds(
    net: Network,
    reference: Bounds,
    spec: np.ndarray | None = None,
    *,
    iterations: int = ALPHA_ITERATIONS,
    deadline: Deadline | None = None,
    threads: int = 1,
) -> AlphaResult:
    """alpha-CROWN bounds over the box of ``reference``, certified in float64, intersected with ``reference``.

    Args:
        reference: sound bounds over the same box (e.g. the ``crown`` level); kept where tighter.
        spec: output rows ``(m, n_outputs)`` to optimise the slopes for; None: both sides of every logit.
        iterations: gradient steps (float32).
        deadline: the optimisation stops stepping when it passes (the best slopes so far are certified).
        threads: torch threads for the search.
    """
    if not relu_layers_supported(net) or (deadline is not None and deadline.expired()):
        return AlphaResult(reference, None, None)
    import torch

    from robustmip.bounds.lirpa import LirpaGraph, OptimizeOptions, lirpa_bounds, reevaluate_float64

    start = time.perf_counter()
    lower64 = torch.as_tensor(reference.input_lower, dtype=torch.float64).reshape(1, -1)
    upper64 = torch.as_tensor(reference.input_upper, dtype=torch.float64).reshape(1, -1)
    C = None if spec is None else np.atleast_2d(np.asarray(spec, dtype=np.float64))
    both = C is None
    left = None if deadline is None else deadline.left()
    limit = None if left is None else max(0.0, left)
    with torch_threads(threads), torch.no_grad():
        search = LirpaGraph(net.to_torch(torch.float32).requires_grad_(False), net.input_shape)
        found = lirpa_bounds(search, lower64.float(), upper64.float(), None if C is None else C.astype(np.float32),
                             "alpha-crown", bound_upper=both, intersect=True, refine="unstable",
                             optimize=OptimizeOptions(iterations=iterations, intermediate=True, time_limit=limit))
        certified = reevaluate_float64(LirpaGraph(net), lower64, upper64, C, method="alpha-crown",
                                       params=found.params, refine="unstable", bound_upper=both)
    lower = [np.maximum(lo, t[0].numpy()) for lo, (t, _) in zip(reference.lower, certified.intermediate)]
    upper = [np.minimum(up, t[0].numpy()) for up, (_, t) in zip(reference.upper, certified.intermediate)]
    if both:
        lower.append(np.maximum(reference.lower[-1], certified.lower[0].numpy()))
        upper.append(np.minimum(reference.upper[-1], certified.upper[0].numpy()))
    else:
        lower.append(reference.lower[-1].copy())
        upper.append(reference.upper[-1].copy())
    bounds = Bounds(reference.input_lower, reference.input_upper, lower, upper, "alpha",
                    seconds=reference.seconds + time.perf_counter() - start, activations=reference.activations)
    spec_lower = None if both else certified.lower[0].numpy().astype(np.float64)
    return AlphaResult(bounds, spec_lower, found.params)
