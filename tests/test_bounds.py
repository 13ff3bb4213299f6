"""Bounds are sound (sampling, exact ranges), nested by level, and the LP certificate is valid."""

from __future__ import annotations

import time

import numpy as np
import pytest
from bruteforce import exact_preactivation_ranges
from conftest import random_network, tiny_architectures

from robustmip.bounds import BOUNDS_METHODS, compute_bounds
from robustmip.bounds.tighten import certified_lp_minimum
from robustmip.errors import InvalidInput
from robustmip.spec import input_box


@pytest.mark.parametrize("seed", range(4))
def test_bounds_contain_sampled_preactivations(seed):
    rng = np.random.default_rng(seed)
    net = random_network(rng, [10, 16, 16, 12, 4])
    lower, upper = input_box(rng.uniform(size=10), 0.15)
    samples = rng.uniform(lower, upper, size=(5000, 10))
    corners = np.where(rng.uniform(size=(500, 10)) < 0.5, lower, upper)
    _, pre = net.forward(np.vstack([samples, corners]), return_preactivations=True)
    for method in BOUNDS_METHODS:
        b = compute_bounds(net, lower, upper, method)
        for k, a in enumerate(pre):
            assert (a >= b.lower[k]).all() and (a <= b.upper[k]).all(), (method, k)


@pytest.mark.parametrize("dims", tiny_architectures())
def test_bounds_contain_exact_ranges_and_are_nested(dims):
    rng = np.random.default_rng(sum(dims))
    net = random_network(rng, dims)
    lower, upper = input_box(rng.uniform(size=dims[0]), 0.3)
    exact = exact_preactivation_ranges(net, lower, upper)
    assert all(np.isfinite(lo).all() and np.isfinite(hi).all() for lo, hi in exact)
    previous = None
    for method in BOUNDS_METHODS:
        b = compute_bounds(net, lower, upper, method)
        for k, (lo, hi) in enumerate(exact):
            assert (b.lower[k] <= lo + 1e-9).all() and (b.upper[k] >= hi - 1e-9).all(), (method, k)
            if previous is not None:
                assert (b.lower[k] >= previous.lower[k] - 1e-9).all()
                assert (b.upper[k] <= previous.upper[k] + 1e-9).all()
        previous = b
    # The first layer is affine in the input: interval bounds are exact there.
    np.testing.assert_allclose(b.lower[0], exact[0][0], atol=1e-7)
    np.testing.assert_allclose(b.upper[0], exact[0][1], atol=1e-7)


def test_lp_is_tighter_than_crown_somewhere():
    rng = np.random.default_rng(7)
    net = random_network(rng, [8, 20, 20, 20, 3])
    lower, upper = input_box(rng.uniform(size=8), 0.2)
    crown = compute_bounds(net, lower, upper, "crown")
    lp = compute_bounds(net, lower, upper, "lp")
    width = lambda b: sum(float((u - l).sum()) for l, u in zip(b.lower, b.upper))  # noqa: E731
    assert width(lp) < width(crown) - 1e-3
    assert lp.lp_solves > 0


def test_certified_lp_minimum_is_a_lower_bound_for_any_duals():
    rng = np.random.default_rng(3)
    # min x0 + x1  s.t.  x0 + 2 x1 >= 1, 0 <= x <= 1: optimum 0.5 at (0, 0.5).
    rows = (np.array([0, 0]), np.array([0, 1]), np.array([1.0, 2.0]))
    args = (np.zeros(2), np.ones(2), rows, np.array([1.0]), np.array([np.inf]))
    cost = np.array([1.0, 1.0])
    assert certified_lp_minimum(cost, *args, np.array([0.5])) == pytest.approx(0.5)
    for y in rng.normal(size=(200, 1)) * 3:
        assert certified_lp_minimum(cost, *args, y) <= 0.5 + 1e-12


