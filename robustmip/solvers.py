"""The one place that knows the solvers: HiGHS (default), Gurobi and SCIP for MILPs; HiGHS for LPs.

MILPs go through Pyomo's persistent interfaces (:class:`MilpSolver`: APPSI for HiGHS and Gurobi,
``pyomo.contrib.solver``'s ``ScipPersistent`` over PySCIPOpt for SCIP); the LP and MILP bound tightening of
:mod:`robustmip.bounds.tighten` drives highspy directly (:func:`new_highs`). Both take their HiGHS
options and the process-wide thread scheduler (:func:`use_highs_threads`) from here.

:class:`MilpSolver` wraps one *persistent* APPSI solver. Solving the same Pyomo model again after
changing its objective or adding/removing a constraint only sends the change, so one model per image
serves all of its targets.

Time limits are passed through ``config.time_limit`` of the APPSI solver object itself (not
``SolverFactory(...).solve(timelimit=...)``, whose wrapper silently overwrites the config); the tests
check that the limit is honoured.

Three settings serve verification (each measured against the alternative in ``benchmarks/``; the
figures are in benchmarks/README.md):

* **Decisions by cutoff** (``decide_below``): "is the minimum below ``d``?" is asked with the solvers'
  own objective cutoff and target (HiGHS ``objective_bound`` / ``objective_target``, Gurobi
  ``Cutoff`` / ``BestObjStop``) instead of a constraint on the objective: the solver prunes every node
  whose bound reaches the cutoff and stops at the first incumbent below ``d``.
* **Focus on the bound** (``focus="bound"``): when the caller already holds a near-optimal point (a
  PGD attack's), HiGHS's primal heuristics (RINS/RENS sub-MIPs above all) only cost time and are
  switched off. Gurobi is left as it is (its ``MIPFocus=3`` was slower).
* **Cheaper branching** (HiGHS, both focuses): pseudo-costs are trusted after one strong-branching
  probe per binary instead of eight, and cuts are separated at the root only (most LP iterations
  went into strong branching and node cuts).
* **No cutting planes for SCIP**: its separators are switched off (``setSeparating(OFF)``): with them
  its root spent most of the time separating cuts that the big-M encoding over tight bounds hardly
  needs (benchmarks/scip_peer.py). SCIP takes decisions by ``limits/primal`` (stop at an incumbent
  at or below ``d``) and ``limits/dual`` (stop once the proven bound reaches the cutoff).
"""

from __future__ import annotations

import functools
import math
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, Literal, Mapping

import highspy
import pyomo.environ as pyo
from pyomo.contrib.appsi.base import TerminationCondition

from robustmip.errors import InvalidInput, SolverLicenseLimit, SolverNotAvailable

# HiGHS options that switch its primal heuristics off, for solves whose work is the dual bound: the
# per-neuron bound MILPs of robustmip.bounds.tighten and MilpSolver's focus="bound".
HIGHS_HEURISTICS_OFF = {
    "mip_heuristic_effort": 0.0,
    "mip_heuristic_run_rins": False,
    "mip_heuristic_run_rens": False,
    "mip_heuristic_run_root_reduced_cost": False,
    "mip_heuristic_run_feasibility_jump": False,
}

_highs_scheduler_threads = 0


def use_highs_threads(threads: int) -> None:
    """Size the process's HiGHS task scheduler for a run with ``threads`` threads; call before each run.

    Every HiGHS instance in a process shares one scheduler, sized by the first run's ``threads``
    option, and a later run asking for another count fails (an APPSI solve ends in "solver error",
    an LP returns no optimum). The scheduler is restarted (blocking, between runs) when the count
    changes, which costs milliseconds.
    """
    global _highs_scheduler_threads
    if threads != _highs_scheduler_threads:
        highspy.Highs.resetGlobalScheduler(True)
        _highs_scheduler_threads = threads


