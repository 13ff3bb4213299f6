"""MNIST loading: IDX files (gzipped or not), torchvision's layout, and the embedded subset.

Images are returned as ``float32`` arrays of shape ``(N, 1, 28, 28)`` with pixel values in
``[0, 1]`` (raw byte / 255); labels as ``int64`` arrays of shape ``(N,)`` with values ``0..9``.

Where full MNIST is looked for, in this order (the first one that is *given* is the only one
searched, so a wrong path is reported instead of silently replaced):

1. the ``data_dir`` argument (the CLI's ``--data-dir``);
2. the environment variable ``ROBUSTMIP_DATA``;
3. the cache ``~/.cache/robustmip``, downloading into it with torchvision when ``download=True``.

Each of these may point at a folder holding ``MNIST/raw``, at ``MNIST`` itself, or at the
``MNIST/raw`` folder with the four IDX files (``train-images-idx3-ubyte[.gz]``, ...).

The embedded subset (``robustmip/assets/mnist_subset.npz``, made by
``scripts/make_mnist_subset.py``) has 5000 training images (500 per class) and the first 1000
test images; ``load_dataset(source="auto")`` falls back to it when full MNIST is not available.
:func:`load_iris` reads Fisher's Iris data, also shipped (``robustmip/assets/iris.csv``).
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.resources
import logging
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from robustmip.errors import DataError, InvalidInput
from robustmip.network import Network

logger = logging.getLogger(__name__)

ENV_VAR = "ROBUSTMIP_DATA"
CACHE_DIR = Path.home() / ".cache" / "robustmip"
EMBEDDED_ASSET = "mnist_subset.npz"
SPLITS = ("train", "test")
IMAGE_SIDE = 28

_FILE_PREFIX = {"train": "train", "test": "t10k"}
_IDX_UBYTE = 0x08
_GZIP_MAGIC = b"\x1f\x8b"

Source = Literal["auto", "full", "embedded"]


class MnistNotFound(DataError):
    """Full MNIST is not in any of the places searched (and could not be downloaded)."""


@dataclass(frozen=True)
class Dataset:
    """One split of MNIST as arrays, with where it came from.

    Attributes:
        images: ``float32`` array ``(N, 1, 28, 28)``, values in ``[0, 1]``.
        labels: ``int64`` array ``(N,)``, values ``0..9``.
        source: ``"full"`` (the IDX files) or ``"embedded"`` (the shipped subset).
        split: ``"train"`` or ``"test"``.
        fingerprint: sha256 hex digest of the arrays (see :func:`fingerprint`).
    """

    images: np.ndarray
    labels: np.ndarray
    source: str
    split: str
    fingerprint: str

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def head(self, n: int) -> Dataset:
        """The first ``n`` examples (all of them if ``n`` exceeds the size), fingerprinted anew."""
        if n < 1:
            raise InvalidInput(f"n must be at least 1, got {n}")
        return _make_dataset(self.images[:n], self.labels[:n], self.source, self.split)


def fingerprint(images: np.ndarray, labels: np.ndarray) -> str:
    """sha256 hex digest of the shapes, dtypes and bytes of ``images`` and ``labels``."""
    digest = hashlib.sha256()
    for array in (images, labels):
        contiguous = np.ascontiguousarray(array)
        digest.update(f"{contiguous.dtype.str}{contiguous.shape}".encode())
        digest.update(contiguous.tobytes())
    return digest.hexdigest()


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file of unsigned bytes (gzipped or not, detected from its content).

    Returns a ``uint8`` array whose shape is the one in the file's header.
    Raises :class:`DataError` for a missing, unreadable, truncated or malformed file.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise DataError(f"{path}: file too short for an IDX header ({len(raw)} bytes); "
                        "re-download the MNIST files")
    if raw[0] != 0 or raw[1] != 0 or raw[2] != _IDX_UBYTE or raw[3] == 0:
        raise DataError(f"{path}: bad IDX magic number 0x{raw[:4].hex()} (expected "
                        f"0x0000{_IDX_UBYTE:02x}NN for unsigned bytes); is this an MNIST IDX file?")
    ndim = raw[3]
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise DataError(f"{path}: truncated IDX header; re-download the MNIST files")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape, dtype=np.int64))
    actual = len(raw) - header_len
    if actual != expected:
        state = "truncated" if actual < expected else "longer than its header says"
        raise DataError(f"{path}: file is {state} ({actual} data bytes, header {shape} needs "
                        f"{expected}); re-download the MNIST files")
    return np.frombuffer(raw, dtype=np.uint8, offset=header_len).reshape(shape)


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed when it starts with the gzip magic number."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: corrupt or truncated gzip data ({exc}); "
                        "re-download the MNIST files") from exc


def _idx_stem(split: str, kind: str) -> str:
    """File name without ``.gz`` of the images (``kind="images"``) or labels of ``split``."""
    suffix = "images-idx3-ubyte" if kind == "images" else "labels-idx1-ubyte"
    return f"{_FILE_PREFIX[split]}-{suffix}"


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise InvalidInput(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")


def _find_idx_file(raw_dir: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (raw_dir / name).is_file():
            return raw_dir / name
    return None


def find_mnist_files(root: str | Path, split: str) -> tuple[Path, Path] | None:
    """Paths of the images and labels IDX files of ``split`` under ``root``, or None.

    ``root`` may hold ``MNIST/raw``, be ``MNIST`` itself, or be the ``raw`` folder.
    The uncompressed file is preferred when both it and its ``.gz`` exist.
    """
    _check_split(split)
    root = Path(root).expanduser()
    for raw_dir in (root / "MNIST" / "raw", root / "raw", root):
        images = _find_idx_file(raw_dir, _idx_stem(split, "images"))
        labels = _find_idx_file(raw_dir, _idx_stem(split, "labels"))
        if images is not None and labels is not None:
            return images, labels
    return None


def _download(split: str) -> tuple[Path, Path]:
    """Download MNIST into :data:`CACHE_DIR` with torchvision; MnistNotFound when that fails."""
    try:
        from torchvision.datasets import MNIST

        MNIST(str(CACHE_DIR), train=(split == "train"), download=True)
    except Exception as exc:  # torchvision raises RuntimeError, URLError, OSError, ...
        raise MnistNotFound(
            f"MNIST is not in {CACHE_DIR} and downloading it failed ({exc}); pass --data-dir "
            f"or set {ENV_VAR} to a folder with MNIST/raw, or use the embedded subset") from exc
    found = find_mnist_files(CACHE_DIR, split)
    if found is None:
        raise MnistNotFound(f"torchvision downloaded MNIST but its files are not in {CACHE_DIR}")
    return found


def locate_mnist(split: str, data_dir: str | Path | None = None,
                 download: bool = True) -> tuple[Path, Path]:
    """Paths ``(images, labels)`` of full MNIST's ``split``, searched as the module doc says.

    Raises :class:`MnistNotFound` (a :class:`DataError`) with the places searched.
    """
    _check_split(split)
    for given, origin in ((data_dir, "data_dir"), (os.environ.get(ENV_VAR) or None, ENV_VAR)):
        if given is not None:
            found = find_mnist_files(given, split)
            if found is None:
                raise MnistNotFound(
                    f"no MNIST {split} IDX files ({_idx_stem(split, 'images')}[.gz] and "
                    f"{_idx_stem(split, 'labels')}[.gz]) under {given} (from {origin}); point it "
                    "at the folder holding MNIST/raw")
            return found
    cached = find_mnist_files(CACHE_DIR, split)
    if cached is not None:
        return cached
    if not download:
        raise MnistNotFound(f"MNIST not found: pass --data-dir, set {ENV_VAR}, or allow the "
                            f"download into {CACHE_DIR}")
    return _download(split)


def _to_float_images(images: np.ndarray) -> np.ndarray:
    """uint8 ``(N, 28, 28)`` -> float32 ``(N, 1, 28, 28)`` in ``[0, 1]``."""
    return (images.astype(np.float32) / np.float32(255.0))[:, None, :, :]


def _check_pair(images: np.ndarray, labels: np.ndarray, what: str) -> None:
    """DataError unless images are ``(N, 28, 28)``, labels ``(N,)`` with values in 0..9."""
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise DataError(f"{what}: images have shape {images.shape}, expected (N, 28, 28)")
    if labels.ndim != 1:
        raise DataError(f"{what}: labels have shape {labels.shape}, expected (N,)")
    if images.shape[0] != labels.shape[0]:
        raise DataError(f"{what}: {images.shape[0]} images but {labels.shape[0]} labels; "
                        "the files do not belong together, re-download them")
    if labels.size and int(labels.max()) > 9:
        raise DataError(f"{what}: label {int(labels.max())} out of range 0..9")


def load_mnist(split: str, data_dir: str | Path | None = None,
               download: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Full MNIST ``split`` ("train": 60000, "test": 10000 images) from its IDX files.

    Returns ``(images, labels)``: float32 ``(N, 1, 28, 28)`` in ``[0, 1]`` and int64 ``(N,)``.
    Raises :class:`MnistNotFound` when the files are not found, :class:`DataError` when they
    are corrupt (bad magic number, truncated, image/label count mismatch).
    """
    images_path, labels_path = locate_mnist(split, data_dir, download)
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    _check_pair(images, labels, f"{images_path} / {labels_path}")
    return _to_float_images(images), labels.astype(np.int64)


