"""The exact MILP attack of Bai et al. 2020: for one image, minimise ``z_label - z_target`` for each target.

One persistent model per (network, image, eps) serves all of the image's targets
(:class:`robustmip.milp.ImageProblem`). Each target gives one row; a row with a negative optimum (OFV)
carries a counterexample that passed the float64 re-check.

A target's optimisation runs through an *optimiser* ``(problem, target, time_limits) ->``
:class:`TargetOptimum`; :func:`optimise_margin` (the MILP) is the default, and a caller may hand in
another engine with the same contract (the studies choose the engine by name).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

from robustmip.attacks.falsify import property_falsifier
from robustmip.bounds import BoundsMethod
from robustmip.deadline import Deadline
from robustmip.errors import InvalidInput
from robustmip.milp import ImageProblem, SolveOptions
from robustmip.milp.problem import Verdict
from robustmip.network import Network
from robustmip.solvers import MilpSolver


@dataclass
class TargetOptimum:
    """The best an engine did on one target's max-margin question, over a ladder of time limits.

    Attributes:
        verdict: the last attempt's verdict (``objective``: the incumbent margin ``z_label -
            z_target``, ``bound``: its proven lower bound, ``solver_status``: ``optimal`` once the
            solver closed its gap).
        attempts: solves run (one per rung of the ladder that was needed).
        time_limit: the last attempt's time limit (seconds).
        solve_s: seconds of every attempt's falsifier search and solve together.
    """

    verdict: Verdict
    attempts: int
    time_limit: float | None
    solve_s: float

    @property
    def gap(self) -> float | None:
        """``incumbent - bound`` (logit units, >= 0 up to tolerances), None without both."""
        v = self.verdict
        return None if v.objective is None or v.bound is None else float(v.objective - v.bound)

    @property
    def rel_gap(self) -> float | None:
        """``gap / |incumbent|`` (inf at a zero incumbent with a positive gap), None without both."""
        gap = self.gap
        if gap is None:
            return None
        scale = abs(float(self.verdict.objective))
        return gap / scale if scale > 0 else (0.0 if gap <= 0 else float("inf"))


Optimiser = Callable[[ImageProblem, int, Sequence[float]], TargetOptimum]
"""``(problem, target, time_limits) -> TargetOptimum``: one target's max-margin optimisation."""


def time_ladder(first: float, last: float | None = None, factor: float = 4.0) -> list[float]:
    """Time limits ``first, first * factor, ...`` up to ``last`` (which ends the ladder); ``[first]`` alone
    without ``last``. Seconds, each > 0."""
    if not (first > 0 and factor > 1):
        raise InvalidInput(f"a time ladder needs first > 0 and factor > 1, got {first} and {factor}")
    if last is None or last <= first:
        return [float(first)]
    ladder = [float(first)]
    while ladder[-1] * factor < last:
        ladder.append(ladder[-1] * factor)
    return ladder + [float(last)]


def optimise_margin(problem: ImageProblem, target: int, time_limits: Sequence[float]) -> TargetOptimum:
    """Minimise the targeted margin with the MILP, rerunning with the next, longer limit until optimal.

    The first attempt searches with the problem's falsifier (its best point is the MIP start); each
    later one starts from the previous incumbent (or the image), so no work on the primal side is
    lost. It stops at the first attempt whose solver status is not ``time_limit`` (``optimal``, or an
    error) or after the last limit.
    """
    if not time_limits:
        raise InvalidInput("optimise_margin needs at least one time limit")
    verdict, start, solve_s = None, None, 0.0
    for attempt, limit in enumerate(time_limits, 1):
        verdict = problem.margin(target=target, deadline=Deadline(limit), start=start)
        solve_s += verdict.times.get("solve", 0.0) + verdict.times.get("falsify", 0.0)
        if verdict.solver_status != "time_limit":
            break
        start = problem.encoding.input_values() if verdict.objective is not None else problem.x
    return TargetOptimum(verdict, attempt, float(limit), solve_s)


