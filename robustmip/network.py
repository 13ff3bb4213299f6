"""The one solver-free description of a piecewise-linear (ReLU) network.

A :class:`Network` is an ordered list of :class:`AffineLayer` s. Layer ``k`` maps the flattened
activation vector ``h_{k-1}`` (float64, shape ``(n_{k-1},)``) to the pre-activation
``a_k = W_k h_{k-1} + b_k`` (shape ``(n_k,)``) and then applies its activation: ReLU or identity.
``h_0`` is the input flattened in C order; the last layer's output is the logits vector.

Convolutions, flattening, reshapes and input normalisation are all affine, so importers fold every
run of affine operators between two ReLUs into one dense ``W``/``b``. The network therefore has
exactly one affine layer per ReLU layer, plus the output layer. Import from a
``torch.nn.Sequential`` or an ONNX file with :mod:`robustmip.io` (``from_torch``, ``from_onnx``);
export with :meth:`Network.to_torch`; evaluate with :meth:`Network.forward` (float64), the reference
that re-checks every counterexample robustmip reports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from robustmip.errors import DataError, InvalidInput
from robustmip.layers import AffineLayer


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
