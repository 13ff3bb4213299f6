"""The MILP optimum equals the exact optimum from enumerating activation patterns (within 1e-6).

Random tiny nets: 2-4 inputs, 1-2 hidden layers of at most 6 ReLUs; every bounds level.
"""

from __future__ import annotations

import numpy as np
import pytest
from bruteforce import exact_min
from conftest import random_network, tiny_architectures

from robustmip.attacks.milp_attack import attack_image
from robustmip.bounds import BOUNDS_METHODS
from robustmip.milp import ImageProblem, SolveOptions, optimize_output, verify
from robustmip.solvers import MilpSolver
from robustmip.spec import input_box, margin_coefficients

CASES = [(dims, seed) for dims in tiny_architectures() for seed in range(2)]


def _setup(dims, seed):
    rng = np.random.default_rng(1000 * seed + sum(dims))
    net = random_network(rng, dims)
    x = rng.uniform(size=dims[0])
    label = int(np.argmax(net.forward(x)))
    return net, x, label


@pytest.mark.parametrize("dims,seed", CASES)
@pytest.mark.parametrize("method", BOUNDS_METHODS)
def test_margin_optimum_matches_enumeration(dims, seed, method):
    net, x, label = _setup(dims, seed)
    eps = 0.25
    lower, upper = input_box(x, eps)
    problem = ImageProblem(net, x, label, eps, SolveOptions(MilpSolver("highs", 30), bounds=method))
    exact_by_target = {}
    for target in range(net.n_outputs):
        if target == label:
            continue
        c = np.zeros(net.n_outputs)
        c[label], c[target] = 1.0, -1.0
        exact_by_target[target] = exact_min(net, c, lower, upper)
        v = problem.margin(target=target)
        assert v.objective == pytest.approx(exact_by_target[target], abs=1e-6)
        assert v.bound is not None and v.bound <= exact_by_target[target] + 1e-6
        assert v.status == ("adversarial" if exact_by_target[target] < -1e-6 else "robust" if exact_by_target[target] > 1e-6 else v.status)
    untargeted = problem.margin(target=None)
    assert untargeted.objective == pytest.approx(min(exact_by_target.values()), abs=1e-6)


@pytest.mark.parametrize("dims,seed", CASES)
def test_output_min_max_match_enumeration(dims, seed):
    net, x, _ = _setup(dims, seed)
    lower, upper = input_box(x, 0.4)
    for k in range(net.n_outputs):
        c = np.eye(net.n_outputs)[k]
        lo = optimize_output(net, lower, upper, k, "min")
        hi = optimize_output(net, lower, upper, k, "max")
        assert lo.value == pytest.approx(exact_min(net, c, lower, upper), abs=1e-6)
        assert hi.value == pytest.approx(-exact_min(net, -c, lower, upper), abs=1e-6)
        assert lo.status == hi.status == "optimal"


@pytest.mark.parametrize("dims,seed", CASES)
@pytest.mark.parametrize("strategy", ["split", "joint"])
def test_verify_decision_agrees_with_enumeration(dims, seed, strategy):
    net, x, label = _setup(dims, seed)
    for eps in (0.02, 0.1, 0.3):
        lower, upper = input_box(x, eps)
        exact = min(
            exact_min(net, np.eye(net.n_outputs)[label] - np.eye(net.n_outputs)[t], lower, upper)
            for t in range(net.n_outputs) if t != label
        )
        verdict = verify(net, x, label, eps, strategy=strategy)
        if exact > 1e-7:
            assert verdict.status == "robust"
        elif exact < -1e-7:
            assert verdict.status == "adversarial"
            assert verdict.counterexample_margin < 0
            assert np.all(np.abs(verdict.counterexample - x) <= eps + 1e-12)


@pytest.mark.parametrize("dims,seed", CASES[::2])
def test_pgd_started_optimum_matches_enumeration(dims, seed):
    """With a falsifier, the MILP starts from PGD's point and focuses on the bound: same optimum."""
    from robustmip.attacks.falsify import property_falsifier

    net, x, label = _setup(dims, seed)
    lower, upper = input_box(x, 0.25)
    problem = ImageProblem(net, x, label, 0.25, SolveOptions(MilpSolver("highs", 30), falsifier=property_falsifier()))
    for target in (t for t in range(net.n_outputs) if t != label):
        c = np.eye(net.n_outputs)[label] - np.eye(net.n_outputs)[target]
        exact = exact_min(net, c, lower, upper)
        v = problem.margin(target=target)
        assert v.objective == pytest.approx(exact, abs=1e-6)
        assert v.times["falsify"] > 0
        decided = problem.margin(target=target, decision=True)
        assert decided.status == ("adversarial" if exact < -1e-6 else "robust" if exact > 1e-6 else decided.status)


