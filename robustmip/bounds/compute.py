"""Sound pre-activation bounds of every neuron over an input box.

Five levels, each at least as tight as the one before (in exact arithmetic: the LP over the triangle
relaxation is the best bound any choice of slopes gives, alpha-CROWN's included), all *sound* (never
tighter than the truth):

``interval``
    interval arithmetic (IBP), layer by layer.
``crown``
    interval intersected with a linear relaxation with back-substitution to the input
    (CROWN / DeepPoly: triangle upper line, adaptive 0/1 lower line for unstable ReLUs).
``alpha``
    ``crown``, intersected with alpha-CROWN (optimised slopes, intermediate layers included), searched
    in float32 with torch and certified by a float64 re-evaluation (:mod:`robustmip.bounds.alpha`);
    usually close to ``lp`` at a fraction of its cost on mnist_fc-size nets.
``lp``
    ``crown``, then an LP over the triangle relaxation of all earlier layers for every neuron that is
    still unstable, layer by layer (HiGHS, warm-started). The LP value is not trusted as such: each
    bound is re-derived from the solver's dual multipliers by weak duality
    (:func:`robustmip.bounds.tighten.certified_lp_minimum`), so a solver tolerance cannot cut off a reachable value.
``milp``
    ``lp``, then, for every ReLU that is still unstable, a MILP over the exact big-M encoding of all
    earlier layers with a short time limit per neuron (``milp_neuron_time_limit``), as MIPVerify does.
    The bound taken is the solver's proven *dual* bound (valid whether or not the MILP finished),
    widened by ``1e-6 (1 + |bound|)`` against the MILP tolerances (feasibility and integrality
    ``1e-6``, which can only make the solver's relaxation larger, i.e. its bound weaker).
    The first hidden layer is skipped (interval bounds are exact there) and so are identity layers.

Bounds decide which ReLUs are stable and set the big-M constants of :mod:`robustmip.milp`. Every
computed bound is widened by a relative ``1e-9`` against floating-point rounding.
"""

from __future__ import annotations

import time

import numpy as np

from robustmip.bounds.alpha import alpha_bounds
from robustmip.bounds.box import interval_layer
from robustmip.bounds.relax import crown_layer
from robustmip.bounds.result import BOUNDS_METHODS, Bounds, BoundsMethod
from robustmip.bounds.tighten import LpTightener
from robustmip.deadline import Deadline
from robustmip.errors import InvalidInput
from robustmip.network import Network


def check_input_box(net: Network, lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The input box as float64 ``(n_inputs,)`` arrays; InvalidInput for another size or lower > upper."""
    lower = np.asarray(lower, dtype=np.float64).reshape(-1)
    upper = np.asarray(upper, dtype=np.float64).reshape(-1)
    if lower.shape != (net.n_inputs,) or upper.shape != (net.n_inputs,):
        raise InvalidInput(f"input box must have {net.n_inputs} entries, got {lower.shape} and {upper.shape}")
    if (lower > upper).any():
        raise InvalidInput("input box has lower > upper")
    return lower, upper


def compute_bounds(
    net: Network,
    lower: np.ndarray,
    upper: np.ndarray,
    method: BoundsMethod = "lp",
    deadline: Deadline | None = None,
    threads: int = 1,
    milp_neuron_time_limit: float = 1.0,
    spec: np.ndarray | None = None,
) -> Bounds:
    """Bounds of every pre-activation of ``net`` for inputs in ``[lower, upper]``.

    Args:
        lower, upper: the input box, float64 ``(n_inputs,)``.
        method: ``"interval"``, ``"crown"``, ``"lp"`` or ``"milp"`` (see the module docstring).
        deadline: the question's deadline; LPs and MILPs stop when it passes, and the neurons left
            keep their bounds from the cheaper levels (still sound). None: no limit.
        threads: HiGHS threads for the LPs and MILPs.
        milp_neuron_time_limit: seconds per MILP (one bound of one neuron) at the ``milp`` level.
        spec: output rows ``(m, n_outputs)`` whose lower bounds the ``alpha`` level optimises its
            slopes for (e.g. a property's rows); None: both sides of every logit. Other levels ignore it.
    """
    if method not in BOUNDS_METHODS:
        raise InvalidInput(f"unknown bounds method {method!r}; choose one of {BOUNDS_METHODS}")
    if not milp_neuron_time_limit > 0:
        raise InvalidInput(f"milp_neuron_time_limit must be > 0 seconds, got {milp_neuron_time_limit}")
    lower, upper = check_input_box(net, lower, upper)
    start = time.perf_counter()
    activations = tuple(layer.activation for layer in net.layers)
    result = Bounds(lower, upper, [], [], method, activations=activations)
    tightener = None
    if method in ("lp", "milp"):
        tightener = LpTightener(net, lower, upper, threads=threads, deadline=deadline, binaries=method == "milp")
    for k, layer in enumerate(net.layers):
        h_lo, h_up = result.post_activation(k - 1) if k > 0 else (lower, upper)
        lo, up = interval_layer(layer, h_lo, h_up)
        if method != "interval" and k > 0:
            c_lo, c_up = crown_layer(net, k, result.lower, result.upper, (lower, upper))
            lo, up = np.maximum(lo, c_lo), np.minimum(up, c_up)
        if tightener is not None and k > 0:
            lo, up = tightener.tighten_layer(k, lo, up)
            if method == "milp" and layer.activation == "relu":
                lo, up = tightener.tighten_layer(k, lo, up, exact=True, neuron_time_limit=milp_neuron_time_limit)
        result.lower.append(lo)
        result.upper.append(up)
        if tightener is not None:
            tightener.add_layer(k, lo, up)
    result.seconds = time.perf_counter() - start
    if method == "alpha":
        result = alpha_bounds(net, result, spec, deadline=deadline, threads=threads).bounds
    if tightener is not None:
        result.lp_solves, result.milp_solves = tightener.solves, tightener.milp_solves
    return result
