"""``robustmip sensitivity``: the fixed JSON keys, resuming, VNN-LIB boxes, per-feature radii, bad input."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from bruteforce import exact_min
from conftest import random_network

from robustmip.cli import main
from robustmip.data import load_demo_network
from robustmip.io.onnx_model import network_to_onnx

KEYS = {"index", "method", "lower", "upper", "log10_volume"}
EXACT_KEYS = KEYS | {"inner_lower", "inner_upper", "status"}


@pytest.fixture
def demo_net(tmp_path):
    path = tmp_path / "net.npz"
    load_demo_network().save(path)
    return path


def test_json_rows_have_the_fixed_keys(tmp_path, capsys):
    rng = np.random.default_rng(3)
    random_network(rng, [4, 6, 5, 10]).save(tmp_path / "tiny.npz")
    np.savez(tmp_path / "images.npz", images=rng.uniform(size=(6, 4)), labels=np.zeros(6, dtype=np.int64))
    assert main(["sensitivity", str(tmp_path / "tiny.npz"), "--eps", "0.2", "--images", str(tmp_path / "images.npz"),
                 "--indices", "3", "5", "--methods", "interval", "crown", "exact", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["index"], r["method"]) for r in rows] == [(3, "interval"), (3, "crown"), (3, "exact"),
                                                         (5, "interval"), (5, "crown"), (5, "exact")]
    for r in rows:
        assert (EXACT_KEYS if r["method"] == "exact" else KEYS) <= set(r)
        assert len(r["lower"]) == len(r["upper"]) == 10
        assert r["log10_volume"] == pytest.approx(float(np.sum(np.log10(np.subtract(r["upper"], r["lower"])))))
    exact = [r for r in rows if r["method"] == "exact"]
    assert all(r["status"] == "exact" for r in exact)
    for r in rows:
        e = next(x for x in exact if x["index"] == r["index"])
        assert (np.array(r["lower"]) <= np.array(e["lower"]) + 1e-9).all()
        assert (np.array(e["lower"]) <= np.array(e["inner_lower"]) + 1e-9).all()


def test_out_file_resumes_and_refuses_other_settings(demo_net, tmp_path, capsys):
    out = tmp_path / "rows.jsonl"
    base = ["sensitivity", str(demo_net), "--n", "2", "--methods", "interval", "kw", "--embedded", "--out", str(out)]
    assert main([*base, "--eps", "0.02", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert len(out.read_text().splitlines()) == 2  # one line per image
    assert main([*base, "--eps", "0.02", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == first
    assert len(out.read_text().splitlines()) == 2
    assert main([*base, "--eps", "0.03"]) == 2
    assert "other settings" in capsys.readouterr().err
    assert main([*base, "--eps", "0.02", "--n", "3", "--json"]) == 0  # more images extend the run
    assert json.loads(capsys.readouterr().out)[:4] == first
    assert len(out.read_text().splitlines()) == 3


def test_vnnlib_boxes_and_exact_box_on_a_tiny_net(tmp_path, capsys):
    rng = np.random.default_rng(5)
    net = random_network(rng, [3, 5, 4, 2])
    onnx.save(network_to_onnx(net), tmp_path / "tiny.onnx")
    lower, upper = np.array([-0.2, 0.1, 0.3]), np.array([0.4, 0.5, 0.35])
    lines = [f"(declare-const X_{i} Real)" for i in range(3)] + [f"(declare-const Y_{j} Real)" for j in range(2)]
    lines += [f"(assert (>= X_{i} {float(lower[i])!r})) (assert (<= X_{i} {float(upper[i])!r}))" for i in range(3)]
    lines.append("(assert (>= Y_0 Y_1))")
    (tmp_path / "p.vnnlib").write_text("\n".join(lines) + "\n")
    assert main(["sensitivity", str(tmp_path / "tiny.onnx"), "--vnnlib", str(tmp_path / "p.vnnlib"),
                 "--methods", "exact", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["index"] is None and row["status"] == "exact"
    eye = np.eye(2)
    for i in range(2):
        assert row["inner_lower"][i] == pytest.approx(exact_min(net, eye[i], lower, upper), abs=1e-6)
        assert row["inner_upper"][i] == pytest.approx(-exact_min(net, -eye[i], lower, upper), abs=1e-6)


def test_per_feature_radius_and_table(demo_net, capsys):
    assert main(["sensitivity", str(demo_net), "--sigma", "0.02", "--n", "1", "--methods", "interval", "crown",
                 "--no-clip", "--embedded"]) == 0
    text = capsys.readouterr().out
    assert "SENSE" in text and "crown" in text


def test_bad_input(demo_net, capsys):
    assert main(["sensitivity", str(demo_net), "--n", "1", "--embedded", "--methods", "interval"]) == 2
    assert "radius" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["sensitivity", str(demo_net), "--eps", "0.1", "--sigma", "0.05"])
    with pytest.raises(SystemExit):
        main(["sensitivity", str(demo_net), "--sigma", "-0.05"])
    assert main(["sensitivity", str(demo_net), "--eps", "0.1", "--indices", "5000", "--embedded"]) == 2
    assert "out of range" in capsys.readouterr().err