@contextmanager
def solver_output(verbose: bool = False) -> Iterator[None]:
    """Keep what the solver libraries write to file descriptor 1 off stdout (HiGHS prints a banner
    whenever an instance is created, and its log when streamed): to stderr with ``verbose``, else to
    /dev/null. stdout carries only what the user asked for (tables, JSON)."""
    sys.stdout.flush()
    saved = os.dup(1)
    target = os.dup(2) if verbose else os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(target, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(target)


def new_highs(threads: int = 1, heuristics: bool = False) -> highspy.Highs:
    """A silent highspy instance for LPs and bound MILPs (no banner, ``threads`` threads)."""
    with solver_output():
        highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    highs.setOptionValue("threads", int(threads))
    if not heuristics:
        for option, value in HIGHS_HEURISTICS_OFF.items():
            highs.setOptionValue(option, value)
    return highs


SolverName = Literal["highs", "gurobi", "scip"]
SOLVERS: tuple[str, ...] = ("highs", "gurobi", "scip")
Status = Literal["optimal", "infeasible", "feasible", "time_limit", "error"]
Focus = Literal["balanced", "bound"]
_CUTOFF_SLACK = 1e-6
"""The cutoff sent to the solver is ``decide_below + 1e-6 (1 + |decide_below|)``: solvers prune nodes
within their feasibility tolerance (1e-6) of the cutoff, and the shift keeps "no solution below the
cutoff" a proof that the minimum is ``>= decide_below``."""
_HIGHS_HEURISTICS_DEFAULT = {
    "mip_heuristic_effort": 0.05,
    "mip_heuristic_run_rins": True,
    "mip_heuristic_run_rens": True,
    "mip_heuristic_run_root_reduced_cost": True,
    "mip_heuristic_run_feasibility_jump": True,
}

_HIGHS_BRANCHING = {"mip_pscost_minreliable": 1, "mip_allow_cut_separation_at_nodes": False}

_TERMINATION = {
    TerminationCondition.optimal: "optimal",
    TerminationCondition.infeasible: "infeasible",
    # Every encoded variable is bounded, so "infeasible or unbounded" can only be infeasible.
    TerminationCondition.infeasibleOrUnbounded: "infeasible",
    TerminationCondition.maxTimeLimit: "time_limit",
    TerminationCondition.interrupted: "time_limit",
}


@dataclass
class SolveResult:
    """Outcome of one solve.

    Attributes:
        status: ``optimal`` (proved, within the gap), ``infeasible`` (proved; for a decision
            question, ``decide_below``: no solution below it), ``feasible`` (a decision question
            stopped at an incumbent below ``decide_below``), ``time_limit`` or ``error``.
        objective: the incumbent's objective value, or None without incumbent.
        bound: the solver's proven bound on the optimum (lower bound when minimising), or None.
        has_solution: True when the model's variables hold the incumbent's values.
        seconds: wall time of the solve call.
        message: the solver's termination condition, or the error.
    """

    status: Status
    objective: float | None
    bound: float | None
    has_solution: bool
    seconds: float
    solver: str
    message: str = ""
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "status": self.status,
            "objective": self.objective,
            "bound": self.bound,
            "seconds": self.seconds,
            "solver": self.solver,
            "message": self.message,
        }


def _finite(value) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def check_solver(name: str) -> None:
    """Raise :class:`SolverNotAvailable` unless ``name`` can be used here."""
    if name not in SOLVERS:
        raise InvalidInput(f"unknown solver {name!r}; choose one of {SOLVERS}")
    _make_appsi(name)


_PROOF_OPTIONS = {"objective_bound", "objective_target", "cutoff", "bestobjstop", "bestbdstop", "limits/primal",
                  "limits/dual"}
"""Options whose value decides what a cutoff decision proves (HiGHS and SCIP names, Gurobi's lower-cased):
robustmip sets them per question, and a user value would make "no solution below the cutoff" prove
something else, so ``MilpSolver(options=...)`` refuses them."""
_UNSOUND_HIGHS_OPTIONS = {
    "mip_lifting_for_probing": (
        -1,
        (
            "HiGHS 1.15's lifting for probing returned wrong optima (upstream ERGO-Code/HiGHS#3307: 20 of 24 "
            "max-margin MILPs on a 784-50-50-10 net); 1.16.0 agreed on all 24 "
            "(benchmarks/highs_version_check.py), too few to trust it with robustmip's proofs"
        ),
    ),
}
"""HiGHS options refused at any value but the one given (the default), each with the reason: with them
the solver claims proofs that are false, and robustmip's verdicts rest on those proofs."""


def _unknown_options(name: str, options: Mapping[str, object]) -> list[str]:
    """The names in ``options`` that solver ``name`` does not have (HiGHS and Gurobi ignore them silently)."""
    if name == "highs":
        highs = new_highs()
        return [key for key in options if highs.getOptionValue(key)[0] != highspy.HighsStatus.kOk]
    if name == "scip":
        return [key for key in options if key not in _scip_defaults()]
    from gurobipy import GRB

    known = {param.lower() for param in dir(GRB.Param) if not param.startswith("_")}
    return [key for key in options if key.lower() not in known]


