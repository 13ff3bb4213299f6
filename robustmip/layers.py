"""Layer types of the solver-free network description, and the folding of affine operators.

An :class:`AffineLayer` maps a flat float64 activation vector ``h`` (shape ``(n_in,)``) to
``act(W h + b)`` with ``act`` ReLU or identity. Importers (torch, ONNX) push every affine operator
(dense, convolution, flatten/reshape, normalisation, batch norm) into an :class:`AffineFolder`,
which composes each run of affine operators between two ReLUs into one dense ``(W, b)``;
:func:`conv2d_matrix` gives a convolution's dense matrix. Nothing here imports another robustmip
module but :mod:`robustmip.errors`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np

from robustmip.errors import InvalidInput, UnsupportedLayer

Activation = Literal["relu", "identity"]

MAX_DENSE_ENTRIES = 100_000_000
"""Largest dense ``W`` (entries) an importer folds: 800 MB in float64. Larger layers (or a corrupt file
claiming them) are refused with :class:`UnsupportedLayer` instead of exhausting memory."""


def check_dense_size(n_out: int, n_in: int, what: str) -> None:
    """UnsupportedLayer unless an ``(n_out, n_in)`` float64 matrix is a sane size."""
    if n_out < 0 or n_in < 0 or n_out * n_in > MAX_DENSE_ENTRIES:
        raise UnsupportedLayer(f"{what} would need a dense {n_out} x {n_in} matrix (more than "
                               f"{MAX_DENSE_ENTRIES} entries); robustmip folds layers into dense matrices")


@dataclass(frozen=True)
class AffineLayer:
    """``h_out = act(W @ h_in + b)``; ``W`` is float64 ``(n_out, n_in)``, ``b`` float64 ``(n_out,)``."""

    W: np.ndarray
    b: np.ndarray
    activation: Activation

    def __post_init__(self) -> None:
        W = np.ascontiguousarray(self.W, dtype=np.float64)
        b = np.ascontiguousarray(self.b, dtype=np.float64).reshape(-1)
        if W.ndim != 2 or W.shape[0] != b.shape[0]:
            raise InvalidInput(f"layer weight shape {W.shape} does not match bias shape {b.shape}")
        if not (np.isfinite(W).all() and np.isfinite(b).all()):
            raise InvalidInput("layer has NaN or infinite weights or biases; retrain or clean the model")
        if self.activation not in ("relu", "identity"):
            raise InvalidInput(f"activation must be 'relu' or 'identity', got {self.activation!r}")
        object.__setattr__(self, "W", W)
        object.__setattr__(self, "b", b)

    @property
    def n_in(self) -> int:
        return self.W.shape[1]

    @property
    def n_out(self) -> int:
        return self.W.shape[0]


class AffineFolder:
    """Accumulates a run of affine operators on the flat activation vector into one ``(W, b)``.

    Importers push each affine operator as it comes and call :meth:`emit` at every ReLU and at the
    end. ``shape`` tracks the current tensor shape (without batch dimension) so that element-wise
    constants and convolutions know their layout.
    """

    def __init__(self, shape: Sequence[int]):
        self.shape: tuple[int, ...] = tuple(int(s) for s in shape)
        check_dense_size(1, int(np.prod(self.shape, dtype=object)), f"an input of shape {self.shape}")
        self.W: np.ndarray | None = None
        self.b = np.zeros(int(np.prod(self.shape)))
        self.layers: list[AffineLayer] = []

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def apply_matrix(self, M: np.ndarray, c: np.ndarray, out_shape: Sequence[int]) -> None:
        """Compose ``v -> M v + c`` (``M`` is ``(n_new, n_cur)``) after what has been pushed so far."""
        check_dense_size(int(np.prod(out_shape, dtype=object)), self.size, f"a layer of output shape {tuple(out_shape)}")
        M = np.asarray(M, dtype=np.float64)
        self.W = M.copy() if self.W is None else M @ self.W
        self.b = M @ self.b + np.asarray(c, dtype=np.float64).reshape(-1)
        self.shape = tuple(int(s) for s in out_shape)

    def apply_elementwise(self, scale: np.ndarray | float, shift: np.ndarray | float) -> None:
        """Compose ``v -> scale * v + shift`` with constants broadcast against the current shape."""
        scale_flat = np.broadcast_to(np.asarray(scale, dtype=np.float64), self.shape).reshape(-1)
        shift_flat = np.broadcast_to(np.asarray(shift, dtype=np.float64), self.shape).reshape(-1)
        self.W = np.diag(scale_flat) if self.W is None else scale_flat[:, None] * self.W
        self.b = scale_flat * self.b + shift_flat

    def reshape(self, shape: Sequence[int]) -> None:
        """Change the logical shape; the flat (C-order) vector is unchanged."""
        shape = tuple(int(s) for s in shape)
        if int(np.prod(shape)) != self.size:
            raise InvalidInput(f"cannot reshape {self.shape} to {shape}")
        self.shape = shape

    def emit(self, activation: Activation) -> None:
        """Close the current affine run as a layer with ``activation``."""
        W = np.eye(self.size) if self.W is None else self.W
        self.layers.append(AffineLayer(W, self.b, activation))
        self.W = None
        self.b = np.zeros(self.size)

    @property
    def pending(self) -> bool:
        """True when affine operators were pushed since the last :meth:`emit`."""
        return self.W is not None or bool(np.any(self.b))


def conv2d_matrix(
    weight: np.ndarray,
    in_shape: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
    groups: int,
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Dense matrix of a 2-D convolution without bias.

    Args:
        weight: ``(C_out, C_in/groups, kH, kW)``.
        in_shape: ``(C_in, H, W)``.
        padding: ``(top, left, bottom, right)`` zero padding.

    Returns:
        ``M`` of shape ``(C_out*H_out*W_out, C_in*H*W)`` and the output shape ``(C_out, H_out, W_out)``.
    """
    import torch
    import torch.nn.functional as F

    c_in, h, w = (int(s) for s in in_shape)
    n_in = c_in * h * w
    check_dense_size(n_in, n_in, f"a convolution on shape {tuple(in_shape)}")
    basis = torch.eye(n_in, dtype=torch.float64).reshape(n_in, c_in, h, w)
    top, left, bottom, right = (int(p) for p in padding)
    basis = F.pad(basis, (left, right, top, bottom))
    out = F.conv2d(
        basis,
        torch.as_tensor(np.asarray(weight, dtype=np.float64)),
        stride=tuple(int(s) for s in stride),
        dilation=tuple(int(d) for d in dilation),
        groups=int(groups),
    )
    out_shape = tuple(int(s) for s in out.shape[1:])
    return out.reshape(n_in, -1).T.contiguous().numpy(), out_shape  # type: ignore[return-value]
