"""Parameter-aware bounds: sound against random parameters and exact MILP optima; LP within interval."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import random_network

from robustmip.bounds import compute_bounds
from robustmip.layers import AffineLayer
from robustmip.network import Network
from robustmip.params import ParamBox, ParamProblem, compute_param_bounds

torch.set_num_threads(1)


def _with_identity_hidden(net: Network) -> Network:
    """The first hidden layer made linear, so that the next layer's inputs take either sign."""
    layers = list(net.layers)
    layers[0] = AffineLayer(layers[0].W, layers[0].b, "identity")
    return Network(layers)


def _cases(rng):
    for trial in range(6):
        net = random_network(rng, [3, 5, 4, 2])
        if trial % 2:
            net = _with_identity_hidden(net)
        x = rng.uniform(-1, 1, 3)
        box = [ParamBox.uniform(net, 0.05), ParamBox.relative(net, 0.2, layers=[1, 2])][trial % 2]
        yield net, box, x - 0.2, x + 0.2


def _sample(rng, net, box, lower, upper, n):
    """Pre-activations of ``n`` random (mostly extreme) parameter/input draws."""
    samples = []
    for _ in range(n):
        deltas = {k: (rng.choice([-1.0, 1.0], R.shape) * rng.uniform(0.5, 1.0, R.shape), rng.uniform(-1, 1, rho.shape))
                  for k, (R, rho) in box.radii.items()}
        _, pre = box.realise(net, deltas).forward(rng.uniform(lower, upper), return_preactivations=True)
        samples.append(pre)
    return samples


def test_interval_and_lp_bounds_hold_for_random_parameters_and_lp_is_tighter(rng):
    for net, box, lower, upper in _cases(rng):
        interval = compute_param_bounds(net, box, lower, upper, "interval")
        lp = compute_param_bounds(net, box, lower, upper, "lp")
        for k in range(len(net.layers)):
            assert np.all(lp.lower[k] >= interval.lower[k] - 1e-12)
            assert np.all(lp.upper[k] <= interval.upper[k] + 1e-12)
        for pre in _sample(rng, net, box, lower, upper, 2000):
            for k, a in enumerate(pre):
                assert np.all(a >= lp.lower[k]) and np.all(a <= lp.upper[k])


def test_bounds_contain_the_exact_optima_of_every_neuron(rng):
    """Each neuron's exact range over both boxes (a MILP on the net cut after its layer) lies in the LP bounds."""
    for net, box, lower, upper in _cases(rng):
        lp = compute_param_bounds(net, box, lower, upper, "lp")
        for k in range(1, len(net.layers)):
            head = net.layers[:k] + (AffineLayer(net.layers[k].W, net.layers[k].b, "identity"),)
            cut = Network(head)
            cut_box = ParamBox({j: r for j, r in box.radii.items() if j <= k})
            problem = ParamProblem(cut, cut_box, lower, upper)
            for j in range(net.layers[k].n_out):
                c = np.eye(net.layers[k].n_out)[j]
                low = problem.optimise_output(c, "min", attack=None)
                high = problem.optimise_output(c, "max", attack=None)
                assert low.status == high.status == "optimal"
                assert lp.lower[k][j] <= low.value + 1e-9 and high.value <= lp.upper[k][j] + 1e-9
                assert low.bound <= low.value + 1e-7 and high.value <= high.bound + 1e-7


def test_an_empty_box_gives_sound_plain_bounds(rng):
    net = random_network(rng, [3, 5, 4, 2])
    x = rng.uniform(0, 1, 3)
    zero = ParamBox.uniform(net, 0.0)
    ours = compute_param_bounds(net, zero, x - 0.1, x + 0.1, "interval")
    plain = compute_bounds(net, x - 0.1, x + 0.1, "interval")
    for k in range(3):
        assert np.allclose(ours.lower[k], plain.lower[k], atol=1e-8)
        assert np.allclose(ours.upper[k], plain.upper[k], atol=1e-8)


def test_unknown_bound_levels_are_refused(rng):
    net = random_network(rng, [3, 4, 2])
    with pytest.raises(ValueError, match="parameter bounds method"):
        compute_param_bounds(net, ParamBox.uniform(net, 0.1), np.zeros(3), np.ones(3), "crown")
