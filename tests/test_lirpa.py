"""LiRPA torch bounds: equal to the numpy float64 bounds, sound, differentiable, split-aware.

Oracles: the numpy bounds of robustmip.bounds (IBP and CROWN intersected with IBP), an independent
implementation of Wong & Kolter's dual bound J (their Theorem 1), numpy's CROWN over interval bounds
(CROWN-IBP), the certified LP over the triangle relaxation (the optimum of alpha-CROWN), brute-force
enumeration of activation patterns (tests/bruteforce.py), and sampled forward passes.

On the 1e-9: numpy widens every bound outward by ``1e-9 (1 + |b|)`` (bounds/result.py) and uses the
widened bounds of one layer to compute the next. ``widen=True`` does the same in torch, so those
results are compared at 1e-12; plain torch bounds (``widen=False``) are compared with numpy run
with the widening switched off (``ROUNDING_SLACK = 0``), so neither side has it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from bruteforce import exact_min
from conftest import random_network
from torch import nn

import robustmip.bounds.result as bounds_result
from robustmip.bounds import compute_bounds, crown_layer
from robustmip.bounds.lirpa import (
    BoundParams,
    LirpaGraph,
    OptimizeOptions,
    lirpa_bounds,
    margin_specs,
    reevaluate_float64,
)
from robustmip.bounds.tighten import LpTightener
from robustmip.errors import InvalidInput, UnsupportedLayer
from robustmip.io import from_torch
from robustmip.io.torch_model import Normalize
from robustmip.layers import AffineLayer
from robustmip.network import Network
from robustmip.spec import input_box, margin_matrix


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: one thread is faster than two contending ones on a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def small_cnn(seed: int, side: int, dtype=torch.float64) -> nn.Sequential:
    """Normalize, Conv(1,3,3,s2,p1), ReLU, Conv(3,4,3,s1,p1,no bias), ReLU, Flatten, Linear, ReLU, Linear."""
    torch.manual_seed(seed)
    half = (side + 1) // 2
    return nn.Sequential(
        Normalize([0.2], [0.5]), nn.Conv2d(1, 3, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(3, 4, 3, stride=1, padding=1, bias=False), nn.ReLU(), nn.Dropout(0.3), nn.Flatten(),
        nn.Linear(4 * half * half, 6), nn.ReLU(), nn.Linear(6, 3),
    ).to(dtype).eval()


def boxes(rng: np.random.Generator, batch: int, shape: tuple[int, ...], eps: float):
    """``batch`` float64 boxes ``(batch, *shape)``: random centres in [0, 1], radius ``eps``, clipped to [0, 1]."""
    pairs = [input_box(rng.uniform(size=shape), eps) for _ in range(batch)]
    lower = torch.tensor(np.stack([lo for lo, _ in pairs])).reshape(batch, *shape)
    upper = torch.tensor(np.stack([up for _, up in pairs])).reshape(batch, *shape)
    return lower, upper


def folded(net: Network, C: np.ndarray) -> Network:
    """The network whose last layer computes ``C y``: the spec folded the numpy way."""
    last = net.layers[-1]
    return Network(list(net.layers[:-1]) + [AffineLayer(C @ last.W, C @ last.b, last.activation)], net.input_shape)


def assert_equal_to_numpy(result, net: Network, lower, upper, method: str, C: np.ndarray, atol: float) -> None:
    """Every intermediate bound and the final rows of ``result`` equal numpy's, example by example."""
    for i in range(lower.shape[0]):
        C_i = C[i] if C.ndim == 3 else C
        ref = compute_bounds(folded(net, C_i), lower[i].reshape(-1).numpy(), upper[i].reshape(-1).numpy(), method)
        for k, (lo, up) in enumerate(result.intermediate):
            np.testing.assert_allclose(lo[i].detach().reshape(-1).numpy(), ref.lower[k], rtol=0, atol=atol)
            np.testing.assert_allclose(up[i].detach().reshape(-1).numpy(), ref.upper[k], rtol=0, atol=atol)
        np.testing.assert_allclose(result.lower[i].detach().numpy(), ref.lower[-1], rtol=0, atol=atol)
        np.testing.assert_allclose(result.upper[i].detach().numpy(), ref.upper[-1], rtol=0, atol=atol)


