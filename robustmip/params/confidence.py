"""Murthy et al.'s confidence questions on a network with one sigmoid output ``f = sigmoid(z)``.

* :func:`local_deviation` (def. 1, eq. 11): ``eps(x) = max_p |f_p0(x) - f_p(x)|`` at a fixed input.
  The sigmoid is increasing, so it is the larger of ``sigmoid(max_p z_p) - f_p0`` and
  ``f_p0 - sigmoid(min_p z_p)``: two exact MILPs (:meth:`ParamProblem.optimise_output`).
* :func:`global_deviation` (def. 2, eq. 12): ``eps = max_{x in D} eps(x)``. Over a box of inputs the
  logit extremes no longer give it (``z_p0`` moves with ``x``), so the nominal logit's range is cut
  into intervals ``I``. For the upward side one MILP per interval gives ``D_I = max (z_p - z_p0)``
  over the inputs with ``z_p0`` in ``I`` (:meth:`PairProblem.deviation`); every such input deviates
  by at most ``max_{t in I} sigmoid(t + D_I) - sigmoid(t)``, and ``t -> sigmoid(t + D) - sigmoid(t)``
  is unimodal with its peak at ``t = -D/2``, so this bound is the value at ``-D_I/2`` clipped to
  ``I``. Each MILP's witness, realised and re-checked in float64, attains ``sigmoid(z_p) -
  sigmoid(z_p0)`` at a point of ``I``, so the gap on ``I`` is at most ``|I| max|d/dt|``, which
  vanishes with ``|I|``. The interval with the largest bound is halved until bound and best witness
  are within ``tol``; the downward side is the mirror image (``D_I = min``). Exact to ``tol``.
* :func:`flip_sigma` (def. 5, eq. 13): ``sigma* = max |f_p0(x) - 1/2|`` over the inputs whose label
  some parameter in the box changes, per class (``f >= 1/2``: class 0; else class 1), from
  :meth:`PairProblem.flip_margin` on the two-class form ``(z, 0)``: ``sigmoid(m*) - 1/2``.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

import numpy as np

from robustmip.deadline import Deadline
from robustmip.errors import InvalidInput
from robustmip.layers import AffineLayer
from robustmip.milp.options import SolveOptions
from robustmip.network import Network
from robustmip.params.box import ParamBox
from robustmip.params.differential import PairProblem, sigmoid_as_two_class
from robustmip.params.problem import ParamOptimum, ParamProblem


def sigmoid(z: float) -> float:
    return 0.5 * (1.0 + math.tanh(0.5 * z))


@dataclass
class Deviation:
    """``max |f_p0(x) - f_p(x)|`` (confidence units): ``lower`` attained by a re-checked witness,
    ``upper`` proven; ``status`` ``exact`` (``upper - lower <= tol``), ``gap`` or ``unknown``."""

    status: str
    lower: float
    upper: float
    x: np.ndarray | None = None
    network: Network | None = None
    solves: int = 0
    reason: str = ""
    times: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("status", "lower", "upper", "solves", "reason", "times")}


def _check_sigmoid_net(net: Network) -> None:
    if net.n_outputs != 1:
        raise InvalidInput(f"confidence questions need one sigmoid output (its logit), the network has "
                           f"{net.n_outputs}")


def local_deviation(net: Network, box: ParamBox, x: np.ndarray, options: SolveOptions | None = None) -> Deviation:
    """``eps(x)`` at a fixed input ``x`` (flat or shaped, ``n_inputs`` values): two exact MILPs."""
    _check_sigmoid_net(net)
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    problem = ParamProblem(net, box, x, x, options)
    nominal = sigmoid(float(net.forward(x)[0]))
    best = Deviation("exact", 0.0, 0.0, x, net)
    for sense in ("max", "min"):
        optimum = problem.optimise_output(np.ones(1), sense, attack=None)
        if optimum.value is None or optimum.bound is None:
            return Deviation("unknown", best.lower, math.inf, reason=optimum.reason, times=problem.times)
        sign = 1.0 if sense == "max" else -1.0
        attained = sign * (sigmoid(optimum.value) - nominal)
        proven = sign * (sigmoid(optimum.bound) - nominal)
        if attained > best.lower:
            best.lower, best.network = attained, optimum.network
        best.upper = max(best.upper, proven)
        if optimum.status != "optimal":
            best.status = "gap"
    best.solves, best.times = 2, dict(problem.times)
    return best


def global_deviation(net: Network, box: ParamBox, lower: np.ndarray, upper: np.ndarray,
                     options: SolveOptions | None = None, tol: float = 1e-6, max_solves: int = 400) -> Deviation:
    """``eps = max_{x in [lower, upper]} max_p |f_p0(x) - f_p(x)|``, exact to ``tol`` (see the module docstring).

    ``max_solves`` caps the MILPs (status ``gap`` when the gap is still above ``tol``); the solver's
    time limit covers the whole computation.
    """
    _check_sigmoid_net(net)
    if not tol > 0:
        raise InvalidInput(f"tol must be > 0, got {tol}")
    options = options or SolveOptions()
    deadline = options.deadline()
    two, box2 = sigmoid_as_two_class(net, box)
    pair = PairProblem(two, lower, upper, box=box2, options=options)
    ref_bounds, _ = pair.compute_bounds(deadline)
    t_lo, t_hi = float(ref_bounds.lower[-1][0]), float(ref_bounds.upper[-1][0])
    best = Deviation("exact", 0.0, 0.0)
    for sense in ("max", "min"):
        side = _one_side(pair, sense, t_lo, t_hi, tol, max_solves - best.solves, deadline, best)
        best.upper = max(best.upper, side)
    if best.status == "exact" and best.upper - best.lower > tol:
        best.status = "gap"
    best.times = dict(pair.times)
    if best.network is not None:  # back to the one-output form of the caller's network
        best.network = Network([*best.network.layers[:-1], _first_row(best.network.layers[-1])], net.input_shape)
    return best


def _first_row(layer: AffineLayer) -> AffineLayer:
    return AffineLayer(layer.W[:1], layer.b[:1], layer.activation)


def _one_side(pair: PairProblem, sense: str, t_lo: float, t_hi: float, tol: float, budget: int,
              deadline: Deadline, best: Deviation) -> float:
    """Branch and bound over the nominal logit for one side; updates ``best``; returns the proven bound."""
    sign = 1.0 if sense == "max" else -1.0

    def solve(lo: float, hi: float) -> float | None:
        """The interval's bound on the side's deviation (None: no input there), updating ``best``."""
        optimum: ParamOptimum = pair.deviation(0, sense, relative=True, ref_interval=(lo, hi), deadline=deadline)
        best.solves += 1
        if optimum.status == "robust":
            return None
        if optimum.value is not None and optimum.reference_value is not None:
            t = optimum.reference_value
            attained = sign * (sigmoid(t + optimum.value) - sigmoid(t))
            if attained > best.lower:
                best.lower, best.x, best.network = attained, optimum.x, optimum.network
        if optimum.bound is None:
            raise _Unknown(optimum.reason)
        peak = min(max(-0.5 * optimum.bound, lo), hi)
        return max(0.0, sign * (sigmoid(peak + optimum.bound) - sigmoid(peak)))

    heap: list[tuple[float, float, float]] = []
    try:
        first = solve(t_lo, t_hi)
        if first is not None:
            heap.append((-first, t_lo, t_hi))
        while heap:
            bound = -heap[0][0]
            if bound - best.lower <= tol or best.solves >= budget or deadline.expired():
                if bound - best.lower > tol:
                    best.status = "gap"
                return bound
            _, lo, hi = heapq.heappop(heap)
            mid = 0.5 * (lo + hi)
            for part in ((lo, mid), (mid, hi)):
                value = solve(*part)
                if value is not None:
                    heapq.heappush(heap, (-min(value, bound), *part))
        return best.lower
    except _Unknown as exc:
        best.status, best.reason = "unknown", str(exc)
        return math.inf


class _Unknown(Exception):
    """A MILP of the branch and bound ended without a proven bound."""


def flip_sigma(net: Network, box: ParamBox, lower: np.ndarray, upper: np.ndarray,
               options: SolveOptions | None = None) -> tuple[ParamOptimum, ParamOptimum]:
    """``sigma*`` per class (class 0: ``f >= 1/2``; class 1: below) as optima in confidence units.

    ``value`` and ``bound`` are ``sigmoid(m) - 1/2`` of the witness's and the proven logit margin;
    status ``robust``: no input of that class can flip.
    """
    _check_sigmoid_net(net)
    two, box2 = sigmoid_as_two_class(net, box)
    pair = PairProblem(two, lower, upper, box=box2, options=options)
    out = []
    for c in (0, 1):
        optimum = pair.flip_margin(c)
        for name in ("value", "bound"):
            if getattr(optimum, name) is not None:
                setattr(optimum, name, sigmoid(getattr(optimum, name)) - 0.5)
        out.append(optimum)
    return out[0], out[1]