@functools.lru_cache(maxsize=1)
def _scip_defaults() -> dict[str, object]:
    """SCIP's parameters and their default values."""
    import pyscipopt

    return pyscipopt.Model().getParams()


@functools.lru_cache(maxsize=1)
def _scip_no_separation() -> dict[str, object]:
    """The parameters ``setSeparating(SCIP_PARAMSETTING.OFF)`` changes, with their values."""
    import pyscipopt

    model = pyscipopt.Model()
    before = model.getParams()
    model.setSeparating(pyscipopt.SCIP_PARAMSETTING.OFF)
    return {key: value for key, value in model.getParams().items() if before[key] != value}


class _ScipConfig:
    """The part of an APPSI solver's ``config`` that :class:`MilpSolver` sets."""

    def __init__(self) -> None:
        self.stream_solver, self.load_solution, self.warmstart = False, False, False
        self.mip_gap: float = 1e-6
        self.time_limit: float | None = None


class _ScipResults:
    """``ScipPersistent``'s results under the names of APPSI's results."""

    def __init__(self, results) -> None:
        from pyomo.contrib.solver.common.results import TerminationCondition as Condition

        conditions = {
            Condition.convergenceCriteriaSatisfied: TerminationCondition.optimal,
            Condition.provenInfeasible: TerminationCondition.infeasible,
            Condition.infeasibleOrUnbounded: TerminationCondition.infeasibleOrUnbounded,
            Condition.maxTimeLimit: TerminationCondition.maxTimeLimit,
            Condition.interrupted: TerminationCondition.interrupted,
            Condition.objectiveLimit: TerminationCondition.objectiveLimit,
        }
        self.termination_condition = conditions.get(results.termination_condition, TerminationCondition.unknown)
        self.best_feasible_objective = results.incumbent_objective
        self.best_objective_bound = results.objective_bound
        self.solution_loader = results.solution_loader


class _ScipSolver:
    """SCIP through ``pyomo.contrib.solver``'s persistent PySCIPOpt interface, driven like an APPSI solver:
    ``config`` (time limit, gap, MIP start, log), ``scip_options`` (SCIP parameters, set on every solve)
    and ``solve(model)``."""

    def __init__(self) -> None:
        from pyomo.contrib.solver.solvers.scip.scip_persistent import ScipPersistent

        self._solver = ScipPersistent()
        self.config = _ScipConfig()
        self.scip_options: dict[str, object] = {}

    def available(self):
        return self._solver.available()

    def solve(self, model: pyo.Block, timer=None) -> _ScipResults:
        """Solve ``model``; ``timer``: a Pyomo ``HierarchicalTimer`` that records the stages, as APPSI's."""
        results = self._solver.solve(
            model, timer=timer, time_limit=self.config.time_limit, rel_gap=self.config.mip_gap,
            load_solutions=self.config.load_solution, raise_exception_on_nonoptimal_result=False,
            warmstart_discrete_vars=self.config.warmstart, solver_options=dict(self.scip_options),
            tee=[sys.stderr] if self.config.stream_solver else [],
        )
        return _ScipResults(results)


def _make_appsi(name: str):
    try:
        if name == "highs":
            from pyomo.contrib.appsi.solvers import Highs

            solver = Highs()
        elif name == "scip":
            solver = _ScipSolver()
        else:
            from pyomo.contrib.appsi.solvers import Gurobi

            solver = Gurobi()
        available = solver.available()
    except ImportError as exc:
        raise SolverNotAvailable(f"solver {name!r} cannot be imported ({exc}); pip install robustmip[{name}]") from exc
    if not available:
        hint = {"gurobi": "pip install gurobipy", "scip": "pip install pyscipopt"}.get(name, "pip install highspy")
        raise SolverNotAvailable(f"solver {name!r} is not available ({available}); {hint}, or use --solver highs")
    return solver


def _is_size_limit(exc: Exception) -> bool:
    text = str(exc)
    return "size-limited" in text or "10010" in text or "Model too large" in text


