"""The engine choice: the monolithic MILP or the branch-and-bound, per question, one options object, one deadline.

:class:`robustmip.milp.SolveOptions` ``engine`` says which: ``"milp"`` calls :mod:`robustmip.milp`
unchanged; ``"bab"`` runs the falsifier, the root bounds and :func:`robustmip.bab.branch_and_bound`
(the MILP settles its small domains); ``"auto"`` (:func:`choose_engine`) races both on two cores when
given two threads, else takes the MILP when the CROWN bounds leave at most
:data:`AUTO_MILP_UNSTABLE` ReLUs unstable and the branch-and-bound otherwise (and always the MILP
for networks the branch-and-bound does not take). Verdicts follow the rules of the MILP
engine: ``sat`` / ``adversarial`` only with a point re-checked by ``Network.forward``, ``unsat`` /
``robust`` only from sound bounds, a timeout is ``unknown``.

torch is imported only when the branch-and-bound runs.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Literal, Sequence

import numpy as np

from robustmip.attacks.milp_attack import TargetOptimum
from robustmip.bab.options import BabOptions
from robustmip.bab.portfolio import race
from robustmip.bab.question import Question
from robustmip.bounds import Bounds, compute_bounds
from robustmip.bounds.alpha import relu_layers_supported
from robustmip.deadline import Deadline
from robustmip.milp import ImageProblem, PropertyResult, SolveOptions, Verdict, recheck
from robustmip.milp import decide_output_property as milp_decide_output_property
from robustmip.milp import verify as milp_verify
from robustmip.milp.verify import clean_verdict
from robustmip.network import Network
from robustmip.solvers import MilpSolver
from robustmip.spec import OutputConjunction, check_eps, check_image, satisfies

AUTO_MILP_UNSTABLE = 20
"""With one thread, ``auto`` takes the MILP when the CROWN bounds leave at most this many ReLUs unstable
(small MILPs are fast and spare the import of torch), the branch-and-bound otherwise."""


def choose_engine(net: Network, lower: np.ndarray, upper: np.ndarray, options: SolveOptions,
                  deadline: Deadline) -> tuple[str, Bounds | None]:
    """``("milp" | "bab" | "portfolio", crown bounds or None)`` for ``options`` over the box.

    ``auto``: the MILP for networks the branch-and-bound does not take; with two threads or more both
    engines race (:mod:`robustmip.bab.portfolio`); with one, :data:`AUTO_MILP_UNSTABLE` decides.
    """
    if options.engine != "auto":
        return options.engine, None
    if not relu_layers_supported(net):
        return "milp", None
    if options.threads >= 2:
        return "portfolio", None
    crown = compute_bounds(net, lower, upper, "crown", deadline=deadline)
    return ("milp" if crown.n_unstable() <= AUTO_MILP_UNSTABLE else "bab"), crown


def _milp(options: SolveOptions) -> SolveOptions:
    return replace(options, engine="milp")


def _one_thread(options: SolveOptions) -> SolveOptions:
    """The options with a one-thread copy of the solver, no falsifier (it ran already), the MILP engine."""
    s = options.milp_solver
    solver = MilpSolver(s.name, s.time_limit, 1, s.mip_gap, s.verbose, s.options)
    return replace(options, solver=solver, falsifier=None, engine="milp")


def _bab_options(options: SolveOptions) -> BabOptions:
    return options.bab if options.bab is not None else BabOptions()


def _search(net: Network, question: Question, options: SolveOptions, deadline: Deadline, mode: str,
            start: np.ndarray | None, given: Bounds | None, stop: Callable[[], bool] | None = None, **gaps):
    """Root bounds (from ``given`` when the root starts at CROWN) and the branch-and-bound.

    A decision still open after ``refine_after`` seconds starts again with the MILP refinement of the
    root bounds (``refine_share`` of the time left): :class:`BabOptions`.
    """
    from robustmip.bab.root import root_bounds
    from robustmip.bab.search import branch_and_bound

    def run(bab: BabOptions, until: Deadline):
        root = root_bounds(net, question, bab, until, options.threads,
                           given=given if bab.root_bounds == "alpha" else None)
        result = branch_and_bound(net, question, mode=mode, options=bab, deadline=until, threads=options.threads,
                                  solver=options.milp_solver, start=start, root=root, stop=stop, **gaps)
        return result, {"bounds": root.seconds, "build": 0.0, "solve": result.stats.get("search_s", 0.0)}

    bab = _bab_options(options)
    restart = (mode == "decide" and bab.refine_seconds == 0 and math.isfinite(bab.refine_after)
               and deadline.left() is not None and deadline.left() > bab.refine_after)
    if not restart:
        return run(bab, deadline)
    result, times = run(bab, deadline.within(bab.refine_after))
    if result.status in ("sat", "unsat") or deadline.expired() or (stop is not None and stop()):
        return result, times
    refined = replace(bab, refine_seconds=bab.refine_share * deadline.left())
    result, again = run(refined, deadline)
    return result, {key: times[key] + again[key] for key in times}


def decide_output_property(
    net: Network,
    lower: np.ndarray,
    upper: np.ndarray,
    conjunctions: list[OutputConjunction],
    options: SolveOptions | None = None,
    *,
    deadline: Deadline | None = None,
    strategy: Literal["split", "joint"] = "split",
) -> PropertyResult:
    """Decide ``exists x in [lower, upper]: OR_i (A_i y(x) <= c_i)`` with the engine of ``options``.

    As :func:`robustmip.milp.decide_output_property` (``strategy`` is the MILP's); the
    branch-and-bound decides the whole disjunction in one search.
    """
    options = options or SolveOptions()
    deadline = deadline or options.deadline()
    engine, crown = choose_engine(net, lower, upper, options, deadline)
    if engine == "milp":
        return milp_decide_output_property(net, lower, upper, conjunctions, _milp(options), deadline=deadline,
                                           strategy=strategy)
    falsify = 0.0
    start = None
    if options.falsifier is not None:
        begin = time.perf_counter()
        candidate = options.falsifier(net, lower, upper, conjunctions)
        falsify = time.perf_counter() - begin
        if candidate is not None:
            start = np.clip(np.asarray(candidate, dtype=np.float64).reshape(-1), lower, upper)
            outputs = net.forward(start)
            if satisfies(outputs, conjunctions):
                return PropertyResult("sat", start, outputs, "pgd", times={"falsify": falsify})
    if deadline.expired():
        return PropertyResult("unknown", reason=f"time limit ({deadline.seconds} s) reached in the falsifier",
                              times={"falsify": falsify})
    question = Question.of(lower, upper, conjunctions, net.n_outputs)

    def bab(search_options: SolveOptions, stop: Callable[[], bool] | None = None) -> PropertyResult:
        result, times = _search(net, question, search_options, deadline, "decide", start, crown, stop)
        if result.status == "sat" and result.point is not None:
            outputs = net.forward(result.point)
            if satisfies(outputs, conjunctions):
                return PropertyResult("sat", result.point, outputs, "bab", times=times)
        if result.status == "unsat":
            return PropertyResult("unsat", proof="bab", reason=result.reason, times=times)
        return PropertyResult("unknown", reason=f"branch-and-bound: {result.reason}", times=times)

    if engine == "portfolio":
        single = _one_thread(options)
        outcome, _ = race(
            lambda child: milp_decide_output_property(net, lower, upper, conjunctions, single, deadline=child,
                                                      strategy=strategy),
            lambda stop: bab(single, stop), lambda r: r.status in ("sat", "unsat"), deadline)
    else:
        outcome = bab(options)
    outcome.times = {**outcome.times, "falsify": falsify}
    return outcome


def verify(
    net: Network,
    x: np.ndarray,
    label: int,
    eps: float,
    options: SolveOptions | None = None,
    *,
    strategy: Literal["split", "joint"] = "split",
) -> Verdict:
    """Is every input within l-infinity ``eps`` of ``x`` (clipped to the domain) classified ``label``?

    As :func:`robustmip.milp.verify` (``strategy`` is the MILP's), with the engine of ``options``; the
    branch-and-bound decides every target in one search.
    """
    options = options or SolveOptions()
    if options.engine == "milp":
        return milp_verify(net, x, label, eps, options, strategy=strategy)
    flat = check_image(x, label, net.n_inputs, net.n_outputs, options.domain, net.input_shape)
    eps = check_eps(eps)
    clean = clean_verdict(net, flat, int(label), eps)
    if clean is not None:
        return clean
    deadline = options.deadline()
    problem = ImageProblem(net, flat, label, eps, _milp(options))
    engine, crown = choose_engine(net, *problem.box, options, deadline)
    if engine == "milp":
        return milp_verify(net, flat, label, eps, _milp(options), strategy=strategy, deadline=deadline)
    point, falsify = problem.search(None)
    if point is not None:
        verdict = problem.check_counterexample(point, None, "pgd")
        if verdict is not None:
            verdict.times = {"falsify": falsify}
            return verdict
    if deadline.expired():
        return Verdict("unknown", int(label), eps, times={"falsify": falsify},
                       reason=f"time limit ({deadline.seconds} s) reached in the falsifier")
    targets = [t for t in range(net.n_outputs) if t != int(label)]
    question = Question.margin(*problem.box, net.n_outputs, int(label), targets)

    def bab(search_options: SolveOptions, stop: Callable[[], bool] | None = None) -> Verdict:
        result, times = _search(net, question, search_options, deadline, "decide", point, crown, stop)
        verdict = Verdict("unknown", int(label), eps, times=times, reason=f"branch-and-bound: {result.reason}")
        if result.status == "sat" and result.point is not None:
            problem.check_counterexample(result.point, None, "bab", verdict)
        elif result.status == "unsat":
            verdict.status, verdict.proof = "robust", "bab"
        return verdict

    if engine == "portfolio":
        single = _one_thread(options)
        verdict, _ = race(lambda child: milp_verify(net, flat, label, eps, single, strategy=strategy, deadline=child),
                          lambda stop: bab(single, stop), lambda v: v.status in ("adversarial", "robust"), deadline)
    else:
        verdict = bab(options)
    verdict.times = {**verdict.times, "falsify": falsify}
    return verdict


@dataclass
class MarginOptimum:
    """``min (y_label - y_target)`` over the box (``min_t`` over every other class when untargeted).

    Attributes:
        status: ``optimal`` (within the gap), ``time_limit`` or ``unknown``.
        lower_bound: sound lower bound of the minimum (``-inf`` if none).
        value: the margin at ``point`` in the float64 forward pass (an upper bound of the minimum), or None.
        point: the input attaining ``value`` (float64 ``(n_inputs,)``), or None.
        engine: ``milp`` or ``bab``; times: seconds per stage.
    """

    status: str
    lower_bound: float
    value: float | None
    point: np.ndarray | None
    engine: str
    reason: str = ""
    times: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"status": self.status, "lower_bound": self.lower_bound, "value": self.value,
                "engine": self.engine, "reason": self.reason, "times": dict(self.times)}


def optimize_margin(
    net: Network,
    x: np.ndarray,
    label: int,
    eps: float,
    target: int | None = None,
    options: SolveOptions | None = None,
    *,
    abs_gap: float = 1e-4,
    rel_gap: float = 1e-4,
) -> MarginOptimum:
    """The optimum of the targeted (or untargeted) margin over the l-infinity ball, to a stated gap.

    The branch-and-bound stops when ``value - lower_bound <= max(abs_gap, rel_gap |value|)``; the MILP
    engine solves to its solver's gap (:class:`robustmip.solvers.MilpSolver` ``mip_gap``). The
    falsifier's point (if any) is the first incumbent.
    """
    options = options or SolveOptions()
    flat = check_image(x, label, net.n_inputs, net.n_outputs, options.domain, net.input_shape)
    eps = check_eps(eps)
    deadline = options.deadline()
    problem = ImageProblem(net, flat, label, eps, _milp(options))
    engine, crown = choose_engine(net, *problem.box, options, deadline)
    targets = [t for t in range(net.n_outputs) if t != int(label)] if target is None else [int(target)]
    if engine == "milp":
        verdict = problem.margin(target=target, decision=False, deadline=deadline)
        point = problem.encoding.input_values() if verdict.objective is not None else None
        value = None
        if point is not None:
            _, point, value, _ = recheck(net, point, int(label), problem.box, target)
        status = "optimal" if verdict.solver_status == "optimal" else (
            "time_limit" if verdict.solver_status == "time_limit" else "unknown")
        lower = -np.inf if verdict.bound is None else float(verdict.bound)
        return MarginOptimum(status, lower, value, point, "milp", verdict.reason, verdict.times)
    point, falsify = problem.search(target)
    question = Question.margin(*problem.box, net.n_outputs, int(label), targets)
    result, times = _search(net, question, options, deadline, "optimize", point, crown,
                            abs_gap=abs_gap, rel_gap=rel_gap)
    return MarginOptimum(result.status, result.lower_bound, result.incumbent, result.point, "bab", result.reason,
                         {"falsify": falsify, **times})


def optimise_target(problem: ImageProblem, target: int, time_limits: Sequence[float], *,
                    abs_gap: float = 1e-5, rel_gap: float = 1e-4) -> TargetOptimum:
    """One target's max-margin optimum by the branch-and-bound: a study's optimiser
    (:data:`robustmip.attacks.milp_attack.Optimiser`, registered as ``bab`` in
    :data:`robustmip.studies.engines.ENGINES`).

    The search is anytime, so it runs once for the whole ladder (``sum(time_limits)`` seconds) and stops
    at the gap ``max(abs_gap, rel_gap |value|)``. The root starts from the problem's bounds (shared by
    its targets); the problem's falsifier gives the first incumbent; the problem's solver takes the
    hand-offs. The verdict carries the incumbent margin as ``objective``, the sound lower bound as
    ``bound``, ``solver_status`` ``optimal`` / ``time_limit`` / ``unknown``, and the re-checked
    counterexample when the margin is negative.
    """
    from robustmip.bab.root import root_bounds
    from robustmip.bab.search import branch_and_bound

    seconds = float(sum(time_limits))
    deadline = Deadline(seconds)
    options = problem.options
    start, falsify = problem.search(target)
    question = Question.margin(*problem.box, problem.net.n_outputs, problem.label, [int(target)])
    bab = _bab_options(options)
    root = root_bounds(problem.net, question, bab, deadline, options.threads, given=problem.compute_bounds(deadline))
    result = branch_and_bound(problem.net, question, mode="optimize", options=bab, deadline=deadline,
                              threads=options.threads, solver=problem.solver, start=start, root=root,
                              abs_gap=abs_gap, rel_gap=rel_gap)
    solve_s = falsify + root.seconds + result.stats.get("search_s", 0.0)
    verdict = Verdict("unknown", problem.label, problem.eps, int(target), objective=result.incumbent,
                      bound=result.lower_bound if np.isfinite(result.lower_bound) else None,
                      solver_status=result.status, reason=f"branch-and-bound: {result.reason}",
                      times={"falsify": falsify, "bounds": root.seconds, "build": 0.0,
                             "solve": result.stats.get("search_s", 0.0)})
    if result.incumbent is not None and result.incumbent < 0 and result.point is not None:
        problem.check_counterexample(result.point, int(target), "bab", verdict)
    elif result.lower_bound > 0:
        verdict.status, verdict.proof = "robust", "bab"
    return TargetOptimum(verdict, 1, seconds, solve_s)
