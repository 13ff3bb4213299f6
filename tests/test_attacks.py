"""FGSM / PGD and the accuracy helpers, on a small net trained on the embedded subset."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from robustmip.attacks import (
    PGDConfig,
    clean_accuracy,
    evaluate_pgd,
    fgsm,
    linf_box,
    pgd,
    pgd_examples,
    predict,
    robust_accuracy,
    transfer_accuracy,
)
from robustmip.data import load_dataset
from robustmip.errors import InvalidInput
from robustmip.models import build_model
from robustmip.training import train

EPS = 0.1


@pytest.fixture(scope="module")
def test_set():
    return load_dataset("test", "embedded").head(400)


@pytest.fixture(scope="module")
def net(test_set):
    """mlp-50-50 trained 3 epochs (standard) on the embedded subset: about 88 % clean."""
    torch.set_num_threads(1)
    model = build_model("mlp-50-50", seed=0)
    train(model, load_dataset("train", "embedded"), epochs=3, seed=0, device="cpu",
          progress=False)
    model.eval()
    return model


@pytest.fixture(scope="module")
def batch(test_set):
    return torch.as_tensor(test_set.images[:64]), torch.as_tensor(test_set.labels[:64])


def assert_in_box(x_adv: torch.Tensor, x: torch.Tensor, eps: float) -> None:
    """Exact check in float64 (float32 differences are exact there): l_inf ball and [0, 1]."""
    assert x_adv.dtype == x.dtype and x_adv.shape == x.shape
    diff = (x_adv.double() - x.double()).abs()
    assert diff.max().item() <= eps
    assert x_adv.min().item() >= 0.0 and x_adv.max().item() <= 1.0


@pytest.mark.parametrize("eps", [1 / 255, 0.05, 0.1, 0.3, 0.7])
def test_linf_box_is_exactly_inside(eps):
    x = torch.cat([torch.rand(2000), torch.tensor([0.0, 1.0, 0.1, 0.3, 0.7, 1 / 3, eps, 1 - eps])])
    lo, hi = linf_box(x, eps)
    assert (lo <= x).all() and (x <= hi).all()
    assert_in_box(lo, x, eps)
    assert_in_box(hi, x, eps)


@pytest.mark.parametrize("targeted", [False, True])
@pytest.mark.parametrize("eps, step_size", [(0.1, None), (0.3, 1.0), (0.05, 0.02), (1 / 255, None)])
def test_pgd_and_fgsm_never_leave_the_box(net, batch, targeted, eps, step_size):
    x, y = batch
    target = (y + 1) % 10 if targeted else None
    x_adv = pgd(net, x, y, eps, steps=5, step_size=step_size, restarts=2, target=target, seed=0)
    assert_in_box(x_adv, x, eps)
    assert_in_box(fgsm(net, x, y, eps, target=target), x, eps)


def test_pgd_is_at_least_as_strong_as_fgsm(net, test_set):
    x, y = torch.as_tensor(test_set.images), torch.as_tensor(test_set.labels)
    clean = clean_accuracy(net, x, y)
    fgsm_acc = clean_accuracy(net, fgsm(net, x, y, EPS), y)
    pgd_acc = robust_accuracy(net, x, y, EPS, steps=20, restarts=1)
    assert clean > 0.8
    assert pgd_acc <= fgsm_acc < clean
    assert pgd_acc < 0.5 * clean  # a standard-trained MLP is not robust at eps 0.1


def test_targeted_pgd_reaches_the_target(net, batch):
    x, y = batch
    target = (y + 3) % 10
    x_adv = pgd(net, x, y, 0.3, steps=40, target=target, seed=0)
    hits = predict(net, x_adv) == target.numpy()
    assert hits.mean() > 0.8
    assert (predict(net, x) == target.numpy()).mean() < 0.1


def test_more_restarts_never_lose_successes(net, batch):
    x, y = batch
    one = predict(net, pgd(net, x, y, 0.05, steps=10, restarts=1, seed=3)) != y.numpy()
    three = predict(net, pgd(net, x, y, 0.05, steps=10, restarts=3, seed=3)) != y.numpy()
    assert (three >= one).all()


def test_kept_iterate_has_the_highest_loss_when_no_restart_succeeds(net, batch):
    """With a tiny eps nothing flips; the kept point's loss is at least the final iterate's."""
    x, y = batch
    eps = 1e-3
    x_adv = pgd(net, x, y, eps, steps=3, restarts=1, seed=0)
    with torch.no_grad():
        kept = F.cross_entropy(net(x_adv), y, reduction="none")
        start = F.cross_entropy(net(x), y, reduction="none")
    flipped = predict(net, x_adv) != predict(net, x)
    assert (kept[~flipped] >= start[~flipped] - 1e-6).float().mean() > 0.9


def test_pgd_is_seeded_and_eps_zero_is_identity(net, batch):
    x, y = batch
    assert torch.equal(pgd(net, x, y, EPS, steps=3, seed=9), pgd(net, x, y, EPS, steps=3, seed=9))
    assert torch.equal(pgd(net, x, y, 0.0, steps=3, seed=9), x)


def test_attacks_leave_model_mode_and_gradients_alone(net, batch):
    x, y = batch
    grads = [None if p.grad is None else p.grad.clone() for p in net.parameters()]
    net.train()
    try:
        pgd(net, x, y, EPS, steps=2, seed=0)
        fgsm(net, x, y, EPS)
        assert net.training
    finally:
        net.eval()
    for before, param in zip(grads, net.parameters()):
        assert (before is None and param.grad is None) or torch.equal(before, param.grad)


def test_attack_works_under_no_grad(net, batch):
    x, y = batch
    with torch.no_grad():
        x_adv = pgd(net, x, y, EPS, steps=5, seed=0)
    assert not torch.equal(x_adv, x)


def test_invalid_attack_arguments(net, batch):
    x, y = batch
    with pytest.raises(InvalidInput, match="eps"):
        pgd(net, x, y, -0.1)
    with pytest.raises(InvalidInput, match="eps"):
        fgsm(net, x, y, float("nan"))
    with pytest.raises(InvalidInput, match="steps"):
        pgd(net, x, y, EPS, steps=0)
    with pytest.raises(InvalidInput, match="restarts"):
        pgd(net, x, y, EPS, restarts=0)
    with pytest.raises(InvalidInput, match=r"\[0, 1\]"):
        pgd(net, x * 2, y, EPS)
    with pytest.raises(InvalidInput, match="batch sizes"):
        pgd(net, x, y[:3], EPS)


def test_pgd_config_defaults_and_scaling():
    config = PGDConfig(0.1, steps=10)
    assert config.step_size == pytest.approx(0.025)
    half = config.scaled(0.05)
    assert (half.eps, half.steps) == (0.05, 10) and half.step_size == pytest.approx(0.0125)
    with pytest.raises(InvalidInput):
        PGDConfig(0.1, step_size=0.0)


def test_accuracy_helpers_agree_and_batch_size_does_not_matter(net, test_set):
    x, y = test_set.images, test_set.labels
    manual = float((net(torch.as_tensor(x)).argmax(1).numpy() == y).mean())
    assert clean_accuracy(net, x, y, batch_size=7) == clean_accuracy(net, x, y) == manual
    outcome = evaluate_pgd(net, x, y, EPS, batch_size=100, steps=5)
    assert outcome.clean_accuracy == manual
    assert outcome.robust_accuracy == robust_accuracy(net, x, y, EPS, batch_size=100, steps=5)
    np.testing.assert_array_equal(outcome.x_adv, pgd_examples(net, x, y, EPS, batch_size=100,
                                                              steps=5))
    assert_in_box(torch.as_tensor(outcome.x_adv), torch.as_tensor(x), EPS)


def test_transfer_accuracy_on_another_model(net, test_set):
    x, y = test_set.images, test_set.labels
    other = build_model("mlp-20", seed=1)
    train(other, load_dataset("train", "embedded").head(2000), epochs=2, seed=1, device="cpu",
          progress=False)
    x_adv = pgd_examples(net, x, y, EPS, steps=10)
    transferred = transfer_accuracy(other, x_adv, y)
    assert transferred == clean_accuracy(other, x_adv, y)
    assert transfer_accuracy(net, x_adv, y) < transferred  # white-box hurts more than transfer


def test_accuracy_of_mismatched_or_empty_sets_is_invalid(net):
    with pytest.raises(InvalidInput, match="labels"):
        clean_accuracy(net, np.zeros((3, 1, 28, 28), np.float32), np.zeros(2, np.int64))
    with pytest.raises(InvalidInput, match="no images"):
        clean_accuracy(net, np.zeros((0, 1, 28, 28), np.float32), np.zeros(0, np.int64))
    with pytest.raises(InvalidInput, match="batch_size"):
        predict(net, np.zeros((3, 1, 28, 28), np.float32), batch_size=0)


def test_numpy_falsifier_gradient_and_box():
    """The falsifier's back-propagation equals finite differences; its points stay in the box; seeded."""
    from conftest import random_network

    from robustmip.attacks.falsify import _forward, _input_gradient, property_falsifier
    from robustmip.spec import robustness_conjunctions

    rng = np.random.default_rng(0)
    net = random_network(rng, [7, 9, 8, 4])
    x = rng.uniform(size=(3, 7))
    c = rng.normal(size=(3, 4))
    y, masks = _forward(net, x)
    np.testing.assert_allclose(y, net.forward(x), atol=1e-12)
    grad = _input_gradient(net, masks, c)
    h = 1e-6
    for i in range(7):
        e = np.zeros(7)
        e[i] = h
        fd = ((net.forward(x + e) - net.forward(x - e)) * c).sum(axis=1) / (2 * h)
        np.testing.assert_allclose(grad[:, i], fd, atol=1e-5)
    lower, upper = np.clip(x[0] - 0.05, 0, 1), np.clip(x[0] + 0.05, 0, 1)
    label = int(np.argmax(net.forward(x[0])))
    conj = robustness_conjunctions(4, label, [t for t in range(4) if t != label])
    point = property_falsifier(steps=20, restarts=4, seed=3)(net, lower, upper, conj)
    assert (point >= lower).all() and (point <= upper).all()
    again = property_falsifier(steps=20, restarts=4, seed=3)(net, lower, upper, conj)
    np.testing.assert_array_equal(point, again)
