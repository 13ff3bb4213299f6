"""The study's parts on their own: eps calibration, paired bootstrap, re-checked counterexamples, time ladder."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from robustmip.errors import InvalidInput
from robustmip.layers import AffineLayer
from robustmip.network import Network


def _tiny_model(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 16), nn.ReLU(), nn.Linear(16, 10)).eval()


def test_calibration_picks_the_eps_whose_pgd_rate_is_nearest_the_target():
    from robustmip.data import load_embedded_mnist
    from robustmip.studies.calibration import pick_eps, targeted_pgd_rates, targeted_pgd_success

    model = _tiny_model()
    images, labels = load_embedded_mnist("test")
    x = images[:20]
    with torch.no_grad():
        y = model(torch.as_tensor(x)).argmax(1).numpy()  # the net's own labels: every image "correct"
    grid = [0.005, 0.02, 0.08]
    rates = targeted_pgd_rates(model, x, y, grid, steps=5, restarts=1, seed=0)
    assert all(0.0 <= r <= 1.0 for r in rates.values()) and rates[0.08] > rates[0.005]
    for target in (0.0, 0.05, 0.1644, 0.3, 1.0, *rates.values()):
        chosen = pick_eps(rates, target)
        best = min(abs(r - target) for r in rates.values())
        assert abs(rates[chosen] - target) == best
        assert chosen == min(e for e in grid if abs(rates[e] - target) == best)  # ties: the smallest eps
    # A rate is the mean success over (image, target != label) pairs, each success a target logit above the label's.
    success = targeted_pgd_success(model, x, y, 0.02, steps=5, restarts=1, seed=0)
    assert success.shape == (20, 9) and success.mean() == rates[0.02]
    with pytest.raises(InvalidInput):
        pick_eps({}, 0.1)


def test_bootstrap_interval_covers_a_known_difference():
    from robustmip.studies.paired import paired_bootstrap

    rng = np.random.default_rng(1)
    before = rng.integers(0, 9, size=100).astype(float)
    constant = paired_bootstrap(before, before - 2.0, samples=500)
    assert constant.estimate == constant.low == constant.high == -2.0 and constant.sign() == -1
    hits = 0
    for trial in range(40):
        noise = np.random.default_rng(trial).normal(0.7, 2.0, size=150)
        base = np.tile(before[:75], 2)
        interval = paired_bootstrap(base, base + noise, samples=2000, seed=trial)
        assert interval.low <= interval.estimate <= interval.high
        hits += interval.low <= 0.7 <= interval.high
    assert hits >= 34  # nominal 95 %: 38 of 40 expected, 34 is below it by more than 2 sd of the count
    # Strata weigh equally: a stratum of 10 units with difference 4 and one of 90 with difference 0 give 2.
    strata = [0] * 10 + [1] * 90
    weighed = paired_bootstrap(np.zeros(100), [4.0] * 10 + [0.0] * 90, strata=strata, samples=300)
    assert weighed.estimate == weighed.low == weighed.high == 2.0 and weighed.strata == 2
    with pytest.raises(InvalidInput):
        paired_bootstrap([1.0], [1.0, 2.0])


def test_bootstrap_is_reproducible_from_its_seed():
    from robustmip.studies.paired import paired_bootstrap

    a, b = np.arange(30.0), np.arange(30.0) + np.sin(np.arange(30.0))
    assert paired_bootstrap(a, b, seed=3, samples=500) == paired_bootstrap(a, b, seed=3, samples=500)
    assert paired_bootstrap(a, b, seed=3, samples=500) != paired_bootstrap(a, b, seed=4, samples=500)


def _identity_net() -> Network:
    """Logits = relu(x): class k's logit is pixel k (3 pixels, 3 classes)."""
    return Network([AffineLayer(np.eye(3), np.zeros(3), "relu"), AffineLayer(np.eye(3), np.zeros(3), "identity")])


def test_importance_on_adversarial_images_uses_only_rechecked_counterexamples():
    from robustmip.studies.critical_neurons import checked_counterexamples

    net = _identity_net()
    clean = {0: np.array([0.5, 0.45, 0.1]), 1: np.array([0.1, 0.6, 0.3])}
    good = np.array([0.45, 0.5, 0.1])  # class 1 beats class 0, within 0.1 of image 0
    stored = {
        ("a", 0, 1): good,                          # adversarial, in the box: kept
        ("b", 0, 1): clean[0],                      # marked adversarial but not: dropped
        ("c", 0, 2): good,                          # beats the label with class 1, not with target 2: dropped
        ("d", 0, 1): np.array([0.3, 0.6, 0.1]),     # adversarial but outside the box: dropped
        ("e", 0, 1): good,                          # a robust row: never read
        ("g", 1, 2): np.array([0.1, 0.6, 0.3]),     # the clean image of image 1, not adversarial: dropped
    }
    rows = [{"id": k[0], "image": k[1], "target": k[2], "label": 0 if k[1] == 0 else 1, "eps": 0.1,
             "status": "robust" if k[0] == "e" else "adversarial"} for k in stored]
    rows.append({"id": "f", "image": 0, "target": 1, "label": 0, "eps": 0.1, "status": "adversarial"})  # no point
    read = []

    def load(row):
        read.append(row["id"])
        return next((v for k, v in stored.items() if k[0] == row["id"]), None)

    points, labels, kept = checked_counterexamples(net, rows, clean, load)
    assert [r["id"] for r in kept] == ["a"] and labels.tolist() == [0]
    np.testing.assert_array_equal(points, good[None, :])
    assert "e" not in read


def test_critical_sets_and_their_overlap():
    from robustmip.studies.critical_neurons import compare_sets, critical, in_original_indices, jaccard, one_per_image

    scores = [np.array([0.9, 0.2, 0.5]), np.array([1.0, 0.0])]
    assert critical(scores, 0.5) == {(0, 0), (0, 2), (1, 0)}
    assert in_original_indices({(0, 0), (1, 1)}, [[2, 5], [0, 3]]) == {(0, 2), (1, 3)}
    assert jaccard(set(), set()) == 1.0 and jaccard({1, 2}, {2, 3}) == pytest.approx(1 / 3)
    c = compare_sets({(0, 0), (1, 0)}, {(0, 0), (0, 1)}, 2)
    assert c["common"] == 1 and c["jaccard_per_layer"] == [0.5, 0.0]
    rows = [{"image": 3, "status": "adversarial", "ofv": -0.1}, {"image": 3, "status": "adversarial", "ofv": -0.5},
            {"image": 1, "status": "robust", "ofv": 0.2}, {"image": 2, "status": "adversarial", "ofv": -0.2}]
    assert [(r["image"], r["ofv"]) for r in one_per_image(rows, 5)] == [(2, -0.2), (3, -0.5)]


def test_time_ladder():
    from robustmip.attacks.milp_attack import time_ladder

    assert time_ladder(60, 3600, 4) == [60, 240, 960, 3600]
    assert time_ladder(10, 40, 4) == [10, 40] and time_ladder(5, None) == [5] and time_ladder(5, 5) == [5]
    with pytest.raises(InvalidInput):
        time_ladder(0, 10)
