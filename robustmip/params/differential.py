"""Two networks on one shared input: can they disagree, and by how much?

A :class:`PairProblem` encodes a *reference* network (plain) and an *other* network (another plain
network, e.g. its quantized version, or the reference itself with a :class:`ParamBox`) in one MILP
whose two input vectors are equal and range over ``[lower, upper]``. Its questions, per class ``c``
(``m_c(z) = min_{j != c} (z_c - z_j)``, the margin of ``c``; ``s_c(z) = max_{t != c} (z_t - z_c)``):

* :meth:`PairProblem.disagreement`: is there an ``x`` where the reference picks ``c`` strictly and the
  other strictly prefers another class? The MILP maximises ``min(m_c(z_ref), s_c(z_other))`` per
  candidate class: ``> 0`` is a disagreement (witness re-checked in float64), ``<= 0`` proven means
  none (quantized vs float, def. 4 of Murthy et al. with a box: the label of every ``x`` kept).
* :meth:`PairProblem.flip_margin`: ``sigma*`` of Murthy et al. eq. 13 in logit units: the largest
  ``m_c(z_ref(x))`` over the points whose label ``c`` the other network can change
  (``s_c(z_other) >= 0``). For one sigmoid output made two-class (:func:`sigmoid_as_two_class`)
  ``sigmoid(sigma*) - 1/2`` is the confidence distance from the decision level.
* :meth:`PairProblem.deviation`: the extreme of ``z_other,k - z_ref,k`` (the output deviation of defs.
  1-2 in logit units), or of ``z_other,k`` while ``z_ref,k`` is held in an interval
  (:mod:`robustmip.params.deviation` builds the sigmoid deviation on it).

Verdicts follow :mod:`robustmip.params.problem`: a proof, or a witness realised and re-checked.
"""

from __future__ import annotations

import time
from typing import Literal

import numpy as np
import pyomo.environ as pyo

from robustmip.bounds import Bounds, compute_bounds
from robustmip.bounds.compute import check_input_box
from robustmip.deadline import Deadline
from robustmip.errors import InvalidInput
from robustmip.layers import AffineLayer
from robustmip.milp.encode import encode
from robustmip.milp.objectives import add_disjunction
from robustmip.milp.options import SolveOptions
from robustmip.milp.problem import unknown_reason
from robustmip.network import Network
from robustmip.params.bounds import compute_param_bounds
from robustmip.params.box import ParamBox
from robustmip.params.problem import ParamOptimum, ParamVerdict, param_bounds_method
from robustmip.params.realise import realise_solution
from robustmip.solvers import SolveResult
from robustmip.spec import robustness_conjunctions


def sigmoid_as_two_class(net: Network, box: ParamBox | None = None) -> tuple[Network, ParamBox | None]:
    """A one-logit (sigmoid) network as two logits ``(z, 0)``: class 0 iff ``z >= 0`` (``sigmoid >= 1/2``).

    The added output row is fixed (radius 0 in the returned box), so both boxes allow the same nets.
    """
    if net.n_outputs != 1:
        raise InvalidInput(f"sigmoid_as_two_class needs one output, the network has {net.n_outputs}")
    last = net.layers[-1]
    W = np.vstack([last.W, np.zeros((1, last.n_in))])
    b = np.concatenate([last.b, [0.0]])
    two = Network([*net.layers[:-1], AffineLayer(W, b, last.activation)], net.input_shape)
    if box is None:
        return two, None
    radii = dict(box.radii)
    k = len(net.layers) - 1
    if k in radii:
        R, rho = radii[k]
        radii[k] = (np.vstack([R, np.zeros((1, R.shape[1]))]), np.concatenate([rho, [0.0]]))
    return two, ParamBox(radii, box.description)


def margin_of(outputs: np.ndarray, c: int) -> float:
    """``m_c = min_{j != c} (z_c - z_j)`` of float64 outputs."""
    return float(outputs[c] - np.max(np.delete(outputs, c)))


