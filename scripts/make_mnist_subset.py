"""Build robustmip/assets/mnist_subset.npz, the MNIST subset shipped with robustmip.

Content (all ``uint8``): ``train_images`` (5000, 28, 28) with ``train_labels`` (5000,): 500
images of each class drawn without replacement from the 60000 training images with
``numpy.random.default_rng(SEED)``, kept in their original order; ``test_images`` (1000, 28, 28)
with ``test_labels`` (1000,): the first 1000 test images. ``train_indices`` / ``test_indices``
(int32) give each image's position in the original files.

Usage: python scripts/make_mnist_subset.py --data-dir DIR [--out PATH]
(DIR holds MNIST/raw with the IDX files, gzipped or not; see robustmip.data).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from robustmip.data import locate_mnist, read_idx

SEED = 20240501
PER_CLASS = 500
N_TEST = 1000
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "robustmip" / "assets" / "mnist_subset.npz"


def balanced_indices(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Sorted indices of ``per_class`` examples of each label, drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    chosen = [rng.choice(np.flatnonzero(labels == c), size=per_class, replace=False)
              for c in np.unique(labels)]
    return np.sort(np.concatenate(chosen)).astype(np.int32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="folder with MNIST/raw")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()

    train_images, train_labels = (read_idx(p) for p in locate_mnist("train", args.data_dir, False))
    test_images, test_labels = (read_idx(p) for p in locate_mnist("test", args.data_dir, False))
    train_idx = balanced_indices(train_labels, PER_CLASS, SEED)
    test_idx = np.arange(N_TEST, dtype=np.int32)
    np.savez_compressed(
        args.out,
        train_images=train_images[train_idx], train_labels=train_labels[train_idx],
        test_images=test_images[test_idx], test_labels=test_labels[test_idx],
        train_indices=train_idx, test_indices=test_idx)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB): "
          f"{len(train_idx)} train, {len(test_idx)} test images")


if __name__ == "__main__":
    main()
