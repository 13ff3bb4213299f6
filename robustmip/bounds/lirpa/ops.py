"""Affine operators of a LiRPA graph, each with its forward, interval and transposed (backward) map.

An operator is an affine map ``x -> M x + c`` on one example of shape ``in_shape`` (no batch
dimension) to ``out_shape``; convolutions stay convolutions, ``M`` is never formed. Three maps:

``forward(x)``
    ``M x + c`` for a batch ``x`` of shape ``(N, *in_shape)``.
``radius(r)``
    ``|M| r`` for a batch of non-negative radii ``(N, *in_shape)`` (interval arithmetic:
    ``M [c - r, c + r] + c_op`` lies in ``M c + c_op +- |M| r``).
``backward(A)``
    for coefficient rows ``A`` on the output, shape ``(N, m, *out_shape)``, the same linear form on
    the input: ``(A M`` of shape ``(N, m, *in_shape)``, ``A c`` of shape ``(N, m)`` or ``None`` when
    ``c = 0)``. ``N`` may be 1 for rows shared by the whole batch.

Weights are read from the torch module at every call and cast to the dtype and device of the
argument, so bounds are differentiable with respect to the module's parameters in float32 or
float64. No operator works in place.
"""

from __future__ import annotations

import math
from typing import Protocol, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from robustmip.errors import InvalidInput, UnsupportedLayer
from robustmip.io.torch_model import Normalize

Shape = tuple[int, ...]


def _cast(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return t.to(dtype=like.dtype, device=like.device)


class AffineOp(Protocol):
    """One affine operator; ``mixing`` is False for element-wise maps and reshapes."""

    in_shape: Shape
    out_shape: Shape
    mixing: bool

    def forward(self, x: torch.Tensor) -> torch.Tensor: ...

    def radius(self, r: torch.Tensor) -> torch.Tensor: ...

    def backward(self, A: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]: ...


class LinearOp:
    """``nn.Linear``: ``M = weight`` ``(out, in)``, ``c = bias``."""

    mixing = True

    def __init__(self, module: nn.Linear, in_shape: Shape, where: str):
        if in_shape != (module.in_features,):
            raise InvalidInput(f"{where} expects {module.in_features} inputs, gets shape {in_shape}; "
                               "put nn.Flatten before it")
        self.module = module
        self.in_shape, self.out_shape = in_shape, (module.out_features,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.module.bias is None else _cast(self.module.bias, x)
        return F.linear(x, _cast(self.module.weight, x), bias)

    def radius(self, r: torch.Tensor) -> torch.Tensor:
        return F.linear(r, _cast(self.module.weight, r).abs())

    def backward(self, A: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        const = None if self.module.bias is None else A.matmul(_cast(self.module.bias, A))
        return A.matmul(_cast(self.module.weight, A)), const


class Conv2dOp:
    """``nn.Conv2d`` with zero padding (any stride, dilation, groups); the transpose is ``conv_transpose2d``."""

    mixing = True

    def __init__(self, module: nn.Conv2d, in_shape: Shape, where: str):
        if module.padding_mode != "zeros" or isinstance(module.padding, str):
            raise UnsupportedLayer(f"{where}: only numeric zero padding is supported "
                                   f"(got padding={module.padding!r}, padding_mode={module.padding_mode!r})")
        if len(in_shape) != 3 or in_shape[0] != module.in_channels:
            raise InvalidInput(f"{where} expects a ({module.in_channels}, H, W) input, gets shape {in_shape}")
        self.module = module
        out_hw, self.output_padding = [], []
        for size, k, s, p, d in zip(in_shape[1:], module.kernel_size, module.stride, module.padding, module.dilation):
            out = (size + 2 * p - d * (k - 1) - 1) // s + 1
            if out < 1:
                raise InvalidInput(f"{where}: input of shape {in_shape} is smaller than the kernel")
            out_hw.append(out)
            # conv_transpose2d gives (out - 1) s - 2 p + d (k - 1) + 1 rows; pad up to the input size.
            self.output_padding.append(size - ((out - 1) * s - 2 * p + d * (k - 1) + 1))
        self.in_shape, self.out_shape = in_shape, (module.out_channels, *out_hw)

    def _conv(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        m = self.module
        return F.conv2d(x, weight, bias, m.stride, m.padding, m.dilation, m.groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.module.bias is None else _cast(self.module.bias, x)
        return self._conv(x, _cast(self.module.weight, x), bias)

    def radius(self, r: torch.Tensor) -> torch.Tensor:
        return self._conv(r, _cast(self.module.weight, r).abs(), None)

    def backward(self, A: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        m = self.module
        n, rows = A.shape[:2]
        back = F.conv_transpose2d(
            A.reshape(n * rows, *self.out_shape), _cast(m.weight, A), None, m.stride, m.padding,
            tuple(self.output_padding), m.groups, m.dilation,
        )
        const = None if m.bias is None else A.sum(dim=(-2, -1)).matmul(_cast(m.bias, A))
        return back.reshape(n, rows, *self.in_shape), const


class FlattenOp:
    """``nn.Flatten()`` (``start_dim=1``): a reshape to ``(prod(in_shape),)``."""

    mixing = False

    def __init__(self, module: nn.Flatten, in_shape: Shape, where: str):
        if module.start_dim != 1 or module.end_dim != -1:
            raise UnsupportedLayer(f"{where}: only nn.Flatten(start_dim=1, end_dim=-1) is supported")
        self.in_shape, self.out_shape = in_shape, (math.prod(in_shape),)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)

    def radius(self, r: torch.Tensor) -> torch.Tensor:
        return r.flatten(1)

    def backward(self, A: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        return A.reshape(*A.shape[:2], *self.in_shape), None


class NormalizeOp:
    """:class:`robustmip.io.torch_model.Normalize`: ``(x - mean) / std`` per channel (the first axis)."""

    mixing = False

    def __init__(self, module: Normalize, in_shape: Shape, where: str):
        channels = module.mean.numel()
        if module.std.numel() != channels or channels not in (1, in_shape[0]):
            raise InvalidInput(f"{where}: {channels} channel constants do not fit the input shape {in_shape}")
        self.module = module
        self.in_shape = self.out_shape = in_shape
        self._channel_shape = (channels,) + (1,) * (len(in_shape) - 1)

    def _constants(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = _cast(self.module.mean, like).reshape(self._channel_shape)
        std = _cast(self.module.std, like).reshape(self._channel_shape)
        return mean, std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean, std = self._constants(x)
        return (x - mean) / std

    def radius(self, r: torch.Tensor) -> torch.Tensor:
        return r / self._constants(r)[1].abs()

    def backward(self, A: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        mean, std = self._constants(A)
        shift = (-mean / std).expand(self.in_shape).reshape(-1)
        return A / std, A.flatten(2).matmul(shift)


OP_TYPES: Sequence[tuple[type, type]] = (
    (nn.Linear, LinearOp), (nn.Conv2d, Conv2dOp), (nn.Flatten, FlattenOp), (Normalize, NormalizeOp),
)
"""torch module type -> operator class; ``ReLU``, ``Identity`` and ``Dropout`` are handled by the graph."""
