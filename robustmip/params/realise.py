"""Counterexamples as concrete parameters: from a MILP solution to a network that is re-checked.

A solution of the banded encoding gives, for each perturbed layer ``k``, its input ``h`` and its
pre-activations ``a``. Row ``j`` is realised by one relative offset

    Delta_j = (a_j - W0_j h - b0_j) / (R_j |h| + rho_j),  clipped to [-1, 1],
    W_j = W0_j + Delta_j R_j sign(h),   b_j = b0_j + Delta_j rho_j,

so that ``W_j h + b_j = a_j`` (``sign(h) = 1`` for the usual ``h >= 0``). The layers are realised in
order, each on the input that the already realised layers give in float64 (not the solver's values),
so solver tolerances do not add up. The resulting :class:`~robustmip.network.Network` is what every
verdict re-checks with :meth:`~robustmip.network.Network.forward`.
"""

from __future__ import annotations

import numpy as np

from robustmip.milp.encode import EncodedNetwork
from robustmip.network import Network
from robustmip.params.box import Deltas, ParamBox


def row_offsets(W0: np.ndarray, b0: np.ndarray, R: np.ndarray, rho: np.ndarray, h: np.ndarray,
                target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(Delta_W, Delta_b)`` moving ``W0 h + b0`` to ``target`` within the band (NaN target: no move)."""
    width = R @ np.abs(h) + rho
    gap = target - (W0 @ h + b0)
    ok = np.isfinite(target) & (width > 0)
    delta = np.clip(np.where(ok, gap / np.where(ok, width, 1.0), 0.0), -1.0, 1.0)
    return delta[:, None] * np.sign(h)[None, :] * np.ones_like(R), delta


def solution_deltas(net: Network, box: ParamBox, x: np.ndarray, enc: EncodedNetwork) -> Deltas:
    """The offsets that realise ``enc``'s solution (see the module docstring) at input ``x``."""
    deltas: Deltas = {}
    h = np.asarray(x, dtype=np.float64).reshape(-1)
    for k, layer in enumerate(net.layers):
        W, b = layer.W, layer.b
        if k in box.radii:
            R, rho = box.radii[k]
            deltas[k] = row_offsets(W, b, R, rho, h, enc.preactivation_values(k))
            W, b = W + deltas[k][0] * R, b + deltas[k][1] * rho
        a = W @ h + b
        h = np.maximum(a, 0.0) if layer.activation == "relu" else a
    return deltas


def realise_solution(net: Network, box: ParamBox, enc: EncodedNetwork) -> tuple[np.ndarray, Network]:
    """``(x, perturbed network)`` of ``enc``'s solution; ``x`` is projected onto the input box."""
    x = np.clip(enc.input_values(), enc.bounds.input_lower, enc.bounds.input_upper)
    return x, box.realise(net, solution_deltas(net, box, x, enc))
