"""Parameter boxes and quantization: constructors, radii, realisation, and the errors of bad input."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import random_network

from robustmip.errors import InvalidInput
from robustmip.params import ParamBox, quantize_network
from robustmip.params.box import quantization_scale


def test_uniform_relative_and_app_radii(rng):
    net = random_network(rng, [3, 4, 2])
    uniform = ParamBox.uniform(net, 0.1, layers=[1])
    assert uniform.layers == [1]
    assert np.all(uniform.radii[1][0] == 0.1) and np.all(uniform.radii[1][1] == 0.1)
    relative = ParamBox.relative(net, 0.5)
    assert np.allclose(relative.radii[0][0], 0.5 * np.abs(net.layers[0].W))
    tanh = ParamBox.app(net, 0.2, "tanh", s=3.0, m=2.0)
    assert np.allclose(tanh.radii[0][0], 0.2 * np.tanh(3.0 * net.layers[0].W ** 2) / 2.0)
    absolute = ParamBox.app(net, 0.2, "abs")
    assert np.allclose(absolute.radii[1][1], 0.2 * np.abs(net.layers[1].b))
    assert uniform.scaled(2.0).radii[1][0][0, 0] == pytest.approx(0.2)
    assert uniform.n_parameters() == net.layers[1].W.size + net.layers[1].b.size


def test_realise_stays_in_the_box_and_contains_checks_it(rng):
    net = random_network(rng, [3, 4, 2])
    box = ParamBox.uniform(net, 0.05)
    deltas = {k: (rng.uniform(-3, 3, R.shape), rng.uniform(-3, 3, rho.shape)) for k, (R, rho) in box.radii.items()}
    moved = box.realise(net, deltas)
    assert box.contains(net, moved)
    assert np.abs(moved.layers[0].W - net.layers[0].W).max() == pytest.approx(0.05)
    assert not ParamBox.uniform(net, 0.01).contains(net, moved)
    assert not ParamBox.uniform(net, 0.05, layers=[0]).contains(net, moved)  # layer 1 moved outside its box


@pytest.mark.parametrize("bits", [2, 3, 4, 8, 16])
@pytest.mark.parametrize("rounding", ["nearest", "floor", "stochastic"])
def test_quantized_net_lies_on_its_grid_and_in_its_box(rng, bits, rounding):
    net = random_network(rng, [4, 6, 3])
    quantized = quantize_network(net, bits, rounding)
    assert ParamBox.quantization(net, bits, rounding).contains(net, quantized)
    for layer, q in zip(net.layers, quantized.layers):
        step = quantization_scale(layer.W, bits)
        levels = q.W / step
        assert np.allclose(levels, np.round(levels), atol=1e-9)
        assert np.abs(levels).max() <= 2 ** (bits - 1) - 1 + 1e-9
        assert np.array_equal(q.b, layer.b)  # biases stay in float
    if rounding == "nearest":
        box = ParamBox.quantization(net, bits, rounding)
        assert np.allclose(box.radii[0][0], 0.5 * quantization_scale(net.layers[0].W, bits), rtol=1e-12)


def test_bad_input_is_refused_with_clear_errors(rng):
    net = random_network(rng, [3, 4, 2])
    with pytest.raises(InvalidInput, match="delta must be a finite number >= 0"):
        ParamBox.uniform(net, -0.1)
    with pytest.raises(InvalidInput, match=r"layer\(s\) \[5\] do not exist"):
        ParamBox.uniform(net, 0.1, layers=[0, 5])
    with pytest.raises(InvalidInput, match="bits must be an integer >= 2"):
        ParamBox.quantization(net, 1)
    with pytest.raises(InvalidInput, match="bits must be an integer >= 2"):
        quantize_network(net, 1)
    with pytest.raises(InvalidInput, match="rounding must be one of"):
        quantize_network(net, 8, "up")
    with pytest.raises(InvalidInput, match="perturbs layer 2"):
        ParamBox({2: (np.zeros((2, 4)), np.zeros(2))}).check(net)
    with pytest.raises(InvalidInput, match="finite and >= 0"):
        ParamBox({0: (-np.ones((4, 3)), np.zeros(4))})