@pytest.mark.parametrize("seed", range(3))
def test_ibp_and_crown_equal_the_numpy_bounds_on_mlps(seed, monkeypatch):
    rng = np.random.default_rng(seed)
    net = random_network(rng, [6, 12, 10, 8, 4])
    lower, upper = boxes(rng, 2, (6,), 0.2)
    C = rng.normal(size=(2, 3, 4))  # one specification per example
    for method, numpy_method, kwargs in (("ibp", "interval", {}), ("crown", "crown", {"intersect": True})):
        widened = lirpa_bounds(net, lower, upper, C, method, bound_upper=True, widen=True, **kwargs)
        assert_equal_to_numpy(widened, net, lower, upper, numpy_method, C, atol=1e-12)
    plain = lirpa_bounds(net, lower, upper, C, "crown", bound_upper=True, intersect=True)
    monkeypatch.setattr(bounds_result, "ROUNDING_SLACK", 0.0)
    assert_equal_to_numpy(plain, net, lower, upper, "crown", C, atol=1e-12)


@pytest.mark.parametrize("side", [7, 8])
def test_ibp_and_crown_equal_the_numpy_bounds_on_cnns(side):
    """Convolutions stay convolutions here; numpy folds them (and Normalize) into dense layers."""
    model = small_cnn(side, side)
    net = from_torch(model, (1, side, side))
    rng = np.random.default_rng(side)
    lower, upper = boxes(rng, 2, (1, side, side), 0.15)
    C = margin_matrix(3, 1)
    for method, numpy_method, kwargs in (("ibp", "interval", {}), ("crown", "crown", {"intersect": True})):
        result = lirpa_bounds(model, lower, upper, C, method, bound_upper=True, widen=True, **kwargs)
        assert_equal_to_numpy(result, net, lower, upper, numpy_method, C, atol=1e-12)
    unstable = lirpa_bounds(model, lower, upper, C, "crown", intersect=True, refine="unstable", widen=True)
    np.testing.assert_allclose(unstable.lower.detach().numpy(), result.lower.detach().numpy(), atol=1e-12)


def test_crown_ibp_is_crown_over_interval_bounds():
    rng = np.random.default_rng(5)
    net = random_network(rng, [5, 10, 10, 3])
    lower, upper = boxes(rng, 1, (5,), 0.3)
    C = margin_matrix(3, 0)
    result = lirpa_bounds(net, lower, upper, C, "crown-ibp", widen=True)
    netC = folded(net, C)
    ibp = compute_bounds(netC, lower[0].numpy(), upper[0].numpy(), "interval")
    expected, _ = crown_layer(netC, 2, ibp.lower, ibp.upper, (lower[0].numpy(), upper[0].numpy()))
    np.testing.assert_allclose(result.lower[0].detach().numpy(), expected, atol=1e-12)


def wong_kolter_J(net: Network, k: int, c: np.ndarray, centre, radius, lowers, uppers) -> float:
    """Wong & Kolter (2018), Theorem 1: the dual bound ``J <= min c . a_k`` over the box, written as
    their dual network (nu_hat_i = W_i^T nu_{i+1}, nu_i = D_i nu_hat_i) with the bounds of layers < k."""
    nu = -c
    J = -nu @ net.layers[k].b
    nu_hat = net.layers[k].W.T @ nu
    for i in range(k - 1, -1, -1):
        lo, up = lowers[i], uppers[i]
        unstable = (lo < 0) & (up > 0)
        d = np.where(lo >= 0, 1.0, np.where(unstable, up / np.where(unstable, up - lo, 1.0), 0.0))
        nu_i = d * nu_hat
        J += np.sum(lo[unstable] * np.maximum(nu_i[unstable], 0.0)) - nu_i @ net.layers[i].b
        nu_hat = net.layers[i].W.T @ nu_i
    return float(J - centre @ nu_hat - radius @ np.abs(nu_hat))


