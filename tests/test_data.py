"""MNIST loading: IDX reader, torchvision layout, validation, embedded subset, fallback."""

from __future__ import annotations

import gzip
import logging
import os
from pathlib import Path

import numpy as np
import pytest

import robustmip
from robustmip import data
from robustmip.data import (
    MnistNotFound,
    find_mnist_files,
    load_dataset,
    load_embedded_mnist,
    load_mnist,
    read_idx,
)
from robustmip.errors import DataError, InvalidInput


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX encoding of a uint8 array: magic 0x0000 08 ndim, big-endian dims, data."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_split(raw_dir: Path, split: str, images: np.ndarray, labels: np.ndarray,
                gz: bool) -> None:
    """Write the images/labels IDX files of ``split`` into ``raw_dir`` (gzipped if ``gz``)."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    prefix = "train" if split == "train" else "t10k"
    for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
        name = f"{prefix}-{kind}-ubyte"
        payload = idx_bytes(array)
        if gz:
            (raw_dir / f"{name}.gz").write_bytes(gzip.compress(payload))
        else:
            (raw_dir / name).write_bytes(payload)


@pytest.fixture
def synthetic() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return (rng.integers(0, 256, size=(6, 28, 28), dtype=np.uint8),
            rng.integers(0, 10, size=6, dtype=np.uint8))


@pytest.fixture
def no_full_mnist(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ROBUSTMIP_DATA and an empty cache, so only arguments can point at full MNIST."""
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    monkeypatch.setattr(data, "CACHE_DIR", tmp_path / "empty-cache")


def test_gz_and_plain_files_load_identically(tmp_path, synthetic, no_full_mnist):
    images, labels = synthetic
    write_split(tmp_path / "plain" / "MNIST" / "raw", "test", images, labels, gz=False)
    write_split(tmp_path / "gz" / "MNIST" / "raw", "test", images, labels, gz=True)
    x_plain, y_plain = load_mnist("test", tmp_path / "plain", download=False)
    x_gz, y_gz = load_mnist("test", tmp_path / "gz", download=False)
    assert x_plain.dtype == np.float32 and x_plain.shape == (6, 1, 28, 28)
    assert y_plain.dtype == np.int64 and y_plain.shape == (6,)
    np.testing.assert_array_equal(x_plain, x_gz)
    np.testing.assert_array_equal(y_plain, y_gz)
    np.testing.assert_array_equal(x_plain[:, 0], images.astype(np.float32) / 255)
    np.testing.assert_array_equal(y_plain, labels)
    assert 0.0 <= x_plain.min() and x_plain.max() <= 1.0


@pytest.mark.parametrize("layout", ["MNIST/raw", "raw", "."])
def test_accepts_root_mnist_or_raw_folder(tmp_path, synthetic, layout, no_full_mnist):
    """data_dir may hold MNIST/raw, be MNIST (holding raw) or be the raw folder itself."""
    images, labels = synthetic
    raw = tmp_path / "MNIST" / "raw"
    write_split(raw, "train", images, labels, gz=True)
    root = {"MNIST/raw": tmp_path, "raw": tmp_path / "MNIST", ".": raw}[layout]
    x, y = load_mnist("train", root, download=False)
    assert len(x) == len(y) == 6


def test_bad_magic_number_is_rejected(tmp_path, synthetic):
    path = tmp_path / "bad"
    path.write_bytes(b"\x00\x00\x0d\x03" + idx_bytes(synthetic[0])[4:])
    with pytest.raises(DataError, match="magic"):
        read_idx(path)
    path.write_bytes(b"PK\x03\x04 not an idx file")
    with pytest.raises(DataError, match="magic"):
        read_idx(path)


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_file_is_rejected(tmp_path, synthetic, gz):
    payload = idx_bytes(synthetic[0])
    path = tmp_path / "images"
    if gz:  # a cut gzip stream, as left by an interrupted download
        path.write_bytes(gzip.compress(payload)[:200])
        match = "gzip"
    else:
        path.write_bytes(payload[:-100])
        match = "truncated"
    with pytest.raises(DataError, match=match):
        read_idx(path)


def test_truncated_header_and_empty_file_are_rejected(tmp_path):
    path = tmp_path / "short"
    path.write_bytes(bytes([0, 0, 8, 3, 0, 0]))
    with pytest.raises(DataError, match="header"):
        read_idx(path)
    path.write_bytes(b"")
    with pytest.raises(DataError, match="too short"):
        read_idx(path)


