"""APP and AWP: torch interval bounds over parameters equal the numpy ones, the objectives' steps, the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from robustmip.cli import main
from robustmip.io import from_torch
from robustmip.params import ParamBox, compute_param_bounds
from robustmip.training import APP, AWP, StepContext
from robustmip.training.app import app_radius, worst_case_logits
from robustmip.training.param_interval import interval_bounds

torch.set_num_threads(1)


def _mlp(seed: int, widths=(6, 5, 4, 3)) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Flatten()]
    for k in range(len(widths) - 1):
        layers.append(nn.Linear(widths[k], widths[k + 1]))
        if k < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers).double()


@pytest.mark.parametrize("kind", ["tanh", "abs"])
@pytest.mark.parametrize("negative_inputs", [False, True])
def test_torch_interval_bounds_equal_numpy_to_1e6(kind, negative_inputs):
    for seed in range(5):
        model = _mlp(seed)
        net = from_torch(model, input_shape=(6,))
        box = ParamBox.app(net, 0.07, kind, s=50.0, m=2.0)
        rng = np.random.default_rng(seed)
        x = rng.uniform(-1 if negative_inputs else 0, 1, (4, 6))
        eps = 0.05
        lower, upper = interval_bounds(model, torch.as_tensor(x - eps), torch.as_tensor(x + eps),
                                       app_radius(0.07, kind, 50.0, 2.0))
        for i in range(4):
            ours = compute_param_bounds(net, box, x[i] - eps, x[i] + eps, "interval")
            np.testing.assert_allclose(lower[i].detach().numpy(), ours.lower[-1], atol=1e-6)
            np.testing.assert_allclose(upper[i].detach().numpy(), ours.upper[-1], atol=1e-6)


def test_app_loss_mixes_clean_and_worst_case_and_has_gradients():
    model = _mlp(0)
    x, y = torch.rand(8, 6, dtype=torch.float64), torch.randint(0, 3, (8,))
    ctx = StepContext(epoch=1, step=0, steps_per_epoch=10, generator=torch.Generator().manual_seed(0))
    out = APP(eps=0.02, lam=0.05, kappa=0.3).loss(model, x, y, ctx)
    lower, upper = interval_bounds(model, (x - 0.02).clamp(0, 1), (x + 0.02).clamp(0, 1), app_radius(0.05))
    expected = 0.3 * F.cross_entropy(model(x), y) + 0.7 * F.cross_entropy(worst_case_logits(lower, upper, y), y)
    assert float(out.loss.detach()) == pytest.approx(float(expected.detach()))
    out.loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    worst = worst_case_logits(lower, upper, y)
    clean = model(x)
    assert torch.all(worst.gather(1, y[:, None]) == 0)
    assert torch.all(worst >= clean - clean.gather(1, y[:, None]) - 1e-9)
    ramped = APP(eps=0.02, lam=0.05, kappa=0.3, ramp_epochs=2.0)
    assert ramped.loss(model, x, y, ctx).stats["kappa"] == pytest.approx(1.0 - 0.7 * 0.1 / 2.0)


def test_awp_moves_each_weight_matrix_by_gamma_of_its_norm_and_undoes_it():
    model = _mlp(1)
    x, y = torch.rand(16, 6, dtype=torch.float64), torch.randint(0, 3, (16,))
    awp = AWP(None, gamma=0.02, proxy_lr=0.1)
    moves = awp.perturbation(model, x, y)
    assert len(moves) == 3  # the three weight matrices, no biases
    for w, move in moves:
        assert float(move.norm()) == pytest.approx(0.02 * float(w.detach().norm()))
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    ctx = StepContext(epoch=1, step=0, steps_per_epoch=1, generator=torch.Generator().manual_seed(0))
    awp.step(model, optimizer, x, y, ctx)
    reference = _mlp(1)
    with torch.no_grad():
        for w_ref, (w, move) in zip([p for p in reference.parameters() if p.dim() > 1], moves):
            w_ref.add_(move)
    F.cross_entropy(reference(x), y).backward()
    for p, p0, p_ref in zip(model.parameters(), before, reference.parameters()):
        torch.testing.assert_close(p.detach(), p0 - 0.5 * p_ref.grad)  # stepped from the unmoved weights


def test_train_cli_app_and_awp(tmp_path, capsys):
    for method in ("app", "awp"):
        out = tmp_path / f"{method}.pt"
        assert main(["train", "--arch", "mlp-20", "--method", method, "--epochs", "1", "--embedded", "--quiet",
                     "--threads", "1", "--awp-eps", "0.05", "--pgd-steps", "2", "--out", str(out)]) == 0
        assert out.is_file()
    assert main(["train", "--arch", "mlp-20", "--method", "app", "--adv-eps", "0.1", "--epochs", "1", "--embedded",
                 "--quiet", "--out", str(tmp_path / "both.pt")]) == 2
    assert "choose one training method" in capsys.readouterr().err
