"""The one solver-free description of a piecewise-linear (ReLU) network.

A :class:`Network` is an ordered list of :class:`AffineLayer` s. Layer ``k`` maps the flattened
activation vector ``h_{k-1}`` (float64, shape ``(n_{k-1},)``) to the pre-activation
``a_k = W_k h_{k-1} + b_k`` (shape ``(n_k,)``) and then applies its activation: ReLU or identity.
``h_0`` is the input flattened in C order; the last layer's output is the logits vector.

Convolutions, flattening, reshapes and input normalisation are all affine, so importers fold every
run of affine operators between two ReLUs into one dense ``W``/``b``. The network therefore has
exactly one affine layer per ReLU layer, plus the output layer. Import from a
``torch.nn.Sequential`` (:meth:`Network.from_torch`) or an ONNX file (:meth:`Network.from_onnx`);
export with :meth:`Network.to_torch`; evaluate with :meth:`Network.forward` (float64), the reference
that re-checks every counterexample robustmip reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

import numpy as np

from robustmip.errors import DataError, InvalidInput

Activation = Literal["relu", "identity"]


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


class Network:
    """A feed-forward piecewise-linear network on a flattened float64 input.

    Args:
        layers: affine layers in order; the last one is the output (logits) layer and normally has
            identity activation.
        input_shape: shape of one input without the batch dimension, e.g. ``(1, 28, 28)``; its
            product must equal the first layer's ``n_in``.
    """

    def __init__(self, layers: Sequence[AffineLayer], input_shape: Sequence[int] | None = None):
        if not layers:
            raise InvalidInput("a Network needs at least one affine layer")
        for k in range(1, len(layers)):
            if layers[k].n_in != layers[k - 1].n_out:
                raise InvalidInput(
                    f"layer {k} expects {layers[k].n_in} inputs but layer {k - 1} gives {layers[k - 1].n_out}"
                )
        self.layers: tuple[AffineLayer, ...] = tuple(layers)
        self.input_shape: tuple[int, ...] = tuple(input_shape) if input_shape else (layers[0].n_in,)
        if int(np.prod(self.input_shape)) != layers[0].n_in:
            raise InvalidInput(f"input shape {self.input_shape} does not have {layers[0].n_in} elements")

    @property
    def n_inputs(self) -> int:
        return self.layers[0].n_in

    @property
    def n_outputs(self) -> int:
        return self.layers[-1].n_out

    @property
    def n_relus(self) -> int:
        return sum(layer.n_out for layer in self.layers if layer.activation == "relu")

    def __repr__(self) -> str:
        widths = "-".join(str(n) for n in [self.n_inputs] + [layer.n_out for layer in self.layers])
        return f"Network({widths}, input_shape={self.input_shape}, relus={self.n_relus})"

    def flatten_input(self, x: np.ndarray) -> np.ndarray:
        """Return ``x`` as float64 ``(N, n_inputs)``; accepts one input or a batch, flat or shaped."""
        x = np.asarray(x, dtype=np.float64)
        if x.size == self.n_inputs:
            return x.reshape(1, self.n_inputs)
        if x.ndim >= 2 and int(np.prod(x.shape[1:])) == self.n_inputs:
            return x.reshape(x.shape[0], self.n_inputs)
        raise InvalidInput(
            f"input of shape {x.shape} does not fit the network's input shape {self.input_shape} "
            f"({self.n_inputs} values per example)"
        )

    def forward(self, x: np.ndarray, return_preactivations: bool = False):
        """Evaluate in float64.

        Args:
            x: one input (any shape with ``n_inputs`` elements) or a batch ``(N, ...)``.
            return_preactivations: also return the list of pre-activations ``a_k``, each ``(N, n_k)``.

        Returns:
            logits ``(n_outputs,)`` for a single input, ``(N, n_outputs)`` for a batch
            (and the pre-activations if asked).
        """
        single = np.asarray(x).size == self.n_inputs and np.asarray(x).ndim <= len(self.input_shape)
        h = self.flatten_input(x)
        pre = []
        for layer in self.layers:
            a = h @ layer.W.T + layer.b
            pre.append(a)
            h = np.maximum(a, 0.0) if layer.activation == "relu" else a
        out = h[0] if single else h
        if return_preactivations:
            return out, [p[0] for p in pre] if single else pre
        return out

    def to_torch(self, dtype=None):
        """Export as ``nn.Sequential(Flatten, Linear, ReLU, ..., Linear)`` computing the same function."""
        import torch
        from torch import nn

        dtype = dtype or torch.float32
        modules: list[nn.Module] = [nn.Flatten()]
        for layer in self.layers:
            linear = nn.Linear(layer.n_in, layer.n_out, dtype=dtype)
            with torch.no_grad():
                linear.weight.copy_(torch.as_tensor(layer.W, dtype=dtype))
                linear.bias.copy_(torch.as_tensor(layer.b, dtype=dtype))
            modules.append(linear)
            if layer.activation == "relu":
                modules.append(nn.ReLU())
        return nn.Sequential(*modules)

    def save(self, path: str | Path) -> None:
        """Write the network to a compressed ``.npz`` (weights, biases, activations, input shape)."""
        arrays: dict[str, np.ndarray] = {
            "input_shape": np.asarray(self.input_shape, dtype=np.int64),
            "activations": np.asarray([layer.activation for layer in self.layers]),
        }
        for k, layer in enumerate(self.layers):
            arrays[f"W{k}"] = layer.W
            arrays[f"b{k}"] = layer.b
        np.savez_compressed(path, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> "Network":
        """Read a network written by :meth:`save`."""
        try:
            with np.load(path, allow_pickle=False) as data:
                activations = [str(a) for a in data["activations"]]
                layers = [
                    AffineLayer(data[f"W{k}"], data[f"b{k}"], activations[k])  # type: ignore[arg-type]
                    for k in range(len(activations))
                ]
                return cls(layers, tuple(int(s) for s in data["input_shape"]))
        except (OSError, KeyError, ValueError) as exc:
            raise DataError(f"cannot read network file {path}: {exc}") from exc

    @classmethod
    def from_torch(cls, model, input_shape: Sequence[int] | None = None) -> "Network":
        """Import a ``torch.nn.Sequential`` (nested Sequentials are flattened).

        Supported modules: ``Linear``, ``ReLU``, ``Flatten``, ``Conv2d`` (folded to its dense affine
        form), ``Identity``, ``Dropout`` (identity in evaluation), eval-mode ``BatchNorm1d/2d`` and
        :class:`Normalize` (both folded into the neighbouring affine map). Anything else raises
        :class:`UnsupportedLayer` naming the module and its position.

        Args:
            input_shape: one example's shape without batch dimension; inferred from the first
                ``Linear`` (flat) when omitted, required when the model starts with a ``Conv2d``.
        """
        from robustmip.torch_import import torch_to_network

        return torch_to_network(model, input_shape)

    @classmethod
    def from_onnx(cls, path_or_model) -> "Network":
        """Import an ONNX model (path, ``.onnx.gz`` path, or ``onnx.ModelProto``); see :mod:`robustmip.onnx_io`."""
        from robustmip.onnx_io import onnx_to_network

        return onnx_to_network(path_or_model)


class AffineFolder:
    """Accumulates a run of affine operators on the flat activation vector into one ``(W, b)``.

    Importers push each affine operator as it comes and call :meth:`emit` at every ReLU and at the
    end. ``shape`` tracks the current tensor shape (without batch dimension) so that element-wise
    constants and convolutions know their layout.
    """

    def __init__(self, shape: Sequence[int]):
        self.shape: tuple[int, ...] = tuple(int(s) for s in shape)
        self.W: np.ndarray | None = None
        self.b = np.zeros(int(np.prod(self.shape)))
        self.layers: list[AffineLayer] = []

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def apply_matrix(self, M: np.ndarray, c: np.ndarray, out_shape: Sequence[int]) -> None:
        """Compose ``v -> M v + c`` (``M`` is ``(n_new, n_cur)``) after what has been pushed so far."""
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
