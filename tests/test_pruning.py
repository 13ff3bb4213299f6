"""MIP neuron-importance pruning: the scored encoding, the importance MIP, structured removal, baselines."""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo
import pytest
import torch
from conftest import gurobi_skip_reason, random_network, tiny_architectures
from torch import nn

from robustmip.bounds import compute_bounds
from robustmip.errors import InvalidInput, UnsupportedLayer
from robustmip.io import from_torch
from robustmip.io.checkpoint import load_checkpoint, save_checkpoint
from robustmip.milp.encode import PreactivationShift, encode
from robustmip.models import build_model
from robustmip.network import Network
from robustmip.pruning import (
    apply_masks,
    balanced_batch,
    magnitude_masks,
    masked_model,
    neuron_importance,
    prune,
    prune_like,
    pruned_arch,
    random_masks,
    scored_bounds,
    scored_forward,
)
from robustmip.pruning.importance import (
    _hinge_value,
    _scored_pass,
    build_importance_mip,
)
from robustmip.solvers import MilpSolver


def _batch(net: Network, rng: np.random.Generator, n: int = 4) -> tuple[np.ndarray, np.ndarray]:
    x = rng.uniform(size=(n, net.n_inputs))
    return x, np.argmax(net.forward(x), axis=1)


def _mlp(rng: np.random.Generator, dims: list[int]) -> nn.Sequential:
    """A float64 torch MLP ``Flatten, Linear, ReLU, ..., Linear`` with random weights."""
    torch.manual_seed(int(rng.integers(1 << 30)))
    layers: list[nn.Module] = [nn.Flatten()]
    for k in range(len(dims) - 1):
        layers.append(nn.Linear(dims[k], dims[k + 1], dtype=torch.float64))
        if k < len(dims) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers).eval()


# ---- the scored network and its bounds ---------------------------------------------------------


@pytest.mark.parametrize("dims", tiny_architectures() + [[6, 8, 7, 5, 3]])
def test_sound_scored_bounds_hold_for_random_scores(rng, dims):
    net = random_network(rng, dims)
    for _ in range(5):
        x = rng.uniform(size=dims[0])
        bounds = scored_bounds(net, x, "sound")
        for trial in range(40):
            kind = trial % 4  # random, all 0, all 1, random 0/1
            scores = [rng.uniform(size=n) if kind == 0 else np.full(n, float(kind == 2)) if kind < 3
                      else rng.integers(0, 2, size=n).astype(float) for n in dims[1:-1]]
            for k, (a, _, _) in enumerate(_scored_pass(net, x, scores, bounds)):
                assert np.all(bounds.lower[k] <= a + 1e-12) and np.all(a <= bounds.upper[k] + 1e-12)


def test_scored_forward_is_forward_at_one_and_switches_off_at_zero(rng):
    net = random_network(rng, [5, 7, 6, 3])
    x = rng.uniform(size=(6, 5))
    ones = [np.ones(7), np.ones(6)]
    for mode in ("sound", "published"):
        np.testing.assert_allclose(scored_forward(net, x, ones, mode), net.forward(x), atol=1e-12)
    zeros = [np.zeros(7), np.zeros(6)]
    np.testing.assert_allclose(scored_forward(net, x, zeros, "sound"),
                               np.tile(net.layers[-1].b, (6, 1)), atol=1e-12)


# ---- the encode hook ---------------------------------------------------------------------------


def test_constant_preactivation_shift_equals_shifted_bias(rng):
    net = random_network(rng, [4, 6, 5, 3])
    c = rng.normal(size=6)
    shifted_net = Network([type(net.layers[0])(net.layers[0].W, net.layers[0].b + c, "relu"), *net.layers[1:]])
    lo, up = np.zeros(4), np.ones(4)
    b_plain = compute_bounds(shifted_net, lo, up, "interval")
    b_orig = compute_bounds(net, lo, up, "interval")
    for _ in range(3):
        x = rng.uniform(size=4)
        values = []
        for model_net, bounds, shift in [
            (shifted_net, b_plain, None),
            (net, b_orig, {0: PreactivationShift(lambda j: float(c[j]), c, c)}),
        ]:
            enc = encode(model_net, bounds, preactivation_shift=shift)
            for i in range(4):
                enc.inputs[i].fix(float(x[i]))
            enc.block.obj = pyo.Objective(expr=enc.logits[0])
            assert MilpSolver().solve(enc.block).status == "optimal"
            values.append([enc.logits[j].value for j in range(3)])
        np.testing.assert_allclose(values[0], shifted_net.forward(x), atol=1e-6)
        np.testing.assert_allclose(values[1], shifted_net.forward(x), atol=1e-6)


