"""The supported layer sequence as blocks, and the checks and shapes of inputs, specs and splits.

A :class:`LirpaGraph` splits an ``nn.Sequential`` at its ReLUs into blocks: block ``k`` is a run
of affine operators (:mod:`robustmip.bounds.lirpa.ops`) computing the pre-activation ``a_k`` of
shape ``shapes[k]`` from the previous post-activation ``h_{k-1}`` (``h_{-1} = x``, the input);
every block but the last is followed by a ReLU, ``h_k = relu(a_k)``; the last block's output is the
logits ``y`` (a model ending in ReLU gets an empty last block, so ``y = h``). Supported modules:
Linear, Conv2d (zero padding), Flatten, ReLU, Identity, Dropout (treated as in eval mode) and
robustmip's Normalize; anything else raises :class:`~robustmip.errors.UnsupportedLayer`.

Bounds are asked of ``C y`` for a specification ``C`` of shape ``(m, n_out)`` (shared) or
``(B, m, n_out)`` (per example): the rows are back-substituted from the last block, so ``C`` is
folded into the last affine layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn

from robustmip.bounds.lirpa.ops import OP_TYPES, AffineOp, Shape
from robustmip.errors import InvalidInput, UnsupportedLayer
from robustmip.io.torch_model import leaf_modules
from robustmip.network import Network
from robustmip.spec import margin_matrix

SUPPORTED_LAYERS = "Linear, Conv2d (zero padding), Flatten, ReLU, Identity, Dropout, Normalize"


@dataclass(frozen=True)
class Block:
    """Affine operators from ``h_{k-1}`` (``in_shape``) to ``a_k`` (``out_shape``); ``relu`` when a ReLU follows."""

    ops: tuple[AffineOp, ...]
    relu: bool
    in_shape: Shape
    out_shape: Shape

    @property
    def n_mixing(self) -> int:
        """Number of Linear/Conv2d operators (0 or 1: interval arithmetic through the block is exact)."""
        return sum(op.mixing for op in self.ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for op in self.ops:
            x = op.forward(x)
        return x

    def backward(self, A: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows ``A`` ``(N, m, *out_shape)`` on ``a_k`` as rows on ``h_{k-1}`` plus a constant ``(N, m)``."""
        const = A.new_zeros(A.shape[:2])
        for op in reversed(self.ops):
            A, c = op.backward(A)
            if c is not None:
                const = const + c
        return A, const


