"""Parameter questions on one input box, and the checked verdicts they give.

"Is there an input ``x`` in ``[lower, upper]`` and parameters in the :class:`ParamBox` whose outputs
``y`` meet the unsafe condition ``OR_i (A_i y <= c_i)``?" Its slack ``max_i min_j (c_ij - A_ij . y)``
is ``>= 0`` exactly at the unsafe points (``> 0`` for a *strict* condition, e.g. a label that changes:
a tie is no change). The verdict rules are those of :mod:`robustmip.milp.problem`, with parameters:

* ``robust`` only from a proof: the parameter-aware bounds exclude the condition, the solver's cutoff
  proves that no solution reaches it, or its proven bound on the largest slack does;
* ``flips`` only with a witness realised as concrete parameters in the box
  (:mod:`robustmip.params.realise`, checked by :meth:`ParamBox.contains`) whose float64 forward pass
  at the witness input meets the condition (``proof``: ``nominal`` when the unperturbed net already
  does, ``pgd`` from :func:`robustmip.params.attack.param_pgd`, ``milp``);
* otherwise ``unknown``, with the reason (a time limit, a solver point that failed the re-check).

Each decision first checks the (millisecond) interval bounds, then runs ``param_pgd``; its point is
re-checked, and otherwise it is the MIP start.
Then one MILP per conjunction on one persistent encoding (the box's bands on the plain encoding of
:func:`robustmip.milp.encode.encode`). ``decide`` mode asks only "is the slack above 0?" with the
solver's cutoff; ``optimise`` mode maximises the slack, so that ``margin`` is the proven largest
slack (robust) or the witness's slack (flips).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np
import pyomo.environ as pyo

from robustmip.bounds import Bounds
from robustmip.bounds.compute import check_input_box
from robustmip.deadline import Deadline
from robustmip.errors import InvalidInput
from robustmip.milp.encode import EncodedNetwork, encode
from robustmip.milp.objectives import add_disjunction
from robustmip.milp.options import SolveOptions
from robustmip.milp.problem import unknown_reason
from robustmip.network import Network
from robustmip.params.attack import ParamAttack, param_pgd
from robustmip.params.bounds import PARAM_BOUNDS_METHODS, compute_param_bounds
from robustmip.params.box import ParamBox
from robustmip.params.realise import realise_solution
from robustmip.spec import OutputConjunction, disjunction_slack

ParamOutcome = Literal["robust", "flips", "unknown"]
_STRICT = 1e-9
"""A non-strict condition's decision asks "is ``-slack`` below 1e-9?": none proves ``slack < 0``."""


@dataclass
class ParamVerdict:
    """Answer to "can a parameter in the box (and an input in the box) meet the unsafe condition?".

    Attributes:
        status: ``robust`` (proved), ``flips`` (re-checked witness) or ``unknown``.
        margin: the condition's slack (``> 0``, or ``>= 0`` when not strict, means unsafe): for
            ``robust`` the proven largest slack over both boxes (``optimise`` mode; None when a
            cutoff decided), for ``flips`` the witness's slack in float64.
        proof: ``bounds``, ``milp``, ``pgd`` or ``nominal``.
        x: the witness input (flat float64); network: the witness's realised parameters.
        outputs: the realised network's float64 outputs at ``x``; nominal_outputs: the nominal's.
        reason: why ``unknown`` (or a note); times: seconds per stage (falsify, bounds, build, solve).
    """

    status: ParamOutcome
    margin: float | None = None
    proof: str | None = None
    x: np.ndarray | None = None
    network: Network | None = None
    outputs: np.ndarray | None = None
    nominal_outputs: np.ndarray | None = None
    reason: str = ""
    times: dict = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return float(sum(self.times.values()))

    def to_dict(self, with_witness: bool = False) -> dict:
        """JSON-ready dict; with ``with_witness`` also the input and the realised weights and biases."""
        out = {"status": self.status, "margin": self.margin, "proof": self.proof, "reason": self.reason,
               "seconds": self.seconds, "times": dict(self.times)}
        if self.outputs is not None:
            out["outputs"] = self.outputs.tolist()
            out["nominal_outputs"] = None if self.nominal_outputs is None else self.nominal_outputs.tolist()
        if with_witness and self.x is not None:
            out["x"] = self.x.tolist()
            if self.network is not None:
                out["weights"] = [layer.W.tolist() for layer in self.network.layers]
                out["biases"] = [layer.b.tolist() for layer in self.network.layers]
        return out


