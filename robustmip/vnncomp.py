"""Run a VNN-COMP benchmark (``instances.csv`` rows of ``onnx,vnnlib,timeout``) with a resumable CSV.

Each finished instance is appended to the results CSV at once (and flushed), so an interrupted run
resumes where it stopped without redoing or losing instances. Optionally compares each verdict with
the verdicts other verifiers reached (``--expected``) and counts contradictions.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from tqdm import tqdm

from robustmip.bounds import BoundsMethod
from robustmip.errors import DataError, RobustMipError
from robustmip.milp.verify import Falsifier
from robustmip.network import Network
from robustmip.vnnlib import VnnResult, check_property, load_vnnlib

RESULT_FIELDS = [
    "onnx", "vnnlib", "timeout", "result", "seconds", "falsify_s", "bounds_s", "build_s", "solve_s", "expected", "reason",
]


@dataclass(frozen=True)
class Instance:
    onnx: str
    vnnlib: str
    timeout: float


def read_instances(path: str | Path) -> list[Instance]:
    """Rows ``onnx,vnnlib,timeout`` (no header, as in VNN-COMP's ``instances.csv``)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"instances file not found: {path}")
    rows = []
    with path.open(newline="") as handle:
        for line_no, row in enumerate(csv.reader(handle), start=1):
            if not row or not "".join(row).strip():
                continue
            if len(row) < 3:
                raise DataError(f"{path}:{line_no}: expected 'onnx,vnnlib,timeout', got {row}")
            try:
                rows.append(Instance(row[0].strip(), row[1].strip(), float(row[2])))
            except ValueError as exc:
                raise DataError(f"{path}:{line_no}: timeout {row[2]!r} is not a number") from exc
    return rows


def read_expected(path: str | Path | None) -> dict[tuple[str, str], str]:
    """Expected verdicts from a CSV with columns ``onnx``, ``vnnlib`` and ``expected`` (or ``result``)."""
    if path is None:
        return {}
    with Path(path).open(newline="") as handle:
        reader = csv.DictReader(handle)
        key = "expected" if reader.fieldnames and "expected" in reader.fieldnames else "result"
        return {(Path(r["onnx"]).name, Path(r["vnnlib"]).name): r[key].strip() for r in reader}


def contradicts(result: str, expected: str) -> bool:
    """A verdict that the reference contradicts: sat vs unsat (either way)."""
    return {result, expected} == {"sat", "unsat"}


def _done(out: Path) -> dict[tuple[str, str], dict]:
    if not out.is_file():
        return {}
    with out.open(newline="") as handle:
        return {(r["onnx"], r["vnnlib"]): r for r in csv.DictReader(handle)}


def run_instance(
    root: Path, inst: Instance, solver: str, bounds_method: BoundsMethod, falsifier: Falsifier | None = None
) -> VnnResult:
    """Load and decide one instance; load or parse errors become an ``error`` result."""
    try:
        net = Network.from_onnx(root / inst.onnx)
        prop = load_vnnlib(root / inst.vnnlib)
    except RobustMipError as exc:
        return VnnResult("error", 0.0, reason=str(exc))
    return check_property(net, prop, timeout=inst.timeout, solver=solver, bounds_method=bounds_method, falsifier=falsifier)


def run_benchmark(
    instances_csv: str | Path,
    root: str | Path | None = None,
    out: str | Path = "results.csv",
    *,
    solver: str = "highs",
    bounds_method: BoundsMethod = "lp",
    expected_csv: str | Path | None = None,
    progress: bool = True,
    falsifier: Falsifier | None = None,
) -> list[dict]:
    """Run every instance not yet in ``out``; return all rows of ``out`` (old and new).

    ``falsifier`` (e.g. PGD) is tried on every property before its MILP.
    """
    instances_csv = Path(instances_csv)
    root = Path(root) if root is not None else instances_csv.parent
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    instances = read_instances(instances_csv)
    expected = read_expected(expected_csv)
    done = _done(out)
    todo = [i for i in instances if (i.onnx, i.vnnlib) not in done]
    new_file = not out.is_file()
    with out.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=RESULT_FIELDS)
        if new_file:
            writer.writeheader()
        bar: Iterable[Instance] = tqdm(todo, desc="vnncomp", unit="inst", disable=not progress)
        for inst in bar:
            res = run_instance(root, inst, solver, bounds_method, falsifier)
            row = {
                "onnx": inst.onnx, "vnnlib": inst.vnnlib, "timeout": inst.timeout, "result": res.result,
                "seconds": f"{res.seconds:.3f}", "falsify_s": f"{res.times.get('falsify', 0.0):.3f}", "bounds_s": f"{res.times.get('bounds', 0.0):.3f}",
                "build_s": f"{res.times.get('build', 0.0):.3f}", "solve_s": f"{res.times.get('solve', 0.0):.3f}",
                "expected": expected.get((Path(inst.onnx).name, Path(inst.vnnlib).name), ""),
                "reason": res.reason,
            }
            writer.writerow(row)
            handle.flush()
            done[(inst.onnx, inst.vnnlib)] = row
    return [done[(i.onnx, i.vnnlib)] for i in instances if (i.onnx, i.vnnlib) in done]


def summarize(rows: list[dict]) -> dict:
    """Counts per verdict, solved count, and contradictions with the expected verdicts."""
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["result"]] = counts.get(r["result"], 0) + 1
    wrong = [r for r in rows if r.get("expected") and contradicts(r["result"], r["expected"])]
    return {
        "instances": len(rows),
        "solved": counts.get("sat", 0) + counts.get("unsat", 0),
        "counts": counts,
        "contradictions": len(wrong),
    }