def test_kw_equals_wong_and_kolters_dual_bound():
    rng = np.random.default_rng(11)
    net = random_network(rng, [4, 8, 7, 6, 3])
    lower, upper = boxes(rng, 1, (4,), 0.4)
    centre, radius = ((lower + upper) / 2)[0].numpy(), ((upper - lower) / 2)[0].numpy()
    lowers, uppers = [], []
    for k, layer in enumerate(net.layers):
        eye = np.eye(layer.n_out)
        lowers.append(np.array([wong_kolter_J(net, k, e, centre, radius, lowers, uppers) for e in eye]))
        uppers.append(np.array([-wong_kolter_J(net, k, -e, centre, radius, lowers, uppers) for e in eye]))
    result = lirpa_bounds(net, lower, upper, None, "kw", bound_upper=True)
    for k, (lo, up) in enumerate(result.intermediate):
        np.testing.assert_allclose(lo[0].detach().numpy(), lowers[k], atol=1e-12)
        np.testing.assert_allclose(up[0].detach().numpy(), uppers[k], atol=1e-12)
    np.testing.assert_allclose(result.lower[0].detach().numpy(), lowers[-1], atol=1e-12)
    np.testing.assert_allclose(result.upper[0].detach().numpy(), uppers[-1], atol=1e-12)


