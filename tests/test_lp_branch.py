"""Branch-and-bound on the certified LP relaxation equals brute-force enumeration and the MILP."""

from __future__ import annotations

import numpy as np
import pytest
from bruteforce import exact_min
from conftest import random_network, tiny_architectures

from robustmip.bounds import compute_bounds
from robustmip.deadline import Deadline
from robustmip.milp import OutputProblem
from robustmip.milp.lp_branch import LpBranchAndBound
from robustmip.spec import input_box


@pytest.mark.parametrize("dims", tiny_architectures())
@pytest.mark.parametrize("seed", range(2))
def test_optima_equal_enumeration(dims, seed):
    rng = np.random.default_rng(100 + seed)
    net = random_network(rng, dims)
    lower, upper = input_box(rng.uniform(size=dims[0]), 0.4)
    search = LpBranchAndBound(net, compute_bounds(net, lower, upper, "crown"))
    for c in np.concatenate([np.eye(net.n_outputs), -np.eye(net.n_outputs), rng.normal(size=(2, net.n_outputs))]):
        exact = exact_min(net, c, lower, upper)
        result = search.minimize(c)
        assert result.status == "optimal"
        assert result.bound <= exact + 1e-9 and result.value == pytest.approx(exact, abs=1e-6)
        assert c @ net.forward(result.argument) == pytest.approx(result.value, abs=1e-12)
        assert (result.argument >= lower).all() and (result.argument <= upper).all()


class _StopsAfter(Deadline):
    """A deadline that expires after ``checks`` calls of ``expired()`` (a search stopped mid-tree)."""

    def __init__(self, checks: int):
        super().__init__(None)
        self.checks = checks

    def expired(self) -> bool:
        self.checks -= 1
        return self.checks < 0


def test_a_time_limit_leaves_a_sound_bound():
    rng = np.random.default_rng(7)
    net = random_network(rng, [6, 12, 12, 3])
    lower, upper = input_box(rng.uniform(size=6), 0.5)
    bounds = compute_bounds(net, lower, upper, "crown")
    search = LpBranchAndBound(net, bounds)
    c = np.array([1.0, -1.0, 0.0])
    exact = OutputProblem(net, lower, upper).optimize(c, "min")
    assert exact.status == "optimal" and search.n_unstable > 10
    for checks in (0, 5, 20):
        stopped = search.minimize(c, deadline=_StopsAfter(checks))
        assert stopped.status == "time_limit" and stopped.nodes <= checks
        assert stopped.bound <= exact.value + 1e-6 and stopped.value >= exact.value - 1e-6
        assert c @ net.forward(stopped.argument) == pytest.approx(stopped.value, abs=1e-12)
    assert np.isfinite(search.minimize(c, deadline=_StopsAfter(20)).bound)  # a mid-tree stop still bounds
    full = search.minimize(c)  # the same LP serves the next question
    assert full.status == "optimal" and full.value == pytest.approx(exact.value, abs=1e-6)


def test_a_node_neither_solved_nor_certified_empty_keeps_its_parents_bound(monkeypatch):
    rng = np.random.default_rng(7)
    net = random_network(rng, [6, 12, 12, 3])
    lower, upper = input_box(rng.uniform(size=6), 0.5)
    search = LpBranchAndBound(net, compute_bounds(net, lower, upper, "crown"))
    c = np.array([1.0, -1.0, 0.0])
    exact = search.minimize(c)
    calls = {"n": 0}
    solve = search.lp.minimum

    def a_child_lp_fails(cost):
        calls["n"] += 1
        if calls["n"] != 3:
            return solve(cost)
        search.lp.solves += 1  # the first child of the second search: ran, but no answer
        return None

    monkeypatch.setattr(search.lp, "minimum", a_child_lp_fails)
    root = search.minimize(c, deadline=_StopsAfter(1))
    flawed = search.minimize(c)
    assert flawed.status == "unknown" and flawed.bound <= root.bound + 1e-12 < exact.value
    assert flawed.value == pytest.approx(exact.value, abs=1e-6)  # the rest of the tree was searched


def test_equals_the_milp_on_the_demo_net():
    from robustmip.data import load_demo_network, load_embedded_mnist

    net = load_demo_network()
    images, _ = load_embedded_mnist("test")
    lower, upper = input_box(images[0].reshape(-1), 0.05)
    bounds = compute_bounds(net, lower, upper, "lp")
    search, milp = LpBranchAndBound(net, bounds), OutputProblem(net, lower, upper)
    for i in (0, 7):
        for sense, sign in (("min", 1.0), ("max", -1.0)):
            ours = search.minimize(sign * np.eye(10)[i])
            theirs = milp.optimize(i, sense)
            assert ours.status == "optimal" and sign * ours.value == pytest.approx(theirs.value, abs=1e-6)
