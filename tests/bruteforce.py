"""Exact optima of tiny ReLU networks by enumerating activation patterns (one LP per pattern).

Independent of robustmip's bounds and big-M encoding: on a fixed pattern the network is affine, the
pattern's region is a polyhedron (``a_j >= 0`` for active, ``a_j <= 0`` for inactive neurons), and the
optimum over the box is the best of the per-pattern LP optima.
"""

from __future__ import annotations

import itertools
from typing import Sequence

import highspy
import numpy as np

from robustmip.network import Network


def _lp_min(c: np.ndarray, A_ub: np.ndarray, b_ub: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float | None:
    """``min c.x`` s.t. ``A_ub x <= b_ub``, box; None when infeasible."""
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("primal_feasibility_tolerance", 1e-10)
    h.setOptionValue("dual_feasibility_tolerance", 1e-10)
    n = c.shape[0]
    h.addVars(n, lower, upper)
    h.changeColsCost(n, np.arange(n, dtype=np.int32), c)
    for row, rhs in zip(A_ub, b_ub):
        nz = np.flatnonzero(row).astype(np.int32)
        h.addRow(-highspy.kHighsInf, float(rhs), len(nz), nz, row[nz])
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    return float(h.getInfo().objective_function_value)


def pattern_regions(net: Network):
    """Yield ``(pre, A_ub, b_ub)`` per activation pattern: on the region ``A_ub x <= b_ub`` the
    pre-activation of layer ``k`` is ``pre[k][0] @ x + pre[k][1]`` (the last entry gives the logits)."""
    relu_sizes = [layer.n_out for layer in net.layers if layer.activation == "relu"]
    for bits in itertools.product([0, 1], repeat=sum(relu_sizes)):
        M, m = np.eye(net.n_inputs), np.zeros(net.n_inputs)
        rows, rhs, pre = [], [], []
        pos = 0
        for layer in net.layers:
            A, c = layer.W @ M, layer.W @ m + layer.b
            pre.append((A, c))
            if layer.activation == "relu":
                on = np.array(bits[pos:pos + layer.n_out], dtype=bool)
                pos += layer.n_out
                rows.append(np.where(on[:, None], -A, A))  # active: -a <= 0; inactive: a <= 0
                rhs.append(np.where(on, c, -c))
                A, c = A * on[:, None], c * on
            M, m = A, c
        yield pre, np.vstack(rows), np.concatenate(rhs)


def exact_min(
    net: Network, coefficients: np.ndarray, lower: np.ndarray, upper: np.ndarray,
    splits: Sequence[tuple[int, int, int]] = (),
) -> float:
    """``min_{x in box} coefficients . logits(x)``, restricted by ``splits``: ``(layer k, neuron j, sign)``
    keeps only inputs with ``sign * a_kj(x) >= 0`` (+1 active, -1 inactive; inf when none is left)."""
    best = np.inf
    for pre, A_ub, b_ub in pattern_regions(net):
        for k, j, sign in splits:  # sign * (A x + c) >= 0  <=>  -sign * A x <= sign * c
            A_ub = np.vstack([A_ub, -sign * pre[k][0][j]])
            b_ub = np.append(b_ub, sign * pre[k][1][j])
        M, m = pre[-1]
        value = _lp_min(coefficients @ M, A_ub, b_ub, lower, upper)
        if value is not None:
            best = min(best, value + float(coefficients @ m))
    return best


def exact_preactivation_ranges(net: Network, lower: np.ndarray, upper: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Exact ``[min, max]`` of every pre-activation over the box."""
    ranges = [(np.full(layer.n_out, np.inf), np.full(layer.n_out, -np.inf)) for layer in net.layers]
    for pre, A_ub, b_ub in pattern_regions(net):
        if _lp_min(np.zeros(net.n_inputs), A_ub, b_ub, lower, upper) is None:
            continue
        for k, (A, c) in enumerate(pre):
            for j in range(A.shape[0]):
                lo = _lp_min(A[j], A_ub, b_ub, lower, upper)
                hi = -_lp_min(-A[j], A_ub, b_ub, lower, upper)
                ranges[k][0][j] = min(ranges[k][0][j], lo + c[j])
                ranges[k][1][j] = max(ranges[k][1][j], hi + c[j])
    return ranges