def load_embedded_mnist(split: str) -> tuple[np.ndarray, np.ndarray]:
    """The shipped MNIST subset: 5000 training (500 per class) or the first 1000 test images.

    Same array conventions as :func:`load_mnist`.
    """
    _check_split(split)
    asset = importlib.resources.files("robustmip") / "assets" / EMBEDDED_ASSET
    try:
        with asset.open("rb") as handle, np.load(handle) as archive:
            images = archive[f"{split}_images"]
            labels = archive[f"{split}_labels"]
    except (OSError, KeyError, ValueError, zlib.error, zipfile.BadZipFile) as exc:
        raise DataError(f"embedded MNIST subset {asset} is missing or corrupt ({exc}); "
                        "reinstall robustmip or rebuild it with scripts/make_mnist_subset.py"
                        ) from exc
    _check_pair(images, labels, str(asset))
    return _to_float_images(images), labels.astype(np.int64)


def _make_dataset(images: np.ndarray, labels: np.ndarray, source: str, split: str) -> Dataset:
    return Dataset(images, labels, source, split, fingerprint(images, labels))


def load_dataset(split: str, source: Source = "auto", data_dir: str | Path | None = None,
                 download: bool = True) -> Dataset:
    """MNIST ``split`` as a :class:`Dataset` from full MNIST or the embedded subset.

    ``source="full"`` requires the IDX files; ``"embedded"`` uses the shipped subset;
    ``"auto"`` uses full MNIST when found, else logs a warning and uses the subset. With
    ``"auto"``, a ``data_dir`` (or ``ROBUSTMIP_DATA``) that does not hold MNIST is an error,
    not a reason to fall back: it was asked for explicitly.
    """
    _check_split(split)
    if source not in ("auto", "full", "embedded"):
        raise InvalidInput(f"unknown data source {source!r}; use auto, full or embedded")
    if source == "embedded":
        return _make_dataset(*load_embedded_mnist(split), "embedded", split)
    explicit = data_dir is not None or bool(os.environ.get(ENV_VAR))
    try:
        return _make_dataset(*load_mnist(split, data_dir, download), "full", split)
    except MnistNotFound as exc:
        if source == "full" or explicit:
            raise
        logger.warning("full MNIST not available (%s); using the embedded subset "
                       "(5000 train / 1000 test images)", exc)
    return _make_dataset(*load_embedded_mnist(split), "embedded", split)


