"""What every parameter-robustness study shares: configs by name, the run folder, its guard and its log.

A study is a dataclass of settings. :func:`load_settings` reads a shipped config by bare name
(``demo`` or ``full``: ``robustmip/studies/configs/<study>_<name>.json``) or a JSON file by path;
:func:`open_run` creates ``<out_root>/<run>/``, refuses to continue a run whose ``config.json`` holds
other settings (except the fields that only add rows), and records the settings with the library
versions. Rows themselves are resumed by :func:`robustmip.parallel.run_instances` (one JSON line per
finished item).
"""

from __future__ import annotations

import argparse
import importlib.resources
import json
import platform
import sys
import time
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, Callable

import numpy as np

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
    import highspy
    import pyomo
    import torch

    return {"python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__,
            "pyomo": pyomo.version.version, "highspy": getattr(highspy, "__version__", "unknown"),
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
