"""Import a sequential ONNX graph of affine operators and ReLUs into a :class:`Network`.

Supported operators: ``Flatten``, ``Reshape``, ``Gemm`` (alpha, beta, transB; transA only with a batch
of 1), ``MatMul``, ``Add``, ``Sub``, ``Mul``, ``Div`` (with constant operands), ``Conv``, ``Relu``,
``Identity``, ``Dropout`` and ``Constant``. The graph must be a chain: every operator takes the
previous operator's output plus constants. Anything else raises :class:`UnsupportedLayer` naming the
operator and its position.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from robustmip.errors import DataError, RobustMipError, UnsupportedLayer
from robustmip.io.onnx_proto import Graph, parse_model
from robustmip.layers import AffineFolder, conv2d_matrix
from robustmip.network import Network


def load_onnx_graph(path: str | Path) -> tuple[Graph, Path]:
    """The graph of an ONNX file (``.onnx`` or gzipped ``.onnx.gz``) and the folder its external data
    (if any) is read from: the model's own folder, whatever the current one."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"ONNX path {path} is a directory, not a model file")
    if not path.is_file():
        raise DataError(f"ONNX file not found: {path}")
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(f"cannot read {path} ({type(exc).__name__}: {exc})") from exc
    try:
        return parse_model(raw), path.parent
    except DataError as exc:
        raise DataError(f"{path} is not a readable ONNX model: {exc}") from exc


def _input_shape(graph: Graph, initializer_names: set[str]) -> tuple[str, tuple[int, ...]]:
    """Name and per-example shape of the one non-initializer graph input (batch dim dropped)."""
    inputs = [i for i in graph.inputs if i.name not in initializer_names]
    if len(inputs) != 1:
        raise UnsupportedLayer(f"expected exactly one graph input, found {[i.name for i in inputs]}")
    shape = list(inputs[0].dims)
    if len(shape) >= 2:
        shape = shape[1:]
    if any(s is None or s <= 0 for s in shape):
        raise UnsupportedLayer(f"input '{inputs[0].name}' has unknown dimensions {shape}")
    return inputs[0].name, tuple(int(s) for s in shape)


def _reshape_target(spec: np.ndarray, current: tuple[int, ...]) -> tuple[int, ...]:
    """Resolve an ONNX Reshape shape (with batch dim, 0 = copy, -1 = infer) to a per-example shape."""
    full = (1,) + current
    dims = [full[i] if int(s) == 0 else int(s) for i, s in enumerate(spec)]
    if -1 in dims:
        known = int(np.prod([d for d in dims if d != -1]))
        dims[dims.index(-1)] = int(np.prod(full)) // max(known, 1)
    if int(np.prod(dims)) != int(np.prod(full)):
        raise UnsupportedLayer(f"Reshape to {list(spec)} does not preserve {int(np.prod(full))} elements")
    return tuple(dims[1:]) if len(dims) > 1 and dims[0] == 1 else tuple(dims)


def onnx_to_network(path_or_model) -> Network:
    """Fold an ONNX model (a path, or an ``onnx.ModelProto``) into a :class:`Network`; see the module
    docstring for what is supported.

    A graph that does not fold (inconsistent shapes, malformed attributes or tensors) raises
    :class:`UnsupportedLayer` or :class:`DataError` with the reason, never another exception.
    """
    if isinstance(path_or_model, (str, Path)):
        graph, folder = load_onnx_graph(path_or_model)
    else:  # an onnx.ModelProto built in memory: its bytes, read by the same reader
        graph, folder = parse_model(path_or_model.SerializeToString()), None
    try:
        return _fold(graph, folder)
    except RobustMipError:
        raise
    except (ValueError, IndexError, KeyError, TypeError, AttributeError, OverflowError, MemoryError) as exc:
        raise UnsupportedLayer(f"the ONNX graph does not fold into affine layers and ReLUs "
                               f"({type(exc).__name__}: {exc})") from exc


