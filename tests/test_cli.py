"""The robustmip verify command and the demo, end to end on the embedded data."""

from __future__ import annotations

import json

import onnx
import pytest

from robustmip.cli import main
from robustmip.data import load_demo_network
from robustmip.io.onnx_model import network_to_onnx


@pytest.fixture
def demo_files(tmp_path):
    net = load_demo_network()
    net.save(tmp_path / "net.npz")
    onnx.save(network_to_onnx(net), tmp_path / "net.onnx")
    return tmp_path


@pytest.mark.parametrize("name", ["net.npz", "net.onnx"])
def test_verify_json_output(demo_files, name, capsys):
    assert main(["verify", str(demo_files / name), "--eps", "0.02", "--n", "3", "--embedded", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["image"] for r in rows] == [0, 1, 2]
    assert all(r["status"] in ("robust", "adversarial", "unknown") for r in rows)
    assert all(r["status"] == "robust" for r in rows)  # eps 0.02 is far inside this net's robust radius


def test_verify_with_scip_gives_the_highs_verdicts(demo_files, capsys):
    """``--solver scip`` end to end: the same verdicts as HiGHS, with some of them proved by the MILP."""
    from conftest import scip_skip_reason

    if scip_skip_reason():
        pytest.skip(scip_skip_reason())
    verdicts = {}
    for solver in ("highs", "scip"):
        args = ["verify", str(demo_files / "net.npz"), "--eps", "0.06", "--n", "8", "--embedded", "--json"]
        assert main([*args, "--solver", solver]) == 0
        verdicts[solver] = [(r["status"], r["proof"]) for r in json.loads(capsys.readouterr().out)]
    assert verdicts["scip"] == verdicts["highs"]
    assert ("robust", "milp") in verdicts["scip"]


def test_verify_rejects_bad_input(demo_files, capsys):
    assert main(["verify", str(demo_files / "missing.onnx"), "--eps", "0.1", "--embedded"]) == 2
    assert "not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["verify", str(demo_files / "net.npz"), "--eps", "-0.1"])


def test_demo_prints_a_table(tmp_path, capsys):
    out = tmp_path / "rows.json"
    assert main(["demo", "--n", "2", "--eps", "0.05", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "verdict" in text and "eps 0.050" in text
    assert len(json.loads(out.read_text())) == 2
