"""Verified error from sound bounds and from the exact MILP (robustmip.certify)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from robustmip.certify import (
    BOUND_METHODS,
    CertifyRow,
    CertifySettings,
    certify_image,
    exact_on_grid,
    margin_lower_bounds,
    run_certify,
    spec_network,
    summarize,
)
from robustmip.errors import InvalidInput
from robustmip.spec import input_box
from tests.bruteforce import exact_min
from tests.conftest import random_network


def _case(seed: int, dims=(3, 4, 3, 3), margin: float = 0.05):
    """A random net and an input of margin about ``margin`` (bisection towards another class's input)."""
    rng = np.random.default_rng(seed)
    while True:  # a net that gives the box at least two classes
        net = random_network(rng, list(dims))
        xs = rng.uniform(0.1, 0.9, size=(200, dims[0]))
        classes = np.argmax(net.forward(xs), axis=1)
        if (classes != classes[0]).any():
            break
    a = xs[0]
    b = xs[int(np.flatnonzero(classes != classes[0])[0])]
    label = int(classes[0])

    def gap(t: float) -> float:
        logits = net.forward(a + t * (b - a))
        return float(logits[label] - np.delete(logits, label).max())

    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if gap(mid) > margin else (lo, mid)
    return net, a + lo * (b - a), label


def _exact_margins(net, x, label, eps):
    lower, upper = input_box(x, eps)
    return np.array([exact_min(net, np.eye(net.n_outputs)[label] - np.eye(net.n_outputs)[t], lower, upper)
                     for t in range(net.n_outputs) if t != label])


def test_spec_network_outputs_the_margins():
    net, x, label = _case(0)
    spec = spec_network(net, label)
    logits = net.forward(x)
    assert np.allclose(spec.forward(x), logits[label] - np.delete(logits, label))


@pytest.mark.parametrize("seed", range(4))
def test_margin_bounds_are_sound_and_ordered(seed):
    net, x, label = _case(seed)
    eps = 0.15
    exact = _exact_margins(net, x, label, eps)
    lower, upper = input_box(x, eps)
    bounds = {m: margin_lower_bounds(net, lower, upper, label, m) for m in BOUND_METHODS}
    for method, bound in bounds.items():
        assert (bound <= exact + 1e-7).all(), method
    assert (bounds["crown"] >= bounds["ibp"] - 1e-9).all()
    assert (bounds["lp"] >= bounds["crown"] - 1e-9).all()


@pytest.mark.parametrize("seed", range(4))
def test_certify_image_agrees_with_brute_force(seed):
    net, x, label = _case(seed)
    milps = 0
    for eps in (0.005, 0.02, 0.04, 0.05, 0.08):
        row = certify_image(net, x, label, eps, CertifySettings(exact=True, timeout=30), index=seed)
        robust = _exact_margins(net, x, label, eps).min() > 0
        assert row.exact == ("robust" if robust else "adversarial")
        milps += row.milp
        assert row.pgd == "none" or not robust
        assert all(v == "not" for v in row.verdicts.values()) or robust
        assert list(row.interface()) == ["index", "eps", "label", "clean_correct", *BOUND_METHODS, "pgd", "exact"]
    assert milps == (2 if seed == 0 else 0)  # seed 0: PGD and the bounds leave 0.04 and 0.05 to the MILP


def test_implied_verdicts_skip_only_what_follows():
    net, x, label = _case(0)
    verified = certify_image(net, x, label, 0.005, CertifySettings(exact=True))
    assert verified.verdicts["ibp"] == "verified" and set(verified.implied) == {"pgd", "lp"}
    assert "pgd" not in verified.seconds and verified.pgd == "none" and verified.verdicts["lp"] == "verified"
    checked = certify_image(net, x, label, 0.005, CertifySettings(exact=True, pgd_always=True))
    assert checked.implied == ["lp"] and "pgd" in checked.seconds and checked.pgd == "none"
    broken = certify_image(net, x, label, 0.08, CertifySettings(exact=True))
    assert broken.pgd == "adversarial" and broken.implied == ["lp"] and broken.verdicts["lp"] == "not"
    undecided = certify_image(net, x, label, 0.04, CertifySettings(exact=True))
    assert undecided.implied == [] and undecided.margins["lp"] is not None


def test_time_limit_gives_unknown_never_robust():
    net, x, label = _case(0)  # at eps 0.04 neither the bounds nor PGD decide (see above): the MILP must
    row = certify_image(net, x, label, 0.04, CertifySettings(exact=True, timeout=1e-4))
    assert row.exact == "unknown" and "time limit" in row.reason and not row.milp
    (s,) = summarize([row])
    assert s.exact_lower == 0 and s.exact_upper == 1 and s.unknown == 1


def test_misclassified_image_is_adversarial_everywhere():
    net, x, label = _case(1)
    wrong = (label + 1) % net.n_outputs
    row = certify_image(net, x, wrong, 0.05, CertifySettings(exact=True))
    assert not row.clean_correct and row.pgd == "adversarial" and row.exact == "adversarial"
    assert row.exact_proof == "clean" and set(row.verdicts.values()) == {"not"}


def test_summary_orders_the_errors_and_counts_unknown_as_error():
    rows = [CertifyRow(0, 0.1, 1, True, {"ibp": "not", "lp": "verified"}, {}, "none", "robust"),
            CertifyRow(1, 0.1, 1, True, {"ibp": "not", "lp": "not"}, {}, "none", "unknown", milp=True),
            CertifyRow(2, 0.1, 1, True, {"ibp": "not", "lp": "not"}, {}, "adversarial", "adversarial"),
            CertifyRow(3, 0.1, 1, False, {"ibp": "not", "lp": "not"}, {}, "adversarial", "adversarial")]
    (s,) = summarize(rows)
    assert (s.clean_error, s.pgd_error, s.exact_lower, s.exact_upper) == (0.25, 0.5, 0.5, 0.75)
    assert s.verified_error == {"ibp": 1.0, "lp": 0.75} and s.ordered and s.violations == 0
    assert s.milps == 1 and s.unknown == 1
    rows[0].pgd = "adversarial"  # a counterexample on an image a bound verified: unsound
    assert summarize(rows)[0].violations == 1


@pytest.mark.parametrize("seed", [0, 5])
def test_exact_on_grid_matches_brute_force_at_every_radius(seed):
    net, x, label = _case(seed)
    grid = [0.01 * k for k in range(1, 11)]
    result = exact_on_grid(net, x, label, grid, CertifySettings(timeout=30))
    truth = ["robust" if _exact_margins(net, x, label, e).min() > 0 else "adversarial" for e in grid]
    assert result.status == truth and "robust" in truth and "adversarial" in truth
    assert result.questions < len(grid)
    with pytest.raises(InvalidInput, match="increase"):
        exact_on_grid(net, x, label, [0.2, 0.1], CertifySettings())


def test_run_certify_resumes_and_refuses_other_settings(tmp_path):
    net, _, _ = _case(2, dims=(4, 6, 3))
    model = tmp_path / "net.npz"
    net.save(model)
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, size=(5, 4))
    labels = np.argmax(net.forward(images), axis=1)
    out = tmp_path / "rows.jsonl"
    settings = CertifySettings(bounds=("ibp", "crown"), exact=True, timeout=20)
    rows = run_certify(model, images, labels, [0, 2], [0.05, 0.2], settings, out)
    assert [(r.index, r.eps) for r in rows] == [(0, 0.05), (0, 0.2), (2, 0.05), (2, 0.2)]
    assert len(out.read_text().splitlines()) == 4
    again = run_certify(model, images, labels, [0, 2, 3], [0.05, 0.2], settings, out)
    assert [r.to_dict() for r in again[:4]] == [r.to_dict() for r in rows]
    assert len(out.read_text().splitlines()) == 6
    assert json.loads(out.read_text().splitlines()[0])["key"] == "0/0.05"
    with pytest.raises(InvalidInput, match="other settings"):
        run_certify(model, images, labels, [0], [0.05], CertifySettings(bounds=("ibp",)), out)


def test_settings_are_checked():
    with pytest.raises(InvalidInput, match="bounds"):
        CertifySettings(bounds=("ibp", "nope"))
    with pytest.raises(InvalidInput, match="bounds"):
        CertifySettings(bounds=("ibp", "ibp"))
