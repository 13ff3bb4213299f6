"""Linear relaxation with back-substitution to the input (CROWN / DeepPoly), numpy float64.

Each ReLU with bounds ``[l, u]`` is enclosed by ``alpha a <= relu(a) <= slope a + offset``
(:func:`relu_relaxation`); a layer's pre-activation is bounded by substituting these lines back
through every earlier layer to an affine function of the input, bounded over the input box.
"""

from __future__ import annotations

import numpy as np

from robustmip.bounds.result import widen
from robustmip.network import Network


def relu_relaxation(lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linear bounds ``alpha*a <= relu(a) <= slope*a + offset`` valid for ``a`` in ``[lower, upper]``.

    Stable neurons get exact lines; unstable ones the triangle's upper side and the adaptive lower
    line (slope 1 when ``upper > -lower``, else 0), as in CROWN.
    """
    active = lower >= 0.0
    unstable = (lower < 0.0) & (upper > 0.0)
    slope = np.where(active, 1.0, 0.0)
    offset = np.zeros_like(lower)
    width = np.where(unstable, upper - lower, 1.0)
    slope = np.where(unstable, upper / width, slope)
    offset = np.where(unstable, -upper * lower / width, offset)
    alpha = np.where(active, 1.0, 0.0)
    alpha = np.where(unstable, (upper > -lower).astype(np.float64), alpha)
    return alpha, slope, offset


def crown_layer(
    net: Network, k: int, lower: list[np.ndarray], upper: list[np.ndarray], box: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Linear-relaxation bounds of layer ``k``'s pre-activation by back-substitution to the input.

    Args:
        lower, upper: bounds of layers ``0 .. k-1`` (already computed).
        box: the input box.
    """
    layer = net.layers[k]
    lam_lo, lam_up = layer.W.copy(), layer.W.copy()
    const_lo, const_up = layer.b.copy(), layer.b.copy()
    for j in range(k - 1, -1, -1):
        if net.layers[j].activation == "relu":
            alpha, slope, offset = relu_relaxation(lower[j], upper[j])
            pos_lo, neg_lo = np.maximum(lam_lo, 0.0), np.minimum(lam_lo, 0.0)
            const_lo = const_lo + neg_lo @ offset
            lam_lo = pos_lo * alpha + neg_lo * slope
            pos_up, neg_up = np.maximum(lam_up, 0.0), np.minimum(lam_up, 0.0)
            const_up = const_up + pos_up @ offset
            lam_up = pos_up * slope + neg_up * alpha
        W, b = net.layers[j].W, net.layers[j].b
        const_lo, const_up = const_lo + lam_lo @ b, const_up + lam_up @ b
        lam_lo, lam_up = lam_lo @ W, lam_up @ W
    x_lo, x_up = box
    lo = np.maximum(lam_lo, 0.0) @ x_lo + np.minimum(lam_lo, 0.0) @ x_up + const_lo
    up = np.maximum(lam_up, 0.0) @ x_up + np.minimum(lam_up, 0.0) @ x_lo + const_up
    return widen(lo, up)