@dataclass
class AttackRow:
    """One (image, target) MILP.

    Attributes:
        status: ``adversarial`` (OFV < 0, re-checked), ``robust`` (proved OFV > 0) or ``unknown``.
        ofv: the optimal (or best found) margin ``z_label - z_target``; bound: its proven lower bound;
            gap: ``ofv - bound`` and rel_gap: ``gap / |ofv|`` of the optimisation (None without both).
        solver_status: ``optimal``, ``time_limit``, ... of the optimisation's last attempt.
        attempts: optimisation attempts (the time ladder's rungs used); time_limit: the last one's limit.
        bounds_s, build_s: the image's shared bound and model-building time (counted on its first row,
            0 on the others); solve_s: this target's PGD search and solves (every attempt).
        decision_status: the solver status of the decision MILP that settles an optimisation that ended
            without a proof (``decided by bounds`` when no solve was needed; None when no decision ran);
            decision_s: its seconds; time_s: the sum of all four times.
        distortion: l-infinity distance of the counterexample; predicted: its float64 class.
    """

    image: int
    label: int
    target: int
    eps: float
    status: str
    solver_status: str
    ofv: float | None
    bound: float | None
    bounds_s: float
    build_s: float
    solve_s: float
    time_s: float
    distortion: float | None
    predicted: int | None
    reason: str
    decision_status: str | None = None
    decision_s: float = 0.0
    gap: float | None = None
    rel_gap: float | None = None
    attempts: int = 1
    time_limit: float | None = None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def attack_image(
    net: Network,
    x: np.ndarray,
    label: int,
    eps: float,
    *,
    image: int = 0,
    targets: Sequence[int] | None = None,
    solver: str = "highs",
    time_limit: float | None = 60.0,
    time_limits: Sequence[float] | None = None,
    bounds_method: BoundsMethod = "lp",
    threads: int = 1,
    mip_gap: float = 1e-6,
    pgd_start: bool = True,
    decide_time_limit: float | None = None,
    optimiser: Optimiser = optimise_margin,
    settled: Mapping[int, dict] | None = None,
) -> tuple[list[AttackRow], dict[int, np.ndarray]]:
    """Targeted max-margin optimisations for every target of one image, solved to optimality.

    With ``pgd_start`` (default) a targeted PGD search runs before each MILP and its best point is the
    MIP start (faster with HiGHS, see benchmarks/README.md); its time is part of ``solve_s``.
    ``time_limits`` is a ladder of limits (seconds, see :func:`time_ladder`): an optimisation that
    stops at one without closing its gap is run again with the next (default: ``[time_limit]``);
    ``mip_gap`` is the solver's relative optimality gap.
    With ``decide_time_limit`` (seconds, > 0), an optimisation that stops at its last limit with
    neither a proof nor a counterexample is followed by a decision MILP ("is the margin below 0?",
    solver cutoff at 0, up to that many seconds): the row keeps the optimisation's incumbent and bound
    and takes the decision's verdict. On robustly trained nets a decision closes in seconds where the
    optimum does not (the cutoff prunes every node whose bound is >= 0).
    ``optimiser`` solves one target (default: :func:`optimise_margin`, the MILP). ``settled`` maps
    targets to rows (``AttackRow.to_dict()``) already solved to optimality: they are returned as they
    are, without a solve (their counterexamples are the caller's to keep).
    Returns the rows (one per target, in target order) and the re-checked counterexamples by target
    (flattened float64 ``(n_inputs,)``) of the targets solved here.
    """
    ladder = list(time_limits) if time_limits else [time_limit]
    options = SolveOptions(MilpSolver(solver, ladder[0], threads, mip_gap=mip_gap), bounds=bounds_method,
                           falsifier=property_falsifier() if pgd_start else None)
    problem = ImageProblem(net, x, label, eps, options)
    targets = [t for t in range(net.n_outputs) if t != label] if targets is None else list(targets)
    settled = settled or {}
    rows, examples = [], {}
    build_seen, bounds_counted = 0.0, False
    for target in targets:
        if target in settled:
            rows.append(AttackRow(**settled[target]))
            continue
        problem.compute_bounds()  # shared by every target, outside the per-MILP time limit
        optimum = optimiser(problem, target, ladder)
        build = problem.build_seconds - build_seen
        build_seen = problem.build_seconds
        bounds = 0.0 if bounds_counted else problem.bounds.seconds
        bounds_counted = True
        first = optimum.verdict
        verdict, decision_status, decision_s, ofv = first, None, 0.0, first.objective
        if first.status == "unknown" and first.solver_status == "time_limit" and decide_time_limit:
            # The falsifier has searched this target already: start from the image, skip a second search.
            started = time.perf_counter()
            verdict = problem.margin(target=target, decision=True, deadline=Deadline(decide_time_limit),
                                     start=problem.x)
            decision_status = verdict.solver_status or f"decided by {verdict.proof}"
            decision_s = time.perf_counter() - started
            if verdict.counterexample_margin is not None:
                ofv = verdict.counterexample_margin if ofv is None else min(ofv, verdict.counterexample_margin)
        rows.append(AttackRow(
            image=image, label=int(label), target=int(target), eps=float(eps), status=verdict.status,
            solver_status=first.solver_status, ofv=ofv, bound=first.bound,
            bounds_s=bounds, build_s=build, solve_s=optimum.solve_s,
            time_s=bounds + build + optimum.solve_s + decision_s,
            distortion=verdict.distortion, predicted=verdict.predicted, reason=verdict.reason,
            decision_status=decision_status, decision_s=decision_s, gap=optimum.gap, rel_gap=optimum.rel_gap,
            attempts=optimum.attempts, time_limit=optimum.time_limit,
        ))
        if verdict.counterexample is not None:
            examples[int(target)] = verdict.counterexample.reshape(-1)
    return rows, examples