METHOD_CASES = [
    ("ibp", {}), ("crown", {}), ("kw", {}), ("crown-ibp", {}), ("crown", {"intersect": True, "refine": "unstable"}),
    ("alpha-crown", {"optimize": OptimizeOptions(iterations=5)}),
    ("alpha-crown", {"optimize": OptimizeOptions(iterations=3, intermediate=True)}),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_every_method_contains_sampled_forward_passes(dtype):
    rng = np.random.default_rng(3)
    mlp = random_network(rng, [6, 10, 10, 4]).to_torch(dtype)
    models = [(mlp, (6,), 4), (small_cnn(3, 6, dtype), (1, 6, 6), 3)]
    tol = 1e-4 if dtype == torch.float32 else 1e-9
    for model, shape, n_out in models:
        lower, upper = (t.to(dtype) for t in boxes(rng, 2, shape, 0.25))
        C = margin_specs([0, n_out - 1], n_out, dtype)
        t = torch.rand(2, 3000, *shape, dtype=dtype)
        corners = torch.rand(2, 500, *shape, dtype=dtype) < 0.5
        x = lower.unsqueeze(1) + torch.cat([t, corners.to(dtype)], dim=1) * (upper - lower).unsqueeze(1)
        graph = LirpaGraph(model, shape)
        logits, pre = graph.forward(x.reshape(-1, *shape))
        margins = torch.einsum("bmo,bso->bsm", C, logits.reshape(2, -1, n_out))
        for method, kwargs in METHOD_CASES:
            with torch.no_grad():
                result = lirpa_bounds(graph, lower, upper, C, method, bound_upper=True, **kwargs)
            assert (margins >= result.lower.unsqueeze(1) - tol).all(), (method, kwargs)
            assert (margins <= result.upper.unsqueeze(1) + tol).all(), (method, kwargs)
            for a, (lo, up) in zip(pre, result.intermediate):
                a = a.reshape(2, -1, *a.shape[1:])
                assert (a >= lo.unsqueeze(1) - tol).all() and (a <= up.unsqueeze(1) + tol).all(), (method, kwargs)


def test_crown_tightens_interval_and_alpha_crown_lies_between_crown_and_the_lp():
    """With intersection, CROWN is inside IBP; alpha-CROWN (same intermediate bounds) is at least CROWN
    and at most the LP over the triangle relaxation with those bounds, the optimum over all slopes."""
    rng = np.random.default_rng(1)
    net = random_network(rng, [10, 30, 30, 30, 4])
    lower, upper = boxes(rng, 1, (10,), 0.4)
    C = margin_matrix(4, 2)
    with torch.no_grad():
        ibp = lirpa_bounds(net, lower, upper, C, "ibp")
        crown = lirpa_bounds(net, lower, upper, C, "crown", intersect=True)
        alpha = lirpa_bounds(net, lower, upper, C, "alpha-crown", intersect=True, intermediate=crown.intermediate,
                             optimize=OptimizeOptions(iterations=40))
    tightener = LpTightener(folded(net, C), lower[0].numpy(), upper[0].numpy())
    for k, (lo, up) in enumerate(crown.intermediate):
        assert (lo >= ibp.intermediate[k][0]).all() and (up <= ibp.intermediate[k][1]).all()
        tightener.add_layer(k, lo[0].numpy(), up[0].numpy())
    lp, _ = tightener.tighten_layer(len(net.layers) - 1, np.full(3, -1e9), np.full(3, 1e9))
    crown_lower, alpha_lower = crown.lower[0].numpy(), alpha.lower[0].numpy()
    assert (crown_lower >= ibp.lower[0].numpy()).all()
    assert (alpha_lower >= crown_lower).all() and (alpha_lower <= lp + 1e-7).all()
    assert (alpha_lower - crown_lower).sum() > 0.5 * (lp - crown_lower).sum() > 0  # closes most of the gap


def test_bounds_are_differentiable_in_the_weights():
    rng = np.random.default_rng(2)
    model = random_network(rng, [3, 5, 4, 2]).to_torch(torch.float64)
    lower, upper = boxes(rng, 2, (3,), 0.3)
    C = margin_specs([0, 1], 2, torch.float64)
    linear = model[3]
    weight = linear.weight.detach().clone().requires_grad_(True)
    for method in ("ibp", "crown", "kw", "crown-ibp"):
        def bound(w: torch.Tensor, method: str = method) -> torch.Tensor:
            del linear.weight  # a plain tensor in place of the Parameter, so gradcheck can perturb it
            linear.weight = w
            return lirpa_bounds(model, lower, upper, C, method, bound_upper=True).lower
        assert torch.autograd.gradcheck(bound, (weight,)), method


def test_training_losses_backpropagate_through_every_method_in_float32():
    model = small_cnn(0, 8, torch.float32)
    x = torch.rand(4, 1, 8, 8)
    C = margin_specs([0, 1, 2, 0], 3)
    for method in ("ibp", "crown-ibp", "crown", "kw", "alpha-crown"):
        model.zero_grad()
        result = lirpa_bounds(model, (x - 0.05).clamp(0, 1), (x + 0.05).clamp(0, 1), C, method,
                              optimize=OptimizeOptions(iterations=2))
        torch.nn.functional.cross_entropy(torch.cat([torch.zeros(4, 1), -result.lower], dim=1),
                                          torch.zeros(4, dtype=torch.long)).backward()
        grads = [p.grad for p in model.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads), method
        assert any(bool((g != 0).any()) for g in grads), method


def split_case(dims: list[int], seed: int, eps: float = 0.3):
    rng = np.random.default_rng(seed)
    net = random_network(rng, dims)
    lower, upper = boxes(rng, 1, (dims[0],), eps)
    return rng, net, lower, upper


def test_split_bounds_are_sound_for_the_restricted_domain():
    """Fix one unstable ReLU inactive (and, separately, active): every bound holds on the restricted set
    (brute force), beta-CROWN is at least the plain bound with the clamped interval, and IBP (monotone
    in the intervals) is never looser than without the split."""
    checked = 0
    for dims, seed in (([2, 6, 3], 0), ([4, 4, 4, 2], 1)):
        rng, net, lower, upper = split_case(dims, seed)
        C = rng.normal(size=(2, dims[-1]))
        with torch.no_grad():
            root = lirpa_bounds(net, lower, upper, C, "crown")
            root_ibp = lirpa_bounds(net, lower, upper, C, "ibp")
        for k, (lo, up) in enumerate(root.intermediate):
            j = int(torch.nonzero((lo[0] < 0) & (up[0] > 0))[0, 0])
            for sign in (-1, 1):
                splits = [torch.zeros_like(b[0], dtype=torch.int8) for b in root.intermediate]
                splits[k][0, j] = sign
                exact = [exact_min(net, c, lower[0].numpy(), upper[0].numpy(), [(k, j, sign)]) for c in C]
                with torch.no_grad():
                    plain = lirpa_bounds(net, lower, upper, C, "crown", splits=splits).lower[0].numpy()
                    beta = lirpa_bounds(net, lower, upper, C, "beta-crown", splits=splits,
                                        optimize=OptimizeOptions(iterations=20)).lower[0].numpy()
                    ibp = lirpa_bounds(net, lower, upper, C, "ibp", splits=splits)
                assert (plain <= np.array(exact) + 1e-9).all() and (beta <= np.array(exact) + 1e-9).all()
                assert (beta >= plain).all()
                assert (ibp.lower >= root_ibp.lower).all()
                clamped = ibp.intermediate[k][0 if sign > 0 else 1][0, j]
                assert clamped == 0.0
                checked += 1
    assert checked == 6


@pytest.mark.parametrize("seed", range(3))
def test_beta_crown_reaches_the_exact_minimum_when_every_unstable_relu_is_split(seed):
    """A domain with every unstable ReLU split is a polyhedron on which the net is affine: the optimal
    multipliers make beta-CROWN exact (LP duality), and that bound is never looser than the unsplit one."""
    rng, net, lower, upper = split_case([3, 5, 4, 2], seed)
    C = rng.normal(size=(1, 2))
    _, pre = net.forward(rng.uniform(lower[0].numpy(), upper[0].numpy()), return_preactivations=True)
    with torch.no_grad():
        root = lirpa_bounds(net, lower, upper, C, "crown")
    splits, fixed = [], []
    for k, (lo, up) in enumerate(root.intermediate):
        unstable = (lo[0] < 0) & (up[0] > 0)
        sign = torch.where(unstable, torch.tensor(np.sign(pre[k])), torch.zeros_like(lo[0])).to(torch.int8)
        splits.append(sign.unsqueeze(0))
        fixed += [(k, j, int(sign[j])) for j in torch.nonzero(unstable).flatten().tolist()]
    exact = exact_min(net, C[0], lower[0].numpy(), upper[0].numpy(), fixed)
    with torch.no_grad():
        beta = lirpa_bounds(net, lower, upper, C, "beta-crown", splits=splits,
                            optimize=OptimizeOptions(iterations=150, lr_beta=0.1, lr_decay=0.99)).lower[0, 0]
    assert float(beta) <= exact + 1e-9
    assert float(beta) == pytest.approx(exact, abs=1e-3)
    assert float(beta) >= float(root.lower[0, 0]) - 1e-3


def test_reevaluate_float64_reproduces_float32_optimised_bounds_soundly():
    rng, net, lower, upper = split_case([3, 5, 4, 2], 4, eps=0.5)
    C = margin_matrix(2, 0)
    splits = [torch.zeros(1, 5, dtype=torch.int8), torch.zeros(1, 4, dtype=torch.int8)]
    with torch.no_grad():
        root = lirpa_bounds(net, lower, upper, C, "crown")
    lo, up = root.intermediate[1]
    k, j = 1, int(torch.nonzero((lo[0] < 0) & (up[0] > 0))[0, 0])
    splits[k][0, j] = -1
    with torch.no_grad():
        found = lirpa_bounds(net, lower.float(), upper.float(), C, "beta-crown", splits=splits,
                             optimize=OptimizeOptions(iterations=30))
    assert found.lower.dtype == torch.float32 and found.params.betas
    again = reevaluate_float64(net, lower, upper, C, method="beta-crown", params=found.params, splits=splits)
    assert again.lower.dtype == torch.float64 and not again.lower.requires_grad
    np.testing.assert_allclose(again.lower.numpy(), found.lower.double().numpy(), atol=1e-4)
    exact = exact_min(net, C[0], lower[0].numpy(), upper[0].numpy(), [(k, j, -1)])
    assert float(again.lower[0, 0]) <= exact
    # Without parameters it is numpy's CROWN (both widened); its own intermediate bounds can be reused.
    plain = reevaluate_float64(net, lower.numpy(), upper.numpy(), C, bound_upper=True)
    reference = compute_bounds(folded(net, C), lower[0].numpy(), upper[0].numpy(), "crown")
    np.testing.assert_allclose(plain.lower[0].numpy(), reference.lower[-1], atol=1e-12)
    reused = reevaluate_float64(net, lower, upper, C, intermediate=plain.intermediate, bound_upper=True)
    np.testing.assert_allclose(reused.lower.numpy(), plain.lower.numpy(), atol=1e-12)
    with pytest.raises(InvalidInput, match="float64"):
        reevaluate_float64(net, lower.float(), upper.float(), C)
    with pytest.raises(InvalidInput, match="float64"):
        float32_bounds = [(lo.float(), up.float()) for lo, up in plain.intermediate]
        reevaluate_float64(net, lower, upper, C, intermediate=float32_bounds)


def test_refine_unstable_and_kept_coefficients():
    rng = np.random.default_rng(8)
    net = random_network(rng, [6, 12, 12, 3])
    lower, upper = boxes(rng, 3, (6,), 0.2)
    C = margin_specs([0, 1, 2], 3, torch.float64)
    with torch.no_grad():
        full = lirpa_bounds(net, lower, upper, C, "crown", intersect=True, keep_coefficients=True)
        some = lirpa_bounds(net, lower, upper, C, "crown", intersect=True, refine="unstable")
    np.testing.assert_allclose(some.lower.numpy(), full.lower.numpy(), atol=1e-12)
    for (lo_f, up_f), (lo_s, up_s) in zip(full.intermediate, some.intermediate):
        unstable = (lo_s < 0) & (up_s > 0)
        assert torch.equal(lo_f[unstable], lo_s[unstable]) and (lo_s <= lo_f).all() and (up_s >= up_f).all()
    assert full.input_coefficients.shape == (3, 2, 6)
    assert [tuple(a.shape[1:]) for a in full.relu_coefficients] == [(2, 12), (2, 12)]
    # The minimiser of each row's linear bound is a point of the box whose margin the bound does not exceed.
    x = torch.where(full.input_coefficients > 0, lower.unsqueeze(1), upper.unsqueeze(1))
    logits = torch.tensor(net.forward(x.reshape(-1, 6).numpy())).reshape(3, 2, 3)
    assert ((C * logits).sum(-1) >= full.lower - 1e-9).all()


def test_graph_forward_network_input_and_trailing_relu():
    rng = np.random.default_rng(9)
    net = random_network(rng, [4, 5, 3])
    x = torch.rand(7, 4, dtype=torch.float64)
    logits, pre = LirpaGraph(net).forward(x)
    expected, expected_pre = net.forward(x.numpy(), return_preactivations=True)
    np.testing.assert_allclose(logits.detach().numpy(), expected, atol=1e-12)
    np.testing.assert_allclose(pre[0].detach().numpy(), expected_pre[0], atol=1e-12)
    model = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.ReLU(), nn.Identity(), nn.Linear(5, 3), nn.ReLU()).double()
    graph = LirpaGraph(model, (4,))
    assert [block.relu for block in graph.blocks] == [True, True, False] and graph.blocks[-1].ops == ()
    result = lirpa_bounds(graph, x[:2], x[:2] + 0.1, None, "crown", bound_upper=True)
    out = model(x[:2] + 0.05)
    assert (out >= result.lower - 1e-9).all() and (out <= result.upper + 1e-9).all() and (result.lower >= -1e-9).all()


