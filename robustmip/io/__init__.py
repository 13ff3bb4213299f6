"""Readers and writers: torch models, ONNX files, VNN-LIB properties, checkpoints and saved networks.

``torch_model`` and ``onnx_model`` fold a model into a :class:`~robustmip.network.Network`;
``vnnlib`` parses properties and writes VNN-COMP result files; ``checkpoint`` saves and loads
self-describing training checkpoints. Heavy libraries (torch, onnx) are imported only by the reader
that needs them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from robustmip.errors import DataError
from robustmip.network import Network

MODEL_SUFFIXES = (".onnx", ".onnx.gz", ".pt", ".pth", ".npz")


def from_torch(model, input_shape: Sequence[int] | None = None) -> Network:
    """Fold a ``torch.nn.Sequential`` into a :class:`Network` (see :mod:`robustmip.io.torch_model`)."""
    from robustmip.io.torch_model import torch_to_network

    return torch_to_network(model, input_shape)


def from_onnx(path_or_model) -> Network:
    """Fold an ONNX model (path, ``.onnx.gz`` path, or ``onnx.ModelProto``) into a :class:`Network`."""
    from robustmip.io.onnx_model import onnx_to_network

    return onnx_to_network(path_or_model)


def load_network(path: str | Path) -> Network:
    """A :class:`Network` from an ONNX file, a robustmip checkpoint (``.pt``) or a saved network (``.npz``)."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"model path {path} is a directory, not a model file")
    if not path.is_file():
        raise DataError(f"model file not found: {path}")
    name = path.name.lower()
    if name.endswith((".onnx", ".onnx.gz")):
        return from_onnx(path)
    if name.endswith(".npz"):
        return Network.load(path)
    if name.endswith((".pt", ".pth")):
        from robustmip.io.checkpoint import load_checkpoint

        model, _ = load_checkpoint(path)
        return from_torch(model, input_shape=(1, 28, 28))
    raise DataError(f"unknown model format {path.suffix!r}: use .onnx, .pt (robustmip checkpoint) or .npz")



def load_torch_model(path: str | Path):
    """``(torch model, architecture name)`` of a checkpoint, or of an ONNX / ``.npz`` network (as
    ``Flatten, Linear, ReLU, ...`` in float32, named by its widths)."""
    path = Path(path)
    if path.name.lower().endswith((".pt", ".pth")) and path.is_file():
        from robustmip.io.checkpoint import load_checkpoint

        model, meta = load_checkpoint(path)
        return model, meta.arch
    net = load_network(path)
    return net.to_torch().eval(), repr(net)