def _fold(graph: Graph, folder_of_data: Path | None) -> Network:
    """The body of :func:`onnx_to_network`."""
    constants = {init.name: init.array(folder_of_data) for init in graph.initializers}
    live, input_shape = _input_shape(graph, set(constants))
    folder = AffineFolder(input_shape)

    for position, node in enumerate(graph.nodes):
        if not node.output:
            raise UnsupportedLayer(f"ONNX op {node.op_type} at node {position} has no output")
        where = f"ONNX op {node.op_type} '{node.name or node.output[0]}' at node {position}"
        attrs = node.attributes
        if node.op_type == "Constant":
            if not hasattr(attrs.get("value"), "array"):
                raise UnsupportedLayer(f"{where}: only tensor-valued constants are supported")
            constants[node.output[0]] = attrs["value"].array(folder_of_data)
            continue
        variable_inputs = [name for name in node.input if name and name not in constants]
        if variable_inputs != [live]:
            raise UnsupportedLayer(f"{where}: graph is not a chain of single-input operators")
        const_inputs = [constants[name] for name in node.input if name in constants]
        op = node.op_type
        if op in ("Flatten", "Reshape"):
            target = (folder.size,) if op == "Flatten" else _reshape_target(const_inputs[0], folder.shape)
            if op == "Flatten" and attrs.get("axis", 1) != 1:
                raise UnsupportedLayer(f"{where}: only axis=1 is supported")
            folder.reshape(target)
        elif op == "Gemm":
            B = const_inputs[0]
            if attrs.get("transA", 0) or len(folder.shape) != 1:
                raise UnsupportedLayer(f"{where}: needs a flat input and transA=0")
            W = B if attrs.get("transB", 0) else B.T
            C = const_inputs[1] if len(const_inputs) > 1 else np.zeros(W.shape[0])
            c = attrs.get("beta", 1.0) * np.broadcast_to(C, (1, W.shape[0])).reshape(-1)
            folder.apply_matrix(attrs.get("alpha", 1.0) * W, c, (W.shape[0],))
        elif op == "MatMul":
            if node.input[0] != live or len(folder.shape) != 1:
                raise UnsupportedLayer(f"{where}: only (flat activation) @ constant is supported")
            B = const_inputs[0]
            folder.apply_matrix(B.T, np.zeros(B.shape[1]), (B.shape[1],))
        elif op in ("Add", "Sub", "Mul", "Div"):
            c = _drop_batch_axis(const_inputs[0], folder.shape)
            swapped = node.input[0] != live
            if op == "Add":
                folder.apply_elementwise(1.0, c)
            elif op == "Sub":
                folder.apply_elementwise(-1.0, c) if swapped else folder.apply_elementwise(1.0, -c)
            elif op == "Mul":
                folder.apply_elementwise(c, 0.0)
            elif swapped:
                raise UnsupportedLayer(f"{where}: constant / activation is not affine")
            else:
                folder.apply_elementwise(1.0 / c, 0.0)
        elif op == "Conv":
            _apply_conv(folder, attrs, const_inputs, where)
        elif op == "Relu":
            if folder.pending or not folder.layers or folder.layers[-1].activation != "relu":
                folder.emit("relu")
        elif op in ("Identity", "Dropout"):
            pass
        else:
            raise UnsupportedLayer(
                f"unsupported {where}; supported: Flatten, Reshape, Gemm, MatMul, Add, Sub, Mul, Div, Conv, Relu"
            )
        live = node.output[0]

    if live not in {o.name for o in graph.outputs}:
        raise UnsupportedLayer(f"the chain ends in '{live}', which is not a graph output")
    if folder.pending or not folder.layers:
        folder.emit("identity")
    return Network(folder.layers, input_shape)


def _drop_batch_axis(c: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A constant broadcast against ``(batch,) + shape`` re-expressed against ``shape``."""
    if c.ndim > len(shape):
        if c.shape[0] != 1:
            raise UnsupportedLayer(f"constant of shape {c.shape} varies along the batch axis")
        c = c.reshape(c.shape[1:])
    return c


def _apply_conv(folder: AffineFolder, attrs: dict, const_inputs: list[np.ndarray], where: str) -> None:
    if len(folder.shape) != 3:
        raise UnsupportedLayer(f"{where}: needs a (C,H,W) input, got shape {folder.shape}")
    if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise UnsupportedLayer(f"{where}: auto_pad is not supported; export with explicit pads")
    weight = const_inputs[0]
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    M, out_shape = conv2d_matrix(
        weight,
        folder.shape,
        attrs.get("strides", [1, 1]),
        (pads[0], pads[1], pads[2], pads[3]),
        attrs.get("dilations", [1, 1]),
        attrs.get("group", 1),
    )
    bias = const_inputs[1] if len(const_inputs) > 1 else np.zeros(out_shape[0])
    folder.apply_matrix(M, np.repeat(bias, out_shape[1] * out_shape[2]), out_shape)


def network_to_onnx(net: Network, style: str = "gemm"):
    """Export ``net`` as an ONNX graph with input ``(1, *net.input_shape)`` and output ``(1, n_outputs)``.

    Args:
        style: ``"gemm"`` (Flatten, Gemm with transB=1, Relu) or ``"matmul"`` (Flatten, MatMul + Add,
            Relu, the layout of the VNN-COMP ``mnist_fc`` networks).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if style not in ("gemm", "matmul"):
        raise ValueError(f"style must be 'gemm' or 'matmul', got {style!r}")
    nodes = [helper.make_node("Flatten", ["input"], ["h_in"], axis=1)]
    inits = []
    live = "h_in"
    for k, layer in enumerate(net.layers):
        out = f"a{k}"
        if style == "gemm":
            inits += [numpy_helper.from_array(layer.W.astype(np.float32), f"W{k}"),
                      numpy_helper.from_array(layer.b.astype(np.float32), f"b{k}")]
            nodes.append(helper.make_node("Gemm", [live, f"W{k}", f"b{k}"], [out], transB=1))
        else:
            inits += [numpy_helper.from_array(layer.W.T.astype(np.float32).copy(), f"W{k}"),
                      numpy_helper.from_array(layer.b.astype(np.float32), f"b{k}")]
            nodes.append(helper.make_node("MatMul", [live, f"W{k}"], [f"m{k}"]))
            nodes.append(helper.make_node("Add", [f"m{k}", f"b{k}"], [out]))
        live = out
        if layer.activation == "relu":
            nodes.append(helper.make_node("Relu", [live], [f"h{k}"]))
            live = f"h{k}"
    nodes.append(helper.make_node("Identity", [live], ["output"]))
    graph = helper.make_graph(
        nodes, "robustmip_network",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, *net.input_shape])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, net.n_outputs])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model