def test_encode_without_shift_is_unchanged_and_bad_shifts_are_rejected(rng):
    net = random_network(rng, [3, 5, 2])
    bounds = compute_bounds(net, np.zeros(3), np.ones(3), "interval")
    plain, empty = encode(net, bounds), encode(net, bounds, preactivation_shift={})
    names = lambda m: sorted((c.name, len(c)) for c in m.component_objects((pyo.Var, pyo.Constraint)))  # noqa: E731
    assert names(plain.block) == names(empty.block)
    with pytest.raises(InvalidInput, match="no ReLU"):
        encode(net, bounds, preactivation_shift={1: PreactivationShift(lambda j: 0.0, np.zeros(2), np.zeros(2))})
    with pytest.raises(InvalidInput, match="lower > upper"):
        encode(net, bounds, preactivation_shift={0: PreactivationShift(lambda j: 0.0, np.ones(5), np.zeros(5))})


# ---- the importance MIP --------------------------------------------------------------------------


def _solve_fixed(mip, scores) -> np.ndarray:
    for var, s in zip(mip.scores, scores):
        for j in var:
            var[j].fix(float(s[j]))
    result = MilpSolver("highs", 30).solve(mip.model)
    assert result.status == "optimal"
    return mip.logits()


@pytest.mark.parametrize("mode", ["sound", "published"])
@pytest.mark.parametrize("dims", [[4, 6, 5, 3], [5, 8, 4], [6, 5, 6, 4, 3]])
def test_scores_fixed_to_one_reproduce_the_plain_network(rng, mode, dims):
    net = random_network(rng, dims)
    x, y = _batch(net, rng, 5)
    mip = build_importance_mip(net, x, y, bounds=mode)
    logits = _solve_fixed(mip, [np.ones(n) for n in dims[1:-1]])
    np.testing.assert_allclose(logits, net.forward(x), atol=1e-6)


@pytest.mark.parametrize("dims", [[4, 6, 5, 3], [6, 5, 6, 4, 3]])
def test_sound_mip_is_the_scored_network_for_any_scores(rng, dims):
    net = random_network(rng, dims)
    x, y = _batch(net, rng, 4)
    for _ in range(3):
        scores = [rng.uniform(size=n) * rng.integers(0, 2, size=n) for n in dims[1:-1]]
        mip = build_importance_mip(net, x, y, bounds="sound")
        np.testing.assert_allclose(_solve_fixed(mip, scores), scored_forward(net, x, scores, "sound"), atol=1e-6)


def test_importance_scores_and_statistics(rng):
    net = random_network(rng, [6, 10, 8, 4])
    x, y = _batch(net, rng, 6)
    for mode in ("sound", "published"):
        r = neuron_importance(net, x, y, lam=5, bounds=mode, time_limit=60)
        assert r.status == "optimal" and r.n_images == 6
        assert [s.shape for s in r.scores] == [(10,), (8,)]
        assert all(((s >= 0) & (s <= 1)).all() for s in r.scores)
        assert r.logit_error < 1e-5
        assert r.objective == pytest.approx(5 * r.loss_value + r.penalty_value, abs=1e-5)
        assert r.objective <= 5 * _hinge_value(net.forward(x), y, 1.0) - 1.0 + 1e-6  # no worse than all ones
        assert r.seconds >= 0 and r.build_seconds > 0
        assert "score_summary" in r.to_dict() and len(r.to_dict(with_scores=True)["scores"]) == 2
    sound = neuron_importance(net, x, y, bounds="sound")
    assert sound.n_binaries > 0
    published = neuron_importance(net, x, y, bounds="published")
    assert published.n_binaries == 0  # clean-pass bounds make every neuron stable


