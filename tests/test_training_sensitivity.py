"""Seed 001's training objectives: gradients, agreement with the measured boxes, metrics, the CLI flags."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from torch import nn

from robustmip.cli import main
from robustmip.errors import InvalidInput, UnsupportedLayer
from robustmip.io import from_torch
from robustmip.models import build_model
from robustmip.sensitivity import reachable_box
from robustmip.training import train
from robustmip.training.sensitivity import (
    JacobianRegularization,
    KWRobust,
    SensitivityMinimization,
    SpectralRegularization,
    jacobian_norm,
    kw_margin_bounds,
    log10_dual_volume,
    robust_logits,
    sensitivity_metrics,
    spectral_penalty,
)


def _tiny_cnn(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 2, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(2 * 4 * 4, 6), nn.ReLU(), nn.Linear(6, 3))


def _data(n: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 8, 8, generator=g), torch.randint(0, 3, (n,), generator=g)


def _with_parameters(model: nn.Module, values) -> nn.Module:
    """A copy of ``model`` whose parameters are the tensors ``values`` (in ``named_parameters`` order)."""
    copy_ = copy.deepcopy(model)
    for (name, _), value in zip(model.named_parameters(), values):
        module_name, attr = name.rsplit(".", 1)
        module = copy_.get_submodule(module_name)
        delattr(module, attr)
        setattr(module, attr, value)
    return copy_


@pytest.mark.parametrize("form", ["volume", "log"])
def test_sm_loss_passes_gradcheck(form):
    model = _tiny_cnn().double()
    x, y = _data()
    eps = np.linspace(0.0, 0.1, 64)  # per-pixel radii, some 0
    objective = SensitivityMinimization(lam=0.3, eps=eps, form=form)
    params = tuple(p.detach().clone().requires_grad_(True) for p in model.parameters())

    def loss(*values):
        return objective.loss(_with_parameters(model, values), x.double(), y, _ctx()).loss

    assert torch.autograd.gradcheck(loss, params, eps=1e-6, atol=1e-6)


def test_dual_volume_in_training_equals_the_measured_kw_box():
    model = build_model("conv-2", seed=3).double()
    x = torch.rand(2, 1, 28, 28, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    eps = np.full(784, 0.03)
    log10_train = log10_dual_volume(model, x, torch.as_tensor(eps))
    net = from_torch(model, input_shape=(1, 28, 28))
    for b in range(2):
        box = reachable_box(net, (x[b].flatten() - 0.03).numpy(), (x[b].flatten() + 0.03).numpy(), "kw")
        # the measured box is widened outward by 1e-9 relative per bound
        assert float(log10_train[b].detach()) == pytest.approx(box.log10_volume, abs=1e-6)


def test_kw_robust_loss_bounds_the_clean_loss_and_matches_its_margins():
    model = _tiny_cnn(1)
    x, y = _data(8, 1)
    margins = kw_margin_bounds(model, x, y, torch.tensor(0.05))
    z = robust_logits(margins, y)
    assert torch.equal(z[torch.arange(8), y], torch.zeros(8))
    logits = model(x)
    true_margins = logits.gather(1, y[:, None]) - logits
    assert (z >= -true_margins - 1e-5).all()  # -J_j >= y_j - y_label
    robust = KWRobust(0.05).loss(model, x, y, _ctx())
    assert float(robust.loss.detach()) >= float(nn.functional.cross_entropy(logits, y).detach()) - 1e-6


def _ctx():
    from robustmip.training.objectives import StepContext

    return StepContext(epoch=1, step=0, steps_per_epoch=1, generator=torch.Generator())


def test_jacobian_and_spectral_penalties_match_direct_computation():
    model = _tiny_cnn(2).double()
    x, _ = _data(3, 2)
    x = x.double()
    norms = jacobian_norm(model, x)
    for b in range(3):
        J = torch.autograd.functional.jacobian(lambda v: model(v[None])[0], x[b])
        assert float(norms[b]) == pytest.approx(float(J.flatten(1).norm()), rel=1e-10)
    expected = 0.5 * sum(np.linalg.svd(m.weight.detach().flatten(1).numpy(), compute_uv=False)[0] ** 2
                         for m in model if isinstance(m, (nn.Linear, nn.Conv2d)))
    assert float(spectral_penalty(model).detach()) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("objective", [SensitivityMinimization(1e-3, 0.05), JacobianRegularization(0.01),
                                       SpectralRegularization(0.01), KWRobust(0.05, ramp_epochs=1)])
def test_each_objective_trains_and_records_json_settings(objective):
    model = _tiny_cnn(3)
    x, y = _data(32, 3)
    history = train(model, (x.numpy(), y.numpy()), epochs=1, batch_size=16, objective=objective, progress=False,
                    device="cpu")
    assert np.isfinite(history.last.loss)
    json.dumps(objective.config())


def test_metrics_are_consistent():
    model = _tiny_cnn(4)
    x, y = _data(10, 4)
    m = sensitivity_metrics(model, x.numpy(), y.numpy(), 0.05, batch_size=4)
    assert 0 <= m["ERR"] <= m["ADV_ERR"] <= 1
    assert m["ADV_LOSS"] >= m["CE"] - 1e-9
    assert m["log10_volumes"].shape == (10,) and m["JACOB"] > 0 and m["SPECTRAL"] > 0
    assert next(model.parameters()).dtype == torch.float32  # measured on a copy


def test_bad_input_gives_clear_errors():
    with pytest.raises(InvalidInput, match=">= 0"):
        SensitivityMinimization(1e-6, -0.05)
    with pytest.raises(InvalidInput, match="sensitivity weight"):
        SensitivityMinimization(-1.0, 0.05)
    pooled = nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(18, 3))
    x, y = _data(2)
    with pytest.raises(UnsupportedLayer, match="MaxPool2d"):
        SensitivityMinimization(1e-6, 0.05).loss(pooled, x, y, _ctx())


def test_train_cli_sm_and_refuses_two_methods(tmp_path, capsys):
    out = tmp_path / "sm.pt"
    args = ["train", "--arch", "conv-2", "--epochs", "1", "--embedded", "--quiet", "--threads", "1", "--out", str(out)]
    assert main([*args, "--sens-lambda", "1e-6", "--jacobian-lambda", "0.1"]) == 2
    assert "choose one training method" in capsys.readouterr().err
    assert main([*args, "--sens-lambda", "1e-6", "--batch-size", "500"]) == 0
    assert out.is_file()
    assert main(["info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out.split("saved")[-1].split("\n", 1)[1])
    assert info["train_config"]["objective"]["name"] == "sm"
