"""VNN-COMP instances: decide one property within its time limit, and run a whole benchmark, resumably.

:func:`check_property` decides a parsed VNN-LIB property on a network with one deadline for every
stage. :func:`run_benchmark` runs the rows of an ``instances.csv`` (``onnx,vnnlib,timeout``, no
header) through :func:`robustmip.parallel.run_instances`: one JSON line per finished instance, so an
interrupted run resumes where it stopped; the settings that change the answers are recorded beside
the results and a rerun under other settings is refused; ``error`` rows are retried. Each ``sat``
row's counterexample is written in VNN-COMP's result-file format into a folder beside the results.
Contradictions with reference verdicts (``expected.csv``) are counted over all rows at the end.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from robustmip.bab.engine import decide_output_property
from robustmip.errors import DataError, InvalidInput, RobustMipError
from robustmip.io.vnnlib import VnnOutcome, VnnResult, load_vnnlib
from robustmip.milp.options import SolveOptions
from robustmip.network import Network
from robustmip.parallel import run_instances
from robustmip.spec import OutputProperty

RESULT_FIELDS = [
    "onnx", "vnnlib", "timeout", "engine", "result", "seconds", "falsify_s", "bounds_s", "build_s", "solve_s",
    "expected", "reason",
]


def check_property(net: Network, prop: OutputProperty, options: SolveOptions | None = None,
                   strategy: Literal["split", "joint"] = "split") -> VnnResult:
    """Decide a parsed property on ``net`` within the solver's time limit (wall, every stage included).

    The falsifier of ``options`` (e.g. :func:`robustmip.attacks.falsify.property_falsifier`) is tried
    on each case first; the engine (``options.engine``: MILP, branch-and-bound or automatic) then
    decides it (:func:`robustmip.bab.engine.decide_output_property`); ``strategy`` is the MILP's.
    Returns ``sat`` (with the re-checked
    point and outputs), ``unsat``, ``timeout`` or ``unknown``; ``error`` when the property does not fit
    the network.
    """
    options = options or SolveOptions()
    deadline = options.deadline()
    if prop.n_inputs != net.n_inputs or prop.n_outputs != net.n_outputs:
        return VnnResult(
            "error", 0.0,
            reason=f"property has {prop.n_inputs} inputs/{prop.n_outputs} outputs, the net {net.n_inputs}/{net.n_outputs}",
        )
    totals = {"falsify": 0.0, "bounds": 0.0, "build": 0.0, "solve": 0.0}
    undecided = ""
    for case in prop.cases:
        if deadline.expired():
            return VnnResult("timeout", deadline.elapsed(), reason="time limit", times=totals)
        res = decide_output_property(net, case.lower, case.upper, case.conjunctions, options, deadline=deadline,
                                     strategy=strategy)
        for k in totals:
            totals[k] += res.times.get(k, 0.0)
        if res.status == "sat":
            return VnnResult("sat", deadline.elapsed(), res.counterexample, res.outputs, times=totals)
        if res.status == "unknown":
            undecided = res.reason
    seconds = deadline.elapsed()
    if undecided:
        outcome: VnnOutcome = "timeout" if "time limit" in undecided else "unknown"
        return VnnResult(outcome, seconds, reason=undecided, times=totals)
    return VnnResult("unsat", seconds, times=totals)


@dataclass(frozen=True)
class Instance:
    """One row of ``instances.csv``: paths relative to the benchmark's root, timeout in seconds."""

    onnx: str
    vnnlib: str
    timeout: float

    @property
    def key(self) -> str:
        return f"{self.onnx}|{self.vnnlib}"


