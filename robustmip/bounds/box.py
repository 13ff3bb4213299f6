"""Interval bound propagation (IBP): ``[W h + b]`` over a box of ``h``, layer by layer."""

from __future__ import annotations

import numpy as np

from robustmip.bounds.result import widen
from robustmip.layers import AffineLayer


def interval_layer(layer: AffineLayer, h_lower: np.ndarray, h_upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Interval bounds of ``W h + b`` for ``h`` in ``[h_lower, h_upper]``."""
    W_pos, W_neg = np.maximum(layer.W, 0.0), np.minimum(layer.W, 0.0)
    lower = W_pos @ h_lower + W_neg @ h_upper + layer.b
    upper = W_pos @ h_upper + W_neg @ h_lower + layer.b
    return widen(lower, upper)
