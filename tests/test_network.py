"""Network: torch import/export, folding of affine modules, float64 forward, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import random_network
from torch import nn

from robustmip.errors import DataError, InvalidInput, UnsupportedLayer
from robustmip.io import from_torch
from robustmip.io.torch_model import Normalize
from robustmip.network import AffineLayer, Network


def torch_forward(model: nn.Module, x: np.ndarray) -> np.ndarray:
    model = model.double().eval()
    with torch.no_grad():
        return model(torch.as_tensor(x, dtype=torch.float64)).numpy()


def test_mlp_import_matches_torch_in_float64():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 7), nn.ReLU(), nn.Linear(7, 5), nn.ReLU(), nn.Linear(5, 3))
    net = from_torch(model, input_shape=(1, 3, 4))
    x = np.random.default_rng(0).uniform(size=(20, 1, 3, 4))
    np.testing.assert_allclose(net.forward(x), torch_forward(model, x), atol=1e-12)
    assert [layer.activation for layer in net.layers] == ["relu", "relu", "identity"]
    assert net.n_relus == 12


def test_conv_normalize_batchnorm_fold_into_affine_layers():
    torch.manual_seed(1)
    model = nn.Sequential(
        Normalize([0.1307], [0.3081]),
        nn.Conv2d(1, 3, 3, stride=2, padding=1),
        nn.BatchNorm2d(3),
        nn.ReLU(),
        nn.Conv2d(3, 2, 2, stride=1, padding=0, bias=False),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(2 * 3 * 3, 4),
        nn.Dropout(0.5),
    )
    with torch.no_grad():
        model[2].running_mean.uniform_(-0.5, 0.5)
        model[2].running_var.uniform_(0.5, 2.0)
    model.eval()
    net = from_torch(model, input_shape=(1, 8, 8))
    assert len(net.layers) == 3
    x = np.random.default_rng(1).uniform(size=(10, 1, 8, 8))
    np.testing.assert_allclose(net.forward(x), torch_forward(model, x), atol=1e-10)


def test_to_torch_round_trip_is_the_same_function(rng):
    net = random_network(rng, [5, 8, 6, 3])
    exported = net.to_torch(dtype=torch.float64)
    x = rng.uniform(size=(30, 5))
    np.testing.assert_allclose(torch_forward(exported, x), net.forward(x), atol=1e-12)
    back = from_torch(exported, input_shape=(5,))
    for a, b in zip(net.layers, back.layers):
        np.testing.assert_array_equal(a.W, b.W)
        np.testing.assert_array_equal(a.b, b.b)


def test_unsupported_layer_names_layer_and_position():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 4), nn.Sigmoid(), nn.Linear(4, 2))
    with pytest.raises(UnsupportedLayer, match=r"Sigmoid at position 2"):
        from_torch(model)


def test_nan_weights_rejected():
    with pytest.raises(InvalidInput, match="NaN"):
        AffineLayer(np.array([[np.nan, 1.0]]), np.zeros(1), "relu")


def test_forward_rejects_wrong_shape(rng):
    net = random_network(rng, [4, 3, 2])
    with pytest.raises(InvalidInput, match="does not fit"):
        net.forward(np.zeros(5))
    assert net.forward(np.zeros(4)).shape == (2,)
    assert net.forward(np.zeros((3, 4))).shape == (3, 2)


def test_save_load_round_trip(tmp_path, rng):
    net = random_network(rng, [6, 4, 3])
    net.save(tmp_path / "net.npz")
    back = Network.load(tmp_path / "net.npz")
    x = rng.uniform(size=(5, 6))
    np.testing.assert_array_equal(back.forward(x), net.forward(x))
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError):
        Network.load(tmp_path / "bad.npz")
