"""Optima of the outputs over an input box, on one persistent MILP: ``min`` / ``max`` of ``c^T y``.

An :class:`OutputProblem` computes the box's bounds and builds the big-M encoding once; each
question (a coefficient vector ``c`` and a sense) only changes the objective of that model, so the
``2 m`` questions of an output box (every logit, both directions) share one model and one solver.
Every question may carry a start point (e.g. a gradient search's best input): its forward pass is
the MIP start, and the solver, holding a near-optimal incumbent, spends its effort on the bound.

What an answer claims (:class:`OutputOptimum`):

* ``value`` is attained: the float64 forward pass's ``c^T y`` at ``argument``, a point of the box
  (the solver's point projected onto the box, or the start when that is better);
* ``bound`` is proven: the solver's dual bound widened outward by ``MILP_SLACK (1 + |bound|)``
  against its feasibility and integrality tolerances (as the per-neuron MILP bounds of
  :mod:`robustmip.bounds.tighten`), and never weaker than the interval of ``c^T y`` over the
  logits' bounds, so a solve stopped by its time limit (or one that never started) still answers
  with a sound bound. ``value`` and ``bound`` enclose the true optimum; they meet when
  ``status == "optimal"`` (up to the solver's gap and tolerances).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np
import pyomo.environ as pyo

from robustmip.bounds import Bounds, compute_bounds
from robustmip.bounds.tighten import MILP_SLACK
from robustmip.deadline import Deadline
from robustmip.errors import InvalidInput
from robustmip.milp.encode import EncodedNetwork, encode
from robustmip.milp.objectives import output_expression
from robustmip.milp.options import SolveOptions
from robustmip.network import Network

Sense = Literal["min", "max"]


@dataclass
class OutputOptimum:
    """Optimum of ``c^T y`` over an input box (``y`` the logits).

    Attributes:
        status: the solve's status (``optimal``, ``time_limit``, ``error``, ...), ``time_limit``
            when no solve started within the deadline.
        sense: ``min`` or ``max``.
        value: ``c^T y`` of the float64 forward pass at ``argument`` (attained), or None.
        bound: a proven bound on the optimum (below it for min, above for max); see the module doc.
        argument: the input reaching ``value``, float64 ``(n_inputs,)``, or None.
        times: seconds spent in ``bounds``, ``build`` (shared by every question of one problem) and
            ``solve`` (this question).
    """

    status: str
    sense: str
    value: float | None
    bound: float | None
    argument: np.ndarray | None
    times: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"status": self.status, "sense": self.sense, "value": self.value, "bound": self.bound,
                "times": dict(self.times)}


def _coefficients(net: Network, coefficients: Sequence[float] | np.ndarray | int) -> np.ndarray:
    if isinstance(coefficients, (int, np.integer)):
        if not 0 <= int(coefficients) < net.n_outputs:
            raise InvalidInput(f"output {coefficients} is not one of the network's {net.n_outputs} outputs")
        return np.eye(net.n_outputs)[int(coefficients)]
    c = np.asarray(coefficients, dtype=np.float64).reshape(-1)
    if c.shape != (net.n_outputs,) or not np.isfinite(c).all():
        raise InvalidInput(f"need {net.n_outputs} finite output coefficients, got shape {c.shape}")
    return c


class OutputProblem:
    """One persistent MILP over the box ``[lower, upper]`` answering ``min`` / ``max c^T y`` questions.

    Args:
        net: the network; lower, upper: the input box, float64 ``(n_inputs,)`` each.
        options: the solver (its ``time_limit`` is the default budget of one question), the bound
            level of the encoding's big-M constants, and threads. The falsifier and domain are not
            used here: callers pass start points and boxes themselves.
    """

    def __init__(self, net: Network, lower: np.ndarray, upper: np.ndarray, options: SolveOptions | None = None):
        self.net = net
        self.options = options or SolveOptions()
        self.options.require_milp("OutputProblem")
        self.lower = np.asarray(lower, dtype=np.float64).reshape(-1)
        self.upper = np.asarray(upper, dtype=np.float64).reshape(-1)
        if self.lower.shape != (net.n_inputs,) or self.upper.shape != (net.n_inputs,):
            raise InvalidInput(f"input box must have {net.n_inputs} entries, got {self.lower.shape} and "
                               f"{self.upper.shape}")
        if not (np.isfinite(self.lower).all() and np.isfinite(self.upper).all()) or (self.lower > self.upper).any():
            raise InvalidInput("input box must be finite with lower <= upper")
        self._bounds: Bounds | None = None
        self._enc: EncodedNetwork | None = None
        self.build_seconds = 0.0

    def compute_bounds(self, deadline: Deadline | None = None) -> Bounds:
        """The box's bounds at the options' level, computed once (sound when cut short by ``deadline``)."""
        if self._bounds is None:
            self._bounds = compute_bounds(self.net, self.lower, self.upper, method=self.options.bounds,
                                          threads=self.options.threads, deadline=deadline)
        return self._bounds

    @property
    def encoding(self) -> EncodedNetwork:
        """The big-M encoding with a placeholder objective, built on first use."""
        if self._enc is None:
            start = time.perf_counter()
            enc = encode(self.net, self.compute_bounds())
            enc.block.objective = pyo.Objective(expr=0.0, sense=pyo.minimize)
            self._enc = enc
            self.build_seconds += time.perf_counter() - start
        return self._enc

    def prepare(self, deadline: Deadline | None = None) -> Bounds:
        """Compute the bounds and, unless ``deadline`` has passed by then, build the model; return the bounds."""
        bounds = self.compute_bounds(deadline)
        if deadline is None or not deadline.expired():
            _ = self.encoding
        return bounds

    def relaxed_bound(self, coefficients: np.ndarray, sense: Sense) -> float:
        """The interval bound of ``c^T y`` over the logits' bounds (below for min, above for max)."""
        bounds = self.compute_bounds()
        c = coefficients if sense == "min" else -coefficients
        low = float(np.maximum(c, 0.0) @ bounds.lower[-1] + np.minimum(c, 0.0) @ bounds.upper[-1])
        return low if sense == "min" else -low

    def _times(self, solve: float) -> dict:
        return {"bounds": 0.0 if self._bounds is None else self._bounds.seconds, "build": self.build_seconds,
                "solve": solve}

    def optimize(
        self,
        coefficients: Sequence[float] | np.ndarray | int,
        sense: Sense = "min",
        *,
        start: np.ndarray | None = None,
        deadline: Deadline | None = None,
    ) -> OutputOptimum:
        """Minimise or maximise ``c^T y`` (or one logit ``y_k`` for an integer ``k``) over the box.

        Args:
            coefficients: ``c``, float64 ``(n_outputs,)``, or an output index.
            sense: ``"min"`` or ``"max"``.
            start: an input of the box (projected onto it) whose forward pass is the MIP start; the
                solver then focuses on the bound. None: the solver finds its own incumbent.
            deadline: when the question must end (default: the solver's time limit from now); the
                bounds and the model, on the first question, draw from it too.
        """
        if sense not in ("min", "max"):
            raise InvalidInput(f"sense must be 'min' or 'max', got {sense!r}")
        c = _coefficients(self.net, coefficients)
        deadline = deadline or self.options.deadline()
        sign = 1.0 if sense == "min" else -1.0
        self.prepare(deadline)
        fallback = self.relaxed_bound(c, sense)
        candidates: list[np.ndarray] = []
        if start is not None:
            candidates.append(np.clip(np.asarray(start, dtype=np.float64).reshape(-1), self.lower, self.upper))
        status, bound, solve_seconds = "time_limit", None, 0.0
        if not deadline.expired():
            enc = self.encoding
            enc.block.objective.set_value(sign * output_expression(enc, c))
            enc.relax_for_objective(sign * c)
            if start is not None:
                enc.set_point(candidates[0])
            if not deadline.expired():
                result = self.options.milp_solver.solve(enc.block, deadline.left(), warm_start=start is not None,
                                                   focus="bound" if start is not None else "balanced")
                status, solve_seconds = result.status, result.seconds
                if result.bound is not None and result.status in ("optimal", "time_limit"):
                    bound = sign * (result.bound - MILP_SLACK * (1.0 + abs(result.bound)))
                if result.has_solution:
                    candidates.append(np.clip(enc.input_values(), self.lower, self.upper))
        bound = fallback if bound is None else (max(bound, fallback) if sense == "min" else min(bound, fallback))
        value, argument = None, None
        for point in candidates:
            v = float(c @ self.net.forward(point))
            if value is None or sign * v < sign * value:
                value, argument = v, point
        return OutputOptimum(status, sense, value, bound, argument, self._times(solve_seconds))


def optimize_output(
    net: Network,
    lower: np.ndarray,
    upper: np.ndarray,
    coefficients: Sequence[float] | np.ndarray | int,
    sense: Sense = "min",
    options: SolveOptions | None = None,
) -> OutputOptimum:
    """Minimise or maximise ``c^T y`` (or one logit ``y_k``) for inputs in ``[lower, upper]``: one question.

    A single question of a new :class:`OutputProblem`; ask several of one problem to share its model.
    """
    return OutputProblem(net, lower, upper, options).optimize(coefficients, sense)