def test_margin_specs_are_the_spec_margin_matrices():
    C = margin_specs(torch.tensor([2, 0]), 4, torch.float64)
    np.testing.assert_array_equal(C[0].numpy(), margin_matrix(4, 2))
    np.testing.assert_array_equal(C[1].numpy(), margin_matrix(4, 0))
    with pytest.raises(InvalidInput, match="labels"):
        margin_specs([4], 4)


def test_bad_input_is_refused_with_a_clear_error():
    model = small_cnn(0, 6)
    lower, upper = boxes(np.random.default_rng(0), 2, (1, 6, 6), 0.1)
    for layer, name in ((nn.Sigmoid(), "Sigmoid"), (nn.MaxPool2d(2), "MaxPool2d"), (nn.BatchNorm2d(3), "BatchNorm2d")):
        bad = nn.Sequential(nn.Conv2d(1, 3, 3), layer, nn.Flatten(), nn.Linear(3, 2))
        with pytest.raises(UnsupportedLayer, match=name):
            lirpa_bounds(bad, lower, upper)
    with pytest.raises(UnsupportedLayer, match="padding"):
        lirpa_bounds(nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, padding_mode="circular")), lower, upper)
    with pytest.raises(InvalidInput, match="lower > upper"):
        lirpa_bounds(model, upper, lower)
    with pytest.raises(InvalidInput, match="does not fit"):
        lirpa_bounds(LirpaGraph(model, (1, 6, 6)), lower[:, :, :5], upper[:, :, :5])
    with pytest.raises(InvalidInput, match="same shape"):
        lirpa_bounds(model, lower, upper[:1])
    with pytest.raises(InvalidInput, match="specification"):
        lirpa_bounds(model, lower, upper, torch.ones(2, 4))
    with pytest.raises(InvalidInput, match="unknown LiRPA method"):
        lirpa_bounds(model, lower, upper, method="deeppoly")
    splits = [torch.zeros(2, 3, 3, 3, dtype=torch.int8), torch.zeros(2, 4, 3, 3, dtype=torch.int8),
              torch.full((2, 6), 2, dtype=torch.int8)]
    with pytest.raises(InvalidInput, match="splits"):
        lirpa_bounds(model, lower, upper, splits=splits)
    with pytest.raises(InvalidInput, match="alphas"):
        lirpa_bounds(model, lower, upper, params=BoundParams({(3, 0): torch.zeros(2, 5, 3, 3, 3)}))
    with pytest.raises(InvalidInput, match="iterations"):
        OptimizeOptions(iterations=-1)