@dataclass
class ParamOptimum:
    """Optimum of ``c^T y`` over both boxes.

    Attributes:
        status: ``optimal`` (the solver proved it within its gap), ``time_limit`` (an incumbent and a
            bound) or ``unknown`` (no re-checked incumbent).
        sense: ``min`` or ``max``.
        value: ``c^T y`` of the witness's realised network at ``x`` in float64 (always attained).
        bound: the solver's proven bound (below for ``min``, above for ``max``), or None.
        x, network: the witness input and realised parameters.
        reference_value: for a pair of networks, the reference's value at ``x`` (float64).
    """

    status: str
    sense: str
    value: float | None
    bound: float | None
    x: np.ndarray | None = None
    network: Network | None = None
    reference_value: float | None = None
    reason: str = ""
    times: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("status", "sense", "value", "bound", "reason", "times")}


def is_flip(slack: float, strict: bool) -> bool:
    """Whether ``slack`` meets the condition: ``> 0`` when ``strict``, else ``>= 0``."""
    return slack > 0.0 if strict else slack >= 0.0


def slack_upper_bound(bounds: Bounds, conjunction: OutputConjunction) -> float:
    """``min_j (c_j - min A_j . y)`` over the output bounds: no output in them has a larger slack."""
    A = np.atleast_2d(np.asarray(conjunction[0], dtype=np.float64))
    c = np.atleast_1d(np.asarray(conjunction[1], dtype=np.float64))
    lowest = np.maximum(A, 0.0) @ bounds.lower[-1] + np.minimum(A, 0.0) @ bounds.upper[-1]
    return float(np.min(c - lowest))


def param_bounds_method(options: SolveOptions) -> str:
    """The parameter bound level of ``options`` (``interval`` or ``lp``)."""
    if options.bounds not in PARAM_BOUNDS_METHODS:
        raise InvalidInput(f"parameter questions use bounds {PARAM_BOUNDS_METHODS}, not {options.bounds!r}")
    return options.bounds


