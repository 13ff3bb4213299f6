"""A reader of the ONNX protobuf wire format, for the part of ONNX that :mod:`robustmip.io.onnx_model` folds.

Importing the ``onnx`` package costs about a second of CPU (its dtype extensions), more than the
rest of a ``verify-vnnlib`` start-up together; the messages robustmip reads are few and simple, so
they are decoded here from the bytes (protobuf encoding: varint keys ``field << 3 | wire type``;
wire types 0 varint, 1 fixed 64 bits, 2 length-delimited, 5 fixed 32 bits). Only the fields listed
in each message are read; everything else is skipped. Malformed input raises
:class:`~robustmip.errors.DataError`, never another exception. Writing ONNX still uses the ``onnx``
package (:func:`robustmip.io.onnx_model.network_to_onnx`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from robustmip.errors import DataError

# TensorProto.DataType values and the numpy types of the ones robustmip reads.
TENSOR_DTYPES = {1: np.float32, 6: np.int32, 7: np.int64, 11: np.float64, 10: np.float16}
EXTERNAL = 1
"""TensorProto.DataLocation.EXTERNAL."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result, shift = 0, 0
    while True:
        if pos >= len(data):
            raise DataError("truncated varint in the ONNX file")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise DataError("varint longer than 64 bits in the ONNX file")


def _signed(value: int) -> int:
    """A varint read as a two's-complement int64."""
    return value - (1 << 64) if value >= 1 << 63 else value


def fields(data: bytes) -> list[tuple[int, int, object]]:
    """``(field number, wire type, value)`` of every field of one message; value is an int or bytes."""
    out = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            if pos + 8 > len(data):
                raise DataError("truncated 64-bit field in the ONNX file")
            value, pos = data[pos:pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise DataError("a field runs past the end of the ONNX file (truncated?)")
            value, pos = data[pos:pos + length], pos + length
        elif wire == 5:
            if pos + 4 > len(data):
                raise DataError("truncated 32-bit field in the ONNX file")
            value, pos = data[pos:pos + 4], pos + 4
        else:
            raise DataError(f"unknown protobuf wire type {wire} in the ONNX file")
        if number == 0:
            raise DataError("protobuf field number 0 in the ONNX file")
        out.append((number, wire, value))
    return out


def _text(value: object) -> str:
    if not isinstance(value, bytes):
        raise DataError("a text field of the ONNX file has the wrong wire type")
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError("a text field of the ONNX file is not UTF-8") from exc


def _ints(wire: int, value: object) -> list[int]:
    """A repeated int64 field's entries (packed or one by one)."""
    if wire == 0:
        return [_signed(int(value))]
    if wire != 2:
        raise DataError("an integer list of the ONNX file has the wrong wire type")
    out, pos = [], 0
    while pos < len(value):
        v, pos = _varint(value, pos)
        out.append(_signed(v))
    return out


def _packed(wire: int, value: object, fmt: str, size: int) -> list[float]:
    """A repeated float (``f``, 4 bytes) or double (``d``, 8 bytes) field's entries."""
    if (wire == 5 and size == 4) or (wire == 1 and size == 8):
        return [struct.unpack("<" + fmt, value)[0]]
    if wire != 2 or len(value) % size:
        raise DataError("a number list of the ONNX file has the wrong wire type or length")
    return list(struct.unpack(f"<{len(value) // size}{fmt}", value))


@dataclass
class Tensor:
    """A TensorProto: name, dims, and its values as a float64 array (external data resolved on request)."""

    name: str = ""
    dims: list[int] = field(default_factory=list)
    data_type: int = 0
    raw: bytes | None = None
    floats: list[float] = field(default_factory=list)
    ints: list[int] = field(default_factory=list)
    external: dict[str, str] = field(default_factory=dict)
    location: int = 0

    @classmethod
    def parse(cls, data: bytes) -> Tensor:
        t = cls()
        for number, wire, value in fields(data):
            if number == 1:
                t.dims += _ints(wire, value)
            elif number == 2 and wire == 0:
                t.data_type = int(value)
            elif number == 4:
                t.floats += _packed(wire, value, "f", 4)
            elif number == 10:
                t.floats += _packed(wire, value, "d", 8)
            elif number in (5, 7):
                t.ints += _ints(wire, value)
            elif number == 8:
                t.name = _text(value)
            elif number == 9 and wire == 2:
                t.raw = bytes(value)
            elif number == 13 and wire == 2:
                entry = {n: _text(v) for n, _, v in fields(value)}
                t.external[entry.get(1, "")] = entry.get(2, "")
            elif number == 14 and wire == 0:
                t.location = int(value)
        return t

    def array(self, folder: Path | None = None) -> np.ndarray:
        """The values, float64, shaped by ``dims``; external data is read from ``folder``."""
        dtype = TENSOR_DTYPES.get(self.data_type)
        if dtype is None:
            raise DataError(f"tensor '{self.name}' has ONNX data type {self.data_type}, which robustmip does not read")
        if any(d < 0 for d in self.dims):
            raise DataError(f"tensor '{self.name}' has negative dimensions {self.dims}")
        count = int(np.prod(self.dims, dtype=object)) if self.dims else 1
        raw = self.raw
        if self.location == EXTERNAL:
            raw = self._external(folder, count * np.dtype(dtype).itemsize)
        if raw is not None:
            if len(raw) != count * np.dtype(dtype).itemsize:
                raise DataError(f"tensor '{self.name}' holds {len(raw)} bytes, its dims {self.dims} need "
                                f"{count * np.dtype(dtype).itemsize}")
            values = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).astype(np.float64)
        else:
            listed = self.floats if np.issubdtype(dtype, np.floating) else self.ints
            if len(listed) != count:
                raise DataError(f"tensor '{self.name}' lists {len(listed)} values, its dims {self.dims} need {count}")
            values = np.asarray(listed, dtype=np.float64)
        return values.reshape(self.dims) if self.dims else values.reshape(())

    def _external(self, folder: Path | None, size: int) -> bytes:
        location = self.external.get("location")
        if folder is None or not location:
            raise DataError(f"tensor '{self.name}' keeps its values in an external file that cannot be located")
        path = (folder / location).resolve()
        if folder.resolve() not in path.parents:
            raise DataError(f"tensor '{self.name}' names an external file outside the model's folder: {location}")
        try:
            offset = int(self.external.get("offset", "0"))
            length = int(self.external.get("length", str(size)))
            with path.open("rb") as handle:
                handle.seek(offset)
                return handle.read(length)
        except (OSError, ValueError) as exc:
            raise DataError(f"external data of tensor '{self.name}' cannot be read next to the model "
                            f"({type(exc).__name__}: {exc})") from exc


