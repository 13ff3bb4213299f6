"""Soundness of verdicts: timeouts, failed re-checks, bad input, distortion and persistent models."""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo
import pytest
from conftest import random_network

from robustmip.errors import InvalidInput, SolverNotAvailable
from robustmip.milp import (
    ImageProblem,
    SolveOptions,
    find_adversarial,
    minimal_distortion,
    verify,
)
from robustmip.milp.encode import EncodedNetwork
from robustmip.solvers import MilpSolver, SolveResult


@pytest.fixture
def small_case():
    rng = np.random.default_rng(5)
    net = random_network(rng, [6, 10, 8, 4])
    x = rng.uniform(size=6)
    return net, x, int(np.argmax(net.forward(x)))


def hard_case():
    rng = np.random.default_rng(11)
    net = random_network(rng, [40, 80, 80, 80, 10], bias_scale=0.1)
    x = rng.uniform(size=40)
    return net, x, int(np.argmax(net.forward(x)))


def test_time_limit_is_honoured_and_never_robust():
    net, x, label = hard_case()
    limit = 0.5
    problem = ImageProblem(net, x, label, 0.5, SolveOptions(MilpSolver("highs", limit), bounds="interval"))
    assert problem.encoding is not None  # built before the question's deadline starts: it covers the solve
    verdict = problem.margin(target=(label + 1) % 10)
    assert verdict.solver_status == "time_limit", "the instance must be hard enough to hit the limit"
    assert verdict.times["solve"] < limit + 3.0
    assert verdict.objective is not None, "the image itself is handed over as a MIP start"
    assert verdict.status in ("unknown", "adversarial")
    if verdict.status == "unknown":
        assert "time limit" in verdict.reason


def _problem(small_case) -> ImageProblem:
    net, x, label = small_case
    return ImageProblem(net, x, label, 0.3)


@pytest.mark.parametrize(
    "result,expected",
    [
        (SolveResult("time_limit", None, None, False, 1.0, "highs"), "unknown"),
        (SolveResult("time_limit", None, -0.5, False, 1.0, "highs"), "unknown"),
        (SolveResult("time_limit", None, 0.2, False, 1.0, "highs"), "robust"),
        (SolveResult("error", None, None, False, 1.0, "highs", "boom"), "unknown"),
        (SolveResult("optimal", 0.3, 0.3, False, 1.0, "highs"), "robust"),
        (SolveResult("optimal", 0.0, -1e-9, False, 1.0, "highs"), "unknown"),
    ],
)
def test_interpretation_of_solver_outcomes(small_case, result, expected):
    problem = _problem(small_case)
    verdict = problem.interpret(result, target=None, decision=False)
    assert verdict.status == expected
    if expected == "unknown":
        assert verdict.reason


def test_point_failing_float64_recheck_is_not_adversarial(small_case, monkeypatch):
    net, x, label = small_case
    problem = ImageProblem(net, x, label, 0.3)
    problem.encoding  # build before patching
    monkeypatch.setattr(EncodedNetwork, "input_values", lambda self: x.copy())
    claimed = SolveResult("optimal", -1.0, -1.0, True, 0.1, "highs")
    verdict = problem.interpret(claimed, target=None, decision=False)
    assert verdict.status == "unknown"
    assert "re-check" in verdict.reason
    assert verdict.counterexample is None


def test_optimum_without_proven_bound_is_unknown(small_case, monkeypatch):
    """A solver that calls its incumbent optimal but reports no bound (HiGHS#3307's lifting did) proves nothing."""
    net, x, label = small_case
    problem = ImageProblem(net, x, label, 0.3)
    assert problem.encoding is not None  # built before patching
    monkeypatch.setattr(EncodedNetwork, "input_values", lambda self: x.copy())  # the clean image: no counterexample
    claimed = SolveResult("optimal", 5.5, None, True, 0.1, "highs", "optimal")
    verdict = problem.interpret(claimed, target=None, decision=False)
    assert verdict.status == "unknown"
    assert "without a proven bound" in verdict.reason


def test_misclassified_image_is_its_own_counterexample(small_case):
    net, x, label = small_case
    wrong = (label + 1) % net.n_outputs
    verdict = verify(net, x, wrong, 0.0)
    assert verdict.status == "adversarial" and verdict.proof == "clean" and verdict.distortion == 0.0


