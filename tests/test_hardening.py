"""What a real user meets: time limits that hold end to end, parseable output, resume that cannot
mislead, and one-line messages instead of tracebacks (through the CLI, where the user meets them)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import random_network

from robustmip.cli import main
from robustmip.data import load_demo_network, load_embedded_mnist
from robustmip.io.onnx_model import network_to_onnx

TIME_OVERHEAD = 3.0
"""Seconds a command may run past ``--timeout``: the solver's clock checks, Pyomo's model transfer
before a solve starts, and the float64 re-check (imports and loading the net are not counted here)."""


def robustness_vnnlib(x: np.ndarray, label: int, eps: float, n_out: int) -> str:
    lines = [f"(declare-const X_{i} Real)" for i in range(x.size)]
    lines += [f"(declare-const Y_{j} Real)" for j in range(n_out)]
    for i, v in enumerate(x.reshape(-1)):
        lines += [f"(assert (<= X_{i} {float(min(1.0, v + eps))!r}))", f"(assert (>= X_{i} {float(max(0.0, v - eps))!r}))"]
    lines.append("(assert (or " + " ".join(f"(and (>= Y_{j} Y_{label}))" for j in range(n_out) if j != label) + "))")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def hard(tmp_path_factory):
    """A 40-80-80-80-10 net whose MILPs take far longer than a few seconds, with one image and a property."""
    root = tmp_path_factory.mktemp("hard")
    rng = np.random.default_rng(11)
    net = random_network(rng, [40, 80, 80, 80, 10], bias_scale=0.1)
    x = rng.uniform(size=40)
    label = int(np.argmax(net.forward(x)))
    net.save(root / "net.npz")
    onnx.save(network_to_onnx(net), root / "net.onnx")
    np.savez(root / "images.npz", images=x[None, :], labels=np.array([label]))
    (root / "prop.vnnlib").write_text(robustness_vnnlib(x, label, 0.5, 10))
    return root


def _timed(argv: list[str]) -> tuple[int, float]:
    start = time.perf_counter()
    code = main(argv)
    return code, time.perf_counter() - start


# ---------------------------------------------------------------------------------------- time limits

def test_verify_honours_timeout(hard, capsys):
    code, seconds = _timed(["verify", str(hard / "net.npz"), "--images", str(hard / "images.npz"), "--eps", "0.5",
                            "--engine", "milp", "--bounds", "interval", "--no-pgd", "--timeout", "2", "--json"])
    assert code == 0 and seconds < 2 + TIME_OVERHEAD
    (row,) = json.loads(capsys.readouterr().out)
    assert row["status"] == "unknown" and "time limit (2.0 s)" in row["reason"]


@pytest.mark.parametrize("bounds", ["lp", "milp"])
def test_bound_tightening_draws_from_the_same_deadline(hard, tmp_path, capsys, bounds):
    out = tmp_path / "result.txt"
    code, seconds = _timed(["verify-vnnlib", str(hard / "net.onnx"), str(hard / "prop.vnnlib"), "--bounds", bounds,
                            "--no-pgd", "--timeout", "2", "--out", str(out)])
    assert code == 0 and seconds < 2 + TIME_OVERHEAD
    assert out.read_text().splitlines()[0] in ("timeout", "sat", "unsat")


def test_vnncomp_caps_timeouts_and_uses_threads(hard, tmp_path, capsys):
    (hard / "instances.csv").write_text("net.onnx,prop.vnnlib,300\n")
    out = tmp_path / "rows.jsonl"
    code, seconds = _timed(["vnncomp", str(hard / "instances.csv"), "--out", str(out), "--timeout-cap", "2",
                            "--bounds", "interval", "--no-pgd", "--threads", "2", "--json"])
    assert code == 0 and seconds < 2 + TIME_OVERHEAD + 2
    summary = json.loads(capsys.readouterr().out)
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert row["timeout"] == 2.0 and row["threads"] == 2 and summary["instances"] == 1


# ------------------------------------------------------------------------------- machine-readable output

@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    net = load_demo_network()
    net.save(root / "net.npz")
    onnx.save(network_to_onnx(net, "matmul"), root / "net.onnx")
    images, labels = load_embedded_mnist("test")
    x, label = images[1].reshape(-1).astype(np.float64), int(labels[1])
    (root / "robust.vnnlib").write_text(robustness_vnnlib(x, label, 0.02, 10))
    (root / "attack.vnnlib").write_text(robustness_vnnlib(x, label, 0.1, 10))
    (root / "instances.csv").write_text("net.onnx,robust.vnnlib,60\nnet.onnx,attack.vnnlib,60\n")
    (root / "expected.csv").write_text("onnx,vnnlib,expected\nnet.onnx,robust.vnnlib,unsat\nnet.onnx,attack.vnnlib,sat\n")
    return root


def test_json_stdout_is_valid_json_with_no_solver_banner(demo, capfd):
    assert main(["verify", str(demo / "net.onnx"), "--eps", "0.02", "--n", "2", "--embedded", "--json"]) == 0
    rows = json.loads(capfd.readouterr().out)  # capfd: the C-level fd 1, where HiGHS prints its banner
    assert [r["image"] for r in rows] == [0, 1]


def test_verify_accepts_indices_and_an_image_file(demo, tmp_path, capsys):
    assert main(["verify", str(demo / "net.npz"), "--eps", "0.01", "--indices", "7", "3", "--embedded", "--json"]) == 0
    assert [r["image"] for r in json.loads(capsys.readouterr().out)] == [7, 3]
    images, labels = load_embedded_mnist("test")
    np.savez(tmp_path / "two.npz", images=images[:2], labels=labels[:2])
    assert main(["verify", str(demo / "net.npz"), "--eps", "0.01", "--images", str(tmp_path / "two.npz"), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2
    assert main(["verify", str(demo / "net.npz"), "--eps", "0.01", "--indices", "5000", "--embedded"]) == 2
    assert "out of range" in capsys.readouterr().err


def test_vnncomp_rows_counterexamples_contradictions_and_resume(demo, tmp_path, capsys):
    out = tmp_path / "rows.jsonl"
    args = ["vnncomp", str(demo / "instances.csv"), "--out", str(out), "--expected", str(demo / "expected.csv")]
    assert main([*args, "--json"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["solved"] == 2 and summary["contradictions"] == 0
    assert "robust.vnnlib: unsat" in captured.err and "attack.vnnlib: sat" in captured.err  # one line per instance
    sat = [json.loads(line) for line in out.read_text().splitlines() if '"sat"' in line]
    assert Path(sat[0]["counterexample"]).read_text().startswith("sat\n((X_0 ")
    # Other settings are refused; the same settings reuse every row.
    assert main([*args, "--solver", "gurobi"]) == 2
    assert "other settings" in capsys.readouterr().err
    before = out.read_text()
    assert main(args) == 0 and out.read_text() == before
    # A cut-off last line is repaired and redone, not glued to the next row.
    out.write_text(before[: before.rindex("\n", 0, len(before) - 1) + 1] + '{"key": "net.onnx|attack.vnnlib", "res')
    assert main(args) == 0
    assert [json.loads(line)["result"] for line in out.read_text().splitlines()] == ["unsat", "sat"]
    capsys.readouterr()
    # A reference that disagrees: exit 1 and every contradicted instance named.
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("onnx,vnnlib,expected\nnet.onnx,robust.vnnlib,sat\nnet.onnx,attack.vnnlib,unsat\n")
    assert main(["vnncomp", str(demo / "instances.csv"), "--out", str(out), "--expected", str(wrong)]) == 1
    err = capsys.readouterr().err
    assert "robust.vnnlib: unsat but expected sat" in err and "attack.vnnlib: sat but expected unsat" in err


def test_vnncomp_retries_error_rows_and_refuses_bad_paths(demo, tmp_path, capsys):
    root = tmp_path / "bench"
    root.mkdir()
    (root / "net.onnx").write_bytes((demo / "net.onnx").read_bytes())
    (root / "instances.csv").write_text("net.onnx,robust.vnnlib,60\n")
    out = tmp_path / "rows.jsonl"
    assert main(["vnncomp", str(root / "instances.csv"), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["result"] == "error"
    (root / "robust.vnnlib").write_text((demo / "robust.vnnlib").read_text())
    assert main(["vnncomp", str(root / "instances.csv"), "--out", str(out)]) == 0
    assert json.loads(out.read_text().splitlines()[-1])["result"] == "unsat"
    capsys.readouterr()
    assert main(["vnncomp", str(root / "instances.csv"), "--out", str(root / "instances.csv")]) == 2
    assert "instances file itself" in capsys.readouterr().err
    foreign = tmp_path / "foreign.csv"
    foreign.write_text("a,b\n1,2\n")
    assert main(["vnncomp", str(root / "instances.csv"), "--out", str(foreign)]) == 2
    assert "not written by this kind of run" in capsys.readouterr().err and foreign.read_text() == "a,b\n1,2\n"
    assert main(["vnncomp", str(root / "instances.csv"), "--out", str(tmp_path)]) == 2
    (root / "empty.csv").write_text("")
    assert main(["vnncomp", str(root / "empty.csv"), "--out", str(tmp_path / "x.jsonl")]) == 2
    assert "lists no instances" in capsys.readouterr().err
    bad_expected = tmp_path / "expected.csv"
    bad_expected.write_text("name,verdict\nx,y\n")
    assert main(["vnncomp", str(root / "instances.csv"), "--out", str(tmp_path / "y.jsonl"),
                 "--expected", str(bad_expected)]) == 2
    assert "lacks the column" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------- messages

@pytest.mark.parametrize("command", [
    ["verify", "MODEL", "--eps", "0.1", "--n", "1", "--embedded"],
    ["info", "MODEL"],
    ["attack", "MODEL", "--eps", "0.1", "--n", "5", "--embedded"],
    ["prune", "MODEL", "--out", "OUT", "--embedded"],
])
def test_a_text_file_as_a_model_is_a_message(tmp_path, capsys, command):
    text = tmp_path / "notes.pt"
    text.write_text("hello, this is not a checkpoint\n")
    argv = [a.replace("MODEL", str(text)).replace("OUT", str(tmp_path / "p.pt")) for a in command]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "not a robustmip checkpoint" in err


@pytest.mark.parametrize("command,message", [
    (["info", "ONNX"], "network file, not a robustmip checkpoint"),
    (["prune", "ONNX", "--out", "OUT", "--embedded"], "network file, not a robustmip checkpoint"),
    (["info", "DIR"], "is a directory"),
    (["verify", "DIR", "--eps", "0.1"], "is a directory"),
    (["verify-vnnlib", "ONNX", "ROBUST", "--out", "DIR"], "is a directory"),
    (["study", "--config", "MISSING"], "not found"),
    (["study", "--config", "ONNX"], "not valid JSON"),
])
def test_bad_paths_are_named_for_what_they_are(demo, tmp_path, capsys, command, message):
    subs = {"ONNX": str(demo / "net.onnx"), "DIR": str(tmp_path), "OUT": str(tmp_path / "p.pt"),
            "ROBUST": str(demo / "robust.vnnlib"), "MISSING": str(tmp_path / "absent.json")}
    assert main([subs.get(a, a) for a in command]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_verify_vnnlib_checks_its_output_before_solving_and_reports_errors_once(demo, tmp_path, capsys):
    bad = tmp_path / "bad.vnnlib"
    bad.write_text("(assert (<= X_0 1)")
    out = tmp_path / "new" / "folder" / "r.txt"  # a missing folder is created
    assert main(["verify-vnnlib", str(demo / "net.onnx"), str(bad), "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert out.read_text() == "error\n" and captured.err.count("unbalanced") == 1 and captured.out == ""


@pytest.mark.parametrize("argv", [["--eps", "inf"], ["--eps", "1.5"], ["--eps", "nan"], ["--timeout", "-3"]])
def test_out_of_range_numbers_are_argument_errors(demo, argv, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["verify", str(demo / "net.npz"), "--eps", "0.1", *argv])
    assert stop.value.code == 2 and "error: argument" in capsys.readouterr().err


def test_empty_vnnlib_box_is_an_error_not_unsat(demo, tmp_path, capsys):
    prop = tmp_path / "empty.vnnlib"
    prop.write_text("(declare-const X_0 Real)(declare-const Y_0 Real)(declare-const Y_1 Real)"
                    "(assert (>= X_0 0.7))(assert (<= X_0 0.2))(assert (>= Y_1 Y_0))")
    net = random_network(np.random.default_rng(0), [1, 3, 2])
    onnx.save(network_to_onnx(net), tmp_path / "n.onnx")
    assert main(["verify-vnnlib", str(tmp_path / "n.onnx"), str(prop)]) == 2
    assert "empty" in capsys.readouterr().err


def test_onnx_with_external_weights_loads_from_any_folder(tmp_path, monkeypatch):
    from robustmip.io import load_network

    net = random_network(np.random.default_rng(1), [6, 5, 3])
    model = network_to_onnx(net)
    folder = tmp_path / "model"
    folder.mkdir()
    onnx.save_model(model, folder / "net.onnx", save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights.bin", size_threshold=0)
    monkeypatch.chdir(tmp_path)
    np.testing.assert_allclose(load_network(folder / "net.onnx").forward(np.full(6, 0.3)), net.forward(np.full(6, 0.3)),
                               atol=1e-6)
    (folder / "weights.bin").unlink()
    from robustmip.errors import DataError

    with pytest.raises(DataError, match="external data"):
        load_network(folder / "net.onnx")


def test_study_validates_every_setting_before_training(tmp_path, capsys):
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({"time_limit": -3, "workers": 0, "eps": [2.0]}))
    code, seconds = _timed(["study", "--config", str(config), "--out-root", str(tmp_path), "--embedded"])
    err = capsys.readouterr().err
    assert code == 2 and "time_limit" in err and "workers" in err and "eps" in err
    assert not (tmp_path / "default").exists()


def test_interrupted_vnncomp_says_what_is_kept(demo, tmp_path, capsys, monkeypatch):
    import robustmip.vnncomp as vnncomp

    decide = vnncomp.check_property
    calls = []

    def interrupt_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return decide(*args, **kwargs)

    monkeypatch.setattr(vnncomp, "check_property", interrupt_second)
    out = tmp_path / "rows.jsonl"
    assert main(["vnncomp", str(demo / "instances.csv"), "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert "interrupted; finished instances are kept in" in err and "no output file" not in err
    assert [json.loads(line)["result"] for line in out.read_text().splitlines()] == ["unsat"]


def test_study_records_its_settings_before_training(tmp_path, capsys, monkeypatch):
    import robustmip.studies.prune_robustness as study

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(study, "stage_original", interrupt)
    base = ["study", "--out-root", str(tmp_path), "--run", "r", "--embedded", "--arch", "mlp-24-24"]
    assert main(base) == 130
    assert "rerun the same command to resume" in capsys.readouterr().err
    assert main([*base[:-1], "mlp-40-40", "--train-eps", "0.3"]) == 2
    err = capsys.readouterr().err
    assert "other settings" in err and "arch: 'mlp-24-24' -> 'mlp-40-40'" in err


def test_every_option_has_help():
    from robustmip.cli import build_parser

    parser = build_parser()
    (sub,) = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    missing = [f"{name} {action.dest}" for name, p in sub.choices.items() for action in p._actions
               if action.help is None and action.dest != "help"]
    assert not missing, missing
