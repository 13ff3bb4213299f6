"""The encoding's parameter-band hook: unchanged without bands, exact with them (sign split included)."""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo
import pytest
from conftest import random_network

from robustmip.bounds import compute_bounds
from robustmip.errors import InvalidInput
from robustmip.layers import AffineLayer
from robustmip.milp import encode
from robustmip.milp.encode import ParameterBand
from robustmip.network import Network
from robustmip.params import ParamBox, ParamProblem
from robustmip.solvers import MilpSolver


def _max_logit(net, bounds, j, **kwargs) -> float:
    enc = encode(net, bounds, **kwargs)
    enc.block.obj = pyo.Objective(expr=-enc.logits[j], sense=pyo.minimize)
    result = MilpSolver("highs", 30).solve(enc.block)
    assert result.status == "optimal"
    return -result.objective


def test_no_band_and_zero_band_give_the_plain_model_and_optimum(rng):
    net = random_network(rng, [3, 6, 4, 2])
    x = rng.uniform(0, 1, 3)
    bounds = compute_bounds(net, x - 0.2, x + 0.2, "lp")
    plain, empty = encode(net, bounds), encode(net, bounds, parameter_band={})
    count = [sum(1 for _ in e.block.component_data_objects(pyo.Constraint)) for e in (plain, empty)]
    assert count[0] == count[1] and plain.n_binaries() == empty.n_binaries()
    zero = {k: ParameterBand(np.zeros_like(layer.W), np.zeros_like(layer.b)) for k, layer in enumerate(net.layers)}
    for j in range(2):
        assert _max_logit(net, bounds, j, parameter_band=zero) == pytest.approx(_max_logit(net, bounds, j), abs=1e-7)


def test_sign_split_is_exact_on_inputs_of_either_sign(rng):
    """One affine layer over a box around 0: the extremes of W0 x + b0 +- (R|x| + rho) sit at box corners."""
    for _ in range(5):
        W, b = rng.normal(size=(2, 4)), rng.normal(size=2)
        net = Network([AffineLayer(W, b, "identity")])
        lower, upper = -rng.uniform(0.1, 1, 4), rng.uniform(0.1, 1, 4)
        box = ParamBox({0: (rng.uniform(0, 0.5, W.shape), rng.uniform(0, 0.2, 2))})
        R, rho = box.radii[0]
        problem = ParamProblem(net, box, lower, upper)
        for j in range(2):
            ends = np.stack([lower, upper])
            exact_max = np.max(W[j] * ends + R[j] * np.abs(ends), axis=0).sum() + b[j] + rho[j]
            exact_min = np.min(W[j] * ends - R[j] * np.abs(ends), axis=0).sum() + b[j] - rho[j]
            c = np.eye(2)[j]
            high = problem.optimise_output(c, "max", attack=None)
            low = problem.optimise_output(c, "min", attack=None)
            assert high.value == pytest.approx(exact_max, abs=1e-7)
            assert high.bound == pytest.approx(exact_max, abs=1e-6)
            assert low.value == pytest.approx(exact_min, abs=1e-7)
        assert problem.encoding.block.component("sign0") is not None  # the split was used


def test_malformed_bands_are_refused(rng):
    net = random_network(rng, [3, 4, 2])
    x = rng.uniform(0, 1, 3)
    bounds = compute_bounds(net, x - 0.1, x + 0.1, "interval")
    with pytest.raises(InvalidInput, match="needs R of shape"):
        encode(net, bounds, parameter_band={0: ParameterBand(np.zeros((3, 3)), np.zeros(4))})
    with pytest.raises(InvalidInput, match="radii >= 0"):
        encode(net, bounds, parameter_band={0: ParameterBand(-np.ones((4, 3)), np.zeros(4))})
    with pytest.raises(InvalidInput, match="names layers"):
        encode(net, bounds, parameter_band={3: ParameterBand(np.zeros((4, 3)), np.zeros(4))})
    scale = pyo.Var()
    with pytest.raises(InvalidInput, match="fixed input"):
        encode(net, bounds, parameter_band={0: ParameterBand(np.ones((4, 3)), np.zeros(4), scale=scale)})


def test_the_loaded_point_is_the_optimum_after_a_mip_start():
    """HiGHS 1.16 once returned the MIP start as its solution, with the optimum's objective, when its
    presolve solved this model outright; MilpSolver now solves again cold, so value and bound agree."""
    layers = [
        ([[-1.2935448854386926, 0.6850398828970938], [0.2972322893167274, -0.23378349850305052],
          [-0.39390402552311504, -0.6262217857198967]],
         [-0.8812683015840147, -0.5886018378965101, -0.035056123054453325]),
        ([[0.9292244778617061, 0.26163501603058, 0.9265194602194881], [-0.5830216835496621, 0.7255454910176843,
          -0.24025458560389149], [0.8465855692447243, 0.7092142826059978, 0.020416724822432793]],
         [0.06724849833309794, 0.6087173838255869, -0.3978821921939673]),
        ([[-1.2487571826901338, 0.4716545607772291, 1.2581164932502045]], [-0.9480917678162857]),
    ]
    net = Network([AffineLayer(np.array(W), np.array(b), "relu" if k < 2 else "identity")
                   for k, (W, b) in enumerate(layers)])
    x = np.array([0.7667708052065768, 0.07901792979569866])
    problem = ParamProblem(net, ParamBox.uniform(net, 0.04862173146180336), x - 0.1, x + 0.1)
    optimum = problem.optimise_output(np.ones(1), "max", attack=None)
    assert optimum.status == "optimal"
    assert optimum.value == pytest.approx(-0.5798267185686714, abs=1e-7)
    assert optimum.bound == pytest.approx(optimum.value, abs=1e-7)
