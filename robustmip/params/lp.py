"""LP bound tightening over a parameter box: :class:`~robustmip.bounds.tighten.LpTightener` with band rows.

For ``h`` with bounds ``[l, u]`` and radii ``R, rho``, the reachable pre-activations of one row are
``W0 h + b0 -+ (R |h| + rho)``. ``|h_i|`` is ``h_i`` when ``l_i >= 0`` (pixels, ReLU outputs), ``-h_i``
when ``u_i <= 0``, and otherwise at most its chord ``alpha_i h_i + beta_i`` with
``alpha = (u + l) / (u - l)``, ``beta = -2 u l / (u - l)``. Hence the linear band

    (W0 - R diag(alpha)) h + b0 - rho - R beta  <=  a  <=  (W0 + R diag(alpha)) h + b0 + rho + R beta

holds for every reachable ``(h, a)``, and is exact where every sign is fixed. The base class puts it
into the triangle relaxation and certifies every LP bound by weak duality, as for the plain network.
"""

from __future__ import annotations

import numpy as np

from robustmip.bounds.tighten import LpTightener
from robustmip.deadline import Deadline
from robustmip.network import Network
from robustmip.params.box import ParamBox


def chord_of_abs(lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(alpha, beta)`` with ``|h| <= alpha h + beta`` on ``[lower, upper]`` (equality if the sign is fixed)."""
    mixed = (lower < 0.0) & (upper > 0.0)
    width = np.where(mixed, upper - lower, 1.0)
    alpha = np.where(lower >= 0.0, 1.0, np.where(upper <= 0.0, -1.0, (upper + lower) / width))
    beta = np.where(mixed, -2.0 * upper * lower / width, 0.0)
    return alpha, beta


class ParamLpTightener(LpTightener):
    """The LP relaxation of ``net`` with the layers of ``box`` widened to their bands."""

    def __init__(self, net: Network, box: ParamBox, lower: np.ndarray, upper: np.ndarray, threads: int = 1,
                 deadline: Deadline | None = None):
        super().__init__(net, lower, upper, threads=threads, deadline=deadline)
        self.box = box
        self._bands: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}

    def affine_band(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        if k not in self.box.radii:
            return super().affine_band(k)
        if k not in self._bands:
            layer = self.net.layers[k]
            R, rho = self.box.radii[k]
            prev = self._previous_cols(k)
            alpha, beta = chord_of_abs(self.col_lower[prev], self.col_upper[prev])
            spread, offset = R * alpha, R @ beta + rho
            self._bands[k] = (layer.W - spread, layer.b - offset, layer.W + spread, layer.b + offset)
        return self._bands[k]