@dataclass
class Attribute:
    """An AttributeProto: the value of the fields robustmip uses (f, i, s, t, floats, ints)."""

    name: str = ""
    value: object = None

    @classmethod
    def parse(cls, data: bytes) -> Attribute:
        a = cls()
        floats: list[float] = []
        ints: list[int] = []
        for number, wire, value in fields(data):
            if number == 1:
                a.name = _text(value)
            elif number == 2 and wire == 5:
                a.value = struct.unpack("<f", value)[0]
            elif number == 3 and wire == 0:
                a.value = _signed(int(value))
            elif number == 4 and wire == 2:
                a.value = bytes(value)
            elif number == 5 and wire == 2:
                a.value = Tensor.parse(value)
            elif number == 7:
                floats += _packed(wire, value, "f", 4)
            elif number == 8:
                ints += _ints(wire, value)
        if a.value is None:
            a.value = floats if floats else ints
        return a


@dataclass
class Node:
    op_type: str = ""
    name: str = ""
    input: list[str] = field(default_factory=list)
    output: list[str] = field(default_factory=list)
    attributes: dict[str, object] = field(default_factory=dict)

    @classmethod
    def parse(cls, data: bytes) -> Node:
        n = cls()
        for number, _, value in fields(data):
            if number == 1:
                n.input.append(_text(value))
            elif number == 2:
                n.output.append(_text(value))
            elif number == 3:
                n.name = _text(value)
            elif number == 4:
                n.op_type = _text(value)
            elif number == 5 and isinstance(value, bytes):
                attribute = Attribute.parse(value)
                n.attributes[attribute.name] = attribute.value
        return n


@dataclass
class ValueInfo:
    """A graph input or output: its name and its dims (None where a dimension is symbolic)."""

    name: str = ""
    dims: list[int | None] = field(default_factory=list)

    @classmethod
    def parse(cls, data: bytes) -> ValueInfo:
        v = cls()
        for number, _, value in fields(data):
            if number == 1:
                v.name = _text(value)
            elif number == 2 and isinstance(value, bytes):
                v.dims = _tensor_type_dims(value)
        return v


def _tensor_type_dims(type_proto: bytes) -> list[int | None]:
    """TypeProto -> tensor_type (1) -> shape (2) -> dim (1) -> dim_value (1) or dim_param (2)."""
    dims: list[int | None] = []
    for number, _, tensor_type in fields(type_proto):
        if number != 1 or not isinstance(tensor_type, bytes):
            continue
        for n2, _, shape in fields(tensor_type):
            if n2 != 2 or not isinstance(shape, bytes):
                continue
            for n3, _, dim in fields(shape):
                if n3 == 1 and isinstance(dim, bytes):
                    values = [_signed(int(v)) for n4, w4, v in fields(dim) if n4 == 1 and w4 == 0]
                    dims.append(values[0] if values else None)
    return dims


@dataclass
class Graph:
    nodes: list[Node] = field(default_factory=list)
    initializers: list[Tensor] = field(default_factory=list)
    inputs: list[ValueInfo] = field(default_factory=list)
    outputs: list[ValueInfo] = field(default_factory=list)


def parse_model(data: bytes) -> Graph:
    """The graph of a serialised ModelProto (field 7); DataError when there is none or it is malformed."""
    graphs = [value for number, wire, value in fields(data) if number == 7 and wire == 2]
    if not graphs:
        raise DataError("no graph in the ONNX file (not an ONNX model?)")
    graph = Graph()
    for number, wire, value in fields(graphs[-1]):
        if wire != 2:
            continue
        if number == 1:
            graph.nodes.append(Node.parse(value))
        elif number == 5:
            graph.initializers.append(Tensor.parse(value))
        elif number == 11:
            graph.inputs.append(ValueInfo.parse(value))
        elif number == 12:
            graph.outputs.append(ValueInfo.parse(value))
        elif number == 15:
            raise DataError("sparse initializers are not supported; store the weights densely")
    return graph
