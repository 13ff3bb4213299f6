"""Self-describing checkpoints: a model's weights with its architecture name, training settings,
data fingerprint, seed and metrics, written atomically and loaded with ``weights_only=True``."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from robustmip.errors import DataError, InvalidInput
from robustmip.models import build_model

CHECKPOINT_FORMAT = "robustmip-checkpoint"
CHECKPOINT_VERSION = 1
_CHECKPOINT_KEYS = ("format", "format_version", "arch", "state_dict", "train_config",
                    "data_fingerprint", "seed", "metrics", "torch_version")


@dataclass(frozen=True)
class CheckpointMeta:
    """What a checkpoint says about its model (everything but the weights)."""

    arch: str
    train_config: dict[str, Any]
    data_fingerprint: str
    seed: int | None
    metrics: dict[str, Any]
    torch_version: str
    format_version: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _plain(value: Any, what: str) -> Any:
    """``value`` as plain JSON types (dict/list/str/number/bool/None); InvalidInput otherwise."""
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{what} must hold only plain values (dict, list, str, number, "
                           f"bool, None) so the checkpoint loads with weights_only=True: {exc}"
                           ) from exc


def save_checkpoint(path: str | Path, model: nn.Module, arch: str, train_config: dict[str, Any],
                    data_fingerprint: str, seed: int | None, metrics: dict[str, Any]) -> Path:
    """Write ``model`` and its provenance to ``path`` (a ``.pt`` file), atomically.

    The file is written to a temporary name beside ``path`` and renamed, so ``path`` either
    keeps its old content or holds the complete new checkpoint. The content is plain dicts,
    strings, numbers and CPU tensors, loadable with ``torch.load(weights_only=True)``.
    ``arch`` must rebuild ``model`` through :func:`build_model`. Returns ``path``.
    Raises :class:`InvalidInput` for a model that does not match ``arch`` or metadata that is
    not plain, :class:`DataError` when the file cannot be written.
    """
    path = Path(path)
    reference = build_model(arch).state_dict()
    state = model.state_dict()
    if reference.keys() != state.keys() or any(
            reference[k].shape != state[k].shape for k in reference):
        raise InvalidInput(f"model does not match architecture {arch!r}")
    payload = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "arch": arch,
        "state_dict": {k: v.detach().cpu().clone() for k, v in state.items()},
        "train_config": _plain(train_config, "train_config"),
        "data_fingerprint": str(data_fingerprint),
        "seed": None if seed is None else int(seed),
        "metrics": _plain(metrics, "metrics"),
        "torch_version": str(torch.__version__),
    }
    try:
        atomic_torch_save(payload, path)
    except OSError as exc:
        raise DataError(f"cannot write checkpoint {path}: {exc.strerror or exc}") from exc
    return path


def atomic_torch_save(payload: dict[str, Any], path: Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename it to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(payload, handle)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _read_payload(path: Path) -> dict[str, Any]:
    """The checkpoint's dict, loaded safely; DataError when missing, unreadable or foreign."""
    if path.is_dir():
        raise DataError(f"checkpoint path {path} is a directory, not a checkpoint file")
    if not path.is_file():
        raise DataError(f"checkpoint {path} does not exist; train one with `robustmip train`")
    if path.name.lower().endswith((".onnx", ".onnx.gz", ".npz")):
        raise DataError(f"{path} is a network file, not a robustmip checkpoint: this command needs a .pt "
                        "checkpoint written by `robustmip train`")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises KeyError, UnpicklingError, RuntimeError... on foreign files
        raise DataError(f"{path} is not a robustmip checkpoint: torch cannot read it as one "
                        f"({type(exc).__name__}); use a .pt file written by `robustmip train`") from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise DataError(f"{path} is not a robustmip checkpoint (no format tag "
                        f"{CHECKPOINT_FORMAT!r}); save models with "
                        "robustmip.io.checkpoint.save_checkpoint")
    missing = [k for k in _CHECKPOINT_KEYS if k not in payload]
    if missing:
        raise DataError(f"checkpoint {path} lacks {', '.join(missing)}; re-create it")
    if payload["format_version"] > CHECKPOINT_VERSION:
        raise DataError(f"checkpoint {path} has format version {payload['format_version']}, "
                        f"newer than this robustmip ({CHECKPOINT_VERSION}); upgrade robustmip")
    return payload


def load_checkpoint(path: str | Path) -> tuple[nn.Sequential, CheckpointMeta]:
    """The model (on CPU, in eval mode) and metadata stored by :func:`save_checkpoint`.

    The weights are bit-identical to the saved ones. Raises :class:`DataError` for a missing,
    corrupt or foreign file, or weights that do not fit the stored architecture.
    """
    path = Path(path)
    payload = _read_payload(path)
    try:
        model = build_model(payload["arch"])
        model.load_state_dict(payload["state_dict"], strict=True)
    except (InvalidInput, RuntimeError) as exc:
        raise DataError(f"checkpoint {path}: weights do not fit architecture "
                        f"{payload['arch']!r} ({exc})") from exc
    model.eval()
    meta = CheckpointMeta(
        arch=payload["arch"], train_config=payload["train_config"],
        data_fingerprint=payload["data_fingerprint"], seed=payload["seed"],
        metrics=payload["metrics"], torch_version=payload["torch_version"],
        format_version=payload["format_version"])
    return model, meta
