"""Import a ``torch.nn.Sequential`` into a :class:`~robustmip.network.Network`.

Every affine module (``Linear``, ``Conv2d``, ``Flatten``, :class:`Normalize`, eval-mode batch norm)
is folded into the current affine run; each ``ReLU`` closes the run as one ReLU layer.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from robustmip.errors import InvalidInput, UnsupportedLayer
from robustmip.layers import AffineFolder, conv2d_matrix
from robustmip.network import Network


class Normalize(nn.Module):
    """Input normalisation ``(x - mean) / std`` with per-channel constants (shape ``(C,)``).

    ``Network.from_torch`` folds it into the first affine layer.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).reshape(-1, 1, 1))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).reshape(-1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def leaf_modules(model: nn.Module, prefix: str = "") -> Iterator[tuple[str, nn.Module]]:
    """Yield ``(position name, module)`` through nested ``nn.Sequential`` containers, in order."""
    for name, child in model.named_children():
        full = f"{prefix}{name}"
        if isinstance(child, nn.Sequential):
            yield from leaf_modules(child, full + ".")
        else:
            yield full, child


def _channel_constant(value: torch.Tensor, shape: tuple[int, ...]) -> np.ndarray:
    """Broadcast a per-channel vector ``(C,)`` against a ``(C, ...)`` or ``(C,)`` shape."""
    v = value.detach().double().reshape(-1).numpy()
    return v.reshape((-1,) + (1,) * (len(shape) - 1))


def torch_to_network(model: nn.Module, input_shape: Sequence[int] | None = None) -> Network:
    """Fold ``model`` into a :class:`Network`; see :meth:`Network.from_torch`."""
    if not isinstance(model, nn.Sequential):
        raise UnsupportedLayer(
            f"expected a torch.nn.Sequential, got {type(model).__name__}; wrap the layers in nn.Sequential"
        )
    modules = list(leaf_modules(model))
    if input_shape is None:
        first_affine = next((m for _, m in modules if isinstance(m, (nn.Linear, nn.Conv2d))), None)
        if not isinstance(first_affine, nn.Linear):
            raise InvalidInput("input_shape is required when the model does not start with nn.Linear")
        input_shape = (first_affine.in_features,)
    folder = AffineFolder(input_shape)
    for position, (name, module) in enumerate(modules):
        where = f"{type(module).__name__} at position {position} ('{name}')"
        if isinstance(module, nn.Linear):
            if folder.size != module.in_features:
                raise InvalidInput(f"{where} expects {module.in_features} inputs, gets shape {folder.shape}")
            bias = module.bias.detach().double().numpy() if module.bias is not None else np.zeros(module.out_features)
            folder.apply_matrix(module.weight.detach().double().numpy(), bias, (module.out_features,))
        elif isinstance(module, nn.Conv2d):
            if len(folder.shape) != 3 or module.padding_mode != "zeros" or isinstance(module.padding, str):
                raise UnsupportedLayer(f"{where}: needs a (C,H,W) input, zero padding and numeric padding")
            ph, pw = module.padding
            M, out_shape = conv2d_matrix(
                module.weight.detach().double().numpy(), folder.shape, module.stride,
                (ph, pw, ph, pw), module.dilation, module.groups,
            )
            bias = module.bias.detach().double().numpy() if module.bias is not None else np.zeros(out_shape[0])
            folder.apply_matrix(M, np.repeat(bias, out_shape[1] * out_shape[2]), out_shape)
        elif isinstance(module, nn.Flatten):
            folder.reshape((folder.size,))
        elif isinstance(module, Normalize):
            std = _channel_constant(module.std, folder.shape)
            folder.apply_elementwise(1.0 / std, -_channel_constant(module.mean, folder.shape) / std)
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            if module.training or module.running_mean is None:
                raise UnsupportedLayer(f"{where}: batch norm must be in eval mode with running statistics")
            scale = 1.0 / np.sqrt(module.running_var.detach().double().numpy() + module.eps)
            shift = -module.running_mean.detach().double().numpy() * scale
            if module.affine:
                gamma = module.weight.detach().double().numpy()
                scale, shift = scale * gamma, shift * gamma + module.bias.detach().double().numpy()
            folder.apply_elementwise(
                scale.reshape((-1,) + (1,) * (len(folder.shape) - 1)),
                shift.reshape((-1,) + (1,) * (len(folder.shape) - 1)),
            )
        elif isinstance(module, nn.ReLU):
            if folder.pending or not folder.layers or folder.layers[-1].activation != "relu":
                folder.emit("relu")
        elif isinstance(module, (nn.Identity, nn.Dropout)):
            continue
        else:
            raise UnsupportedLayer(
                f"unsupported layer {where}; supported: Linear, Conv2d, ReLU, Flatten, Normalize, "
                "BatchNorm (eval), Dropout, Identity"
            )
    if folder.pending or not folder.layers:
        folder.emit("identity")
    return Network(folder.layers, input_shape)