class ParamProblem:
    """One persistent MILP for (network, parameter box, input box) that answers every condition.

    Args:
        net: the nominal network; box: its parameter box; lower, upper: the input box (float64
        ``(n_inputs,)``, equal for a fixed input); options: solver, time limit, threads, bound level
        (``interval`` or ``lp``; the falsifier of ``options`` is not used: see ``attack`` below).
    """

    def __init__(self, net: Network, box: ParamBox, lower: np.ndarray, upper: np.ndarray,
                 options: SolveOptions | None = None):
        self.options = options or SolveOptions()
        self.method = param_bounds_method(self.options)
        box.check(net)
        self.net, self.box = net, box
        self.lower, self.upper = check_input_box(net, lower, upper)
        self._bounds: Bounds | None = None
        self._enc: EncodedNetwork | None = None
        self.times = {"falsify": 0.0, "bounds": 0.0, "build": 0.0, "solve": 0.0}

    def compute_bounds(self, deadline: Deadline | None = None) -> Bounds:
        """The parameter-aware bounds, computed once."""
        if self._bounds is None:
            self._bounds = compute_param_bounds(self.net, self.box, self.lower, self.upper, self.method,  # type: ignore[arg-type]
                                                deadline, self.options.threads)
            self.times["bounds"] += self._bounds.seconds
        return self._bounds

    @property
    def encoding(self) -> EncodedNetwork:
        if self._enc is None:
            start = time.perf_counter()
            enc = encode(self.net, self.compute_bounds(), parameter_band=self.box.bands())
            enc.block.objective = pyo.Objective(expr=0.0, sense=pyo.minimize)
            self._enc = enc
            self.times["build"] += time.perf_counter() - start
        return self._enc

    def verdict(self, status: ParamOutcome, **fields) -> ParamVerdict:
        return ParamVerdict(status, times=dict(self.times), **fields)

    def check(self, x: np.ndarray, network: Network, conjunctions: Sequence[OutputConjunction], strict: bool,
              proof: str) -> ParamVerdict | None:
        """A ``flips`` verdict if ``network`` lies in the box and meets the condition at ``x``, else None."""
        x = np.clip(np.asarray(x, dtype=np.float64).reshape(-1), self.lower, self.upper)
        if not self.box.contains(self.net, network):
            return None
        outputs = network.forward(x)
        slack = disjunction_slack(outputs, conjunctions)
        if not is_flip(slack, strict):
            return None
        return self.verdict("flips", margin=slack, proof=proof, x=x, network=network, outputs=outputs,
                            nominal_outputs=self.net.forward(x))

    def _interval_proves(self, conjunctions: Sequence[OutputConjunction], strict: bool) -> bool:
        """Whether interval bounds (milliseconds, before any search) already exclude every conjunction."""
        start = time.perf_counter()
        bounds = compute_param_bounds(self.net, self.box, self.lower, self.upper, "interval")
        self.times["bounds"] += time.perf_counter() - start
        return all(not is_flip(slack_upper_bound(bounds, c), strict) for c in conjunctions)

    def search(self, conjunctions: Sequence[OutputConjunction], attack: ParamAttack,
               strict: bool) -> tuple[ParamVerdict | None, np.ndarray, Network]:
        """``param_pgd``: its re-checked verdict (or None), and its point and network as a MIP start."""
        start = time.perf_counter()
        x, deltas, _ = param_pgd(self.net, self.box, self.lower, self.upper, conjunctions, attack)
        network = self.box.realise(self.net, deltas)
        self.times["falsify"] += time.perf_counter() - start
        return self.check(x, network, conjunctions, strict, "pgd"), x, network

    def decide(self, conjunctions: Sequence[OutputConjunction], *, strict: bool = False, optimise: bool = False,
               attack: ParamAttack | None = ParamAttack(), deadline: Deadline | None = None) -> ParamVerdict:
        """The verdict for the condition ``OR_i (A_i y <= c_i)`` (see the module docstring).

        Args:
            strict: the condition needs slack ``> 0`` (a changed label) instead of ``>= 0``.
            optimise: maximise each conjunction's slack (``margin`` is then the proven optimum) rather
                than only deciding its sign with the solver's cutoff.
            attack: ``param_pgd`` settings, or None to skip it.
            deadline: default: the solver's time limit from now; covers every stage.
        """
        if not conjunctions:
            raise InvalidInput("the unsafe condition needs at least one conjunction")
        deadline = deadline or self.options.deadline()
        centre = 0.5 * (self.lower + self.upper)
        found = self.check(centre, self.net, conjunctions, strict, "nominal")
        if found is not None:
            return found
        if not optimise and self._interval_proves(conjunctions, strict):
            return self.verdict("robust", proof="bounds",
                                reason="interval bounds over both boxes exclude the condition")
        start_x, start_net = centre, self.net
        if attack is not None:
            found, start_x, start_net = self.search(conjunctions, attack, strict)
            if found is not None:
                return found
        if deadline.expired():
            return self.verdict("unknown", reason=f"time limit ({deadline.seconds} s) reached in param_pgd")
        bounds = self.compute_bounds(deadline)
        margins, proofs, undecided = [], set(), None
        for index, conjunction in enumerate(conjunctions):
            if not optimise and not is_flip(slack_upper_bound(bounds, conjunction), strict):
                margins.append(slack_upper_bound(bounds, conjunction))
                proofs.add("bounds")
                continue
            if deadline.expired():
                undecided = self.verdict("unknown", reason=f"time limit ({deadline.seconds} s) reached before "
                                         "every conjunction was decided")
                break
            verdict = self._solve(index, conjunction, conjunctions, strict, optimise, deadline, start_x, start_net)
            if verdict.status == "flips":
                return verdict
            if verdict.status == "unknown":
                undecided = verdict
                continue
            margins.append(verdict.margin)
            proofs.add(verdict.proof)
        if undecided is not None:
            return undecided
        margin = None if any(m is None for m in margins) else max(margins)
        return self.verdict("robust", margin=margin, proof="milp" if "milp" in proofs else "bounds",
                            reason="no parameter in the box meets the condition")

    def optimise_output(self, coefficients: np.ndarray, sense: Literal["min", "max"] = "max",
                        attack: ParamAttack | None = ParamAttack(),
                        deadline: Deadline | None = None) -> ParamOptimum:
        """Minimise or maximise ``c^T y`` (``c`` float64 ``(n_outputs,)``) over both boxes.

        ``param_pgd`` (on the slack ``+-c^T y``) gives the MIP start; the value reported is always
        the float64 value of a realised witness, the bound the solver's proof.
        """
        if sense not in ("min", "max"):
            raise InvalidInput(f"sense must be 'min' or 'max', got {sense!r}")
        c = np.asarray(coefficients, dtype=np.float64).reshape(-1)
        if c.shape != (self.net.n_outputs,):
            raise InvalidInput(f"need {self.net.n_outputs} output coefficients, got {c.size}")
        sign = 1.0 if sense == "max" else -1.0
        deadline = deadline or self.options.deadline()
        start_x, start_net = 0.5 * (self.lower + self.upper), self.net
        if attack is not None:
            begin = time.perf_counter()
            start_x, deltas, _ = param_pgd(self.net, self.box, self.lower, self.upper,
                                           [(-sign * c[None, :], np.zeros(1))], attack)
            start_net = self.box.realise(self.net, deltas)
            self.times["falsify"] += time.perf_counter() - begin
        self.compute_bounds(deadline)
        enc = self.encoding
        enc.block.objective.set_value(-sign * sum(float(c[j]) * enc.logits[j] for j in np.flatnonzero(c)))
        enc.relax_for_objective(-sign * c)
        enc.set_point(start_x, start_net)
        if deadline.expired():
            return ParamOptimum("unknown", sense, None, None, reason="time limit reached before the MILP",
                                times=dict(self.times))
        result = self.options.milp_solver.solve(enc.block, deadline.left(), warm_start=True, focus="bound")
        self.times["solve"] += result.seconds
        enc.relax_for_objective(None)
        bound = None if result.bound is None else -sign * result.bound
        if not result.has_solution:
            return ParamOptimum("unknown", sense, None, bound, reason=unknown_reason(result, deadline.seconds),
                                times=dict(self.times))
        x, network = realise_solution(self.net, self.box, enc)
        if not self.box.contains(self.net, network):
            return ParamOptimum("unknown", sense, None, bound, reason="the realised witness left the box",
                                times=dict(self.times))
        value = float(c @ network.forward(x))
        status = "optimal" if result.status == "optimal" else "time_limit"
        return ParamOptimum(status, sense, value, bound, x, network, times=dict(self.times))

    def _solve(self, index: int, conjunction: OutputConjunction, conjunctions: Sequence[OutputConjunction],
               strict: bool, optimise: bool, deadline: Deadline, start_x: np.ndarray,
               start_net: Network) -> ParamVerdict:
        """One conjunction's MILP on the shared encoding; its components are removed afterwards."""
        enc = self.encoding
        name = f"question{index}"
        build = time.perf_counter()
        slack = add_disjunction(enc, [conjunction], name)
        self.times["build"] += time.perf_counter() - build
        engine = self.options.milp_solver
        try:
            enc.block.objective.set_value(-slack)
            result = None
            for decide in ([False] if optimise else [True, False]):
                if deadline.expired():
                    break
                if decide:
                    result = engine.solve(enc.block, deadline.left(), decide_below=0.0 if strict else _STRICT,
                                          focus="bound")
                else:
                    enc.set_point(start_x, start_net)
                    result = engine.solve(enc.block, deadline.left(), warm_start=True, focus="bound")
                self.times["solve"] += result.seconds
                if result.has_solution:
                    x, network = realise_solution(self.net, self.box, enc)
                    found = self.check(x, network, conjunctions, strict, "milp")
                    if found is not None:
                        return found
                if decide and result.status == "infeasible":
                    return self.verdict("robust", proof="milp", reason="the cutoff proved the condition unreachable")
                if not decide and result.bound is not None and result.status in ("optimal", "time_limit"):
                    worst = -result.bound
                    if not is_flip(worst, strict):
                        return self.verdict("robust", margin=worst, proof="milp",
                                            reason=f"proven largest slack {worst:.6g}")
                if result.status in ("time_limit", "error"):
                    break
            if result is None:
                return self.verdict("unknown", reason=f"time limit ({deadline.seconds} s) reached before the MILP")
            return self.verdict("unknown", reason=unknown_reason(result, deadline.seconds))
        finally:
            enc.block.del_component(name)
