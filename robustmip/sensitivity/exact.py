"""The exact output box: ``2 m`` exact optimisations on one persistent model, each started from a gradient search.

For ``m`` outputs, the box needs ``min y_i`` and ``max y_i`` for every ``i``. Two exact engines answer
them, each on one model that every question shares (only the objective changes):

* ``milp``: :class:`~robustmip.milp.outputs.OutputProblem`, the big-M MILP solved by HiGHS or Gurobi;
* ``lp-bab``: :class:`~robustmip.milp.lp_branch.LpBranchAndBound`, branch-and-bound over the ReLU
  indicators on one warm-started HiGHS LP, which skips a MILP solver's per-question presolve and root
  work and so wins when the box leaves few ReLUs unstable;
* ``auto`` (default) takes ``lp-bab`` when the bounds leave at most :data:`LP_BAB_UNSTABLE` unstable
  ReLUs and the solver is HiGHS, the MILP otherwise.

Before any question, one batched signed-gradient search
(:func:`robustmip.attacks.falsify.output_extremes`) looks for every extreme at once; each question
starts from the best input seen so far for its direction (the search's, or an earlier MILP's), so
the solver holds a near-optimal incumbent and works on the bound.

Two boxes come back:

* the **inner** box: the smallest box holding the outputs of every input tried (the box's centre,
  the search's points and the solvers' points), each evaluated by the float64 forward pass, so
  every one of its faces is attained;
* the **outer** box: per face, the proven bound of its MILP (widened against the solver's
  tolerances, :mod:`robustmip.milp.outputs`), or, where no MILP ran or proved more, the logits'
  bounds at the chosen bound level. It is sound whatever the time limit.

Either engine's bound is sound (the MILP's widened dual bound, the LP's weak-duality bound of every
open node) and either's attained value is a float64 forward pass. A question is skipped when its
face is already closed (outer within ``1e-9 (1 + |value|)`` of inner). The time limit covers the
whole box: bounds and model first, then the time left is shared out evenly over the questions not
yet asked, so a hard face cannot starve the others. The status is ``exact`` when every face was
closed (an engine proved its optimum or the bounds met an attained
value), else ``time_limit``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from robustmip.attacks.falsify import output_extremes
from robustmip.bounds import BOUNDS_METHODS, Bounds
from robustmip.deadline import Deadline
from robustmip.errors import InvalidInput
from robustmip.milp.lp_branch import LpBranchAndBound
from robustmip.milp.options import SolveOptions
from robustmip.milp.outputs import OutputOptimum, OutputProblem
from robustmip.network import Network
from robustmip.sensitivity.result import OutputBox
from robustmip.solvers import MilpSolver

ENGINES = ("auto", "milp", "lp-bab")
LP_BAB_UNSTABLE = 15
"""``auto`` answers with :class:`LpBranchAndBound` up to this many unstable ReLUs (its tree grows like
``2^n``; beyond it the MILP solver's cuts and presolve pay; see ``benchmarks/sensitivity_speed.py``)."""
CLOSED = 1e-9
"""A face counts as closed when its proven bound is within ``1e-9 (1 + |value|)`` of an attained value."""


@dataclass(frozen=True)
class ExactOptions:
    """Settings of the exact output box.

    Attributes:
        solver: ``highs``, ``gurobi`` or ``scip``.
        time_limit: seconds for the whole box (bounds, model, every MILP), or None for no limit.
        threads: solver threads.
        bounds: the bound level of the big-M constants (:data:`robustmip.bounds.BOUNDS_METHODS`).
        search_steps, search_restarts, seed: the gradient search for the MIP starts.
        solver_options: the solver's own options, set on every MILP (``MilpSolver(options=...)``), or None.
        engine: ``auto``, ``milp`` or ``lp-bab`` (the module docstring); ``lp-bab`` runs HiGHS's LP
            whatever ``solver`` says.
    """

    solver: str = "highs"
    time_limit: float | None = 60.0
    threads: int = 1
    bounds: str = "lp"
    search_steps: int = 50
    search_restarts: int = 4
    seed: int = 0
    solver_options: dict | None = None
    engine: str = "auto"

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise InvalidInput(f"unknown engine {self.engine!r}; choose one of {ENGINES}")
        if self.bounds not in BOUNDS_METHODS:
            raise InvalidInput(f"unknown bounds method {self.bounds!r}; choose one of {BOUNDS_METHODS}")
        if self.search_steps < 1 or self.search_restarts < 1:
            raise InvalidInput("search_steps and search_restarts must be >= 1")

    def solve_options(self) -> SolveOptions:
        return SolveOptions(MilpSolver(self.solver, self.time_limit, self.threads, options=self.solver_options),
                            bounds=self.bounds)


def _closed(bound: float, value: float) -> bool:
    return abs(bound - value) <= CLOSED * (1.0 + abs(value))


def _lp_search(net: Network, bounds: Bounds, options: ExactOptions) -> LpBranchAndBound | None:
    """The LP branch-and-bound for this box when the options' engine picks it, else None (the MILP)."""
    if options.engine == "milp":
        return None
    if options.engine == "auto":
        if options.solver != "highs" or bounds.n_unstable() > LP_BAB_UNSTABLE:
            return None
    return LpBranchAndBound(net, bounds, options.threads)


def _search_optimum(search: LpBranchAndBound, m: int, i: int, sense: str, start: np.ndarray,
                    deadline: Deadline) -> OutputOptimum:
    """``min`` / ``max y_i`` by the LP branch-and-bound, as the MILP engine's :class:`OutputOptimum`."""
    sign = 1.0 if sense == "min" else -1.0
    began = time.perf_counter()
    found = search.minimize(sign * np.eye(m)[i], deadline=deadline, start=start)
    return OutputOptimum(found.status, sense, sign * found.value, sign * found.bound, found.argument,
                         {"solve": time.perf_counter() - began, "nodes": found.nodes})


def exact_box(net: Network, lower: np.ndarray, upper: np.ndarray, options: ExactOptions | None = None) -> OutputBox:
    """The exact output box of ``net`` over ``[lower, upper]``, with its inner and outer boxes.

    See the module docstring; ``lower``/``upper`` are float64 ``(n_inputs,)``.
    """
    options = options or ExactOptions()
    start_time = time.perf_counter()
    deadline = Deadline(options.time_limit)
    m = net.n_outputs
    problem = OutputProblem(net, lower, upper, options.solve_options())
    directions = np.concatenate([-np.eye(m), np.eye(m)])  # rows 0..m-1: min y_i; rows m..2m-1: max y_i
    points = np.vstack([0.5 * (lower + upper),
                        output_extremes(net, lower, upper, directions, options.search_steps,
                                        options.search_restarts, options.seed)])
    outputs = np.atleast_2d(net.forward(points))
    bounds = problem.compute_bounds(deadline)  # bounds and model first; the questions share the time left
    engine = "milp" if (search := _lp_search(net, bounds, options)) is None else "lp-bab"
    if search is None:
        problem.prepare(deadline)
    outer_lo, outer_up = bounds.lower[-1].copy(), bounds.upper[-1].copy()
    questions = [(i, sense) for i in range(m) for sense in ("min", "max")]
    solves, closed = [], 0
    for asked, (i, sense) in enumerate(questions):
        sign = 1.0 if sense == "min" else -1.0
        best = int(np.argmin(sign * outputs[:, i]))
        value = float(outputs[best, i])
        face = outer_lo[i] if sense == "min" else outer_up[i]
        if _closed(face, value):
            closed += 1
            solves.append({"output": i, "sense": sense, "status": "closed_by_bounds", "value": value, "bound": face,
                           "seconds": 0.0})
            continue
        left = deadline.left()
        share = None if left is None else left / (len(questions) - asked)
        if share is not None and share <= 0:
            solves.append({"output": i, "sense": sense, "status": "time_limit", "value": value, "bound": face,
                           "seconds": 0.0})
            continue
        if search is None:
            optimum = problem.optimize(i, sense, start=points[best], deadline=deadline.within(share))
        else:
            optimum = _search_optimum(search, net.n_outputs, i, sense, points[best], deadline.within(share))
        if optimum.argument is not None:
            points = np.vstack([points, optimum.argument])
            outputs = np.vstack([outputs, net.forward(optimum.argument)])
        value = float(outputs[:, i].min() if sense == "min" else outputs[:, i].max())
        if sense == "min":
            outer_lo[i] = max(outer_lo[i], optimum.bound)
            face = outer_lo[i]
        else:
            outer_up[i] = min(outer_up[i], optimum.bound)
            face = outer_up[i]
        proven = optimum.status == "optimal" or _closed(face, value)
        closed += proven
        solves.append({"output": i, "sense": sense, "status": optimum.status, "value": value, "bound": face,
                       "seconds": optimum.times["solve"], "engine": engine})
    inner_lo, inner_up = outputs.min(axis=0), outputs.max(axis=0)
    # Rounding in the forward pass must not leave an attained value outside the proven box.
    outer_lo, outer_up = np.minimum(outer_lo, inner_lo), np.maximum(outer_up, inner_up)
    status = "exact" if closed == len(questions) else "time_limit"
    return OutputBox("exact", outer_lo, outer_up, time.perf_counter() - start_time, inner_lo, inner_up, status,
                     solves)