class PairProblem:
    """One MILP with a reference network and another network (or the reference with a box) on one input.

    Args:
        reference: the network whose answers are the reference (encoded plain).
        other: the second network (same input and output sizes); None with ``box``: the reference
            itself with its parameters in ``box``.
        lower, upper: the shared input box; options: solver, time limit, bound level (``interval``/``lp``).
    """

    def __init__(self, reference: Network, lower: np.ndarray, upper: np.ndarray, other: Network | None = None,
                 box: ParamBox | None = None, options: SolveOptions | None = None):
        if (other is None) == (box is None):
            raise InvalidInput("give either another network or a parameter box, not both or neither")
        self.options = options or SolveOptions()
        self.method = param_bounds_method(self.options)
        self.reference, self.box = reference, box
        self.other = reference if other is None else other
        if (self.other.n_inputs, self.other.n_outputs) != (reference.n_inputs, reference.n_outputs):
            raise InvalidInput("both networks need the same numbers of inputs and outputs")
        if reference.n_outputs < 2:
            raise InvalidInput("labels need at least two outputs; wrap a sigmoid net with sigmoid_as_two_class")
        if box is not None:
            box.check(reference)
        self.lower, self.upper = check_input_box(reference, lower, upper)
        self.times = {"bounds": 0.0, "build": 0.0, "solve": 0.0}
        self._model: pyo.ConcreteModel | None = None
        self.ref_bounds: Bounds | None = None
        self.other_bounds: Bounds | None = None

    def compute_bounds(self, deadline: Deadline | None = None) -> tuple[Bounds, Bounds]:
        """Bounds of both networks (the other's over its box), computed once."""
        if self.ref_bounds is None:
            threads = self.options.threads
            self.ref_bounds = compute_bounds(self.reference, self.lower, self.upper, self.method,  # type: ignore
                                             deadline, threads)
            if self.box is None:
                self.other_bounds = compute_bounds(self.other, self.lower, self.upper, self.method,  # type: ignore
                                                   deadline, threads)
            else:
                self.other_bounds = compute_param_bounds(self.other, self.box, self.lower, self.upper,
                                                         self.method, deadline, threads)  # type: ignore[arg-type]
            self.times["bounds"] = self.ref_bounds.seconds + self.other_bounds.seconds
        return self.ref_bounds, self.other_bounds  # type: ignore[return-value]

    @property
    def model(self) -> pyo.ConcreteModel:
        """The shared MILP: blocks ``ref`` and ``other`` with equal inputs, and an objective."""
        if self._model is None:
            ref_bounds, other_bounds = self.compute_bounds()
            start = time.perf_counter()
            m = pyo.ConcreteModel()
            m.ref, m.other = pyo.Block(), pyo.Block()
            self.ref = encode(self.reference, ref_bounds, m.ref)
            bands = self.box.bands() if self.box is not None else None
            self.enc = encode(self.other, other_bounds, m.other, parameter_band=bands)
            m.same_input = pyo.Constraint(range(self.reference.n_inputs),
                                          rule=lambda _, i: m.other.x[i] == m.ref.x[i])
            m.objective = pyo.Objective(expr=0.0, sense=pyo.minimize)
            self._model = m
            self.times["build"] += time.perf_counter() - start
        return self._model

    def witness(self) -> tuple[np.ndarray, Network]:
        """``(x, other network)`` of the current solution (the other's parameters realised with a box)."""
        if self.box is None:
            return np.clip(self.ref.input_values(), self.lower, self.upper), self.other
        return realise_solution(self.other, self.box, self.enc)

    def _candidates(self, bounds: Bounds) -> list[int]:
        """Classes that can be (weakly) the top of the network with these output bounds."""
        lower, upper = bounds.lower[-1], bounds.upper[-1]
        return [c for c in range(lower.shape[0]) if upper[c] >= np.max(np.delete(lower, c))]

    def _question(self, c: int, name: str) -> tuple[pyo.Block, pyo.Var, pyo.Var]:
        """A block with ``r <= m_c(z_ref)`` and ``s <= s_c(z_other)``; returns it, ``r`` and ``s``."""
        m = self.model
        targets = [t for t in range(self.reference.n_outputs) if t != c]
        s = add_disjunction(self.enc, robustness_conjunctions(self.other.n_outputs, c, targets), f"{name}_flip")
        block = pyo.Block()
        m.add_component(name, block)
        ref_lo, ref_up = self.ref_bounds.lower[-1], self.ref_bounds.upper[-1]  # type: ignore[union-attr]
        block.r = pyo.Var(bounds=(min(ref_lo[c] - ref_up[t] for t in targets),
                                  min(ref_up[c] - ref_lo[t] for t in targets)))
        block.rows = pyo.Constraint(targets, rule=lambda _, t: block.r <= self.ref.logits[c] - self.ref.logits[t])
        return block, block.r, s

    def _drop(self, name: str) -> None:
        self.model.del_component(name)
        self.enc.block.del_component(f"{name}_flip")

    def _start(self, x: np.ndarray | None) -> None:
        x = 0.5 * (self.lower + self.upper) if x is None else x
        self.ref.set_point(x)
        self.enc.set_point(x)

    def _solve(self, deadline: Deadline, decide_below: float | None = None) -> SolveResult:
        engine = self.options.milp_solver
        if decide_below is None:
            result = engine.solve(self.model, deadline.left(), warm_start=True, focus="bound")
        else:
            result = engine.solve(self.model, deadline.left(), decide_below=decide_below, focus="bound")
        self.times["solve"] += result.seconds
        return result

    def _verdict(self, status, **fields) -> ParamVerdict:
        return ParamVerdict(status, times=dict(self.times), **fields)

    def _check(self, x: np.ndarray, network: Network, proof: str) -> ParamVerdict | None:
        """A ``flips`` verdict if ``network`` (in the box, if any) strictly disagrees with the reference at ``x``.

        Strictly: the reference's top class ``c`` beats every other by ``m_c > 0`` and ``network``
        puts some class above ``c`` (``s_c > 0``), in float64; ``margin`` is ``min(m_c, s_c)``.
        """
        if self.box is not None and not self.box.contains(self.reference, network):
            return None
        ref_out, other_out = self.reference.forward(x), network.forward(x)
        c = int(np.argmax(ref_out))
        value = min(margin_of(ref_out, c), -margin_of(other_out, c))
        if value <= 0.0:
            return None
        return self._verdict("flips", margin=value, proof=proof, x=x, network=network, outputs=other_out,
                             nominal_outputs=ref_out, reason=f"the reference picks {c}, the other network "
                             f"{int(np.argmax(other_out))}")

    def disagreement(self, decide: bool = True, deadline: Deadline | None = None,
                     start: np.ndarray | None = None) -> ParamVerdict:
        """Can the two networks give different labels on the box? (See the module docstring.)

        ``decide`` stops at the first re-checked disagreement (solver cutoff at 0); otherwise each
        class's largest ``min(m_c(ref), s_c(other))`` is found, and ``margin`` is their maximum.
        ``start`` is an input to seed the MILP (default: the box centre).
        """
        deadline = deadline or self.options.deadline()
        centre = 0.5 * (self.lower + self.upper)
        for x in (centre,) if start is None else (start, centre):
            found = self._check(np.clip(x, self.lower, self.upper), self.other, "nominal")
            if found is not None:
                return found
        ref_bounds, _ = self.compute_bounds(deadline)
        worst, undecided = -np.inf, None
        for c in self._candidates(ref_bounds):
            if deadline.expired():
                return self._verdict("unknown", reason=f"time limit ({deadline.seconds} s) reached")
            name = f"disagree{c}"
            block, r, s = self._question(c, name)
            block.value = pyo.Var(bounds=(None, None))
            block.le_r = pyo.Constraint(expr=block.value <= r)
            block.le_s = pyo.Constraint(expr=block.value <= s)
            self.model.objective.set_value(-block.value)
            try:
                self._start(start)
                result = self._solve(deadline, 0.0 if decide else None)
                if result.has_solution:
                    found = self._check(*self.witness(), "milp")
                    if found is not None:
                        return found
                proven = (decide and result.status == "infeasible") or (
                    not decide and result.bound is not None and -result.bound <= 0.0)
                if proven:
                    worst = max(worst, -result.bound if result.bound is not None and not decide else -np.inf)
                    continue
                undecided = self._verdict("unknown", reason=unknown_reason(result, deadline.seconds))
                if result.status == "time_limit":
                    return undecided
            finally:
                self._drop(name)
        if undecided is not None:
            return undecided
        return self._verdict("robust", margin=None if decide or not np.isfinite(worst) else float(worst),
                             proof="milp", reason="no input in the box gets different labels")

    def flip_margin(self, c: int, deadline: Deadline | None = None) -> ParamOptimum:
        """``sigma*`` in logit units for class ``c``: max ``m_c(z_ref)`` s.t. ``s_c(z_other) >= 0``.

        ``status`` is ``robust`` when no point of label ``c`` can flip (infeasible), else as
        :class:`ParamOptimum` (``value``: the realised witness's reference margin in float64, with
        the other network's ``s_c`` there ``>= -1e-6``; ``bound``: the solver's proof).
        """
        deadline = deadline or self.options.deadline()
        self.compute_bounds(deadline)
        name = f"sigma{c}"
        block, r, s = self._question(c, name)
        s.setlb(0.0)
        self.model.objective.set_value(-r)
        try:
            result = self._solve(deadline)
            bound = None if result.bound is None else -result.bound
            if result.status == "infeasible":
                return ParamOptimum("robust", "max", None, None, reason=f"no point of class {c} can flip",
                                    times=dict(self.times))
            if not result.has_solution:
                return ParamOptimum("unknown", "max", None, bound, reason=unknown_reason(result, deadline.seconds),
                                    times=dict(self.times))
            x, network = self.witness()
            value = margin_of(self.reference.forward(x), c)
            other_slack = -margin_of(network.forward(x), c)
            if other_slack < -1e-6 or (self.box is not None and not self.box.contains(self.reference, network)):
                return ParamOptimum("unknown", "max", None, bound, reason=f"the witness's other network keeps {c} "
                                    f"by {-other_slack:.3g} in float64", times=dict(self.times))
            status = "optimal" if result.status == "optimal" else "time_limit"
            return ParamOptimum(status, "max", value, bound, x, network, times=dict(self.times))
        finally:
            s.setlb(None)
            self._drop(name)

    def deviation(self, k: int, sense: Literal["min", "max"] = "max", relative: bool = True,
                  ref_interval: tuple[float, float] | None = None, deadline: Deadline | None = None) -> ParamOptimum:
        """Extreme of ``z_other,k - z_ref,k`` (``relative``) or of ``z_other,k``, optionally with ``z_ref,k``
        held in ``ref_interval``. ``value`` is the realised witness's float64 value, ``bound`` the proof;
        status ``robust`` marks an empty interval (no input reaches it)."""
        if sense not in ("min", "max"):
            raise InvalidInput(f"sense must be 'min' or 'max', got {sense!r}")
        deadline = deadline or self.options.deadline()
        m = self.model
        sign = 1.0 if sense == "max" else -1.0
        ref_k, other_k = self.ref.logits[k], self.enc.logits[k]
        m.objective.set_value(-sign * (other_k - ref_k if relative else other_k))
        saved = (ref_k.lb, ref_k.ub)
        if ref_interval is not None:
            ref_k.setlb(max(saved[0], ref_interval[0]) if saved[0] is not None else ref_interval[0])
            ref_k.setub(min(saved[1], ref_interval[1]) if saved[1] is not None else ref_interval[1])
        try:
            if ref_k.lb is not None and ref_k.ub is not None and ref_k.lb > ref_k.ub:
                return ParamOptimum("robust", sense, None, None, reason="empty interval", times=dict(self.times))
            self._start(None)
            result = self._solve(deadline)
            bound = None if result.bound is None else -sign * result.bound
            if result.status == "infeasible":
                return ParamOptimum("robust", sense, None, None, reason="no input reaches the interval",
                                    times=dict(self.times))
            if not result.has_solution:
                return ParamOptimum("unknown", sense, None, bound, reason=unknown_reason(result, deadline.seconds),
                                    times=dict(self.times))
            x, network = self.witness()
            ref_out, other_out = self.reference.forward(x), network.forward(x)
            value = float(other_out[k] - ref_out[k]) if relative else float(other_out[k])
            status = "optimal" if result.status == "optimal" else "time_limit"
            return ParamOptimum(status, sense, value, bound, x, network, reference_value=float(ref_out[k]),
                                times=dict(self.times))
        finally:
            ref_k.setlb(saved[0])
            ref_k.setub(saved[1])