class LirpaGraph:
    """An ``nn.Sequential`` (or a :class:`~robustmip.network.Network`) as ReLU-separated affine blocks.

    Args:
        model: the torch model (its parameters are read at every bound, so bounds follow training),
            or a Network (converted once by ``Network.to_torch(torch.float64)``, without gradients).
        input_shape: shape of one input without the batch dimension; defaults to the Network's.
    """

    def __init__(self, model: nn.Module | Network, input_shape: Sequence[int] | None = None):
        if isinstance(model, Network):
            input_shape = tuple(input_shape) if input_shape is not None else model.input_shape
            model = model.to_torch(torch.float64).requires_grad_(False)  # its weights are nobody's parameters
        if not isinstance(model, nn.Sequential):
            raise UnsupportedLayer(f"expected a torch.nn.Sequential or a Network, got {type(model).__name__}")
        if input_shape is None:
            raise InvalidInput("input_shape is required, e.g. (1, 28, 28)")
        self.input_shape: Shape = tuple(int(s) for s in input_shape)
        self.blocks: tuple[Block, ...] = tuple(self._blocks(model))

    def _blocks(self, model: nn.Sequential) -> list[Block]:
        blocks: list[Block] = []
        ops: list[AffineOp] = []
        start = shape = self.input_shape
        for position, (name, module) in enumerate(leaf_modules(model)):
            where = f"{type(module).__name__} at position {position} ('{name}')"
            if isinstance(module, nn.ReLU):
                if ops or not blocks:  # relu(relu(a)) = relu(a): a second ReLU adds nothing
                    blocks.append(Block(tuple(ops), True, start, shape))
                    ops, start = [], shape
                continue
            if isinstance(module, (nn.Identity, nn.Dropout)):
                continue
            op_type = next((op for mod, op in OP_TYPES if isinstance(module, mod)), None)
            if op_type is None:
                raise UnsupportedLayer(f"unsupported layer {where} for torch bounds; supported: {SUPPORTED_LAYERS}")
            ops.append(op_type(module, shape, where))
            shape = ops[-1].out_shape
        blocks.append(Block(tuple(ops), False, start, shape))
        return blocks

    @property
    def n_relu_layers(self) -> int:
        return len(self.blocks) - 1

    @property
    def relu_shapes(self) -> list[Shape]:
        """Pre-activation shape of every ReLU layer."""
        return [block.out_shape for block in self.blocks[:-1]]

    @property
    def n_outputs(self) -> int:
        return math.prod(self.blocks[-1].out_shape)

    def max_width(self, k: int) -> int:
        """Largest number of values per example and row that back-substitution from block ``k`` meets."""
        return max(math.prod(s) for block in self.blocks[: k + 1] for s in (block.in_shape, block.out_shape))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits ``(N, n_out)`` and every ReLU layer's pre-activation ``(N, *shape_k)``.

        ``x`` is a batch ``(N, *input_shape)`` (or flat ``(N, n_inputs)``).
        """
        pre = []
        h = x.reshape(x.shape[0], *self.input_shape)
        for block in self.blocks:
            a = block.forward(h)
            if block.relu:
                pre.append(a)
                h = torch.relu(a)
            else:
                h = a
        return h.flatten(1), pre

    def check_box(self, lower: torch.Tensor, upper: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The input box as two ``(B, *input_shape)`` tensors (a flat ``(B, n_inputs)`` box is reshaped)."""
        if not (isinstance(lower, torch.Tensor) and isinstance(upper, torch.Tensor)):
            raise InvalidInput("lower and upper must be torch tensors of shape (B, *input_shape)")
        if lower.shape != upper.shape or lower.dtype != upper.dtype or lower.device != upper.device:
            raise InvalidInput(f"lower {tuple(lower.shape)} {lower.dtype} and upper {tuple(upper.shape)} "
                               f"{upper.dtype} must have the same shape, dtype and device")
        if lower.dtype not in (torch.float32, torch.float64):
            raise InvalidInput(f"bounds need float32 or float64 inputs, got {lower.dtype}")
        n_in = math.prod(self.input_shape)
        if lower.ndim < 2 or math.prod(tuple(lower.shape[1:])) != n_in:
            raise InvalidInput(f"input box of shape {tuple(lower.shape)} does not fit (B, *{self.input_shape})")
        lower = lower.reshape(lower.shape[0], *self.input_shape)
        upper = upper.reshape(upper.shape[0], *self.input_shape)
        if not (torch.isfinite(lower).all() and torch.isfinite(upper).all()):
            raise InvalidInput("the input box contains NaN or infinite values")
        if (lower > upper).any():
            raise InvalidInput("input box has lower > upper")
        return lower, upper

    def spec_rows(self, C: torch.Tensor | np.ndarray | None, box: torch.Tensor, both_sides: bool) -> torch.Tensor:
        """Rows on the logits, ``(1 or B, m, *out_shape)``: ``C`` (the identity when None), then ``-C``
        if ``both_sides``."""
        batch, n_out = box.shape[0], self.n_outputs
        if C is None:
            rows = torch.eye(n_out, dtype=box.dtype, device=box.device).unsqueeze(0)
        else:
            rows = torch.as_tensor(C, dtype=box.dtype, device=box.device)
            rows = rows.unsqueeze(0) if rows.ndim == 2 else rows
            if rows.ndim != 3 or rows.shape[2] != n_out or rows.shape[0] not in (1, batch):
                raise InvalidInput(f"specification C of shape {tuple(torch.as_tensor(C).shape)} must be "
                                   f"(m, {n_out}) or ({batch}, m, {n_out})")
        if both_sides:
            rows = torch.cat([rows, -rows], dim=1)
        return rows.reshape(rows.shape[0], rows.shape[1], *self.blocks[-1].out_shape)

    def check_layers(self, tensors: Sequence[torch.Tensor | None], batch: int, what: str) -> None:
        """InvalidInput unless there is one ``(B, *shape_k)`` tensor (or None) per ReLU layer."""
        if len(tensors) != self.n_relu_layers:
            raise InvalidInput(f"{what}: expected one entry per ReLU layer ({self.n_relu_layers}), got {len(tensors)}")
        for k, (t, shape) in enumerate(zip(tensors, self.relu_shapes)):
            if t is not None and tuple(t.shape) != (batch, *shape):
                raise InvalidInput(f"{what}[{k}] has shape {tuple(t.shape)}, expected {(batch, *shape)}")


def margin_specs(
    labels: torch.Tensor | Sequence[int], n_outputs: int, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Per-example margin rows ``C_y`` (:func:`robustmip.spec.margin_matrix`), ``(B, n_outputs - 1, n_outputs)``."""
    labels = torch.as_tensor(labels, dtype=torch.long).reshape(-1)
    if ((labels < 0) | (labels >= n_outputs)).any():
        raise InvalidInput(f"labels must lie in 0..{n_outputs - 1}")
    table = np.stack([margin_matrix(n_outputs, y) for y in range(n_outputs)])
    return torch.as_tensor(table, dtype=dtype, device=labels.device)[labels]
