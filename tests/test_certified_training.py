"""Certified training (IBP, CROWN-IBP, GRT/GM): weights, bounds against numpy and the MILP, N = 1."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from robustmip.bounds.lirpa import lirpa_bounds, margin_specs
from robustmip.certify import margin_lower_bounds
from robustmip.data import load_dataset
from robustmip.errors import InvalidInput
from robustmip.io import from_torch
from robustmip.milp import SolveOptions, find_adversarial
from robustmip.models import build_model
from robustmip.spec import input_box
from robustmip.training import LossOutput, Objective, Ramp, StepContext, train
from robustmip.training.certified import (
    CertifiedTraining,
    gm_radii,
    gm_weights,
    margin_bounds,
    robust_cross_entropy,
)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Small batches train fastest on one thread (and do not fight other jobs for the cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data():
    train_set = load_dataset("train", "embedded")
    return train_set.images[:300], train_set.labels[:300]


@pytest.mark.parametrize("n", [1, 2, 5, 10])
def test_gm_weights_sum_to_one_and_decrease(n):
    for kind in ("single", "uniform", "inverse"):
        w = gm_weights(n, kind)
        assert w.shape == (n,) and np.isclose(w.sum(), 1.0) and (w >= 0).all()
    inverse = gm_weights(n, "inverse")
    assert (np.diff(inverse) < 0).all()
    assert np.allclose(inverse * gm_radii(0.4, n), inverse[0] * gm_radii(0.4, n)[0])  # c_i r_i constant
    assert np.allclose(gm_weights(n, "uniform"), 1.0 / n)
    assert gm_weights(n, "single")[-1] == 1.0
    assert np.allclose(gm_radii(0.5, n), 0.5 * np.arange(1, n + 1) / n)


def test_bad_settings_are_invalid_input():
    with pytest.raises(InvalidInput):
        gm_weights(0, "inverse")
    with pytest.raises(InvalidInput):
        gm_weights(3, "harmonic")
    with pytest.raises(InvalidInput, match="beta"):
        CertifiedTraining("ibp", 0.3, beta=(1.0, 0.0))
    with pytest.raises(InvalidInput):
        CertifiedTraining("crown", 0.3)
    with pytest.raises(InvalidInput):
        CertifiedTraining("ibp", 0.0, beta=(0.0, 0.0))


def test_robust_cross_entropy_is_the_padded_form():
    m = torch.tensor([[1.0, -2.0, 0.5], [3.0, 3.0, 3.0]])
    expected = torch.log1p(torch.exp(-m).sum(dim=1)).mean()
    assert torch.allclose(robust_cross_entropy(m), expected)


@pytest.mark.parametrize("arch", ["mlp-16-12", "cnn-crown-small"])
@pytest.mark.parametrize("eps", [0.01, 0.1])
def test_margins_equal_the_numpy_bounds_in_float64(arch, eps):
    model = build_model(arch, seed=1).double()
    net = from_torch(model, input_shape=(1, 28, 28))
    images, labels = load_dataset("test", "embedded").images[:3], load_dataset("test", "embedded").labels[:3]
    x, y = torch.as_tensor(images, dtype=torch.float64), torch.as_tensor(labels)
    with torch.no_grad():
        radius = torch.tensor([eps], dtype=torch.float64)
        ours = {"ibp": margin_bounds(model, x, y, radius, 0.0)[0],
                "crown-ibp": margin_bounds(model, x, y, radius, 1.0)[0]}
    for method, bound in ours.items():
        for b in range(3):
            lower, upper = input_box(images[b], eps)
            numpy = margin_lower_bounds(net, lower, upper, int(labels[b]), method)
            # The numpy bounds widen every layer outward by a relative 1e-9 (through the CNN's wide
            # layers that adds up to ~1e-7); the torch float64 bounds are not widened.
            assert np.allclose(bound[b].numpy(), numpy, rtol=0, atol=1e-6), method
            assert (numpy <= bound[b].numpy() + 1e-12).all(), method


def test_margins_never_exceed_the_exact_milp_margin():
    model = build_model("mlp-8-8", seed=3)
    net = from_torch(model, input_shape=(1, 28, 28))
    test = load_dataset("test", "embedded")
    eps = 0.02
    for i in range(2):
        label = int(test.labels[i])
        targets = [t for t in range(10) if t != label]
        exact = np.array([find_adversarial(net, test.images[i], label, eps, target=t,
                                           options=SolveOptions.create("highs", 60)).objective for t in targets])
        for dtype, slack in ((torch.float32, 1e-4), (torch.float64, 1e-9)):
            x = torch.as_tensor(test.images[i:i + 1], dtype=dtype)
            with torch.no_grad():
                for beta in (0.0, 0.5, 1.0):
                    bound = margin_bounds(model.to(dtype), x, torch.tensor([label]), torch.tensor([eps]), beta)[0, 0]
                    assert (bound.double().numpy() <= exact + slack).all(), (dtype, beta)
    model.float()


class PlainSingleRadius(Objective):
    """The reference: kappa CE(z, y) + (1 - kappa) CE(-m(x, eps), y) at one radius, written out directly."""

    name = "plain"

    def __init__(self, method: str, eps: float, length: float):
        self.method, self.eps = method, Ramp(0.0, eps, length)
        self.kappa, self.beta = Ramp(1.0, 0.0, length), Ramp(1.0, 0.0, length)

    def loss(self, model, x, y, ctx: StepContext) -> LossOutput:
        eps, kappa, beta = self.eps(ctx), self.kappa(ctx), self.beta(ctx)
        logits = model(x)
        natural = F.cross_entropy(logits, y)
        if kappa >= 1:
            return LossOutput(natural, logits)
        lower, upper = (x - eps).clamp(0, 1), (x + eps).clamp(0, 1)
        C = margin_specs(y, 10, x.dtype)
        ibp = lirpa_bounds(model, lower, upper, C, "ibp")
        if self.method == "ibp" or beta == 0:
            m = ibp.lower
        else:
            crown = lirpa_bounds(model, lower, upper, C, "crown-ibp", intermediate=ibp.intermediate).lower
            m = crown if beta == 1 else beta * crown + (1 - beta) * ibp.lower
        robust = F.cross_entropy(torch.cat([torch.zeros_like(m[:, :1]), -m], 1), torch.zeros_like(y))
        return LossOutput(kappa * natural + (1 - kappa) * robust, logits)


@pytest.mark.parametrize("method", ["ibp", "crown-ibp"])
def test_one_radius_equals_plain_single_eps_training(method, data):
    beta = (0.0, 0.0) if method == "ibp" else (1.0, 0.0)
    objectives = {
        "plain": PlainSingleRadius(method, 0.2, 1.5),
        "N=1": CertifiedTraining(method, 0.2, 1, "inverse", beta=beta, schedule_length=1.5),
        "single of 5": CertifiedTraining(method, 0.2, 5, "single", beta=beta, schedule_length=1.5),
    }
    weights, losses = {}, {}
    for name, objective in objectives.items():
        model = build_model("mlp-16-12", seed=0)
        history = train(model, data, epochs=2, batch_size=64, seed=0, objective=objective, device="cpu",
                        progress=False)
        weights[name] = [p.detach().clone() for p in model.parameters()]
        losses[name] = [e.loss for e in history.epochs]
    for name in ("N=1", "single of 5"):
        assert all(torch.equal(a, b) for a, b in zip(weights[name], weights["plain"])), name
        assert losses[name] == losses["plain"]


def test_gm_trains_on_the_weighted_sum_of_the_radii(data):
    x, y = torch.as_tensor(data[0][:32]), torch.as_tensor(data[1][:32])
    model = build_model("mlp-16-12", seed=0)
    gm = CertifiedTraining("crown-ibp", 0.3, 3, "inverse", kappa=(0.5, 0.5), beta=(0.5, 0.5))
    ctx = StepContext(epoch=1, step=0, steps_per_epoch=1, generator=torch.Generator())
    out = gm.loss(model, x, y, ctx)
    single = [CertifiedTraining("crown-ibp", r, 1, "single", kappa=(0.5, 0.5), beta=(0.5, 0.5)).loss(model, x, y, ctx)
              for r in gm_radii(0.3, 3)]
    expected = sum(c * s.loss for c, s in zip(gm_weights(3, "inverse"), single))
    assert torch.allclose(out.loss, expected, rtol=1e-6)
    assert out.stats["eps"] == pytest.approx(0.3) and out.stats["kappa"] == 0.5


def test_interrupted_certified_training_resumes_bit_for_bit(data, tmp_path):
    def run(state, stop_after: int | None = None):
        def on_epoch(stats):
            if stats.epoch == stop_after:
                raise KeyboardInterrupt

        model = build_model("mlp-16-12", seed=0)
        objective = CertifiedTraining("crown-ibp", 0.2, 3, "inverse", schedule_length=1.5)
        train(model, data, epochs=2, batch_size=64, seed=0, objective=objective, device="cpu", progress=False,
              on_epoch=on_epoch, resume_path=state)
        return [p.detach().clone() for p in model.parameters()]

    straight = run(tmp_path / "a.state")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b.state", stop_after=1)
    resumed = run(tmp_path / "b.state")
    assert all(torch.equal(a, b) for a, b in zip(straight, resumed))
