"""Output properties over an input box (VNN-LIB style); output optima are in :mod:`robustmip.milp.outputs`.

``decide_output_property`` decides ``exists x in box: OR_i (A_i y(x) <= c_i)`` (``sat`` with a re-checked
point, ``unsat`` proved, or ``unknown``), drawing every stage from one deadline, the solver's time limit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np
import pyomo.environ as pyo

from robustmip.bounds import compute_bounds
from robustmip.deadline import Deadline
from robustmip.milp.encode import EncodedNetwork, encode
from robustmip.milp.objectives import add_disjunction
from robustmip.milp.options import SolveOptions
from robustmip.milp.problem import unknown_reason
from robustmip.network import Network
from robustmip.solvers import MilpSolver
from robustmip.spec import OutputConjunction, satisfies

_STRICT = 1e-9
"""A property's decision MILP asks "is ``-slack`` below this?": no solution below it proves slack < 0."""


@dataclass
class PropertyResult:
    """Does some input in the box satisfy one of the output conjunctions? (a VNN-LIB style question)

    ``status``: ``sat`` (with a re-checked ``counterexample`` and its ``outputs``), ``unsat`` (proved) or
    ``unknown`` (with ``reason``).
    """

    status: Literal["sat", "unsat", "unknown"]
    counterexample: np.ndarray | None = None
    outputs: np.ndarray | None = None
    proof: str | None = None
    reason: str = ""
    times: dict = field(default_factory=dict)


def decide_output_property(
    net: Network,
    lower: np.ndarray,
    upper: np.ndarray,
    conjunctions: Sequence[OutputConjunction],
    options: SolveOptions | None = None,
    *,
    deadline: Deadline | None = None,
    strategy: Literal["split", "joint"] = "split",
) -> PropertyResult:
    """Decide ``exists x in [lower, upper]: OR_i (A_i z_out(x) <= c_i)``.

    ``sat`` needs a point that satisfies a conjunction exactly in the float64 forward pass. Each MILP
    first stops at any point with slack ``>= 0``; if that point fails the re-check it maximises the
    slack to move away from the boundary. ``unsat`` comes from the bounds or from the solver's cutoff
    proving the slack ``< 0`` everywhere.

    ``strategy="split"`` (default) decides the conjunctions one by one on one persistent model (those
    the bounds exclude cost nothing); ``"joint"`` poses the whole disjunction as one MILP with a
    selector binary per conjunction. ``deadline`` (default: the solver's time limit from now) covers
    the falsifier, the bounds, the model and every MILP.
    """
    options = options or SolveOptions()
    options.require_milp("robustmip.milp.decide_output_property")
    deadline = deadline or options.deadline()
    start = time.perf_counter()
    falsify_seconds = 0.0
    if options.falsifier is not None:
        candidate = options.falsifier(net, lower, upper, conjunctions)
        falsify_seconds = time.perf_counter() - start
        if candidate is not None:
            point = np.clip(np.asarray(candidate, dtype=np.float64).reshape(-1), lower, upper)
            outputs = net.forward(point)
            if satisfies(outputs, conjunctions):
                return PropertyResult("sat", point, outputs, "pgd", times={"falsify": falsify_seconds})
    times = {"falsify": falsify_seconds, "bounds": 0.0, "build": 0.0, "solve": 0.0}
    if deadline.expired():
        return PropertyResult("unknown", reason=f"time limit ({deadline.seconds} s) reached in the falsifier", times=times)
    bounds = compute_bounds(net, lower, upper, method=options.bounds, threads=options.threads, deadline=deadline,
                            spec=np.concatenate([np.atleast_2d(A) for A, _ in conjunctions]))
    times["bounds"] = bounds.seconds
    if deadline.expired():
        return PropertyResult("unknown", reason=f"time limit ({deadline.seconds} s) reached in the bounds", times=times)
    build_start = time.perf_counter()
    enc = encode(net, bounds)
    enc.block.objective = pyo.Objective(expr=0.0, sense=pyo.minimize)
    times["build"] = time.perf_counter() - build_start
    focus = "bound" if options.falsifier is not None else "balanced"
    groups = [[c] for c in conjunctions] if strategy == "split" else [list(conjunctions)]
    undecided, proofs = None, set()
    for index, group in enumerate(groups):
        outcome = _decide_group(enc, options.milp_solver, group, conjunctions, f"property{index}", deadline, times,
                                focus)
        if outcome.status == "sat":
            return outcome
        if outcome.status == "unknown":
            undecided = outcome
        proofs.add(outcome.proof)
    if undecided is not None:
        return undecided
    proof = "milp" if "milp" in proofs else "bounds"
    return PropertyResult("unsat", proof=proof, reason="no input in the box satisfies the property", times=times)


def _decide_group(
    enc: EncodedNetwork,
    engine: MilpSolver,
    group: Sequence[OutputConjunction],
    conjunctions: Sequence[OutputConjunction],
    name: str,
    deadline: Deadline,
    times: dict,
    focus: str,
) -> PropertyResult:
    """Decide one disjunction ``group`` on a shared encoding; its components are removed afterwards.

    The MILP minimises ``-s`` (``s`` the disjunction's slack). First as a decision with the solver's
    cutoff just above 0: no solution below it proves ``s < 0`` everywhere (unsat); a solution is
    re-checked in float64. If that point fails the re-check (a near-tie), the slack is maximised to
    move away from the boundary.
    """
    build_start = time.perf_counter()
    slack = add_disjunction(enc, group, name)
    times["build"] += time.perf_counter() - build_start
    try:
        if slack.ub is not None and slack.ub < 0:
            return PropertyResult("unsat", proof="bounds", times=times)
        enc.block.objective.set_value(-slack)
        result = None
        for decide_below in (_STRICT, None):
            if deadline.expired():
                break
            if decide_below is None:
                result = engine.solve(enc.block, deadline.left(), warm_start=True)
            else:
                result = engine.solve(enc.block, deadline.left(), decide_below=decide_below, focus=focus)
            times["solve"] += result.seconds
            if result.status == "infeasible" or (result.bound is not None and result.bound > 0.0 and decide_below is None):
                return PropertyResult("unsat", proof="milp", times=times)
            if result.has_solution:
                point = np.clip(enc.input_values(), enc.bounds.input_lower, enc.bounds.input_upper)
                outputs = enc.net.forward(point)
                if satisfies(outputs, conjunctions):
                    return PropertyResult("sat", point, outputs, "milp", times=times)
            if result.status in ("time_limit", "error"):
                break
        if result is None:
            return PropertyResult("unknown", reason=f"time limit ({deadline.seconds} s) reached before the MILP started",
                                  times=times)
        if result.status in ("time_limit", "error"):
            return PropertyResult("unknown", reason=unknown_reason(result, deadline.seconds), times=times)
        return PropertyResult("unknown", reason="solver points failed the float64 re-check (numerical trouble)", times=times)
    finally:
        enc.block.del_component(name)