def test_eps_zero_on_correct_image_is_robust(small_case):
    net, x, label = small_case
    assert verify(net, x, label, 0.0).status == "robust"


@pytest.mark.parametrize(
    "kwargs,match",
    [({"eps": -0.1}, "eps"), ({"x": np.zeros(5)}, "expects shape"), ({"label": 7}, "label")],
)
def test_bad_input_raises(small_case, kwargs, match):
    net, x, label = small_case
    args = {"x": x, "label": label, "eps": 0.1, **kwargs}
    with pytest.raises(InvalidInput, match=match):
        verify(net, args["x"], args["label"], args["eps"])


def test_image_outside_domain_raises(small_case):
    net, x, label = small_case
    with pytest.raises(InvalidInput, match="outside"):
        verify(net, x + 2.0, label, 0.1)


def test_minimal_distortion_brackets_the_robustness_radius(small_case):
    net, x, label = small_case
    result = minimal_distortion(net, x, label, margin_tolerance=1e-4)
    assert result.status == "optimal"
    assert result.lower_bound <= result.distortion + 1e-7
    assert np.abs(result.counterexample.reshape(-1) - x).max() == pytest.approx(result.distortion)
    below = verify(net, x, label, 0.9 * result.distortion)
    above = verify(net, x, label, result.distortion + 1e-6)
    assert below.status == "robust"
    assert above.status == "adversarial"


def test_persistent_problem_equals_fresh_problems(small_case):
    net, x, label = small_case
    problem = ImageProblem(net, x, label, 0.2)
    for target in range(net.n_outputs):
        if target == label:
            continue
        reused = problem.margin(target=target)
        fresh = find_adversarial(net, x, label, 0.2, target=target)
        assert reused.objective == pytest.approx(fresh.objective, abs=1e-7)
        assert reused.status == fresh.status


def test_counterexample_is_in_the_box_and_misclassified(small_case):
    net, x, label = small_case
    verdict = find_adversarial(net, x, label, 0.5)
    assert verdict.status == "adversarial"
    cx = verdict.counterexample.reshape(-1)
    assert (cx >= np.maximum(x - 0.5, 0) - 1e-12).all() and (cx <= np.minimum(x + 0.5, 1) + 1e-12).all()
    assert int(np.argmax(net.forward(cx))) != label
    assert verdict.objective <= verdict.counterexample_margin + 1e-6


def test_missing_solver_is_a_clear_error(monkeypatch):
    from pyomo.contrib.appsi.base import Solver
    from pyomo.contrib.appsi.solvers import Gurobi

    from robustmip.errors import SolverNotAvailable

    monkeypatch.setattr(Gurobi, "available", lambda self: Solver.Availability.NotFound)
    with pytest.raises(SolverNotAvailable, match="--solver highs"):
        MilpSolver("gurobi")
    with pytest.raises(InvalidInput, match="unknown solver"):
        MilpSolver("cplex")


def test_falsifier_candidates_are_rechecked(small_case):
    net, x, label = small_case
    lying = lambda net_, lower, upper, conj: x.copy()  # noqa: E731  (claims the clean image is adversarial)
    assert verify(net, x, label, 0.01, SolveOptions(falsifier=lying)).status == "robust"
    outside = lambda net_, lower, upper, conj: x + 5.0  # noqa: E731  (far outside the box)
    verdict = verify(net, x, label, 0.01, SolveOptions(falsifier=outside))
    assert verdict.status == "robust"


def test_pgd_falsifier_finds_what_the_milp_finds(small_case):
    from robustmip.attacks.falsify import property_falsifier

    net, x, label = small_case
    verdict = verify(net, x, label, 0.5, SolveOptions(falsifier=property_falsifier()))
    assert verdict.status == "adversarial" and verdict.proof == "pgd"
    assert int(np.argmax(net.forward(verdict.counterexample))) != label
    assert np.abs(verdict.counterexample.reshape(-1) - x).max() <= 0.5 + 1e-12


