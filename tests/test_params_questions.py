"""Murthy et al.'s questions and the radius: the CAT model's published sigma row, eps against dense
grids, def. 4 against sampling, the one-MILP radius against bisection, properties with several boxes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import random_network

from robustmip.layers import AffineLayer
from robustmip.network import Network
from robustmip.params import PairProblem, ParamBox, decide_parameter_property, parameter_radius
from robustmip.params.confidence import flip_sigma, global_deviation, local_deviation, sigmoid
from robustmip.spec import OutputProperty, PropertyCase

torch.set_num_threads(1)

C0, C1, C2 = -3.51518067, 0.07577862, 1.18118408
CAT = Network([AffineLayer(np.array([[C1, C2]]), np.array([C0]), "identity")])
LOWER, UPPER = np.array([6.3, 2.0]), np.array([20.5, 3.9])
GRID = np.stack(np.meshgrid(np.linspace(6.3, 20.5, 1201), np.linspace(2.0, 3.9, 1201)), -1).reshape(-1, 2)


def _cat_grid(delta):
    """Nominal logit and the exact logit radius delta (1 + H + W) at every grid point (the model is linear)."""
    z = GRID @ np.array([C1, C2]) + C0
    return z, delta * (1.0 + GRID.sum(axis=1))


@pytest.mark.parametrize("delta, published", [(0.005, (0.024, 0.021)), (0.01, (0.052, 0.040))])
def test_cat_sigma_row_is_reproduced_to_three_decimals(delta, published):
    male, female = flip_sigma(CAT, ParamBox.uniform(CAT, delta), LOWER, UPPER)
    assert male.status == female.status == "optimal"
    assert round(male.value, 3) == published[0] and round(female.value, 3) == published[1]
    z, radius = _cat_grid(delta)
    sig = 1.0 / (1.0 + np.exp(-z))
    grid_male = np.max(np.where((z >= 0) & (z - radius <= 0), sig - 0.5, -1))
    grid_female = np.max(np.where((z < 0) & (z + radius >= 0), 0.5 - sig, -1))
    assert grid_male <= male.bound + 1e-9 and male.value - grid_male < 5e-4  # grid step 0.012 in H
    assert grid_female <= female.bound + 1e-9 and female.value - grid_female < 5e-4


@pytest.mark.parametrize("delta", [0.005, 0.01])
def test_cat_global_eps_is_exact_and_exceeds_sigma(delta):
    eps = global_deviation(CAT, ParamBox.uniform(CAT, delta), LOWER, UPPER, tol=1e-6)
    assert eps.status == "exact" and eps.upper - eps.lower <= 1e-6
    z, radius = _cat_grid(delta)
    up, down = sigmoid_array(z + radius) - sigmoid_array(z), sigmoid_array(z) - sigmoid_array(z - radius)
    grid = np.max(np.maximum(up, down))
    assert grid <= eps.upper + 1e-9 and eps.lower - grid < 1e-5
    male, female = flip_sigma(CAT, ParamBox.uniform(CAT, delta), LOWER, UPPER)
    assert eps.lower > max(male.value, female.value)  # a flip moves the confidence past the level


def sigmoid_array(z):
    return 1.0 / (1.0 + np.exp(-z))


def test_local_eps_is_the_closed_form_of_the_linear_model():
    x = np.array([15.0, 2.5])
    z = float(CAT.forward(x)[0])
    radius = 0.01 * (1 + x.sum())
    local = local_deviation(CAT, ParamBox.uniform(CAT, 0.01), x)
    expected = max(sigmoid(z + radius) - sigmoid(z), sigmoid(z) - sigmoid(z - radius))
    assert local.status == "exact" and local.lower == pytest.approx(expected, abs=1e-9)


def test_global_eps_on_a_relu_net_holds_against_sampling():
    rng = np.random.default_rng(53)
    net = random_network(rng, [2, 3, 1])
    box = ParamBox.uniform(net, 0.05)
    lower, upper = np.zeros(2), np.ones(2)
    eps = global_deviation(net, box, lower, upper, tol=1e-5)
    assert eps.status == "exact"
    assert box.contains(net, eps.network)
    worst = 0.0
    for _ in range(3000):
        deltas = {k: (rng.choice([-1.0, 1.0], R.shape), rng.choice([-1.0, 1.0], rho.shape))
                  for k, (R, rho) in box.radii.items()}
        x = rng.uniform(lower, upper)
        worst = max(worst, abs(sigmoid(box.realise(net, deltas).forward(x)[0]) - sigmoid(net.forward(x)[0])))
    assert worst <= eps.upper + 1e-9


def test_global_label_flips_def4_against_sampling():
    rng = np.random.default_rng(59)
    seen = set()
    for _ in range(6):
        net = random_network(rng, [2, 5, 3])
        for delta in (0.002, 0.1):
            box = ParamBox.uniform(net, delta)
            verdict = PairProblem(net, np.zeros(2), np.ones(2), box=box).disagreement()
            seen.add(verdict.status)
            if verdict.status == "flips":
                assert box.contains(net, verdict.network)
                ref, other = net.forward(verdict.x), verdict.network.forward(verdict.x)
                assert np.argmax(ref) != np.argmax(other)
                continue
            assert verdict.status == "robust"
            for _ in range(300):
                deltas = {k: (rng.uniform(-1, 1, R.shape), rng.uniform(-1, 1, rho.shape))
                          for k, (R, rho) in box.radii.items()}
                x = rng.uniform(0, 1, 2)
                ref, other = net.forward(x), box.realise(net, deltas).forward(x)
                top = int(np.argmax(ref))
                assert not (np.max(np.delete(ref, top)) < ref[top] and np.max(np.delete(other, top)) > other[top])
    assert seen == {"robust", "flips"}


def test_one_milp_radius_agrees_with_bisection():
    rng = np.random.default_rng(61)
    for _ in range(2):
        net = random_network(rng, [3, 5, 3])
        x = rng.uniform(0, 1, 3)
        label = int(np.argmax(net.forward(x)))
        unit = ParamBox.uniform(net, 1.0, layers=[0])
        one = parameter_radius(net, x, label, unit, max_delta=2.0)
        bisected = parameter_radius(net, x, label, unit, max_delta=2.0, method="bisection", tol=1e-3)
        assert one.method == "milp" and one.status == bisected.status == "exact"
        assert one.lower <= one.upper <= one.lower * (1 + 1e-4) + 1e-9
        assert bisected.lower <= one.upper + 1e-9 and one.lower <= bisected.upper + 1e-9
        logits = one.witness.forward(x)
        assert np.max(np.delete(logits, label)) > logits[label]
        assert unit.scaled(one.upper).contains(net, one.witness)


def test_property_with_two_boxes_is_robust_only_if_both_are():
    rng = np.random.default_rng(67)
    net = random_network(rng, [2, 4, 2])
    x = rng.uniform(0.2, 0.8, 2)
    label = int(np.argmax(net.forward(x)))
    unsafe = [(np.eye(2)[label][None, :] - np.eye(2)[1 - label][None, :], np.zeros(1))]
    far = rng.uniform(0, 1, 2)
    cases = [PropertyCase(x, x, unsafe), PropertyCase(far, far, unsafe)]
    prop = OutputProperty(2, 2, cases)
    verdict = decide_parameter_property(net, ParamBox.uniform(net, 0.001), prop)
    own = decide_parameter_property(net, ParamBox.uniform(net, 0.001), OutputProperty(2, 2, cases[:1]))
    assert own.status == "robust" and own.margin < 0
    far_label = int(np.argmax(net.forward(far)))
    assert verdict.status == ("robust" if far_label == label else "flips")
