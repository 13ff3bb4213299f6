"""One persistent MILP per (network, image, eps), and the checked verdicts it gives.

Soundness rules enforced here, and only here:

* ``robust`` only from a proof that no input of the box has a margin ``< 0`` (a tie is not a
  counterexample): sound bounds, the solver's cutoff proving that no solution lies below 0, or a
  proven objective bound > 0. A time limit without such a proof is ``unknown``.
* ``adversarial`` only with a counterexample that lies in the input box and is misclassified by the
  float64 :meth:`Network.forward` (:func:`recheck`). A solver point that fails this re-check is never
  reported as adversarial: the verdict becomes ``unknown`` with the reason.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pyomo.environ as pyo

from robustmip.bounds import Bounds, compute_bounds
from robustmip.deadline import Deadline
from robustmip.errors import InvalidInput
from robustmip.milp.encode import EncodedNetwork, encode
from robustmip.milp.objectives import (
    candidate_targets,
    targeted_margin,
    untargeted_margin,
)
from robustmip.milp.options import SolveOptions
from robustmip.network import Network
from robustmip.solvers import SolveResult
from robustmip.spec import (
    check_eps,
    check_image,
    input_box,
    margin_coefficients,
    margin_matrix,
    robustness_conjunctions,
)

Outcome = Literal["robust", "adversarial", "unknown"]


@dataclass
class Verdict:
    """Answer to "is there an input in the box that the net assigns to another class (or ``target``)?"

    Attributes:
        status: ``robust`` (proved), ``adversarial`` (re-checked counterexample) or ``unknown``.
        label: the true class; target: the class attacked, or None (untargeted).
        eps: l-infinity radius of the box (input units).
        objective: the MILP's margin ``z_label - z_target`` (OFV) at its incumbent, if any.
        bound: the solver's proven lower bound on that margin, if any.
        counterexample: the adversarial input (the net's input shape), float64.
        counterexample_margin: ``z_label - max_{t != label} z_t`` (or ``- z_target``) of the
            counterexample in the float64 forward pass (negative).
        predicted: the class the float64 forward pass gives the counterexample.
        distortion: l-infinity distance of the counterexample from the image.
        proof: what decided it: ``clean`` (misclassified already), ``pgd``, ``bounds``, ``milp``.
        reason: why the status is ``unknown`` (or a note).
        times: seconds spent in ``falsify``, ``bounds``, ``build`` and ``solve`` (bounds and build
            are shared by all questions asked of one :class:`ImageProblem`).
    """

    status: Outcome
    label: int
    eps: float
    target: int | None = None
    objective: float | None = None
    bound: float | None = None
    solver_status: str = ""
    counterexample: np.ndarray | None = None
    counterexample_margin: float | None = None
    predicted: int | None = None
    distortion: float | None = None
    proof: str | None = None
    reason: str = ""
    times: dict = field(default_factory=dict)

    def to_dict(self, with_counterexample: bool = False) -> dict:
        """JSON-ready dict (the counterexample only when asked, as a flat list)."""
        out = {k: getattr(self, k) for k in (
            "status", "label", "eps", "target", "objective", "bound", "solver_status",
            "counterexample_margin", "predicted", "distortion", "proof", "reason",
        )}
        out["times"] = dict(self.times)
        if with_counterexample and self.counterexample is not None:
            out["counterexample"] = self.counterexample.reshape(-1).tolist()
        return out


def recheck(
    net: Network, candidate: np.ndarray, label: int, box: tuple[np.ndarray, np.ndarray], target: int | None = None
) -> tuple[bool, np.ndarray, float, int]:
    """Re-check a solver point with the float64 forward pass.

    The point is first projected onto the box (solver tolerances can leave it ``1e-9`` outside).

    Returns:
        ``(is_adversarial, point, margin, predicted)`` with ``margin = z_label - max_{t != label} z_t``
        (or ``z_label - z_target``); adversarial iff the margin is < 0.
    """
    point = np.clip(np.asarray(candidate, dtype=np.float64).reshape(-1), box[0], box[1])
    logits = net.forward(point)
    if target is None:
        others = np.delete(logits, label)
        margin = float(logits[label] - others.max())
    else:
        margin = float(logits[label] - logits[target])
    return margin < 0.0, point, margin, int(np.argmax(logits))


def unknown_reason(result: SolveResult, time_limit: float | None) -> str:
    """Why a solve decided nothing, for a verdict's ``reason``."""
    if result.status == "time_limit":
        return f"time limit ({time_limit} s) reached without a proof or a checked counterexample"
    if result.status == "error":
        return f"solver error: {result.message}"
    if result.has_solution and result.objective is not None and result.objective < 0:
        return (
            f"the solver's point (margin {result.objective:.3g}) failed the float64 re-check "
            "(numerical trouble); nothing is claimed"
        )
    if result.has_solution and result.bound is None:
        return f"the solver ended {result.status} ({result.message}) without a proven bound; nothing is claimed"
    if result.has_solution:
        return f"optimal margin {result.objective:.3g} is not positive but no strict counterexample exists (tie)"
    return f"solver ended with status {result.status} ({result.message})"


class ImageProblem:
    """One persistent MILP for (network, image, eps) that answers every target's question.

    Bounds are computed on first need and the Pyomo model is built on first use and kept, with its
    solver, so later targets only change the objective. With a falsifier in the options (e.g. PGD,
    see :mod:`robustmip.attacks.falsify`), every question first searches the box for the target: a
    re-checked counterexample answers a decision without any MILP (nor bounds), and otherwise the
    best point found seeds the MILP as its MIP start, letting the solver focus on the bound.

    Args:
        net: the network; x: the image (any shape with ``net.n_inputs`` values, in the input domain);
        label: its true class; eps: l-infinity radius in input units;
        options: solver (with its time limit and threads), bound level, domain, falsifier.
    """

    def __init__(self, net: Network, x: np.ndarray, label: int, eps: float, options: SolveOptions | None = None):
        self.options = options or SolveOptions()
        self.options.require_milp("ImageProblem")
        self.net = net
        self.x = check_image(x, label, net.n_inputs, net.n_outputs, self.options.domain, net.input_shape)
        self.label = int(label)
        self.eps = check_eps(eps)
        self.box = input_box(self.x, self.eps, *self.options.domain)
        self.solver = self.options.milp_solver
        self._bounds: Bounds | None = None
        self._enc: EncodedNetwork | None = None
        self._untargeted: dict[tuple[int, ...], object] = {}
        self.build_seconds = 0.0
        self.falsify_seconds = 0.0

    def new_deadline(self) -> Deadline:
        """A deadline of one question: the solver's time limit from now."""
        return self.options.deadline()

    def compute_bounds(self, deadline: Deadline | None = None) -> Bounds:
        """The box's bounds, computed once (LPs stop at ``deadline``; the bounds stay sound)."""
        if self._bounds is None:
            self._bounds = compute_bounds(self.net, *self.box, method=self.options.bounds,
                                          threads=self.solver.threads, deadline=deadline,
                                          spec=margin_matrix(self.net.n_outputs, self.label))
        return self._bounds

    @property
    def bounds(self) -> Bounds:
        return self.compute_bounds()

    @property
    def encoding(self) -> EncodedNetwork:
        if self._enc is None:
            start = time.perf_counter()
            enc = encode(self.net, self.bounds)
            enc.block.objective = pyo.Objective(expr=0.0, sense=pyo.minimize)
            self._enc = enc
            self.build_seconds += time.perf_counter() - start
        return self._enc

    def candidate_targets(self, deadline: Deadline | None = None) -> list[int]:
        """Classes that the bounds do not already rule out."""
        return candidate_targets(self.compute_bounds(deadline), self.label)

    def times(self, solve_seconds: float = 0.0, falsify: float = 0.0) -> dict:
        """Seconds per stage for a verdict: ``falsify``, ``bounds``, ``build``, ``solve``."""
        return {
            "falsify": falsify,
            "bounds": 0.0 if self._bounds is None else self._bounds.seconds,
            "build": self.build_seconds,
            "solve": solve_seconds,
        }

    def search(self, target: int | None = None) -> tuple[np.ndarray | None, float]:
        """Run the falsifier on "class ``target`` (any class if None) beats the label" over the box.

        Returns its point (inside the box, or None without falsifier) and the seconds it took.
        """
        falsifier = self.options.falsifier
        if falsifier is None:
            return None, 0.0
        start = time.perf_counter()
        targets = [t for t in range(self.net.n_outputs) if t != self.label] if target is None else [int(target)]
        point = falsifier(self.net, *self.box, robustness_conjunctions(self.net.n_outputs, self.label, targets))
        seconds = time.perf_counter() - start
        self.falsify_seconds += seconds
        if point is None:
            return None, seconds
        return np.clip(np.asarray(point, dtype=np.float64).reshape(-1), *self.box), seconds

    def check_counterexample(self, point: np.ndarray, target: int | None, proof: str,
                             verdict: Verdict | None = None) -> Verdict | None:
        """An ``adversarial`` verdict if ``point`` passes the float64 re-check, else None.

        With ``verdict`` given, that verdict is filled in (and returned) instead of a new one.
        """
        ok, point, margin, predicted = recheck(self.net, point, self.label, self.box, target)
        if not ok:
            return None
        verdict = verdict or Verdict("unknown", self.label, self.eps, target)
        verdict.status, verdict.proof = "adversarial", proof
        verdict.counterexample = point.reshape(self.net.input_shape)
        verdict.counterexample_margin, verdict.predicted = margin, predicted
        verdict.distortion = float(np.abs(point - self.x).max())
        return verdict

    def margin_expression(self, target: int | None, decision: bool):
        """The margin as a Pyomo expression; untargeted decisions skip the targets the bounds rule out."""
        enc = self.encoding
        if target is not None:
            return targeted_margin(enc, self.label, target)
        targets = tuple(self.candidate_targets()) if decision else tuple(
            t for t in range(self.net.n_outputs) if t != self.label
        )
        if targets not in self._untargeted:
            start = time.perf_counter()
            name = f"untargeted{len(self._untargeted)}"
            self._untargeted[targets] = untargeted_margin(enc, self.label, list(targets), name)
            self.build_seconds += time.perf_counter() - start
        return self._untargeted[targets]

    def _expired(self, target: int | None, deadline: Deadline, falsify: float) -> Verdict:
        return Verdict("unknown", self.label, self.eps, target, solver_status="time_limit",
                       times=self.times(0.0, falsify),
                       reason=f"time limit ({deadline.seconds} s) reached before the MILP was solved")

    def margin(
        self, target: int | None = None, decision: bool = False, deadline: Deadline | None = None,
        start: np.ndarray | None = None,
    ) -> Verdict:
        """Minimise the margin ``z_label - z_target`` (untargeted: ``- max_t z_t``) over the box.

        Args:
            target: the class to reach, or None for any class.
            decision: answer only robust / adversarial. The falsifier's counterexample (if any)
                answers without a MILP; targets the bounds rule out are robust without a solve;
                otherwise the MILP is asked "is the margin below 0?" with the solver's cutoff
                (it stops at the first counterexample or once the bound proves the margin >= 0).
                Without ``decision`` the MILP is solved to optimality for the OFV.
            deadline: when this question must end (default: the solver's time limit from now);
                bounds, model building and the solve all draw from it.
            start: an input in the box whose forward pass seeds the optimisation as a MIP start
                (default: the falsifier's best point, else the image itself, always feasible).
        """
        if target is not None and (not 0 <= int(target) < self.net.n_outputs or int(target) == self.label):
            raise InvalidInput(f"target {target} must be a class other than the label {self.label}")
        deadline = deadline or self.new_deadline()
        searched, falsify = (None, 0.0) if start is not None else self.search(target)
        if decision and searched is not None:
            verdict = Verdict("unknown", self.label, self.eps, target, times=self.times(0.0, falsify))
            if self.check_counterexample(searched, target, "pgd", verdict) is not None:
                return verdict
        if deadline.expired():
            return self._expired(target, deadline, falsify)
        candidates = self.candidate_targets(deadline)
        if decision and (not candidates or (target is not None and target not in candidates)):
            return Verdict("robust", self.label, self.eps, target, proof="bounds",
                           reason="bounds: the label's logit beats every target's", times=self.times(0.0, falsify))
        if deadline.expired():
            return self._expired(target, deadline, falsify)
        expr = self.margin_expression(target, decision)
        enc = self.encoding
        enc.block.objective.set_value(expr)
        enc.relax_for_objective(None if target is None else margin_coefficients(self.net.n_outputs, self.label, target))
        focus = "bound" if (start is not None or searched is not None) else "balanced"
        if decision:
            if deadline.expired():
                return self._expired(target, deadline, falsify)
            result = self.solver.solve(enc.block, deadline.left(), decide_below=0.0, focus=focus)
            verdict = self.interpret(result, target, decision=True, falsify=falsify, deadline=deadline)
            if verdict.status != "unknown" or not result.has_solution:
                return verdict
            # A near-tie point failed the float64 re-check: ask for the optimum instead.
        if deadline.expired():
            return self._expired(target, deadline, falsify)
        point = start if start is not None else (searched if searched is not None else self.x)
        enc.set_point(point)
        result = self.solver.solve(enc.block, deadline.left(), warm_start=True, focus=focus)
        return self.interpret(result, target, decision=False, falsify=falsify, deadline=deadline)

    def interpret(self, result: SolveResult, target: int | None, decision: bool, falsify: float = 0.0,
                  deadline: Deadline | None = None) -> Verdict:
        """The verdict a solve supports (see the module docstring for the rules)."""
        verdict = Verdict(
            "unknown", self.label, self.eps, target,
            objective=None if decision else result.objective,
            bound=None if decision else result.bound,
            solver_status=result.status, times=self.times(result.seconds, falsify),
        )
        if result.has_solution and self.check_counterexample(self.encoding.input_values(), target, "milp",
                                                             verdict) is not None:
            return verdict
        if decision and result.status == "infeasible":
            verdict.status, verdict.proof = "robust", "milp"
            verdict.reason = "MILP: the cutoff proved the margin >= 0 (no input below it)"
            return verdict
        if not decision and result.bound is not None and result.bound > 0.0 and result.status in ("optimal", "time_limit"):
            verdict.status, verdict.proof = "robust", "milp"
            verdict.reason = f"proven lower bound {result.bound:.6g} > 0 on the margin"
            return verdict
        limit = deadline.seconds if deadline is not None else self.solver.time_limit
        verdict.reason = unknown_reason(result, limit)
        return verdict
