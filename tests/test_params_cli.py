"""``robustmip param-verify``, ``quant-verify`` and ``param-radius`` end to end, and their errors."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from test_vnnlib import robustness_vnnlib

from robustmip.cli import main
from robustmip.data import load_dataset, load_demo_network
from robustmip.io.onnx_model import network_to_onnx

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    path = tmp_path_factory.mktemp("params_cli")
    net = load_demo_network()
    net.save(path / "net.npz")
    onnx.save(network_to_onnx(net), path / "net.onnx")
    test = load_dataset("test", "embedded")
    (path / "p0.vnnlib").write_text(robustness_vnnlib(test.images[0], int(test.labels[0]), 0.0))  # a fixed input
    return path


@pytest.mark.parametrize("name", ["net.npz", "net.onnx"])
def test_param_verify_prints_the_verdict_first(files, name, capsys):
    assert main(["param-verify", str(files / name), "--vnnlib", str(files / "p0.vnnlib"), "--delta", "0.0005"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "robust" and "margin" in lines[1]


def test_param_verify_json_has_the_interface_fields(files, capsys):
    args = ["param-verify", str(files / "net.npz"), "--vnnlib", str(files / "p0.vnnlib"), "--json"]
    assert main(args + ["--delta", "0.0005", "--layers", "2"]) == 0
    robust = json.loads(capsys.readouterr().out)
    assert robust["status"] == "robust" and robust["margin"] < 0 and robust["seconds"] > 0
    assert main(args + ["--delta", "0.05"]) == 0
    flips = json.loads(capsys.readouterr().out)
    assert flips["status"] == "flips" and flips["margin"] >= 0 and len(flips["outputs"]) == 10
    label = int(load_dataset("test", "embedded").labels[0])
    assert max(np.delete(flips["outputs"], label)) >= flips["outputs"][label]


def test_bad_input_gives_one_line_errors(files, tmp_path, capsys):
    base = ["param-verify", str(files / "net.npz"), "--vnnlib", str(files / "p0.vnnlib")]
    with pytest.raises(SystemExit) as exc:
        main(base + ["--delta", "-0.1"])
    assert exc.value.code == 2
    assert main(base + ["--delta", "0.01", "--layers", "0", "7"]) == 2
    assert "layer(s) [7] do not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["quant-verify", str(files / "net.npz"), "--bits", "8", "1"])
    assert exc.value.code == 2
    assert "bits must be >= 2" in capsys.readouterr().err
    W = numpy_helper.from_array(np.ones((2, 3), dtype=np.float32), "W")
    nodes = [helper.make_node("MatMul", ["input", "W"], ["m"]), helper.make_node("Sigmoid", ["m"], ["output"])]
    graph = helper.make_graph(nodes, "sigmoid", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 2])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3])], initializer=[W])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), tmp_path / "sigmoid.onnx")
    sigmoid = ["param-verify", str(tmp_path / "sigmoid.onnx"), "--vnnlib", str(files / "p0.vnnlib"), "--delta", "0.1"]
    assert main(sigmoid) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Sigmoid" in err


def test_quant_verify_table_and_json(files, capsys):
    args = ["quant-verify", str(files / "net.npz"), "--bits", "8", "3", "--indices", "0", "1", "--embedded"]
    assert main(args + ["--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [(r["bits"], r["image"]) for r in rows] == [(8, 0), (8, 1), (3, 0), (3, 1)]
    assert all(r["status"] in ("robust", "flips", "unknown") for r in rows)
    assert all(r["status"] == "robust" for r in rows if r["interval_certified"])
    assert main(args) == 0
    assert capsys.readouterr().out.splitlines()[0].split()[:3] == ["bits", "images", "agree"]


def test_param_radius_uses_one_milp_for_layer_0(files, capsys):
    args = ["param-radius", str(files / "net.npz"), "--layers", "0", "--indices", "0", "--embedded", "--json"]
    assert main(args) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["method"] == "milp" and row["status"] == "exact" and 0 < row["lower"] <= row["upper"]