def _solvers() -> list:
    from conftest import gurobi_skip_reason, scip_skip_reason

    reasons = {"gurobi": gurobi_skip_reason(), "scip": scip_skip_reason()}
    return ["highs", *(pytest.param(name, marks=pytest.mark.skipif(reason is not None, reason=reason or ""))
                       for name, reason in reasons.items())]


@pytest.mark.parametrize("solver", _solvers())
@pytest.mark.parametrize("dims,seed", CASES[:4])
def test_decide_below_stops_at_the_cutoff_in_both_directions(dims, seed, solver):
    """``decide_below=d``: "feasible" with an objective < d when the minimum is below d, else "infeasible"."""
    net, x, label = _setup(dims, seed)
    lower, upper = input_box(x, 0.25)
    target = (label + 1) % net.n_outputs
    exact = exact_min(net, np.eye(net.n_outputs)[label] - np.eye(net.n_outputs)[target], lower, upper)
    problem = ImageProblem(net, x, label, 0.25, SolveOptions(MilpSolver(solver, 30)))
    enc = problem.encoding
    enc.block.objective.set_value(problem.margin_expression(target, decision=False))
    for focus in ("balanced", "bound"):
        above = problem.solver.solve(enc.block, decide_below=exact + 0.05, focus=focus)
        assert above.status == "feasible" and above.objective < exact + 0.05
        below = problem.solver.solve(enc.block, decide_below=exact - 0.05, focus=focus)
        assert below.status == "infeasible"
        optimum = problem.solver.solve(enc.block, focus=focus)  # the cutoff does not stick to later solves
        assert optimum.status == "optimal" and optimum.objective == pytest.approx(exact, abs=1e-6)


@pytest.mark.parametrize("solver", _solvers())
@pytest.mark.parametrize("dims,seed", CASES[:6])
def test_decision_after_a_time_limited_optimum_matches_enumeration(dims, seed, solver):
    """An optimisation stopped by its time limit is settled by the decision MILP, with the exact verdict."""
    net, x, label = _setup(dims, seed)
    eps = 0.25
    lower, upper = input_box(x, eps)
    rows, examples = attack_image(net, x, label, eps, solver=solver, time_limit=1e-6, decide_time_limit=30,
                                  pgd_start=False)
    assert rows and all(r.solver_status == "time_limit" for r in rows)
    for r in rows:
        exact = exact_min(net, np.eye(net.n_outputs)[label] - np.eye(net.n_outputs)[r.target], lower, upper)
        assert r.decision_status is not None
        if exact < -1e-6:
            assert r.status == "adversarial" and r.target in examples
            assert exact - 1e-6 <= r.ofv < 0
        elif exact > 1e-6:
            assert r.status == "robust" and r.target not in examples
        assert r.time_s >= r.decision_s >= 0


def test_last_layer_relaxation_is_exact_used_and_undone():
    """Targeted margins drop the upper rows of the last hidden ReLUs they weigh positively: the optima stay
    the enumerated ones, some ReLUs are relaxed, and an untargeted margin gets the full encoding back."""
    relaxed_total = 0
    for dims, seed in CASES:
        net, x, label = _setup(dims, seed)
        lower, upper = input_box(x, 0.25)
        problem = ImageProblem(net, x, label, 0.25, SolveOptions(MilpSolver("highs", 30)))
        enc, k = problem.encoding, len(net.layers) - 2
        on_rows = enc.block.component(f"relu_on{k}")
        for target in (t for t in range(net.n_outputs) if t != label):
            c = margin_coefficients(net.n_outputs, label, target)
            verdict = problem.margin(target=target)
            assert verdict.objective == pytest.approx(exact_min(net, c, lower, upper), abs=1e-6)
            weight = c @ net.layers[-1].W
            relaxed = [j for j in enc.binaries[k] if enc.binaries[k][j].fixed]
            assert relaxed == [j for j in enc.binaries[k] if weight[j] > 0]
            assert all(not on_rows[j].active for j in relaxed)
            relaxed_total += len(relaxed)
        problem.margin(target=None)
        assert not any(v.fixed for v in enc.binaries[k].values()) and all(r.active for r in on_rows.values())
    assert relaxed_total > 0
