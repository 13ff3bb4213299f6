"""Interval bounds of a layer whose weights and biases lie in a box (numpy float64).

For ``W`` in ``[W0 - R, W0 + R]``, ``b`` in ``[b0 - rho, b0 + rho]`` and ``h`` in ``[h_lo, h_up]``
(every entry independent), each term ``W_ji h_i`` ranges over the interval spanned by the four corner
products, and the terms of one row share no variable but ``h_i``, which appears once per row: so

    min_j a_j = sum_i min(corner products) + b0_j - rho_j        (likewise max)

is the exact range of each pre-activation over the box for an independent ``h`` (exact on layer 0;
later layers inherit the usual interval over-approximation). Widened like every robustmip bound.
"""

from __future__ import annotations

import numpy as np

from robustmip.bounds.result import widen


def param_interval_layer(
    W0: np.ndarray, b0: np.ndarray, R: np.ndarray, rho: np.ndarray, h_lower: np.ndarray, h_upper: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of ``W h + b`` over the parameter box and ``h`` in ``[h_lower, h_upper]``.

    Args:
        W0, R: ``(n_out, n_in)``; b0, rho: ``(n_out,)``; h_lower, h_upper: ``(n_in,)``.

    Returns:
        ``(lower, upper)``, float64 ``(n_out,)`` each.
    """
    W_lo, W_up = W0 - R, W0 + R
    corners = np.stack([W_lo * h_lower, W_lo * h_upper, W_up * h_lower, W_up * h_upper])
    lower = corners.min(axis=0).sum(axis=1) + b0 - rho
    upper = corners.max(axis=0).sum(axis=1) + b0 + rho
    return widen(lower, upper)
