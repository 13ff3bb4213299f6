"""What every study shares: its config (shipped by name or a JSON file), the guard that keeps a run's
rows comparable across invocations, and the software versions recorded in its ``config.json``."""

from __future__ import annotations

import importlib.resources
import json
import platform
from dataclasses import fields
from pathlib import Path
from typing import Collection, Sequence

from robustmip.errors import DataError, InvalidInput


def load_config(name_or_path: str, config_class: type, shipped: Sequence[str]) -> dict:
    """The fields of a config: a shipped one by bare name (``robustmip/studies/configs/NAME.json``), or a
    JSON file by path; DataError when missing or not a JSON object, InvalidInput for a field that
    ``config_class`` (a dataclass) does not have."""
    path = Path(name_or_path)
    if name_or_path in shipped and not path.exists():
        text = (importlib.resources.files("robustmip.studies") / "configs" / f"{name_or_path}.json").read_text()
        source = f"the shipped config {name_or_path!r}"
    else:
        if not path.is_file():
            raise DataError(f"study config {path} not found (a file path, or one of the shipped {tuple(shipped)})")
        text, source = path.read_bytes(), str(path)
    try:
        loaded = json.loads(text)
    except ValueError as exc:  # UnicodeDecodeError is a ValueError too
        raise DataError(f"{source} is not valid JSON ({exc})") from exc
    if not isinstance(loaded, dict):
        raise DataError(f"{source} must hold a JSON object of study settings")
    unknown = set(loaded) - {f.name for f in fields(config_class)}
    if unknown:
        raise InvalidInput(f"unknown fields in {source}: {sorted(unknown)}")
    return loaded


def check_resumable(run_dir: Path, config: dict, resumable: Collection[str]) -> None:
    """Refuse to add rows to a run made with other settings (its rows would not be comparable).

    Only the fields in ``resumable`` (more images, other workers...) may differ from the ``config`` recorded
    in ``run_dir/config.json``; otherwise the error names the fields and suggests a new ``--run``.
    """
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        return
    before = json.loads(path.read_text())["config"]
    changed = sorted(k for k in config if k not in resumable and before.get(k, "<absent>") != config[k])
    if changed:
        details = ", ".join(f"{k}: {before.get(k, '<absent>')!r} -> {config[k]!r}" for k in changed)
        raise InvalidInput(f"run {run_dir} was made with other settings ({details}); "
                           "resume it with the same settings or start another --run")


def software_versions() -> dict[str, str]:
    """Python, numpy, torch, Pyomo, highspy and (when installed) Gurobi versions."""
    import highspy
    import numpy as np
    import pyomo
    import torch

    versions = {"python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__,
                "pyomo": pyomo.version.version, "highspy": getattr(highspy, "__version__", "unknown")}
    try:
        import gurobipy

        versions["gurobipy"] = gurobipy.gurobi.version()
    except ImportError:
        pass
    return versions