def test_input_box_validation():
    with pytest.raises(InvalidInput, match="eps"):
        input_box(np.zeros(3), -0.1)
    lower, upper = input_box(np.array([0.0, 0.5, 1.0]), 0.2)
    np.testing.assert_allclose(lower, [0.0, 0.3, 0.8])
    np.testing.assert_allclose(upper, [0.2, 0.7, 1.0])


def test_milp_bounds_equal_the_exact_ranges_of_the_neurons_they_tighten():
    """On tiny nets every per-neuron MILP finishes: its bound is the exact range (up to the 1e-6 widening)."""
    checked = solves = 0
    for dims in tiny_architectures():
        if len(dims) < 4:
            continue
        for seed in range(3):
            rng = np.random.default_rng(100 * seed + sum(dims))
            net = random_network(rng, dims)
            lower, upper = input_box(rng.uniform(size=dims[0]), 0.3)
            exact = exact_preactivation_ranges(net, lower, upper)
            lp = compute_bounds(net, lower, upper, "lp")
            milp = compute_bounds(net, lower, upper, "milp", milp_neuron_time_limit=10.0)
            solves += milp.milp_solves
            for k in range(1, len(dims) - 2):
                tightened = lp.unstable(k)
                for lo, hi, ex_lo, ex_hi in zip(milp.lower[k][tightened], milp.upper[k][tightened],
                                                exact[k][0][tightened], exact[k][1][tightened]):
                    assert hi == pytest.approx(ex_hi, abs=1e-5 * (1 + abs(ex_hi)))
                    if hi > 0:  # a neuron proved inactive skips its lower-bound MILP
                        assert lo == pytest.approx(ex_lo, abs=1e-5 * (1 + abs(ex_lo)))
                    checked += 1
    assert checked >= 5 and solves >= checked


def test_milp_neuron_time_limit_must_be_positive():
    net = random_network(np.random.default_rng(0), [3, 4, 4, 2])
    with pytest.raises(InvalidInput, match="milp_neuron_time_limit"):
        compute_bounds(net, np.zeros(3), np.ones(3), "milp", milp_neuron_time_limit=0.0)


def test_sign_deciding_refinement_proves_stable_neurons_and_stays_sound():
    """From interval bounds, the sign-deciding MILPs make every ReLU stable that the ``milp`` level (exact
    on small nets, see above) finds stable by a margin, contain every sampled pre-activation, and stop
    at the deadline."""
    from robustmip.bounds.refine import refine_bounds
    from robustmip.deadline import Deadline

    stable_found = proved = 0
    for seed in range(3):
        rng = np.random.default_rng(seed)
        net = random_network(rng, [4, 10, 10, 10, 3])
        lower, upper = input_box(rng.uniform(size=4), 0.3)
        start = compute_bounds(net, lower, upper, "interval")
        exact = compute_bounds(net, lower, upper, "milp", milp_neuron_time_limit=30.0)
        refined = refine_bounds(net, start, Deadline(60), neuron_time_limit=10.0)
        _, pre = net.forward(rng.uniform(lower, upper, size=(3000, 4)), return_preactivations=True)
        for k in (1, 2):
            assert (refined.lower[k] <= pre[k].min(axis=0)).all() and (refined.upper[k] >= pre[k].max(axis=0)).all()
            stable = ((exact.lower[k] > 1e-4) | (exact.upper[k] < -1e-4)) & start.unstable(k)
            stable_found += int(stable.sum())
            proved += int((stable & ~refined.unstable(k)).sum())
    assert stable_found >= 5 and proved == stable_found
    net = random_network(np.random.default_rng(0), [20, 40, 40, 40, 3])
    lower, upper = input_box(np.full(20, 0.5), 0.5)
    start = compute_bounds(net, lower, upper, "interval")
    before = time.perf_counter()
    refined = refine_bounds(net, start, Deadline(0.5), neuron_time_limit=10.0)
    assert time.perf_counter() - before < 0.5 + 1.0
    assert all((lo >= s_lo).all() and (up <= s_up).all()
               for lo, up, s_lo, s_up in zip(refined.lower, refined.upper, start.lower, start.upper))
