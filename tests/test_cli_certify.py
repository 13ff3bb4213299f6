"""``robustmip certify`` and ``robustmip train --certified``, run in-process through the CLI parser."""

from __future__ import annotations

import json

import pytest
import torch

from robustmip.cli import main
from robustmip.io import from_torch
from robustmip.models import build_model

KEYS = ["index", "eps", "label", "clean_correct", "ibp", "crown-ibp", "crown", "lp", "pgd", "exact"]


@pytest.fixture(autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def small_net(tmp_path_factory):
    """A 784-8-10 net, trained for one epoch of IBP so that small radii verify."""
    path = tmp_path_factory.mktemp("certify") / "net.pt"
    assert main(["train", "--arch", "mlp-8", "--epochs", "1", "--certified", "ibp", "--cert-eps", "0.02",
                 "--gm-n", "2", "--gm-weights", "inverse", "--kappa", "1", "0.5", "--embedded", "--threads", "1",
                 "--device", "cpu", "--quiet", "--out", str(path)]) == 0
    return path


def test_certified_training_prints_the_verified_error_and_records_its_settings(small_net, capsys):
    assert main(["info", str(small_net), "--json"]) == 0
    meta = json.loads(capsys.readouterr().out)
    objective = meta["train_config"]["objective"]
    assert objective == {"name": "certified", "method": "ibp", "eps": 0.02, "n_radii": 2, "weights": "inverse",
                         "kappa": [1.0, 0.5], "beta": [0.0, 0.0], "schedule_length": 0.5, "schedule_start": 0.0}
    epoch = meta["metrics"]["history"]["epochs"][0]
    assert 0 <= epoch["stats"]["test_ibp_verified_error"] <= 1


def test_certify_json_is_the_fixed_interface(small_net, tmp_path, capfd):
    out = tmp_path / "rows.jsonl"
    argv = ["certify", str(small_net), "--eps", "0.005", "0.02", "--indices", "0", "3", "--exact", "--embedded",
            "--timeout", "20", "--pgd-steps", "10", "--pgd-restarts", "2", "--out", str(out), "--json"]
    assert main(argv) == 0
    captured = capfd.readouterr()
    rows = json.loads(captured.out)  # nothing else on stdout (HiGHS's banner goes to stderr)
    assert [list(r) for r in rows] == [KEYS] * 4
    assert [(r["index"], r["eps"]) for r in rows] == [(0, 0.005), (0, 0.02), (3, 0.005), (3, 0.02)]
    for r in rows:
        assert r["exact"] in ("robust", "adversarial", "unknown") and r["pgd"] in ("adversarial", "none")
        assert r["exact"] != "robust" or r["pgd"] == "none"
        assert r["exact"] == "robust" or all(r[m] == "not" for m in ("ibp", "crown-ibp", "crown", "lp"))
    assert len(out.read_text().splitlines()) == 4
    assert main(argv) == 0  # resumed: every row is in the file already
    assert json.loads(capfd.readouterr().out) == rows
    assert main(["certify", str(small_net), "--eps", "0.02", "--n", "2", "--bounds", "ibp", "lp", "--embedded",
                 "--pgd-steps", "5"]) == 0
    table = capfd.readouterr().out
    assert "exact lo" in table and "0.02" in table and "yes" in table


@pytest.mark.parametrize("argv, message", [
    (["certify", "MODEL", "--eps", "0.1", "--indices", "5000", "--embedded"], "out of range"),
    (["certify", "ABSENT", "--eps", "0.1", "--n", "1", "--embedded"], "not found"),
    (["train", "--cert-eps", "0.1", "--embedded", "--out", "OUT"], "need --certified"),
    (["train", "--certified", "ibp", "--embedded", "--out", "OUT"], "--cert-eps"),
    (["train", "--certified", "ibp", "--cert-eps", "0.1", "--beta", "1", "0", "--embedded", "--out", "OUT"], "beta"),
    (["train", "--certified", "ibp", "--cert-eps", "0.1", "--adv-eps", "0.1", "--embedded", "--out", "OUT"],
     "choose one training method"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, message):
    net = tmp_path / "net.npz"
    from_torch(build_model("mlp-8", seed=0), input_shape=(1, 28, 28)).save(net)
    argv = [a.replace("MODEL", str(net)).replace("ABSENT", str(tmp_path / "absent.npz"))
            .replace("OUT", str(tmp_path / "m.pt")) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
