"""Refinement of given bounds by sign-deciding MILPs, neuron by neuron, within a time budget.

Starting from sound bounds (e.g. the ``alpha`` level), each hidden ReLU layer from the second on is
visited in order; its unstable neurons, most important first, get the sign-deciding MILPs of
:meth:`robustmip.bounds.tighten.LpTightener.decide_signs` over the exact encoding of the earlier layers
(already refined), and the layer is then added to the model with its refined bounds. This is the
per-neuron MILP refinement of alpha-beta-CROWN's ``bab-refine`` and MN-BaB's ``refine_via_milp``, with
MIPVerify's cutoff at 0: a MILP stops as soon as the sign is known. Bounds of later layers computed
before the refinement stay sound (they held on the whole box); they are intersected, not recomputed.
"""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np

from robustmip.bounds.result import Bounds
from robustmip.bounds.tighten import LpTightener
from robustmip.deadline import Deadline
from robustmip.network import Network


def intercept_priority(lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """The triangle relaxation's intercept ``-l u / (u - l)`` (0 for stable neurons): its looseness."""
    unstable = (lower < 0) & (upper > 0)
    width = np.where(unstable, upper - lower, 1.0)
    return np.where(unstable, -lower * upper / width, 0.0)


def refine_bounds(
    net: Network,
    bounds: Bounds,
    deadline: Deadline,
    *,
    neuron_time_limit: float = 1.0,
    priority: Sequence[np.ndarray | None] | None = None,
    threads: int = 1,
    layers: Sequence[int] | None = None,
) -> Bounds:
    """``bounds`` with the unstable ReLUs of ``layers`` refined by sign-deciding MILPs until ``deadline``.

    Args:
        bounds: sound bounds over the box (the refinement only intersects them).
        deadline: when the refinement stops (neurons not reached keep their bounds).
        neuron_time_limit: seconds per MILP (one side of one neuron).
        priority: per layer, a score per neuron (higher first), e.g. a branching score; default the
            triangle intercept (:func:`intercept_priority`).
        layers: the hidden layers to refine (default every ReLU layer but the first, which interval
            arithmetic bounds exactly).
    """
    start = time.perf_counter()
    lower = [lo.copy() for lo in bounds.lower]
    upper = [up.copy() for up in bounds.upper]
    hidden = [k for k in range(len(net.layers) - 1) if net.layers[k].activation == "relu"]
    chosen = set(hidden[1:] if layers is None else layers)
    tightener = LpTightener(net, bounds.input_lower, bounds.input_upper, threads=threads, deadline=deadline,
                            binaries=True)
    for k in range(len(net.layers) - 1):
        if k in chosen and not deadline.expired():
            score = priority[k] if priority is not None and priority[k] is not None else None
            score = intercept_priority(lower[k], upper[k]) if score is None else np.asarray(score)
            lower[k], upper[k] = tightener.decide_signs(k, lower[k], upper[k], np.argsort(-score, kind="stable"),
                                                        neuron_time_limit)
        tightener.add_layer(k, lower[k], upper[k])
    result = Bounds(bounds.input_lower, bounds.input_upper, lower, upper, f"{bounds.method}+refine",
                    seconds=bounds.seconds + time.perf_counter() - start, activations=bounds.activations)
    result.lp_solves, result.milp_solves = bounds.lp_solves, bounds.milp_solves + tightener.milp_solves
    return result
