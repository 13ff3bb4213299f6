"""Named MNIST architectures and self-describing checkpoints.

Every model is a plain ``torch.nn.Sequential`` of ``Flatten``, ``Linear``, ``ReLU`` and
``Conv2d`` layers that takes images ``(N, 1, 28, 28)`` in ``[0, 1]`` and returns logits
``(N, 10)``; no normalization layer (inputs are used as they are), so a ``Network`` sees the
same function.

Architectures (:func:`build_model`):

- ``mlp-H1-H2-...``: fully connected ``784-H1-H2-...-10`` with ReLU after every hidden layer,
  e.g. ``mlp-50-50``, ``mlp-100-100``;
- ``lenet-300-100``: the classic ``784-300-100-10`` MLP (same as ``mlp-300-100``);
- ``cnn-small``: two convolutions and one fully connected layer (the shape of Wang et al.'s
  MNIST network, whose paper gives no sizes; these are Wong & Kolter's small-CNN convolutions):
  ``Conv2d(1,16,4,stride=2,padding=1)-ReLU-Conv2d(16,32,4,stride=2,padding=1)-ReLU-Flatten-
  Linear(32*7*7,10)``.
"""

from __future__ import annotations

import json
import os
import pickle
import tempfile
import zipfile
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from robustmip.errors import DataError, InvalidInput

INPUT_SIZE = 28 * 28
NUM_CLASSES = 10
NAMED_ARCHITECTURES = ("mlp-50-50", "mlp-100-100", "lenet-300-100", "cnn-small")
CHECKPOINT_FORMAT = "robustmip-checkpoint"
CHECKPOINT_VERSION = 1
_CHECKPOINT_KEYS = ("format", "format_version", "arch", "state_dict", "train_config",
                    "data_fingerprint", "seed", "metrics", "torch_version")


def _mlp(hidden: list[int]) -> nn.Sequential:
    """``Flatten`` then ``784-hidden...-10`` Linear layers with ReLU between them."""
    widths = [INPUT_SIZE, *hidden, NUM_CLASSES]
    layers: list[nn.Module] = [nn.Flatten()]
    for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(fan_in, fan_out))
        if i < len(hidden):
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _cnn_small() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 16, 4, stride=2, padding=1), nn.ReLU(),  # 16 x 14 x 14
        nn.Conv2d(16, 32, 4, stride=2, padding=1), nn.ReLU(),  # 32 x 7 x 7
        nn.Flatten(),
        nn.Linear(32 * 7 * 7, NUM_CLASSES),
    )


def _parse_hidden(arch: str) -> list[int]:
    """Hidden widths of ``mlp-H1-H2-...`` / ``lenet-H1-H2-...``; InvalidInput when malformed."""
    parts = arch.split("-")[1:]
    if not parts or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise InvalidInput(f"malformed architecture {arch!r}: hidden widths must be positive "
                           "integers, e.g. mlp-100-100")
    return [int(p) for p in parts]


def build_model(arch: str, seed: int | None = None) -> nn.Sequential:
    """A freshly initialised model of architecture ``arch`` (see the module doc).

    With ``seed``, the initial weights are a function of the seed only (the global torch RNG
    is left untouched); without it they come from the global RNG.
    Raises :class:`InvalidInput` for an unknown or malformed name.
    """
    builder: Callable[[], nn.Sequential]
    if arch == "cnn-small":
        builder = _cnn_small
    elif arch.startswith("mlp-") or arch == "lenet-300-100":
        builder = partial(_mlp, _parse_hidden(arch))
    else:
        raise InvalidInput(f"unknown architecture {arch!r}; use mlp-H1-H2-... (e.g. "
                           f"mlp-100-100) or one of {', '.join(NAMED_ARCHITECTURES)}")
    if seed is None:
        return builder()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return builder()


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
        _atomic_torch_save(payload, path)
    except OSError as exc:
        raise DataError(f"cannot write checkpoint {path}: {exc.strerror or exc}") from exc
    return path


def _atomic_torch_save(payload: dict[str, Any], path: Path) -> None:
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
    if not path.is_file():
        raise DataError(f"checkpoint {path} does not exist; train one with `robustmip train`")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile) as exc:
        raise DataError(f"checkpoint {path} is corrupt, not a torch file, or holds objects other "
                        f"than plain data and tensors ({type(exc).__name__}); re-create it with "
                        "`robustmip train`") from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise DataError(f"{path} is not a robustmip checkpoint (no format tag "
                        f"{CHECKPOINT_FORMAT!r}); save models with "
                        "robustmip.models.save_checkpoint")
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
