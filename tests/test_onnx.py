"""ONNX import: every supported operator against onnxruntime, export, and clear errors."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from conftest import random_network
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from robustmip.errors import DataError, UnsupportedLayer
from robustmip.io import from_onnx
from robustmip.io.onnx_model import network_to_onnx

ort = pytest.importorskip("onnxruntime", reason="onnxruntime (dev extra) compares ONNX semantics")


def run_ort(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: xi[None].astype(np.float32)})[0] for xi in x])


def make_model(nodes, inits, in_shape, out_dim) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, out_dim])],
        initializer=[numpy_helper.from_array(v.astype(np.float32) if v.dtype.kind == "f" else v, k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def test_gemm_alpha_beta_transb_and_matmul_add(rng):
    inits = {
        "W0": rng.normal(size=(5, 4)), "b0": rng.normal(size=5),
        "W1": rng.normal(size=(5, 3)), "b1": rng.normal(size=3),
        "W2": rng.normal(size=(2, 3)), "b2": rng.normal(size=(1, 2)),
    }
    nodes = [
        helper.make_node("Flatten", ["input"], ["f"]),
        helper.make_node("Gemm", ["f", "W0", "b0"], ["a0"], transB=1, alpha=0.7, beta=1.3),
        helper.make_node("Relu", ["a0"], ["h0"]),
        helper.make_node("MatMul", ["h0", "W1"], ["m1"]),
        helper.make_node("Add", ["m1", "b1"], ["a1"]),
        helper.make_node("Relu", ["a1"], ["h1"]),
        helper.make_node("Gemm", ["h1", "W2", "b2"], ["output"], transB=1),
    ]
    model = make_model(nodes, inits, [1, 4], 2)
    net = from_onnx(model)
    x = rng.uniform(size=(25, 4))
    np.testing.assert_allclose(net.forward(x), run_ort(model, x), atol=1e-4)


def test_normalisation_reshape_conv_flatten(rng):
    inits = {
        "mean": np.array([0.2]).reshape(1, 1, 1, 1), "std": np.array([0.4]).reshape(1, 1, 1, 1),
        "shape": np.array([1, 1, 6, 6], dtype=np.int64), "K": rng.normal(size=(2, 1, 3, 3)), "kb": rng.normal(size=2),
        "W": rng.normal(size=(18, 3)), "b": rng.normal(size=3),
    }
    nodes = [
        helper.make_node("Reshape", ["input", "shape"], ["r"]),
        helper.make_node("Sub", ["r", "mean"], ["s"]),
        helper.make_node("Div", ["s", "std"], ["n"]),
        helper.make_node("Conv", ["n", "K", "kb"], ["c"], strides=[2, 2], pads=[1, 1, 0, 0]),
        helper.make_node("Relu", ["c"], ["h"]),
        helper.make_node("Flatten", ["h"], ["f"]),
        helper.make_node("MatMul", ["f", "W"], ["m"]),
        helper.make_node("Add", ["m", "b"], ["output"]),
    ]
    model = make_model(nodes, inits, [1, 36], 3)
    net = from_onnx(model)
    assert net.input_shape == (36,)
    x = rng.uniform(size=(20, 36))
    np.testing.assert_allclose(net.forward(x), run_ort(model, x), atol=1e-4)


def test_torch_exported_cnn_matches(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 4, stride=2, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 7 * 7, 10)).eval()
    path = tmp_path / "cnn.onnx"
    # The legacy exporter: the dynamo one needs onnxscript, which is not installed.
    torch.onnx.export(model, torch.zeros(1, 1, 14, 14), path, dynamo=False, input_names=["input"])
    net = from_onnx(path)
    x = np.random.default_rng(0).uniform(size=(5, 1, 14, 14))
    with torch.no_grad():
        expected = model(torch.as_tensor(x, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(net.forward(x), expected, atol=1e-4)


@pytest.mark.parametrize("style", ["gemm", "matmul"])
def test_export_round_trip(rng, style, tmp_path):
    net = random_network(rng, [6, 5, 4, 3])
    model = network_to_onnx(net, style)
    path = tmp_path / "n.onnx"
    onnx.save(model, path)
    back = from_onnx(path)
    x = rng.uniform(size=(10, 6))
    np.testing.assert_allclose(back.forward(x), net.forward(x), atol=1e-5)
    np.testing.assert_allclose(run_ort(model, x), net.forward(x), atol=1e-4)


def test_unsupported_op_named_with_position(rng):
    nodes = [
        helper.make_node("Flatten", ["input"], ["f"]),
        helper.make_node("Gemm", ["f", "W", "b"], ["a"], transB=1),
        helper.make_node("Sigmoid", ["a"], ["output"], name="sig"),
    ]
    model = make_model(nodes, {"W": rng.normal(size=(2, 3)), "b": np.zeros(2)}, [1, 3], 2)
    with pytest.raises(UnsupportedLayer, match=r"Sigmoid 'sig' at node 2"):
        from_onnx(model)


def test_malformed_file(tmp_path):
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"\x08\x01garbage that is not protobuf \xff\xff")
    with pytest.raises(DataError, match="not a readable ONNX"):
        from_onnx(path)
    with pytest.raises(DataError, match="not found"):
        from_onnx(tmp_path / "missing.onnx")


def test_wire_reader_matches_the_onnx_package_on_every_tensor_encoding(tmp_path):
    """float32 and float64 tensors stored as raw bytes or as value lists, int64 shapes, attributes."""
    from onnx import TensorProto, helper, numpy_helper

    from robustmip.io.onnx_proto import parse_model

    rng = np.random.default_rng(0)
    W = rng.normal(size=(3, 4))
    tensors = [
        numpy_helper.from_array(W.astype(np.float32), "raw32"),
        helper.make_tensor("list32", TensorProto.FLOAT, [3, 4], W.astype(np.float32).reshape(-1).tolist()),
        helper.make_tensor("list64", TensorProto.DOUBLE, [3, 4], W.reshape(-1).tolist()),
        numpy_helper.from_array(W, "raw64"),
        helper.make_tensor("shape", TensorProto.INT64, [2], [1, -1]),
    ]
    node = helper.make_node("Conv", ["x", "raw32"], ["y"], strides=[2, 2], pads=[1, 1, 1, 1], alpha=0.5,
                            auto_pad="NOTSET")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])], initializer=tensors)
    parsed = parse_model(helper.make_model(graph).SerializeToString())
    arrays = {t.name: t.array() for t in parsed.initializers}
    for t in tensors:
        np.testing.assert_array_equal(arrays[t.name], numpy_helper.to_array(t).astype(np.float64))
    (n,) = parsed.nodes
    assert n.attributes == {"strides": [2, 2], "pads": [1, 1, 1, 1], "alpha": 0.5, "auto_pad": b"NOTSET"}
    assert parsed.inputs[0].dims == [None, 1, 4, 4] and parsed.outputs[0].dims == [1, 2]


@pytest.mark.parametrize("cut", [1, 7, 50, -3])
def test_wire_reader_rejects_truncated_bytes_with_a_data_error(cut):
    from robustmip.errors import DataError
    from robustmip.io.onnx_proto import parse_model

    data = network_to_onnx(random_network(np.random.default_rng(0), [3, 4, 2])).SerializeToString()
    with pytest.raises(DataError):
        parse_model(data[:cut])
