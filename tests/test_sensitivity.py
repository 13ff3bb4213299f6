"""Output boxes: the exact box equals enumeration of activation patterns; every relaxation contains it;
it contains every output found by search or sampling; kw equals Wong & Kolter's dual formula; bad input."""

from __future__ import annotations

import numpy as np
import pytest
from bruteforce import exact_min
from conftest import random_network, tiny_architectures

from robustmip.attacks.falsify import output_extremes
from robustmip.errors import InvalidInput
from robustmip.milp import OutputProblem, SolveOptions
from robustmip.network import Network
from robustmip.sensitivity import ExactOptions, exact_box, log10_volume, output_box, reachable_box
from robustmip.sensitivity.measure import feature_eps, image_rows, sense, sensitivity
from robustmip.solvers import MilpSolver
from robustmip.spec import input_box

CASES = [(dims, seed) for dims in tiny_architectures() for seed in range(2)]


def _case(dims, seed):
    rng = np.random.default_rng(77 * seed + sum(dims))
    net = random_network(rng, dims)
    x = rng.uniform(0.2, 0.8, size=dims[0])
    return net, x


def _enumerated_box(net: Network, lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    eye = np.eye(net.n_outputs)
    lo = np.array([exact_min(net, eye[i], lower, upper) for i in range(net.n_outputs)])
    up = np.array([-exact_min(net, -eye[i], lower, upper) for i in range(net.n_outputs)])
    return lo, up


@pytest.mark.parametrize("engine", ["milp", "lp-bab"])
@pytest.mark.parametrize("dims,seed", CASES)
def test_exact_box_equals_enumeration(dims, seed, engine):
    net, x = _case(dims, seed)
    eps = 0.3
    lower, upper = input_box(x, eps)
    true_lo, true_up = _enumerated_box(net, lower, upper)
    box = output_box(net, x, eps, "exact", exact_options=ExactOptions(engine=engine))
    assert box.status == "exact"
    assert {s["engine"] for s in box.solves if "engine" in s} <= {engine}
    np.testing.assert_allclose(box.inner_lower, true_lo, atol=1e-6)
    np.testing.assert_allclose(box.inner_upper, true_up, atol=1e-6)
    np.testing.assert_allclose(box.lower, true_lo, atol=1e-5)
    np.testing.assert_allclose(box.upper, true_up, atol=1e-5)
    # Inner faces are attained, outer faces proven: the true box lies between them.
    assert (box.lower <= true_lo + 1e-9).all() and (box.upper >= true_up - 1e-9).all()
    assert (box.inner_lower >= true_lo - 1e-9).all() and (box.inner_upper <= true_up + 1e-9).all()


@pytest.mark.parametrize("dims,seed", CASES[::2])
def test_relaxations_contain_exact_box_which_contains_search_and_samples(dims, seed):
    net, x = _case(dims, seed)
    eps = np.linspace(0.1, 0.4, dims[0])  # per-feature radii
    lower, upper = input_box(x, eps)
    exact = reachable_box(net, lower, upper, "exact")
    assert exact.status == "exact"
    for method in ("interval", "kw", "crown", "lp"):
        box = reachable_box(net, lower, upper, method)
        assert (box.lower <= exact.lower + 1e-9).all() and (box.upper >= exact.upper - 1e-9).all(), method
        assert box.log10_volume >= exact.log10_volume - 1e-9
    rng = np.random.default_rng(seed)
    samples = rng.uniform(lower, upper, size=(2000, dims[0]))
    corners = np.where(rng.integers(0, 2, size=(200, dims[0])).astype(bool), lower, upper)
    searched = output_extremes(net, lower, upper, np.vstack([np.eye(net.n_outputs), -np.eye(net.n_outputs)]))
    y = net.forward(np.vstack([samples, corners, searched]))
    assert (y >= exact.lower - 1e-9).all() and (y <= exact.upper + 1e-9).all()
    assert (y.min(axis=0) >= exact.inner_lower - 1e-6).all()  # the inner box holds the best of them
    assert (y.max(axis=0) <= exact.inner_upper + 1e-6).all()


def _kw_dual(net: Network, lower: np.ndarray, upper: np.ndarray, c: np.ndarray, bounds: list) -> float:
    """Wong & Kolter (2018) J: the dual objective at their dual-network point, over a box.

    ``nu_K = -c``, ``nu_hat_k = W_k^T nu_{k+1}``, ``nu_k = D_k nu_hat_k`` with ``D = u / (u - l)``
    (unstable), 1 (active), 0 (inactive); ``J = -sum nu_{k+1}.b_k + min_box(-nu_hat_1 . x)
    + sum_{unstable} l [nu]_+``, a lower bound on ``c . y``.
    """
    nu = -c
    J = 0.0
    for k in range(len(net.layers) - 1, -1, -1):
        layer = net.layers[k]
        J -= nu @ layer.b
        nu_hat = layer.W.T @ nu
        if k == 0:
            J += np.minimum(-nu_hat * lower, -nu_hat * upper).sum()
            break
        lo, up = bounds[k - 1]
        unstable = (lo < 0) & (up > 0)
        d = np.where(unstable, up / np.where(unstable, up - lo, 1.0), (lo >= 0).astype(float))
        nu = d * nu_hat
        J += np.sum(np.where(unstable, lo * np.maximum(nu, 0.0), 0.0))
    return J


def _kw_reference(net: Network, lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The dual bound of every pre-activation, layer by layer, then of the logits (numpy, no intersection)."""
    bounds = []
    for k, layer in enumerate(net.layers):
        sub = Network(net.layers[: k + 1])
        eye = np.eye(layer.n_out)
        lo = np.array([_kw_dual(sub, lower, upper, eye[i], bounds) for i in range(layer.n_out)])
        up = np.array([-_kw_dual(sub, lower, upper, -eye[i], bounds) for i in range(layer.n_out)])
        bounds.append((lo, up))
    return bounds[-1]


@pytest.mark.parametrize("dims", [[4, 8, 8, 3], [6, 10, 5, 7, 4]])
def test_kw_box_equals_wong_kolter_dual(dims):
    rng = np.random.default_rng(sum(dims))
    net = random_network(rng, dims)
    lower = rng.uniform(-1, 0, size=dims[0])
    upper = lower + rng.uniform(0.1, 1.0, size=dims[0])
    box = reachable_box(net, lower, upper, "kw")
    ref_lo, ref_up = _kw_reference(net, lower, upper)
    np.testing.assert_allclose(box.lower, ref_lo, rtol=0, atol=1e-9 * (1 + np.abs(ref_lo)).max() * 10)
    np.testing.assert_allclose(box.upper, ref_up, rtol=0, atol=1e-9 * (1 + np.abs(ref_up)).max() * 10)
    assert (box.lower <= ref_lo).all() and (box.upper >= ref_up).all()  # widened outward


@pytest.mark.parametrize("engine", ["milp", "lp-bab"])
def test_time_limit_keeps_the_outer_box_sound(engine):
    net, x = _case([4, 6, 2], 0)
    lower, upper = input_box(x, 0.4)
    true_lo, true_up = _enumerated_box(net, lower, upper)
    box = exact_box(net, lower, upper, ExactOptions(time_limit=1e-4, engine=engine))
    assert (box.lower <= true_lo + 1e-9).all() and (box.upper >= true_up - 1e-9).all()
    assert (box.inner_lower >= true_lo - 1e-9).all() and (box.inner_upper <= true_up + 1e-9).all()
    assert box.status in ("exact", "time_limit")


def test_output_problem_builds_one_model_for_every_question():
    net, x = _case([3, 5, 4, 3], 1)
    lower, upper = input_box(x, 0.3)
    problem = OutputProblem(net, lower, upper, SolveOptions(MilpSolver("highs", 30)))
    first = problem.optimize(0, "min")
    model = problem.encoding
    build = problem.build_seconds
    for i in range(net.n_outputs):
        for sense_ in ("min", "max"):
            optimum = problem.optimize(i, sense_, start=0.5 * (lower + upper))
            c = np.eye(net.n_outputs)[i] * (1 if sense_ == "min" else -1)
            truth = exact_min(net, c, lower, upper) * (1 if sense_ == "min" else -1)
            assert optimum.value == pytest.approx(truth, abs=1e-6)
            assert (optimum.bound <= truth + 1e-9) if sense_ == "min" else (optimum.bound >= truth - 1e-9)
    assert problem.encoding is model and problem.build_seconds == build
    assert first.status == "optimal"


def test_rows_ratios_and_sense():
    net, x = _case([3, 5, 4, 3], 0)
    rows = image_rows(net, x, 0.2, ["interval", "kw", "exact"], index=7)
    by = {r.method: r for r in rows}
    assert by["exact"].log10_ratio == 0.0
    assert by["interval"].log10_ratio >= by["kw"].log10_ratio - 1e-9 >= -1e-9
    row = by["exact"].to_dict()
    for key in ("index", "method", "lower", "upper", "log10_volume", "inner_lower", "inner_upper", "status"):
        assert key in row
    assert row["index"] == 7 and row["status"] == "exact"
    assert "status" not in by["kw"].to_dict()
    many = sensitivity(net, np.stack([x, x * 0.9]), 0.2, ["crown"], indices=[3, 4])
    assert [r.index for r in many] == [3, 4]
    agg = sense([2.0, 4.0])
    assert agg["mean"] == pytest.approx((1e2 + 1e4) / 2) and agg["geomean"] == pytest.approx(1e3)
    assert sense([400.0, 400.0])["log10_mean"] == pytest.approx(400.0)  # no overflow
    assert log10_volume(np.zeros(2), np.array([10.0, 0.1])) == pytest.approx(0.0)


def test_feature_eps_is_sigma_times_range():
    data = np.array([[0.0, 1.0, 5.0], [0.0, 3.0, 1.0], [0.0, 2.0, 2.0]])
    np.testing.assert_allclose(feature_eps(data, 0.1), [0.0, 0.2, 0.4])
    with pytest.raises(InvalidInput, match="sigma"):
        feature_eps(data, -0.05)


def test_bad_input_is_refused_clearly():
    net, x = _case([3, 5, 3], 0)
    with pytest.raises(InvalidInput, match="eps has 2 values"):
        output_box(net, x, np.array([0.1, 0.1]), "interval")
    with pytest.raises(InvalidInput, match=">= 0"):
        output_box(net, x, np.array([0.1, -0.1, 0.1]), "interval")
    with pytest.raises(InvalidInput, match="unknown output-box method"):
        output_box(net, x, 0.1, "reluplex")
    with pytest.raises(InvalidInput, match="expects shape"):
        output_box(net, np.zeros(4), 0.1, "interval")
    with pytest.raises(InvalidInput, match="unknown engine"):
        ExactOptions(engine="simplex")
