"""Boxes around every output reachable from an input box, by relaxation or exactly.

For an input box ``X`` (an l-infinity ball ``|x'_j - x_j| <= eps_j``, clipped to the input domain or
not), the *exact* box is ``[y_min, y_max]`` with ``y_min_i = min_{x' in X} f_i(x')`` and ``y_max_i``
likewise; a relaxation gives a box that contains it. Methods (:data:`METHODS`):

``interval``, ``crown``, ``lp``
    the logits' bounds of the float64 numpy levels of :func:`robustmip.bounds.compute_bounds`
    (interval arithmetic; CROWN back-substitution with the adaptive lower line, intersected with
    the intervals; LP over the triangle relaxation, certified by duality).
``kw``
    Wong & Kolter's dual bound as seed 001 uses it: back-substitution through every layer with the
    same-slope lower line ``u / (u - l)``, no intersection with intervals, in float64
    (:mod:`robustmip.bounds.lirpa`), widened outward by ``ROUNDING_SLACK``. Its volume is ``S_dual``.
``exact``
    ``2 m`` MILPs on one persistent model (:mod:`robustmip.sensitivity.exact`): an inner box of
    attained values and an outer box of proven bounds.

The volume of a box is ``S = prod_i (upper_i - lower_i)``, reported as ``log10 S``.
"""

from __future__ import annotations

import time
from typing import Literal

import numpy as np

from robustmip.bounds import compute_bounds
from robustmip.errors import InvalidInput
from robustmip.network import Network
from robustmip.sensitivity.exact import ExactOptions, exact_box
from robustmip.sensitivity.result import OutputBox
from robustmip.spec import Domain, input_box

Method = Literal["interval", "kw", "crown", "lp", "exact"]
METHODS: tuple[str, ...] = ("interval", "kw", "crown", "lp", "exact")
RELAXATIONS: tuple[str, ...] = ("interval", "kw", "crown", "lp")


def _kw_logit_bounds(net: Network, lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Seed 001's ``[L, U]``: same-slope back-substitution through every layer, no intersection, float64,
    every bound widened outward (:func:`robustmip.bounds.lirpa.reevaluate_float64`)."""
    import torch

    from robustmip.bounds.lirpa import reevaluate_float64

    result = reevaluate_float64(net, torch.as_tensor(lower)[None], torch.as_tensor(upper)[None], method="kw",
                                intersect=False, bound_upper=True)
    return result.lower[0].numpy(), result.upper[0].numpy()


def reachable_box(net: Network, lower: np.ndarray, upper: np.ndarray, method: Method = "crown",
                  exact_options: ExactOptions | None = None) -> OutputBox:
    """The output box of ``net`` over the input box ``[lower, upper]`` (float64 ``(n_inputs,)`` each).

    Args:
        method: one of :data:`METHODS` (see the module docstring).
        exact_options: for ``exact``, an :class:`~robustmip.sensitivity.exact.ExactOptions` (solver,
            time limit, bound level, search); None for the defaults.
    """
    if method not in METHODS:
        raise InvalidInput(f"unknown output-box method {method!r}; choose from {METHODS}")
    lower = np.asarray(lower, dtype=np.float64).reshape(-1)
    upper = np.asarray(upper, dtype=np.float64).reshape(-1)
    if lower.shape != (net.n_inputs,) or upper.shape != (net.n_inputs,):
        raise InvalidInput(f"input box must have {net.n_inputs} entries, got {lower.shape} and {upper.shape}")
    if method == "exact":
        return exact_box(net, lower, upper, exact_options)
    start = time.perf_counter()
    if method == "kw":
        lo, up = _kw_logit_bounds(net, lower, upper)
    else:
        bounds = compute_bounds(net, lower, upper, method=method)
        lo, up = bounds.lower[-1], bounds.upper[-1]
    return OutputBox(method, lo, up, time.perf_counter() - start)


def ball(net: Network, x: np.ndarray, eps: float | np.ndarray, domain: Domain = (0.0, 1.0)
         ) -> tuple[np.ndarray, np.ndarray]:
    """The input box ``|x' - x| <= eps`` (a number or one radius per input) clipped to ``domain``,
    float64 ``(n_inputs,)`` each; InvalidInput when ``x`` or ``eps`` do not fit the network."""
    x = np.asarray(x, dtype=np.float64)
    if x.size != net.n_inputs:
        raise InvalidInput(f"input has {x.size} values but the network expects shape {net.input_shape}")
    eps_array = np.asarray(eps, dtype=np.float64)
    if eps_array.ndim and eps_array.size != net.n_inputs:
        raise InvalidInput(f"eps has {eps_array.size} values; give one number or one per input ({net.n_inputs})")
    return input_box(x, eps_array if eps_array.ndim else float(eps_array), *domain)


def output_box(net: Network, x: np.ndarray, eps: float | np.ndarray, method: Method = "crown", *,
               domain: Domain = (0.0, 1.0), exact_options: ExactOptions | None = None) -> OutputBox:
    """The output box of ``net`` over the ball ``|x' - x| <= eps`` (per input), clipped to ``domain``.

    Args:
        x: the input, any shape with ``net.n_inputs`` values.
        eps: the radius, a number or one value ``>= 0`` per input (e.g. :func:`feature_eps`).
        method: ``interval``, ``kw``, ``crown``, ``lp`` or ``exact`` (module docstring).
        domain: ``(low, high)`` the ball is clipped to; ``(None, None)`` for no clipping (as seed 001).
        exact_options: settings of the ``exact`` method (:class:`~robustmip.sensitivity.exact.ExactOptions`).
    """
    lower, upper = ball(net, x, eps, domain)
    return reachable_box(net, lower, upper, method, exact_options)
