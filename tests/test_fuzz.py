"""Mutated VNN-LIB and ONNX files (truncations, byte flips, deep nesting, huge numbers) through the CLI:
each ends with a verdict or a one-line message and exit 2, within seconds, never with a traceback."""

from __future__ import annotations

import time

import numpy as np
import onnx
import pytest
from conftest import random_network

from robustmip.cli import main
from robustmip.io.onnx_model import network_to_onnx

SECONDS_PER_FILE = 10.0


def _property(x: np.ndarray, label: int, eps: float, n_out: int) -> str:
    lines = [f"(declare-const X_{i} Real)" for i in range(x.size)] + [f"(declare-const Y_{j} Real)" for j in range(n_out)]
    for i, v in enumerate(x):
        lines += [f"(assert (<= X_{i} {float(v + eps)!r}))", f"(assert (>= X_{i} {float(v - eps)!r}))"]
    lines.append("(assert (or " + " ".join(f"(and (>= Y_{j} Y_{label}))" for j in range(n_out) if j != label) + "))")
    return "\n".join(lines) + "\n"


def _mutants(data: bytes, rng: np.random.Generator, n: int, numbers: bool) -> list[bytes]:
    """Truncations, runs of flipped bytes, and (for text) deep nesting and extreme constants."""
    out = []
    for k in range(n):
        kind = k % (5 if numbers else 3)
        if kind == 0:
            out.append(data[: int(rng.integers(0, len(data)))])
        elif kind == 1:
            mutant = bytearray(data)
            for pos in rng.integers(0, len(data), size=int(rng.integers(1, 8))):
                mutant[pos] = int(rng.integers(0, 256))
            out.append(bytes(mutant))
        elif kind == 2:
            start = int(rng.integers(0, len(data)))
            out.append(data[:start] + rng.bytes(int(rng.integers(1, 64))) + data[start:])
        elif kind == 3:
            depth = int(rng.choice([300, 5_000, 50_000]))
            out.append(b"(assert " + b"(and " * depth + b"(>= Y_0 Y_1)" + b")" * depth + b")\n" + data)
        else:
            value = rng.choice([b"1e999", b"-1e400", b"1e308", b"nan", b"123456789012345678901234567890"])
            out.append(data.replace(b"0.", value + b" 0.", 1) if rng.uniform() < 0.5 else data.replace(b"Y_1", value, 1))
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    rng = np.random.default_rng(3)
    net = random_network(rng, [5, 6, 4, 3])
    x = rng.uniform(0.2, 0.8, size=5)
    label = int(np.argmax(net.forward(x)))
    onnx.save(network_to_onnx(net), root / "net.onnx")
    (root / "prop.vnnlib").write_text(_property(x, label, 0.1, 3))
    return root


def _run(capsys, argv: list[str]) -> None:
    start = time.perf_counter()
    code = main(argv)
    seconds = time.perf_counter() - start
    err = capsys.readouterr().err
    assert code in (0, 2), (code, err)
    assert "Traceback" not in err
    if code == 2:
        assert err.count("\n") == 1 and err.startswith("robustmip verify-vnnlib: error: "), err
    assert seconds < SECONDS_PER_FILE


def test_mutated_vnnlib_files(tiny, tmp_path, capsys):
    rng = np.random.default_rng(0)
    for k, data in enumerate(_mutants((tiny / "prop.vnnlib").read_bytes(), rng, 200, numbers=True)):
        path = tmp_path / f"m{k}.vnnlib"
        path.write_bytes(data)
        _run(capsys, ["verify-vnnlib", str(tiny / "net.onnx"), str(path), "--timeout", "5", "--no-pgd"])


def test_mutated_onnx_files(tiny, tmp_path, capsys):
    rng = np.random.default_rng(1)
    for k, data in enumerate(_mutants((tiny / "net.onnx").read_bytes(), rng, 150, numbers=False)):
        path = tmp_path / f"m{k}.onnx"
        path.write_bytes(data)
        _run(capsys, ["verify-vnnlib", str(path), str(tiny / "prop.vnnlib"), "--timeout", "5", "--no-pgd"])
