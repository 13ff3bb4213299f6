"""VNN-LIB parsing, property decisions against brute force, result files, CLI and resumable runner."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from bruteforce import exact_min
from conftest import random_network

from robustmip.cli import main
from robustmip.data import load_demo_network
from robustmip.errors import VnnlibError
from robustmip.io.onnx_model import network_to_onnx
from robustmip.io.vnnlib import parse_vnnlib
from robustmip.milp import SolveOptions
from robustmip.solvers import MilpSolver
from robustmip.vnncomp import check_property, read_expected, run_benchmark, summarize


def robustness_vnnlib(x: np.ndarray, label: int, eps: float, n_out: int = 10) -> str:
    """A property in the layout of VNN-COMP's mnist_fc benchmark (box asserts, then an or of ands)."""
    lines = [f"; robustness of one image, eps={eps}"]
    lines += [f"(declare-const X_{i} Real)" for i in range(x.size)]
    lines += [f"(declare-const Y_{j} Real)" for j in range(n_out)]
    for i, v in enumerate(x.reshape(-1)):
        lines.append(f"(assert (<= X_{i} {float(min(1.0, v + eps))!r}))")
        lines.append(f"(assert (>= X_{i} {float(max(0.0, v - eps))!r}))")
    lines.append("(assert (or")
    lines += [f"    (and (>= Y_{j} Y_{label}))" for j in range(n_out) if j != label]
    lines.append("))")
    return "\n".join(lines) + "\n"


def test_parse_box_and_disjunction():
    text = """
    (declare-const X_0 Real) (declare-const X_1 Real)
    (declare-const Y_0 Real) (declare-const Y_1 Real) (declare-const Y_2 Real)
    (assert (>= X_0 -0.5)) (assert (<= X_0 0.5))
    (assert (<= X_1 1)) (assert (>= X_1 0))
    (assert (or (and (>= Y_1 Y_0)) (and (<= Y_0 (+ Y_2 -1.5)) (>= Y_2 0.25))))
    """
    prop = parse_vnnlib(text)
    assert (prop.n_inputs, prop.n_outputs, len(prop.cases)) == (2, 3, 1)
    case = prop.cases[0]
    np.testing.assert_allclose(case.lower, [-0.5, 0.0])
    np.testing.assert_allclose(case.upper, [0.5, 1.0])
    (A0, c0), (A1, c1) = case.conjunctions
    np.testing.assert_allclose(A0, [[1.0, -1.0, 0.0]])  # Y_0 - Y_1 <= 0
    np.testing.assert_allclose(c0, [0.0])
    np.testing.assert_allclose(A1, [[1.0, 0.0, -1.0], [0.0, 0.0, -1.0]])
    np.testing.assert_allclose(c1, [-1.5, -0.25])


def test_input_disjunction_gives_several_boxes():
    text = """(declare-const X_0 Real) (declare-const Y_0 Real) (declare-const Y_1 Real)
    (assert (or (and (>= X_0 0) (<= X_0 1) (>= Y_0 Y_1)) (and (>= X_0 2) (<= X_0 3) (>= Y_1 Y_0))))"""
    prop = parse_vnnlib(text)
    assert len(prop.cases) == 2


@pytest.mark.parametrize(
    "text,match",
    [
        ("(declare-const X_0 Real) (declare-const Y_0 Real) (assert (<= X_0 1)", "unbalanced"),
        ("(declare-const X_0 Real) (declare-const Y_0 Real) (assert (<= X_1 1))", "not declared"),
        ("(declare-const X_0 Real) (declare-const Y_0 Real) (assert (<= (* X_0 Y_0) 1))", "non-linear"),
        ("(declare-const X_0 Real) (declare-const Y_0 Real) (assert (<= Y_0 1))", "no finite"),
        ("(declare-const X_0 Real) (declare-const Y_0 Real) (assert (xor (<= Y_0 1)))", "unsupported connective"),
    ],
)
def test_malformed_properties_raise(text, match):
    with pytest.raises(VnnlibError, match=match):
        parse_vnnlib(text)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("strategy", ["split", "joint"])
def test_decisions_match_brute_force(seed, strategy):
    rng = np.random.default_rng(seed)
    net = random_network(rng, [3, 5, 4, 3])
    x = rng.uniform(size=3)
    label = int(np.argmax(net.forward(x)))
    for eps in (0.05, 0.3):
        prop = parse_vnnlib(robustness_vnnlib(x, label, eps, n_out=3))
        result = check_property(net, prop, SolveOptions(MilpSolver("highs", 30)), strategy=strategy)
        lower, upper = prop.cases[0].lower, prop.cases[0].upper
        exact = min(exact_min(net, np.eye(3)[label] - np.eye(3)[t], lower, upper) for t in range(3) if t != label)
        if exact < -1e-7:
            assert result.result == "sat"
            assert (result.x >= lower).all() and (result.x <= upper).all()
            assert max(result.y[t] - result.y[label] for t in range(3) if t != label) >= 0
        elif exact > 1e-7:
            assert result.result == "unsat"