def test_neurons_dead_on_the_batch_get_score_zero(rng):
    net = random_network(rng, [5, 12, 3])
    x, y = _batch(net, rng, 4)
    _, pre = net.forward(x, return_preactivations=True)
    dead = (pre[0] <= 0).all(axis=0)
    assert dead.any()
    r = neuron_importance(net, x, y, layer_terms="all", bounds="sound")
    assert np.all(r.scores[0][dead] == 0)


def test_larger_lambda_prunes_less(rng):
    net = random_network(rng, [6, 12, 10, 4])
    x, y = _batch(net, rng, 6)
    kept = [sum((s >= 0.1).sum() for s in neuron_importance(net, x, y, lam=lam, bounds="sound", margin=2).scores)
            for lam in (0.01, 100)]
    assert kept[0] <= kept[1]


def test_relaxed_binaries_give_an_lp(rng):
    net = random_network(rng, [4, 6, 5, 3])
    x, y = _batch(net, rng, 3)
    r = neuron_importance(net, x, y, relax_binaries=True, bounds="sound")
    mip = build_importance_mip(net, x, y, relax_binaries=True, bounds="sound")
    assert r.status == "optimal" and r.config["relax_binaries"]
    assert all(v.domain is pyo.UnitInterval for enc in mip.encodings for b in enc.binaries if b is not None
               for v in b.values())


def test_importance_rejects_bad_input(rng):
    net = random_network(rng, [4, 6, 3])
    x, y = _batch(net, rng, 3)
    with pytest.raises(InvalidInput, match="labels"):
        neuron_importance(net, x, np.array([0, 1, 7]))
    with pytest.raises(InvalidInput, match="images but"):
        neuron_importance(net, x, y[:2])
    with pytest.raises(InvalidInput, match="bounds mode"):
        neuron_importance(net, x, y, bounds="tight")
    with pytest.raises(InvalidInput, match="solver"):
        neuron_importance(net, x, y, solver="cplex")


def test_importance_accepts_a_torch_model(rng):
    model = _mlp(rng, [8, 6, 5, 3])
    x = rng.uniform(size=(4, 8))
    with torch.no_grad():
        y = model(torch.as_tensor(x)).argmax(1).numpy()
    r = neuron_importance(model, x, y)
    assert [s.shape for s in r.scores] == [(6,), (5,)]


@pytest.mark.gurobi
@pytest.mark.skipif(gurobi_skip_reason() is not None, reason=gurobi_skip_reason() or "")
def test_gurobi_and_highs_agree_on_the_importance_optimum(rng):
    net = random_network(rng, [5, 8, 6, 3])
    x, y = _batch(net, rng, 3)
    for mode in ("sound", "published"):
        a = neuron_importance(net, x, y, bounds=mode, mip_gap=1e-9)
        b = neuron_importance(net, x, y, bounds=mode, solver="gurobi", mip_gap=1e-9)
        assert a.objective == pytest.approx(b.objective, abs=1e-5)


# ---- structured removal ------------------------------------------------------------------------


def _out(model: nn.Module, x: np.ndarray) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.as_tensor(x))


def test_pruning_provably_dead_neurons_leaves_the_function_unchanged(rng):
    model = _mlp(rng, [10, 12, 9, 4])
    with torch.no_grad():  # make some neurons dead on [0, 1]^10
        model[1].bias[[1, 4, 7]] = -50.0
        model[3].bias[[0, 5]] = -50.0
    net = from_torch(model)
    bounds = compute_bounds(net, np.zeros(10), np.ones(10), "interval")
    dead = [bounds.upper[k] <= 0 for k in range(2)]
    assert dead[0].sum() >= 3 and dead[1].sum() >= 2
    scores = [np.where(d, 0.0, 1.0) for d in dead]
    smaller, report = prune(model, scores, 0.5)
    assert report.kept == [12 - int(dead[0].sum()), 9 - int(dead[1].sum())]
    x = rng.uniform(size=(200, 10))
    torch.testing.assert_close(_out(smaller, x), _out(model, x), rtol=0, atol=1e-12)