def test_set_point_gives_a_feasible_mip_start(small_case):
    net, x, label = small_case
    problem = ImageProblem(net, x, label, 0.3)
    enc = problem.encoding
    enc.set_point(x)
    for con in enc.block.component_data_objects(pyo.Constraint, active=True):
        body = pyo.value(con.body)
        assert (con.lower is None or body >= pyo.value(con.lower) - 1e-9) and (con.upper is None or body <= pyo.value(con.upper) + 1e-9)
    np.testing.assert_allclose([pyo.value(enc.logits[j]) for j in range(net.n_outputs)], net.forward(x), atol=1e-12)


def test_decision_answered_by_the_falsifier_needs_no_bounds(small_case):
    from robustmip.attacks.falsify import property_falsifier

    net, x, label = small_case
    problem = ImageProblem(net, x, label, 0.5, SolveOptions(falsifier=property_falsifier()))
    verdict = problem.margin(decision=True)
    assert verdict.status == "adversarial" and verdict.proof == "pgd"
    assert problem._bounds is None and problem._enc is None


def test_unknown_focus_is_rejected(small_case):
    problem = _problem(small_case)
    with pytest.raises(InvalidInput, match="focus"):
        problem.solver.solve(problem.encoding.block, focus="fast")


@pytest.mark.parametrize("solver", ["highs", "gurobi", "scip"])
def test_every_solver_option_is_set_on_every_solve(solver):
    """A persistent solver keeps options from earlier solves: each call must set the same keys."""
    try:
        milp = MilpSolver(solver)
    except SolverNotAvailable as exc:
        pytest.skip(str(exc))
    keys = {frozenset(milp._options(d, f)) for d in (None, 0.0) for f in ("balanced", "bound")}
    assert len(keys) == 1


def test_highs_solves_after_a_run_with_another_thread_count(small_case):
    """HiGHS sizes one process-wide scheduler at its first run; other counts later (LPs and MILPs) must still solve."""
    net, x, label = small_case
    optima, upper_bounds = [], []
    for threads in [1, 2, 2, 1]:
        problem = ImageProblem(net, x, label, 0.3, SolveOptions(MilpSolver("highs", 30, threads=threads)))
        verdict = problem.margin(target=(label + 1) % net.n_outputs)
        assert verdict.solver_status == "optimal", (threads, verdict.reason)
        optima.append(verdict.objective)
        upper_bounds.append(np.concatenate(problem.bounds.upper))
    assert np.allclose(optima, optima[0], atol=1e-6)
    # A failed LP leaves a neuron at its looser CROWN bound: every run must reach the same LP bounds.
    assert all(np.allclose(u, upper_bounds[0], atol=1e-7) for u in upper_bounds)


@pytest.mark.parametrize("solver", ["highs", "gurobi", "scip"])
def test_solver_options_are_applied_and_unknown_names_rejected(small_case, solver):
    """User options override robustmip's on every solve; a misspelt name is an error, not ignored."""
    net, x, label = small_case
    stop_at_once = {"highs": {"mip_max_nodes": 0}, "gurobi": {"IterationLimit": 0}, "scip": {"limits/nodes": 0}}[solver]
    try:
        with pytest.raises(InvalidInput, match="no_such_option"):
            MilpSolver(solver, options={"no_such_option": 1})
        cutoff = {"highs": "objective_bound", "gurobi": "Cutoff", "scip": "limits/dual"}[solver]
        with pytest.raises(InvalidInput, match=cutoff):  # a user cutoff would change what "infeasible" proves
            MilpSolver(solver, options={cutoff: -1.0})
        if solver == "highs":  # wrong optima, and "optimal" without a bound, in HiGHS 1.15 (upstream #3307)
            with pytest.raises(InvalidInput, match="3307"):
                MilpSolver(solver, options={"mip_lifting_for_probing": 1})
            MilpSolver(solver, options={"mip_lifting_for_probing": -1})  # the default stays allowed
        limited = MilpSolver(solver, options=stop_at_once)
    except SolverNotAvailable as exc:
        pytest.skip(str(exc))
    free = ImageProblem(net, x, label, 0.3, SolveOptions(MilpSolver(solver))).margin(target=(label + 1) % net.n_outputs)
    stopped = ImageProblem(net, x, label, 0.3, SolveOptions(limited)).margin(target=(label + 1) % net.n_outputs)
    assert free.solver_status == "optimal"
    assert stopped.solver_status != "optimal" and stopped.status in ("unknown", "adversarial", "robust")