DEMO_NET = "demo_mlp_32_32.npz"
"""The shipped 784-32-32-10 MNIST net of ``robustmip demo`` (made by scripts/make_demo_net.py)."""


def load_demo_network() -> Network:
    """The shipped demo :class:`~robustmip.network.Network` (784-32-32-10, input shape (1, 28, 28))."""
    with importlib.resources.as_file(importlib.resources.files("robustmip") / "assets" / DEMO_NET) as path:
        return Network.load(path)


IRIS_ASSET = "iris.csv"
IRIS_CLASSES = ("setosa", "versicolor", "virginica")


def load_iris() -> tuple[np.ndarray, np.ndarray]:
    """Fisher's Iris data (``robustmip/assets/iris.csv``, see ``IRIS_ATTRIBUTION.md``).

    Returns float64 features ``(150, 4)`` in centimetres (sepal length, sepal width, petal length,
    petal width) and int64 labels ``(150,)``, indices into :data:`IRIS_CLASSES`.
    """
    text = (importlib.resources.files("robustmip") / "assets" / IRIS_ASSET).read_text()
    rows = [line.split(",") for line in text.strip().splitlines()[1:]]
    features = np.array([[float(v) for v in row[:4]] for row in rows])
    labels = np.array([IRIS_CLASSES.index(row[4]) for row in rows], dtype=np.int64)
    if features.shape != (150, 4):
        raise DataError(f"{IRIS_ASSET} is damaged: {features.shape} values; reinstall robustmip")
    return features, labels


def load_image_file(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)`` from a ``.npz`` with arrays ``images`` (N, ...) in [0, 1] and ``labels`` (N,).

    DataError when the file is missing, unreadable, lacks an array, or the shapes or values do not fit.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"image file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            images = np.asarray(archive["images"], dtype=np.float64)
            labels = np.asarray(archive["labels"])
    except KeyError as exc:
        raise DataError(f"{path} lacks the array {exc}; it needs 'images' and 'labels'") from exc
    except (OSError, ValueError, zlib.error, zipfile.BadZipFile) as exc:
        raise DataError(f"cannot read {path} as a .npz of images and labels ({exc})") from exc
    if images.ndim < 2 or labels.shape != (images.shape[0],):
        raise DataError(f"{path}: images {images.shape} and labels {labels.shape} do not pair up (N, ...) / (N,)")
    if not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{path}: labels must be integers, got {labels.dtype}")
    if not np.isfinite(images).all() or images.min() < 0 or images.max() > 1:
        raise DataError(f"{path}: images must be finite values in [0, 1]")
    return images, labels.astype(np.int64)
