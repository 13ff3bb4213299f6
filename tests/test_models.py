"""Named architectures and checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from robustmip.errors import DataError, InvalidInput
from robustmip.io.checkpoint import load_checkpoint, save_checkpoint
from robustmip.models import NAMED_ARCHITECTURES, build_model

ALLOWED_LAYERS = (nn.Flatten, nn.Linear, nn.ReLU, nn.Conv2d)


@pytest.mark.parametrize("arch", [*NAMED_ARCHITECTURES, "mlp-7", "mlp-10-20-30"])
def test_architectures_are_plain_sequentials_on_mnist_shapes(arch):
    model = build_model(arch)
    assert type(model) is nn.Sequential
    assert all(isinstance(layer, ALLOWED_LAYERS) for layer in model)
    assert model(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    if arch.startswith(("mlp", "lenet")):
        assert isinstance(model[0], nn.Flatten)


@pytest.mark.parametrize("arch, widths", [("mlp-50-50", [784, 50, 50, 10]),
                                          ("mlp-100-100", [784, 100, 100, 10]),
                                          ("lenet-300-100", [784, 300, 100, 10]),
                                          ("mlp-10-20-30", [784, 10, 20, 30, 10])])
def test_mlp_layer_sizes(arch, widths):
    model = build_model(arch)
    linears = [m for m in model if isinstance(m, nn.Linear)]
    assert [linears[0].in_features] + [m.out_features for m in linears] == widths
    assert sum(isinstance(m, nn.ReLU) for m in model) == len(widths) - 2
    assert isinstance(model[-1], nn.Linear)


def test_cnn_small_layers():
    convs = [m for m in build_model("cnn-small") if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding) for c in convs] == [
        (1, 16, (4, 4), (2, 2), (1, 1)), (16, 32, (4, 4), (2, 2), (1, 1))]


@pytest.mark.parametrize("arch", ["resnet18", "mlp-", "mlp-0-10", "mlp-a-10", "lenet-5", ""])
def test_bad_architecture_names_are_invalid_input(arch):
    with pytest.raises(InvalidInput, match="architecture"):
        build_model(arch)


def test_seeded_build_is_reproducible_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a = build_model("mlp-50-50", seed=5)
    b = build_model("mlp-50-50", seed=5)
    assert torch.rand(1) == expected_next
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    c = build_model("mlp-50-50", seed=6)
    assert not torch.equal(a[1].weight, c[1].weight)


@pytest.mark.parametrize("arch", ["mlp-50-50", "cnn-small"])
def test_checkpoint_round_trip_is_bit_identical(tmp_path, arch):
    model = build_model(arch, seed=1)
    config = {"epochs": 3, "adv": {"eps": 0.1, "steps": 10}, "note": None}
    metrics = {"clean_test_accuracy": 0.97, "history": {"epochs": [{"loss": 0.3}]}}
    path = save_checkpoint(tmp_path / "m.pt", model, arch, config, "abc123", 7, metrics)
    loaded, meta = load_checkpoint(path)
    original, restored = model.state_dict(), loaded.state_dict()
    assert original.keys() == restored.keys()
    for key in original:
        assert original[key].dtype == restored[key].dtype
        assert torch.equal(original[key].view(torch.int32), restored[key].view(torch.int32))
    assert not loaded.training
    assert (meta.arch, meta.seed, meta.data_fingerprint) == (arch, 7, "abc123")
    assert meta.train_config == config and meta.metrics == metrics
    assert meta.torch_version == str(torch.__version__)
    raw = torch.load(path, weights_only=True)  # only plain content: safe loading works
    assert raw["arch"] == arch


def test_save_replaces_atomically_without_leftovers(tmp_path):
    path = tmp_path / "nested" / "m.pt"
    save_checkpoint(path, build_model("mlp-5"), "mlp-5", {}, "x", 0, {})
    save_checkpoint(path, build_model("mlp-6"), "mlp-6", {}, "y", 1, {})
    assert [p.name for p in path.parent.iterdir()] == ["m.pt"]
    assert load_checkpoint(path)[1].arch == "mlp-6"


def test_save_rejects_non_plain_metadata_and_wrong_arch(tmp_path):
    model = build_model("mlp-5")
    with pytest.raises(InvalidInput, match="plain"):
        save_checkpoint(tmp_path / "m.pt", model, "mlp-5", {"dev": torch.device("cpu")}, "x", 0, {})
    with pytest.raises(InvalidInput, match="does not match"):
        save_checkpoint(tmp_path / "m.pt", model, "mlp-6", {}, "x", 0, {})
    assert not (tmp_path / "m.pt").exists()


def test_missing_corrupt_and_foreign_checkpoints_raise_data_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_checkpoint(tmp_path / "absent.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x80\x02 definitely not a checkpoint")
    with pytest.raises(DataError, match="torch cannot read it"):
        load_checkpoint(garbage)
    good = save_checkpoint(tmp_path / "good.pt", build_model("mlp-5"), "mlp-5", {}, "x", 0, {})
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:300])
    with pytest.raises(DataError, match="torch cannot read it"):
        load_checkpoint(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(DataError, match="not a robustmip checkpoint"):
        load_checkpoint(foreign)


def test_weights_that_do_not_fit_the_architecture_raise_data_error(tmp_path: Path):
    path = save_checkpoint(tmp_path / "m.pt", build_model("mlp-5"), "mlp-5", {}, "x", 0, {})
    payload = torch.load(path, weights_only=True)
    payload["arch"] = "mlp-6"
    torch.save(payload, path)
    with pytest.raises(DataError, match="do not fit"):
        load_checkpoint(path)


def test_cnn_crown_small_is_crown_ibps_small_cnn():
    model = build_model("cnn-crown-small")
    convs = [m for m in model if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding) for c in convs] == [
        (1, 4, (4, 4), (2, 2), (1, 1)), (4, 8, (4, 4), (2, 2), (1, 1))]
    assert [(m.in_features, m.out_features) for m in model if isinstance(m, nn.Linear)] == [(392, 128), (128, 10)]
