"""What studies share: configs by name, the run folder, its guard, its log, its jobs and their times.

A study is a dataclass of settings. :func:`load_settings` reads a shipped config by bare name
(``demo`` or ``full``: ``robustmip/studies/configs/<study>_<name>.json``) or a JSON file by path;
:func:`open_run` creates ``<out_root>/<run>/``, refuses to continue a run whose ``config.json`` holds
other settings (except the fields that only add rows), and records the settings with the library
versions. Rows themselves are resumed by :func:`robustmip.parallel.run_instances` (one JSON line per
finished item; :func:`run_jobs` stops a study on an error row); ``timings.json`` sums each stage's
seconds over invocations (:func:`add_stage_seconds`); :func:`field_problems` and :func:`run_problems`
check the settings studies have in common.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.resources
import json
import math
import platform
import sys
import time
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, Callable, Iterable

from robustmip.errors import DataError, InvalidInput, RobustMipError

SHIPPED = ("demo", "full")


def load_settings(study: str, name_or_path: str, settings_class: type) -> Any:
    """``settings_class`` from a shipped config (``demo``, ``full``) or a JSON file of its fields."""
    path = Path(name_or_path)
    if name_or_path in SHIPPED and not path.exists():
        resource = importlib.resources.files("robustmip.studies") / "configs" / f"{study}_{name_or_path}.json"
        text, source = resource.read_text(), f"the shipped config {study}_{name_or_path}"
    else:
        if not path.is_file():
            raise DataError(f"config {path} not found (a file path, or one of the shipped {SHIPPED})")
        text, source = path.read_bytes(), str(path)
    try:
        loaded = json.loads(text)
    except ValueError as exc:  # UnicodeDecodeError (a binary file) is a ValueError too
        raise DataError(f"{source} is not valid JSON ({exc})") from exc
    if not isinstance(loaded, dict):
        raise DataError(f"{source} must hold a JSON object of settings")
    unknown = set(loaded) - {f.name for f in fields(settings_class)}
    if unknown:
        raise InvalidInput(f"unknown fields in {source}: {sorted(unknown)}")
    return settings_class(**loaded)


def versions() -> dict:
    """Library versions and platform, for ``config.json``."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(package: str) -> str:
        try:
            return version(package)
        except PackageNotFoundError:
            return "not installed"

    return {"python": platform.python_version(), **{name: installed(name) for name in ("numpy", "torch", "pyomo",
                                                                                        "highspy", "gurobipy")},
            "platform": platform.platform()}


def write_json(path: Path, value: Any) -> None:
    """Write ``value`` as indented JSON, atomically (temporary file, then rename)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=2, default=str))
    tmp.replace(path)


def open_run(settings: Any, run_dir: Path, resumable: set[str]) -> Path:
    """Create ``run_dir``, refuse other settings than its ``config.json`` (but ``resumable``), record them."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "config.json"
    now = asdict(settings)
    if path.is_file():
        before = json.loads(path.read_text()).get("config", {})
        changed = sorted(k for k in now if k not in resumable and before.get(k, "<absent>") != now[k])
        if changed:
            details = ", ".join(f"{k}: {before.get(k, '<absent>')!r} -> {now[k]!r}" for k in changed)
            raise InvalidInput(f"run {run_dir} was made with other settings ({details}); resume it with the same "
                               "settings or choose another run name")
    write_json(path, {"config": now, "versions": versions()})
    return run_dir


def logger(study: str):
    """A ``log(message)`` printing ``[study HH:MM:SS] message``, flushed."""

    def log(message: str) -> None:
        print(f"[{study} {time.strftime('%H:%M:%S')}] {message}", flush=True)

    return log