def test_smaller_model_equals_masked_model(rng):
    model = _mlp(rng, [10, 12, 9, 4])
    masks = random_masks(model, [5, 4], seed=3)
    smaller, report = apply_masks(model, masks)
    masked = masked_model(model, masks)
    x = rng.uniform(size=(100, 10))
    torch.testing.assert_close(_out(smaller, x), _out(masked, x), rtol=0, atol=1e-12)
    assert smaller[1].weight.shape == (5, 10) and smaller[3].weight.shape == (4, 5)
    assert smaller[5].weight.shape == (4, 4)
    assert model[1].weight.shape == (12, 10)  # the original is untouched
    assert report.kept == [5, 4] and report.total == [12, 9]
    assert report.params_after == sum(p.numel() for p in smaller.parameters())
    assert report.params_before == sum(p.numel() for p in model.parameters())
    assert [m.tolist() for m in report.masks()] == [m.tolist() for m in masks]


def test_mask_report_counts_and_threshold(rng):
    model = _mlp(rng, [6, 5, 4, 3])
    scores = [np.array([0.0, 0.0005, 0.05, 0.5, 1.0]), np.array([0.2, 0.0, 0.09, 1.0])]
    _, paper = prune(model, scores, 0.001)
    _, code = prune(model, scores, 0.1)
    assert paper.kept == [3, 3] and code.kept == [2, 2]
    assert code.layers[0].kept_indices == [3, 4] and code.threshold == 0.1 and code.method == "mip"
    assert code.arch == "mlp-2-2" and "layer 0: 2/5" in code.summary()
    _, forced = prune(model, [np.zeros(5), np.array([0.0, 0.3, 0.0, 0.0])], 0.5)
    assert forced.kept == [1, 1] and forced.forced == [0, 1]
    assert forced.layers[1].kept_indices == [1]


def test_baselines_keep_the_same_per_layer_counts(rng):
    model = _mlp(rng, [10, 12, 9, 4])
    kept = [7, 3]
    for method in ("magnitude", "random"):
        smaller, report = prune_like(model, kept, method, seed=1)
        assert report.kept == kept and report.method == method
        assert [lin.out_features for lin in smaller if isinstance(lin, nn.Linear)] == [7, 3, 4]
    norms = model[1].weight.detach().abs().sum(1).numpy()
    mag = magnitude_masks(model, kept)
    assert set(np.flatnonzero(mag[0])) == set(np.argsort(-norms)[:7])
    assert all((a == b).all() for a, b in zip(random_masks(model, kept, 5), random_masks(model, kept, 5)))
    with pytest.raises(InvalidInput):
        prune_like(model, [0, 3], "random")
    with pytest.raises(InvalidInput):
        prune_like(model, [3, 3], "lottery")


def test_unsupported_models_are_refused():
    with pytest.raises(UnsupportedLayer, match="Conv2d"):
        prune(build_model("cnn-small"), [np.ones(3)], 0.1)
    with pytest.raises(UnsupportedLayer):
        prune(nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)), [np.ones(4)], 0.1)


def test_pruned_model_saves_and_loads_with_its_smaller_arch(tmp_path, rng):
    model = build_model("mlp-20-10", seed=0)
    scores = [rng.uniform(size=20), rng.uniform(size=10)]
    smaller, report = prune(model, scores, 0.5)
    assert report.arch == pruned_arch(report.kept)
    path = save_checkpoint(tmp_path / "p.pt", smaller, report.arch, {"pruning": report.to_dict()}, "fp", 0, {})
    loaded, meta = load_checkpoint(path)
    assert meta.arch == report.arch
    x = torch.rand(5, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(loaded(x), smaller.eval()(x))


def test_balanced_batch_is_one_per_class_and_prefers_correct_images(rng):
    labels = np.repeat(np.arange(10), 5)
    images = rng.uniform(size=(50, 1, 2, 2)).astype(np.float32)
    x, y, idx = balanced_batch(images, labels, 2, seed=0)
    assert y.tolist() == sorted(list(range(10)) * 2) and (images[idx] == x).all()
    assert balanced_batch(images, labels, 2, seed=0)[2].tolist() == idx.tolist()
    with pytest.raises(InvalidInput):
        balanced_batch(images, labels, 6)
