"""Independent oracles: z3's nonlinear real arithmetic on the MILP's optima, and the falsifier's consistency.

The z3 tests need the optional extra ``robustmip[oracle]`` (``z3-solver``) and skip without it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import random_network

from robustmip.layers import AffineLayer
from robustmip.network import Network
from robustmip.params import ParamAttack, ParamBox, ParamProblem, param_pgd, verify_parameter_robustness
from robustmip.params.problem import is_flip
from robustmip.params.quantization import interval_certified
from robustmip.spec import disjunction_slack, robustness_conjunctions

torch.set_num_threads(1)


def z3_reaches(net: Network, box: ParamBox, lower: np.ndarray, upper: np.ndarray, threshold: float) -> str:
    """z3's answer to "some parameter in the box and input in [lower, upper] give y_0 >= threshold"."""
    z3 = pytest.importorskip("z3")
    solver = z3.Solver()
    solver.set("timeout", 60_000)
    h = [z3.Real(f"x{i}") for i in range(net.n_inputs)]
    for i, v in enumerate(h):
        solver.add(v >= float(lower[i]), v <= float(upper[i]))
    for k, layer in enumerate(net.layers):
        R, rho = box.radii.get(k, (np.zeros_like(layer.W), np.zeros_like(layer.b)))
        out = []
        for j in range(layer.n_out):
            b = z3.Real(f"b{k}_{j}")
            solver.add(b >= float(layer.b[j] - rho[j]), b <= float(layer.b[j] + rho[j]))
            a = b
            for i in range(layer.n_in):
                w = z3.Real(f"w{k}_{j}_{i}")
                solver.add(w >= float(layer.W[j, i] - R[j, i]), w <= float(layer.W[j, i] + R[j, i]))
                a = a + w * h[i]
            out.append(z3.If(a > 0, a, 0) if layer.activation == "relu" else a)
        h = out
    solver.add(h[0] >= threshold)
    return str(solver.check())


def _tiny_nets(rng, n):
    """2-3-3-1 nets; every third has a linear first hidden layer (inputs of either sign downstream).

    Half the ReLU nets take an input box, the rest a fixed input (z3 needs 15-20 s for a linear
    hidden layer over an input box, 0.01-0.2 s otherwise).
    """
    for i in range(n):
        net = random_network(rng, [2, 3, 3, 1])
        linear = i % 3 == 2
        if linear:
            layers = list(net.layers)
            layers[0] = AffineLayer(layers[0].W, layers[0].b, "identity")
            net = Network(layers)
        x = rng.uniform(0, 1, 2)
        lower, upper = (x, x) if i % 2 or linear else (x - 0.1, x + 0.1)
        yield net, ParamBox.uniform(net, float(rng.uniform(0.02, 0.2))), lower, upper


def test_milp_optimum_equals_z3_on_20_random_nets_with_every_layer_perturbed():
    """z3 finds no point beyond the MILP's proven bound + 1e-5 and a point within 1e-5 of its witness
    (the maximum of the output on even nets, the minimum on odd ones)."""
    pytest.importorskip("z3")
    rng = np.random.default_rng(17)
    for i, (net, box, lower, upper) in enumerate(_tiny_nets(rng, 20)):
        sense, sign = ("max", 1.0) if i % 2 == 0 else ("min", -1.0)
        optimum = ParamProblem(net, box, lower, upper).optimise_output(np.ones(1), sense, attack=None)
        assert optimum.status == "optimal" and abs(optimum.value - optimum.bound) <= 1e-6
        flipped = Network([*net.layers[:-1], AffineLayer(sign * net.layers[-1].W, sign * net.layers[-1].b, "identity")])
        assert z3_reaches(flipped, box, lower, upper, sign * optimum.bound + 1e-5) == "unsat"
        assert z3_reaches(flipped, box, lower, upper, sign * optimum.value - 1e-5) == "sat"


def test_milp_optimum_equals_z3_with_only_hidden_layers_perturbed():
    """Fixed output weights: the encoding keeps its objective-fitted relaxation of the last hidden layer."""
    pytest.importorskip("z3")
    rng = np.random.default_rng(19)
    for i in range(6):
        net = random_network(rng, [2, 3, 3, 1])
        x = rng.uniform(0, 1, 2)
        box = ParamBox.uniform(net, 0.1, layers=[0, 1])
        sense, sign = ("max", 1.0) if i % 2 == 0 else ("min", -1.0)
        problem = ParamProblem(net, box, x - 0.1, x + 0.1)
        optimum = problem.optimise_output(np.ones(1), sense, attack=None)
        assert optimum.status == "optimal" and abs(optimum.value - optimum.bound) <= 1e-6
        flipped = Network([*net.layers[:-1], AffineLayer(sign * net.layers[-1].W, sign * net.layers[-1].b, "identity")])
        assert z3_reaches(flipped, box, x - 0.1, x + 0.1, sign * optimum.bound + 1e-5) == "unsat"
        assert z3_reaches(flipped, box, x - 0.1, x + 0.1, sign * optimum.value - 1e-5) == "sat"


def test_pgd_never_flips_what_the_milp_proves_and_witnesses_recheck():
    rng = np.random.default_rng(23)
    decided = {"robust": 0, "flips": 0}
    for trial in range(8):
        net = random_network(rng, [3, 6, 5, 3])
        x = rng.uniform(0, 1, 3)
        label = int(np.argmax(net.forward(x)))
        for delta in (0.01, 0.05, 0.15):
            box = ParamBox.uniform(net, delta)
            verdict = verify_parameter_robustness(net, box, x, label, eps=0.02, attack=None, optimise=True)
            assert verdict.status != "unknown"
            decided[verdict.status] += 1
            conjunctions = robustness_conjunctions(3, label, [t for t in range(3) if t != label])
            point, deltas, _ = param_pgd(net, box, np.clip(x - 0.02, 0, 1), np.clip(x + 0.02, 0, 1), conjunctions,
                                         ParamAttack(steps=40, restarts=8, seed=trial))
            candidate = box.realise(net, deltas)
            pgd_flips = is_flip(disjunction_slack(candidate.forward(point), conjunctions), strict=True)
            if verdict.status == "robust":
                assert not pgd_flips
                assert verdict.margin <= 0
            else:
                assert box.contains(net, verdict.network)
                logits = verdict.network.forward(verdict.x)
                assert np.max(np.delete(logits, label)) > logits[label]
                assert np.abs(verdict.x - x).max() <= 0.02 + 1e-12
    assert decided["robust"] > 0 and decided["flips"] > 0


def test_milp_certifies_at_least_what_interval_bounds_certify():
    rng = np.random.default_rng(29)
    interval_count = milp_count = 0
    for _ in range(10):
        net = random_network(rng, [4, 8, 6, 3])
        x = rng.uniform(0, 1, 4)
        label = int(np.argmax(net.forward(x)))
        box = ParamBox.uniform(net, 0.03)
        certified = interval_certified(net, box, x, x, label)
        verdict = verify_parameter_robustness(net, box, x, label, attack=None)
        interval_count += certified
        milp_count += verdict.status == "robust"
        assert not certified or verdict.status == "robust"
    assert milp_count >= interval_count