def study_main(study: str, settings_class: type, run: Callable[[Any], Any], description: str,
               argv: list[str] | None = None, extra: dict[str, tuple[type, str]] | None = None) -> int:
    """The command line of a study: ``--config``, ``--run``, ``--out-root`` and the ``extra`` overrides
    (``flag name -> (type, help)``, each a settings field); runs it and returns 0."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", default="demo",
                        help=f"demo, full, or a JSON file of {settings_class.__name__} fields")
    parser.add_argument("--run", help="run name (default: the config's)")
    parser.add_argument("--out-root", help=f"folder of the runs (default results/{study})")
    for name, (kind, text) in (extra or {}).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, help=text)
    args = parser.parse_args(argv)
    try:
        settings = load_settings(study, args.config, settings_class)
        overrides = {k: v for k, v in vars(args).items() if k != "config" and v is not None}
        run(settings_class(**{**asdict(settings), **overrides}))
    except RobustMipError as exc:
        print(f"{study}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{study}: interrupted; finished rows are kept, rerun the same command to resume", file=sys.stderr)
        return 130
    return 0


def field_problems(cfg: Any, *, positive_ints: Iterable[str] = (), nonneg_ints: Iterable[str] = (),
                   nonneg_numbers: Iterable[str] = (), positive_numbers: Iterable[str] = ()) -> list[str]:
    """What is wrong with numeric fields of a study config: one message per field out of its domain."""
    def number(value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

    def integer(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    problems = [f"{n} must be an integer >= 1" for n in positive_ints
                if not (integer(getattr(cfg, n)) and getattr(cfg, n) >= 1)]
    problems += [f"{n} must be an integer >= 0" for n in nonneg_ints
                 if not (integer(getattr(cfg, n)) and getattr(cfg, n) >= 0)]
    problems += [f"{n} must be a number >= 0" for n in nonneg_numbers
                 if not (number(getattr(cfg, n)) and getattr(cfg, n) >= 0)]
    problems += [f"{n} must be a number > 0" for n in positive_numbers
                 if not (number(getattr(cfg, n)) and getattr(cfg, n) > 0)]
    return problems


def run_problems(cfg: Any) -> list[str]:
    """What is wrong with the settings every study has: ``solver``, ``backend``, ``workers``, ``run`` (and
    ``bounds``, the MILP's bound level, where a study has it)."""
    from robustmip.bounds import BOUNDS_METHODS
    from robustmip.parallel import BACKENDS
    from robustmip.solvers import SOLVERS

    problems = []
    if cfg.workers is not None and not (isinstance(cfg.workers, int) and cfg.workers >= 1):
        problems.append("workers must be an integer >= 1")
    if cfg.solver not in SOLVERS:
        problems.append(f"solver must be one of {SOLVERS}")
    if hasattr(cfg, "bounds") and cfg.bounds not in BOUNDS_METHODS:
        problems.append(f"bounds must be one of {BOUNDS_METHODS}")
    if cfg.backend not in BACKENDS:
        problems.append(f"backend must be one of {BACKENDS}")
    if not cfg.run or "/" in cfg.run:
        problems.append("run must be a non-empty name without '/'")
    return problems


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def stage_seconds(run_dir: Path) -> dict:
    """``timings.json``: wall seconds per stage summed over every invocation of the run, and their count."""
    path = Path(run_dir) / "timings.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def add_stage_seconds(run_dir: Path, stage: str, seconds: float) -> None:
    """Add one invocation's ``seconds`` of ``stage`` to ``timings.json``."""
    timings = stage_seconds(run_dir)
    entry = timings.setdefault(stage, {"seconds": 0.0, "invocations": 0})
    entry["seconds"] += seconds
    entry["invocations"] += 1
    write_json(Path(run_dir) / "timings.json", timings)


class StudyJobsFailed(RobustMipError):
    """Some jobs of a study ended in an error row."""


def run_jobs(fn, instances: list[dict], out: Path, *, what: str, backend: str, workers: int | None,
             redo_errors: bool, settings: dict | None = None, stage: str | None = None, redo=None) -> list[dict]:
    """:func:`robustmip.parallel.run_instances` keyed by ``instance["key"]``; StudyJobsFailed when a job
    ended in an error row (the others are kept in ``out``, and ``--redo-errors`` retries). With ``stage``,
    this invocation's wall seconds are added to ``timings.json`` beside ``out``; ``redo`` is
    run_instances' predicate of finished rows to run again."""
    from robustmip.parallel import run_instances

    start = time.perf_counter()
    try:
        results = run_instances(fn, instances, out, key="key", backend=backend, workers=workers,
                                redo_errors=redo_errors, settings=settings, redo=redo)
    finally:
        if stage is not None:
            add_stage_seconds(Path(out).parent, stage, time.perf_counter() - start)
    failed = [(instance["key"], result.get("error", "")) for instance, result in zip(instances, results)
              if result.get("status") == "error"]
    if failed:
        first_key, first_error = failed[0]
        raise StudyJobsFailed(f"{len(failed)} {what} job(s) failed, e.g. {first_key}: {first_error}; the other "
                              f"rows are kept in {out}: rerun with --redo-errors to retry")
    return results