def read_instances(path: str | Path) -> list[Instance]:
    """Rows ``onnx,vnnlib,timeout`` (no header, as in VNN-COMP's ``instances.csv``); DataError if none."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"instances file {path} is a directory; give the instances.csv file")
    if not path.is_file():
        raise DataError(f"instances file not found: {path}")
    rows = []
    try:
        with path.open(newline="") as handle:
            for line_no, row in enumerate(csv.reader(handle), start=1):
                if not row or not "".join(row).strip():
                    continue
                if len(row) < 3:
                    raise DataError(f"{path}:{line_no}: expected 'onnx,vnnlib,timeout', got {row}")
                try:
                    timeout = float(row[2])
                except ValueError as exc:
                    raise DataError(f"{path}:{line_no}: timeout {row[2]!r} is not a number") from exc
                if not timeout > 0 or timeout == float("inf"):
                    raise DataError(f"{path}:{line_no}: timeout must be a finite number > 0, got {row[2]!r}")
                rows.append(Instance(row[0].strip(), row[1].strip(), timeout))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path} is not a readable CSV file ({exc})") from exc
    if not rows:
        raise DataError(f"{path} lists no instances (expected rows 'onnx,vnnlib,timeout')")
    return rows


def read_expected(path: str | Path | None) -> dict[tuple[str, str], str]:
    """Expected verdicts by ``(onnx file name, vnnlib file name)`` from a CSV with columns ``onnx``,
    ``vnnlib`` and ``expected`` (or ``result``); DataError when missing or malformed."""
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise DataError(f"expected-verdicts file not found: {path}")
    try:
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            fields = reader.fieldnames or []
            key = "expected" if "expected" in fields else "result"
            missing = [name for name in ("onnx", "vnnlib", key) if name not in fields]
            if missing:
                raise DataError(f"{path} lacks the column(s) {missing}; it needs onnx, vnnlib and expected (or result)")
            return {(Path(r["onnx"]).name, Path(r["vnnlib"]).name): (r[key] or "").strip() for r in reader}
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path} is not a readable CSV file ({exc})") from exc


def contradicts(result: str, expected: str) -> bool:
    """A verdict that the reference contradicts: sat vs unsat (either way)."""
    return {result, expected} == {"sat", "unsat"}


def instance_timeout(timeout: float, scale: float = 1.0, cap: float | None = None) -> float:
    """The time limit an instance runs under: its CSV timeout times ``scale``, at most ``cap``."""
    limit = timeout * scale
    return limit if cap is None else min(limit, cap)


def counterexample_path(folder: Path, inst_onnx: str, inst_vnnlib: str) -> Path:
    """``<folder>/<onnx stem>__<vnnlib stem>.counterexample``."""
    stem = lambda name: Path(name).name.split(".")[0]  # noqa: E731 - a one-line local helper
    return folder / f"{stem(inst_onnx)}__{stem(inst_vnnlib)}.counterexample"


def vnncomp_job(instance: dict) -> dict:
    """Decide one instance (a :func:`robustmip.parallel.run_instances` job); load errors give ``error``.

    ``instance`` holds ``root``, ``onnx``, ``vnnlib``, ``timeout`` (seconds), ``solver``, ``threads``,
    ``bounds``, ``pgd`` (bool), ``counterexamples`` (folder for ``sat`` result files) and optionally
    ``engine`` (default ``milp``). A file that cannot be loaded gives an ``error`` row with
    ``"status": "error"``, which the next run retries.
    """
    from robustmip.io import load_network
    from robustmip.solvers import MilpSolver

    root = Path(instance["root"])
    ran = {**{k: instance[k] for k in ("onnx", "vnnlib", "timeout", "solver", "threads")},
           "engine": instance.get("engine", "milp")}
    try:
        net = load_network(root / instance["onnx"])
        prop = load_vnnlib(root / instance["vnnlib"])
    except RobustMipError as exc:
        return {**ran, "result": "error", "status": "error", "seconds": 0.0, "reason": str(exc)}
    falsifier = None
    if instance["pgd"]:
        from robustmip.attacks.falsify import property_falsifier

        falsifier = property_falsifier()
    options = SolveOptions(MilpSolver(instance["solver"], instance["timeout"], instance["threads"]),
                           bounds=instance["bounds"], domain=(None, None), falsifier=falsifier,
                           engine=ran["engine"])
    start = time.perf_counter()
    res = check_property(net, prop, options)
    row = {**ran, "result": res.result, "seconds": time.perf_counter() - start, "reason": res.reason,
           **{f"{k}_s": v for k, v in res.times.items()}}
    if res.result == "sat":
        path = counterexample_path(Path(instance["counterexamples"]), instance["onnx"], instance["vnnlib"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(res.result_file_text())
        row["counterexample"] = str(path)
    return row


def run_benchmark(
    instances_csv: str | Path,
    root: str | Path | None = None,
    out: str | Path = "results.jsonl",
    *,
    solver: str = "highs",
    threads: int = 1,
    bounds: str = "lp",
    engine: str = "milp",
    pgd: bool = True,
    timeout_scale: float = 1.0,
    timeout_cap: float | None = None,
    progress: bool = True,
    on_row=None,
) -> list[dict]:
    """Run every instance not yet in ``out``; return one row per instance (old and new), in CSV order.

    Each row holds ``onnx``, ``vnnlib``, ``timeout`` (the limit it ran under), ``solver``,
    ``threads``, ``engine``, ``result``, ``seconds``, the seconds per stage, ``reason`` and, when ``sat``, the path
    of its ``counterexample`` file. ``on_row(row)`` is called for each new row.
    """
    instances_csv = Path(instances_csv)
    root = Path(root) if root is not None else instances_csv.parent
    out = Path(out)
    if out.resolve() == instances_csv.resolve():
        raise InvalidInput(f"--out {out} is the instances file itself; choose another results file")
    if not root.is_dir():
        raise DataError(f"benchmark root {root} is not a folder")
    instances = read_instances(instances_csv)
    if not timeout_scale > 0 or (timeout_cap is not None and not timeout_cap > 0):
        raise InvalidInput("the timeout scale and cap must be > 0")
    folder = out.with_name(out.name.split(".")[0] + "_counterexamples")
    jobs = [{"key": inst.key, "root": str(root.resolve()), "onnx": inst.onnx, "vnnlib": inst.vnnlib,
             "timeout": instance_timeout(inst.timeout, timeout_scale, timeout_cap), "solver": solver,
             "threads": threads, "bounds": bounds, "engine": engine, "pgd": pgd,
             "counterexamples": str(folder.resolve())}
            for inst in instances]
    settings = {"root": str(root.resolve()), "solver": solver, "threads": threads, "bounds": bounds, "engine": engine,
                "pgd": pgd, "timeout_scale": timeout_scale, "timeout_cap": timeout_cap}

    def job_with_callback(instance: dict) -> dict:
        row = vnncomp_job(instance)
        if on_row is not None:
            on_row(row)
        return row

    rows = run_instances(job_with_callback, jobs, out, key="key", backend="serial", progress=progress,
                         desc="vnncomp", redo_errors=True, worker_threads=None, settings=settings)
    return [{k: v for k, v in row.items() if k != "key"} for row in rows]


def summarize(rows: list[dict], expected: dict[tuple[str, str], str] | None = None) -> dict:
    """Counts per verdict, solved count, and every contradiction with the expected verdicts."""
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["result"]] = counts.get(r["result"], 0) + 1
    expected = expected or {}
    wrong = [f"{r['onnx']} {r['vnnlib']}: {r['result']} but expected {want}" for r in rows
             if (want := expected.get((Path(r["onnx"]).name, Path(r["vnnlib"]).name), ""))
             and contradicts(r["result"], want)]
    return {
        "instances": len(rows),
        "solved": counts.get("sat", 0) + counts.get("unsat", 0),
        "counts": counts,
        "contradictions": len(wrong),
        "contradicted": wrong,
    }


def write_csv(rows: list[dict], path: str | Path, expected: dict[tuple[str, str], str] | None = None) -> None:
    """The rows as a CSV table (``RESULT_FIELDS``), with the expected verdict where known."""
    expected = expected or {}
    with Path(path).open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=RESULT_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            writer.writerow({**r, "expected": expected.get((Path(r["onnx"]).name, Path(r["vnnlib"]).name), "")})