@pytest.fixture(scope="module")
def mnist_instance(tmp_path_factory):
    """The demo MNIST net as an mnist_fc-style ONNX file and two properties of test image 1."""
    from robustmip.data import load_embedded_mnist

    root = tmp_path_factory.mktemp("bench")
    net = load_demo_network()
    onnx.save(network_to_onnx(net, "matmul"), root / "net.onnx")
    images, labels = load_embedded_mnist("test")
    x, label = images[1].reshape(-1).astype(np.float64), int(labels[1])
    (root / "robust.vnnlib").write_text(robustness_vnnlib(x, label, 0.02))
    with gzip.open(root / "attack.vnnlib.gz", "wt") as handle:
        handle.write(robustness_vnnlib(x, label, 0.1))
    return root


def test_cli_verify_vnnlib_writes_result_files(mnist_instance, tmp_path, capsys):
    out = tmp_path / "unsat.txt"
    assert main(["verify-vnnlib", str(mnist_instance / "net.onnx"), str(mnist_instance / "robust.vnnlib"),
                 "--timeout", "60", "--out", str(out)]) == 0
    assert out.read_text().splitlines() == ["unsat"]
    out = tmp_path / "sat.txt"
    assert main(["verify-vnnlib", str(mnist_instance / "net.onnx"), str(mnist_instance / "attack.vnnlib.gz"),
                 "--timeout", "60", "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "sat"
    values = {tok.split()[0].strip("()"): float(tok.split()[1].strip("()")) for tok in lines[1:]}
    x = np.array([values[f"X_{i}"] for i in range(784)])
    y = np.array([values[f"Y_{j}"] for j in range(10)])
    np.testing.assert_allclose(load_demo_network().forward(x), y, atol=1e-9)
    assert len(values) == 794


def test_cli_errors_are_one_line_and_nonzero(tmp_path, capsys):
    bad = tmp_path / "bad.vnnlib"
    bad.write_text("(assert (<= X_0 1)")
    onnx_path = tmp_path / "n.onnx"
    onnx.save(network_to_onnx(random_network(np.random.default_rng(0), [1, 2, 2])), onnx_path)
    out = tmp_path / "r.txt"
    assert main(["verify-vnnlib", str(onnx_path), str(bad), "--out", str(out)]) == 2
    assert out.read_text().splitlines() == ["error"]
    assert "unbalanced" in capsys.readouterr().err


def test_vnncomp_runner_resumes_without_redoing(mnist_instance, tmp_path):
    instances = mnist_instance / "instances.csv"
    instances.write_text("net.onnx,robust.vnnlib,60\nnet.onnx,attack.vnnlib.gz,60\n")
    expected_csv = tmp_path / "expected.csv"
    expected_csv.write_text("onnx,vnnlib,expected\nnet.onnx,robust.vnnlib,unsat\nnet.onnx,attack.vnnlib.gz,sat\n")
    expected = read_expected(expected_csv)
    out = tmp_path / "results.jsonl"
    rows = run_benchmark(instances, out=out, progress=False)
    assert [r["result"] for r in rows] == ["unsat", "sat"]
    summary = summarize(rows, expected)
    assert (summary["instances"], summary["solved"], summary["contradictions"]) == (2, 2, 0)
    assert summary["counts"] == {"unsat": 1, "sat": 1}
    assert "sat" == Path(rows[1]["counterexample"]).read_text().splitlines()[0]
    # Simulate an interruption after the first instance: drop the last row and resume.
    lines = out.read_text().splitlines()
    out.write_text("\n".join(lines[:-1]) + "\n")
    rows = run_benchmark(instances, out=out, progress=False)
    assert [r["result"] for r in rows] == ["unsat", "sat"]
    assert out.read_text().splitlines()[0] == lines[0]
    assert len(out.read_text().splitlines()) == 2


def _shared_benchmark() -> Path | None:
    root = os.environ.get("ROBUSTMIP_VNNCOMP")
    return Path(root) if root and (Path(root) / "instances.csv").is_file() else None


@pytest.mark.skipif(_shared_benchmark() is None, reason="set ROBUSTMIP_VNNCOMP to the vnncomp_mnistfc folder to run")
def test_one_real_mnistfc_property_end_to_end():
    from robustmip.vnncomp import read_instances, vnncomp_job

    root = _shared_benchmark()
    instances = [i for i in read_instances(root / "instances.csv") if "256x2" in i.onnx]
    expected = read_expected(root / "expected.csv") if (root / "expected.csv").is_file() else {}
    inst = instances[0]
    row = vnncomp_job({"root": str(root), "onnx": inst.onnx, "vnnlib": inst.vnnlib, "timeout": inst.timeout,
                       "solver": "highs", "threads": 1, "bounds": "lp", "pgd": True, "counterexamples": "unused"})
    assert row["result"] in ("sat", "unsat")
    reference = expected.get((Path(inst.onnx).name, Path(inst.vnnlib).name))
    if reference in ("sat", "unsat"):
        assert row["result"] == reference


def test_verify_vnnlib_process_flushes_its_verdict_before_its_fast_exit(mnist_instance, tmp_path):
    """``python -m robustmip verify-vnnlib`` ends with os._exit: its stdout line and result file are complete."""
    out = tmp_path / "sat.txt"
    done = subprocess.run([sys.executable, "-m", "robustmip", "verify-vnnlib", str(mnist_instance / "net.onnx"),
                           str(mnist_instance / "attack.vnnlib.gz"), "--timeout", "60", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("sat (") and done.stdout.endswith("\n")
    lines = out.read_text().splitlines()
    assert lines[0] == "sat" and len(lines) == 1 + 784 + 10
