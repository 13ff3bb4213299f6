"""Quantization: exhaustive enumeration of every floor/ceil grid choice on tiny nets against the exact
quantization-box verdict and the differential (quantized vs float) verdict."""

from __future__ import annotations

import itertools

import numpy as np
import torch
from conftest import random_network

from robustmip.layers import AffineLayer
from robustmip.network import Network
from robustmip.params import ParamBox, quantize_network, verify_parameter_robustness
from robustmip.params.box import quantization_scale
from robustmip.params.quantization import quantization_row, quantized_disagreement

torch.set_num_threads(1)


def grid_choices(net: Network, bits: int):
    """Every network whose weights are, entry by entry, the floor or the ceiling of W on its grid."""
    floors, steps = [], []
    for layer in net.layers:
        step = quantization_scale(layer.W, bits)
        floors.append(np.floor(layer.W / step))
        steps.append(step)
    sizes = [f.size for f in floors]
    for choice in itertools.product((0.0, 1.0), repeat=sum(sizes)):
        bits_left, layers = np.array(choice), []
        for layer, f, step, n in zip(net.layers, floors, steps, sizes):
            up, bits_left = bits_left[:n].reshape(f.shape), bits_left[n:]
            layers.append(AffineLayer((f + up) * step, layer.b, layer.activation))
        yield Network(layers)


def strictly_changes(candidate: Network, x: np.ndarray, label: int) -> bool:
    logits = candidate.forward(x)
    return bool(np.max(np.delete(logits, label)) > logits[label])


def strict_disagreement(ref: np.ndarray, other: np.ndarray) -> bool:
    """The reference's top class wins strictly and the other net puts some class strictly above it."""
    top = int(np.argmax(ref))
    return bool(np.max(np.delete(ref, top)) < ref[top] and np.max(np.delete(other, top)) > other[top])


def test_the_floor_box_agrees_with_every_floor_ceil_choice():
    """Box robust => no grid choice changes the label; some choice changes it => the box flips."""
    rng = np.random.default_rng(41)
    outcomes = {"robust": 0, "flips": 0}
    for trial in range(8):
        net = random_network(rng, [2, 2, 2], bias_scale=0.1)  # 8 weights: 256 grid choices
        bits = (2, 3, 4)[trial % 3]
        box = ParamBox.quantization(net, bits, "floor")
        for x in rng.uniform(0, 1, (3, 2)):
            label = int(np.argmax(net.forward(x)))
            verdict = verify_parameter_robustness(net, box, x, label)
            changed = any(strictly_changes(c, x, label) for c in grid_choices(net, bits))
            assert verdict.status in ("robust", "flips")
            outcomes[verdict.status] += 1
            if verdict.status == "robust":
                assert not changed
            if changed:
                assert verdict.status == "flips"
            assert box.contains(net, quantize_network(net, bits, "floor"))
    assert outcomes["robust"] > 0 and outcomes["flips"] > 0


def test_differential_verdicts_agree_with_the_forward_pass_and_with_sampling():
    rng = np.random.default_rng(43)
    outcomes = set()
    for trial in range(8):
        net = random_network(rng, [2, 4, 3], bias_scale=0.2)
        quantized = quantize_network(net, 2 + trial % 3, "nearest")
        x = rng.uniform(0.2, 0.8, 2)
        fixed = quantized_disagreement(net, quantized, x, x)
        assert (fixed.status == "flips") == strict_disagreement(net.forward(x), quantized.forward(x))
        lower, upper = x - 0.2, x + 0.2
        boxed = quantized_disagreement(net, quantized, lower, upper)
        outcomes.add(boxed.status)
        if boxed.status == "flips":
            ref, other = net.forward(boxed.x), quantized.forward(boxed.x)
            assert np.all(boxed.x >= lower) and np.all(boxed.x <= upper)
            assert strict_disagreement(ref, other)
        else:
            assert boxed.status == "robust"
            axes = [np.linspace(lo, hi, 41) for lo, hi in zip(lower, upper)]
            grid = np.stack(np.meshgrid(*axes), -1).reshape(-1, 2)
            ref, other = net.forward(grid), quantized.forward(grid)
            assert not any(strict_disagreement(r, o) for r, o in zip(ref, other))
    assert outcomes == {"robust", "flips"}


def test_quantization_row_reports_agreement_certificates_and_verdicts():
    rng = np.random.default_rng(47)
    net = random_network(rng, [4, 8, 3])
    x = rng.uniform(0, 1, 4)
    for bits in (16, 3):
        row = quantization_row(net, x, bits, eps=0.01)
        assert row["bits"] == bits and row["label"] == int(np.argmax(net.forward(x)))
        assert row["status"] in ("robust", "flips", "unknown") and row["differential"] in ("robust", "flips")
        assert not row["interval_certified"] or row["status"] == "robust"
    assert quantization_row(net, x, 16)["status"] == "robust"
