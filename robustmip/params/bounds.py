"""Sound pre-activation bounds of a network whose parameters lie in a :class:`ParamBox`.

Two levels, like :func:`robustmip.bounds.compute_bounds` (numpy float64, widened against rounding):

``interval``
    :func:`robustmip.params.interval.param_interval_layer` on the perturbed layers, plain interval
    arithmetic on the others, layer by layer.
``lp``
    ``interval``, then for every neuron still unstable (and every identity neuron) an LP over the
    band relaxation of all earlier layers (:class:`robustmip.params.lp.ParamLpTightener`), certified
    by weak duality.

They hold for every parameter in the box at once, so the encoding (with the box's
:class:`~robustmip.milp.encode.ParameterBand` s) may fix the stable neurons they decide.
"""

from __future__ import annotations

import time
from typing import Literal

import numpy as np

from robustmip.bounds import Bounds, interval_layer
from robustmip.bounds.compute import check_input_box
from robustmip.deadline import Deadline
from robustmip.errors import InvalidInput
from robustmip.network import Network
from robustmip.params.box import ParamBox
from robustmip.params.interval import param_interval_layer
from robustmip.params.lp import ParamLpTightener

ParamBoundsMethod = Literal["interval", "lp"]
PARAM_BOUNDS_METHODS: tuple[str, ...] = ("interval", "lp")


def compute_param_bounds(
    net: Network,
    box: ParamBox,
    lower: np.ndarray,
    upper: np.ndarray,
    method: ParamBoundsMethod = "lp",
    deadline: Deadline | None = None,
    threads: int = 1,
) -> Bounds:
    """Bounds of every pre-activation over the input box ``[lower, upper]`` and the parameter box.

    Args:
        lower, upper: the input box, float64 ``(n_inputs,)``.
        method: ``"interval"`` or ``"lp"`` (see the module docstring).
        deadline: LPs stop when it passes; the neurons left keep their interval bounds (still sound).
    """
    if method not in PARAM_BOUNDS_METHODS:
        raise InvalidInput(f"parameter bounds method must be one of {PARAM_BOUNDS_METHODS}, got {method!r}")
    box.check(net)
    lower, upper = check_input_box(net, lower, upper)
    start = time.perf_counter()
    activations = tuple(layer.activation for layer in net.layers)
    result = Bounds(lower, upper, [], [], f"param-{method}", activations=activations)
    tightener = ParamLpTightener(net, box, lower, upper, threads, deadline) if method == "lp" else None
    for k, layer in enumerate(net.layers):
        h_lo, h_up = result.post_activation(k - 1)
        if k in box.radii:
            lo, up = param_interval_layer(layer.W, layer.b, *box.radii[k], h_lo, h_up)
        else:
            lo, up = interval_layer(layer, h_lo, h_up)
        if tightener is not None and k > 0:
            lo, up = tightener.tighten_layer(k, lo, up)
        result.lower.append(lo)
        result.upper.append(up)
        if tightener is not None:
            tightener.add_layer(k, lo, up)
    result.seconds = time.perf_counter() - start
    if tightener is not None:
        result.lp_solves = tightener.solves
    return result