def _loaded_matches(model: pyo.Block, objective: float) -> bool:
    """Whether the variables' loaded values give the incumbent objective the solver reported.

    HiGHS 1.16.0 (highspy) was seen to return a MIP start as ``col_value`` with status optimal and the
    optimum's objective when its presolve solved the model outright (reproduced in plain highspy from
    an MPS file; any later ``run()`` returns the same start until ``clearSolver()``).
    """
    active = next(model.component_data_objects(pyo.Objective, active=True, descend_into=True), None)
    if active is None:
        return True
    try:
        value = float(pyo.value(active.expr))
    except (ValueError, TypeError):  # a variable without a value: nothing was loaded for it
        return False
    return abs(value - objective) <= 1e-6 * (1.0 + abs(objective))


class MilpSolver:
    """A persistent MILP solver.

    Args:
        solver: ``"highs"`` or ``"gurobi"``.
        time_limit: seconds per solve (None for no limit).
        threads: solver threads.
        mip_gap: relative optimality gap at which a solve counts as optimal.
        verbose: stream the solver log.
        options: solver-specific options (HiGHS or Gurobi names) set on every solve after
            robustmip's own, so they override them (e.g. ``{"mip_pscost_minreliable": 8}``); the
            objective cutoff and target options, which decisions rely on for their proofs, are refused,
            and so are options known to make the solver claim false proofs (``_UNSOUND_HIGHS_OPTIONS``).
    """

    def __init__(
        self,
        solver: SolverName = "highs",
        time_limit: float | None = 60.0,
        threads: int = 1,
        mip_gap: float = 1e-6,
        verbose: bool = False,
        options: Mapping[str, object] | None = None,
    ):
        if solver not in SOLVERS:
            raise InvalidInput(f"unknown solver {solver!r}; choose one of {SOLVERS}")
        if time_limit is not None and not time_limit > 0:
            raise InvalidInput(f"time_limit must be > 0 seconds, got {time_limit}")
        self.name = solver
        self.time_limit = time_limit
        self.threads = int(threads)
        self.mip_gap = float(mip_gap)
        self.verbose = verbose
        self.options = dict(options or {})
        self._appsi = _make_appsi(solver)
        self._retrying = False
        unknown = _unknown_options(solver, self.options)
        if unknown:
            raise InvalidInput(f"{solver} has no option(s) {unknown}")
        reserved = [key for key in self.options if key.lower() in _PROOF_OPTIONS]
        if reserved:
            raise InvalidInput(f"option(s) {reserved} are set by robustmip for each question (its cutoff proofs)")
        for key, (safe, reason) in (_UNSOUND_HIGHS_OPTIONS if solver == "highs" else {}).items():
            if key in self.options and self.options[key] != safe:
                raise InvalidInput(f"option {key}={self.options[key]!r} is refused (only {safe} is): {reason}")
        self._appsi.config.stream_solver = verbose
        self._appsi.config.load_solution = False
        self._appsi.config.mip_gap = self.mip_gap

    def _options(self, decide_below: float | None, focus: Focus) -> dict:
        """Every option this class sets, each call (a persistent solver keeps earlier values)."""
        cutoff = None if decide_below is None else decide_below + _CUTOFF_SLACK * (1.0 + abs(decide_below))
        if self.name == "scip":
            limits = _scip_defaults()
            return {
                **_scip_no_separation(),
                "lp/threads": self.threads,
                "limits/absgap": 1e-9,
                "limits/primal": limits["limits/primal"] if decide_below is None else decide_below,
                "limits/dual": limits["limits/dual"] if cutoff is None else cutoff,
            }
        if self.name == "highs":
            return {
                "threads": self.threads,
                "mip_abs_gap": 1e-9,
                "objective_bound": math.inf if cutoff is None else cutoff,
                "objective_target": -math.inf if decide_below is None else decide_below,
                **_HIGHS_BRANCHING,
                **(HIGHS_HEURISTICS_OFF if focus == "bound" else _HIGHS_HEURISTICS_DEFAULT),
            }
        return {
            "Threads": self.threads,
            "MIPGapAbs": 1e-9,
            "Cutoff": 1e100 if cutoff is None else cutoff,
            "BestObjStop": -1e100 if decide_below is None else decide_below,
        }

    def _warm_start(self, model: pyo.Block) -> None:
        """Hand the variables' current values to the solver as a MIP start."""
        if self.name in ("highs", "scip"):
            self._appsi.config.warmstart = True
            return
        with solver_output(self.verbose):
            self._appsi.set_instance(model)
        for var in model.component_data_objects(pyo.Var, active=True, descend_into=True):
            if var.value is not None and not var.fixed:
                try:
                    self._appsi.set_var_attr(var, "Start", var.value)
                except (KeyError, ValueError):  # variables APPSI did not send to Gurobi
                    pass

    def solve(
        self,
        model: pyo.Block,
        time_limit: float | None = None,
        *,
        warm_start: bool = False,
        decide_below: float | None = None,
        focus: Focus = "balanced",
    ) -> SolveResult:
        """Minimise (or maximise) ``model``'s one active objective; load the incumbent into its variables.

        Args:
            time_limit: overrides the solver's default for this call (seconds).
            warm_start: give the solver the variables' current values as a starting solution.
            decide_below: ask only "is the minimum below this value?" (minimisation only): the
                solve stops at the first incumbent below it (status ``feasible``) or ends
                ``infeasible`` once it proved that no solution lies below it.
            focus: ``"bound"`` when a near-optimal start is given and the work left is proving
                the bound (HiGHS then skips its primal heuristics); ``"balanced"`` otherwise.
        """
        if focus not in ("balanced", "bound"):
            raise InvalidInput(f"focus must be 'balanced' or 'bound', got {focus!r}")
        limit = self.time_limit if time_limit is None else time_limit
        if warm_start:
            self._warm_start(model)
        elif self.name in ("highs", "scip"):
            self._appsi.config.warmstart = False
        self._appsi.config.time_limit = limit
        options = {**self._options(decide_below, focus), **self.options}
        if self.name == "highs":
            use_highs_threads(self.threads)
            self._appsi.highs_options = options
        elif self.name == "scip":
            self._appsi.scip_options = options
        else:
            self._appsi.gurobi_options = options
        start = time.perf_counter()
        try:
            with solver_output(self.verbose):
                results = self._appsi.solve(model)
        except Exception as exc:  # solver-specific errors: licence, numerics, interface
            seconds = time.perf_counter() - start
            if self.name == "gurobi" and _is_size_limit(exc):
                raise SolverLicenseLimit(
                    "Gurobi's size-limited licence refused this model (at most 2000 variables and 2000 "
                    f"constraints): {exc}. Use --solver highs, or a full Gurobi licence."
                ) from exc
            return SolveResult("error", None, None, False, seconds, self.name, f"{type(exc).__name__}: {exc}")
        seconds = time.perf_counter() - start
        objective = _finite(results.best_feasible_objective)
        bound = _finite(results.best_objective_bound)
        has_solution = objective is not None
        condition = results.termination_condition
        if condition == TerminationCondition.objectiveLimit:
            # Stopped by a limit: at an incumbent at or below decide_below, or with every node cut off
            # (HiGHS, Gurobi) or the proven bound at the cutoff (SCIP, whose incumbent may lie above it).
            if has_solution and (decide_below is None or objective <= decide_below):
                status: Status = "feasible"
            elif decide_below is not None and (not has_solution or (bound is not None and bound >= decide_below)):
                status = "infeasible"
            else:
                status = "error"
        else:
            status = _TERMINATION.get(condition, "error")
        if decide_below is not None and status == "optimal" and has_solution:
            # An optimum in [decide_below, cutoff): "nothing below" only if the proven bound says so.
            proven = bound is not None and bound >= decide_below
            status = "infeasible" if objective >= decide_below and proven else "feasible"
        if has_solution:
            results.solution_loader.load_vars()
            if self.name == "highs" and not self._retrying and not _loaded_matches(model, objective):
                # HiGHS 1.16 can hand back a MIP start (set in this or an earlier run) as its solution
                # while reporting the optimum's objective; clearing its stored solution and solving
                # again cold gives the optimum's point (see _loaded_matches).
                self._appsi._solver_model.clearSolver()
                left = None if limit is None else limit - seconds
                if left is not None and left <= 0:
                    return SolveResult("error", None, bound, False, seconds, self.name, "stale HiGHS solution")
                self._retrying = True
                try:
                    again = self.solve(model, left, decide_below=decide_below, focus=focus)
                finally:
                    self._retrying = False
                again.seconds += seconds
                return again
        if status == "error" and has_solution:
            status = "feasible"
        return SolveResult(status, objective, bound, has_solution, seconds, self.name, str(condition))
