"""The user-facing questions about one image: verify, the most adversarial input, minimal distortion.

Each builds an :class:`~robustmip.milp.problem.ImageProblem` and takes its verdicts, with their
soundness rules, from there; one deadline (the solver's time limit) covers every stage of a call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pyomo.environ as pyo

from robustmip.deadline import Deadline
from robustmip.milp.objectives import add_linf_distortion
from robustmip.milp.options import SolveOptions
from robustmip.milp.problem import ImageProblem, Verdict, recheck, unknown_reason
from robustmip.network import Network
from robustmip.spec import check_eps, check_image


def verify(
    net: Network,
    x: np.ndarray,
    label: int,
    eps: float,
    options: SolveOptions | None = None,
    *,
    strategy: Literal["split", "joint"] = "split",
    deadline: Deadline | None = None,
) -> Verdict:
    """Decide whether every input within l-infinity ``eps`` of ``x`` (clipped to the domain) keeps ``label``.

    Returns a :class:`Verdict`: ``robust`` (proved by bounds or the MILP), ``adversarial`` (with a
    re-checked counterexample; an image that is misclassified already is its own counterexample) or
    ``unknown`` (with the reason). The falsifier of ``options`` (e.g. PGD) is tried first. Then
    ``strategy="split"`` (default) asks one targeted decision MILP per target the bounds leave open,
    on one persistent model; ``"joint"`` asks one untargeted MILP. The solver's ``time_limit`` is
    the total for the whole call (seconds): falsifier, bounds, model building and every target
    (``deadline``: a deadline already running, e.g. the engine choice's).
    """
    options = options or SolveOptions()
    options.require_milp("robustmip.milp.verify")
    flat = check_image(x, label, net.n_inputs, net.n_outputs, options.domain, net.input_shape)
    eps = check_eps(eps)
    clean = clean_verdict(net, flat, int(label), eps)
    if clean is not None:
        return clean
    deadline = deadline or options.deadline()
    problem = ImageProblem(net, flat, label, eps, options)
    point, seconds = problem.search(None)
    if point is not None:
        verdict = problem.check_counterexample(point, None, "pgd")
        if verdict is not None:
            verdict.times = problem.times(0.0, seconds)
            return verdict
    if deadline.expired():
        return Verdict("unknown", int(label), eps, times=problem.times(0.0, seconds),
                       reason=f"time limit ({deadline.seconds} s) reached in the falsifier")
    targets = problem.candidate_targets(deadline)
    if strategy == "joint" or not targets:
        return problem.margin(decision=True, deadline=deadline)
    solve_seconds, undecided = 0.0, None
    for target in targets:
        if deadline.expired():
            undecided = Verdict("unknown", int(label), eps,
                                reason=f"time limit ({deadline.seconds} s) reached before every target was decided")
            break
        verdict = problem.margin(target=target, decision=True, deadline=deadline)
        solve_seconds += verdict.times.get("solve", 0.0)
        if verdict.status == "adversarial":
            verdict.times["solve"] = solve_seconds
            return verdict
        if verdict.status == "unknown":
            undecided = verdict
    times = problem.times(solve_seconds, problem.falsify_seconds)
    if undecided is not None:
        undecided.target, undecided.times = None, times
        return undecided
    return Verdict("robust", int(label), eps, proof="milp", times=times,
                   reason=f"MILP: margin <= 0 proved infeasible for each of {len(targets)} targets")


def clean_verdict(net: Network, flat: np.ndarray, label: int, eps: float) -> Verdict | None:
    """``adversarial`` (proof ``clean``) when the image itself is misclassified: its own counterexample."""
    clean_ok, _, margin, predicted = recheck(net, flat, int(label), (flat, flat))
    if not clean_ok:
        return None
    return Verdict(
        "adversarial", int(label), eps, counterexample=flat.reshape(net.input_shape),
        counterexample_margin=margin, predicted=predicted, distortion=0.0, proof="clean",
        reason="the image itself is misclassified",
    )


def find_adversarial(
    net: Network,
    x: np.ndarray,
    label: int,
    eps: float,
    target: int | None = None,
    options: SolveOptions | None = None,
) -> Verdict:
    """The most adversarial input in the box: minimise the margin to optimality (the OFV).

    Returns a :class:`Verdict` whose ``objective``/``bound`` are the OFV and its proven bound and
    whose counterexample, when the OFV is negative, passed the float64 re-check.
    """
    return ImageProblem(net, x, label, eps, options).margin(target=target, decision=False)


@dataclass
class DistortionResult:
    """Smallest l-infinity distortion that changes the class.

    Attributes:
        status: ``optimal``, ``time_limit``, ``robust`` (no adversarial input up to ``max_eps``) or ``unknown``.
        distortion: l-infinity norm of the re-checked counterexample found (an upper bound on the
            minimum), or None.
        lower_bound: the solver's proven lower bound on the distortion needed to reach margin
            ``<= -margin_tolerance``.
        counterexample, predicted: the input and its class in the float64 forward pass.
    """

    status: str
    distortion: float | None
    lower_bound: float | None
    counterexample: np.ndarray | None
    predicted: int | None
    margin_tolerance: float
    reason: str = ""
    times: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("status", "distortion", "lower_bound", "predicted", "margin_tolerance", "reason", "times")}


def minimal_distortion(
    net: Network,
    x: np.ndarray,
    label: int,
    target: int | None = None,
    options: SolveOptions | None = None,
    *,
    max_eps: float = 1.0,
    margin_tolerance: float = 1e-4,
) -> DistortionResult:
    """Minimise ``||x' - x||_inf`` subject to ``z_label - z_target <= -margin_tolerance`` (any target if None).

    The strict margin keeps the optimum's counterexample clear of ties so that it passes the float64
    re-check; the minimum distortion of margin ``<= 0`` is at most the value returned.
    ``max_eps`` bounds the search box (input units); the box is clipped to the domain.
    """
    problem = ImageProblem(net, x, label, max_eps, options)
    deadline: Deadline = problem.new_deadline()
    problem.compute_bounds(deadline)
    enc = problem.encoding
    distortion = add_linf_distortion(enc, problem.x)
    enc.block.misclassified = pyo.Constraint(expr=problem.margin_expression(target, decision=False) <= -margin_tolerance)
    enc.block.objective.set_value(distortion)
    if deadline.expired():
        return DistortionResult("unknown", None, None, None, None, margin_tolerance,
                                f"time limit ({deadline.seconds} s) reached before the MILP was solved", problem.times())
    result = problem.solver.solve(enc.block, deadline.left())
    times = problem.times(result.seconds)
    if result.status == "infeasible":
        return DistortionResult("robust", None, None, None, None, margin_tolerance,
                                f"no input within eps {max_eps} reaches the target margin", times)
    if result.has_solution:
        ok, point, _, predicted = recheck(net, enc.input_values(), problem.label, problem.box, target)
        if ok:
            status = "optimal" if result.status == "optimal" else "time_limit"
            return DistortionResult(status, float(np.abs(point - problem.x).max()), result.bound,
                                    point.reshape(net.input_shape), predicted, margin_tolerance, "", times)
    return DistortionResult("unknown", None, result.bound, None, None, margin_tolerance,
                            unknown_reason(result, deadline.seconds), times)