def test_image_label_count_mismatch_is_rejected(tmp_path, synthetic, no_full_mnist):
    images, labels = synthetic
    write_split(tmp_path / "MNIST" / "raw", "test", images, labels[:5], gz=False)
    with pytest.raises(DataError, match="6 images but 5 labels"):
        load_mnist("test", tmp_path, download=False)


def test_out_of_range_label_is_rejected(tmp_path, synthetic, no_full_mnist):
    images, labels = synthetic
    write_split(tmp_path / "MNIST" / "raw", "test", images, np.full(6, 12, np.uint8), gz=False)
    with pytest.raises(DataError, match="out of range"):
        load_mnist("test", tmp_path, download=False)


def test_missing_files_raise_not_found(tmp_path, no_full_mnist):
    with pytest.raises(MnistNotFound, match="no MNIST test IDX files"):
        load_mnist("test", tmp_path, download=False)
    with pytest.raises(MnistNotFound, match="not found"):
        load_mnist("test", download=False)
    assert find_mnist_files(tmp_path, "train") is None


def test_environment_variable_is_used(tmp_path, synthetic, monkeypatch, no_full_mnist):
    write_split(tmp_path / "MNIST" / "raw", "test", *synthetic, gz=True)
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path))
    x, _ = load_mnist("test", download=False)
    assert len(x) == 6


def test_unknown_split_is_invalid_input():
    with pytest.raises(InvalidInput, match="split"):
        load_embedded_mnist("validation")
    with pytest.raises(InvalidInput, match="source"):
        load_dataset("test", source="somewhere")


def test_embedded_subset_content():
    x_train, y_train = load_embedded_mnist("train")
    x_test, y_test = load_embedded_mnist("test")
    assert x_train.shape == (5000, 1, 28, 28) and x_test.shape == (1000, 1, 28, 28)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y_train), np.full(10, 500))
    assert 0.0 == x_train.min() and x_train.max() == 1.0
    np.testing.assert_array_equal(y_test[:5], [7, 2, 1, 0, 4])  # the first MNIST test labels


def test_missing_embedded_asset_is_a_data_error(monkeypatch):
    monkeypatch.setattr(data, "EMBEDDED_ASSET", "no_such_subset.npz")
    with pytest.raises(DataError, match="missing or corrupt"):
        load_embedded_mnist("test")


def test_embedded_asset_is_small_and_attributed():
    assets = Path(robustmip.__file__).parent / "assets"
    assert (assets / "mnist_subset.npz").stat().st_size < 3_000_000
    text = (assets / "MNIST_ATTRIBUTION.md").read_text()
    assert "LeCun" in text and "CC BY-SA 3.0" in text


def test_auto_falls_back_to_embedded_with_warning(no_full_mnist, caplog):
    with caplog.at_level(logging.WARNING, logger="robustmip.data"):
        dataset = load_dataset("test", "auto", download=False)
    assert dataset.source == "embedded" and len(dataset) == 1000
    assert "embedded subset" in caplog.text


def test_auto_does_not_hide_a_wrong_explicit_directory(tmp_path, no_full_mnist):
    with pytest.raises(MnistNotFound):
        load_dataset("test", "auto", data_dir=tmp_path, download=False)
    with pytest.raises(MnistNotFound):
        load_dataset("test", "full", download=False)


def test_dataset_fingerprint_and_source(tmp_path, synthetic, no_full_mnist):
    write_split(tmp_path / "MNIST" / "raw", "test", *synthetic, gz=False)
    full = load_dataset("test", "auto", data_dir=tmp_path)
    again = load_dataset("test", "full", data_dir=tmp_path)
    embedded = load_dataset("test", "embedded")
    assert full.source == "full" and embedded.source == "embedded"
    assert full.fingerprint == again.fingerprint == data.fingerprint(full.images, full.labels)
    assert len(full.fingerprint) == 64 and full.fingerprint != embedded.fingerprint
    head = embedded.head(10)
    assert len(head) == 10 and head.fingerprint != embedded.fingerprint


def test_source_never_names_the_shared_data_folder():
    package = Path(robustmip.__file__).parent
    for path in package.rglob("*.py"):
        assert "shared/data" not in path.read_text(), path


@pytest.mark.skipif(not os.environ.get(data.ENV_VAR), reason="needs full MNIST in ROBUSTMIP_DATA")
def test_full_mnist_test_split_matches_embedded_subset():
    x, y = load_mnist("test", download=False)
    assert x.shape == (10000, 1, 28, 28) and y.shape == (10000,)
    x_sub, y_sub = load_embedded_mnist("test")
    np.testing.assert_array_equal(x[:1000], x_sub)
    np.testing.assert_array_equal(y[:1000], y_sub)
