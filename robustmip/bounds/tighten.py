"""LP (and per-neuron MILP) bound tightening over the triangle relaxation, certified by weak duality.

An :class:`LpTightener` holds one incremental highspy model of the network's relaxation; each
unstable neuron's bound is an LP (or, as MIPVerify's progressive bounds, a short MILP over the exact
big-M encoding of the earlier layers). LP values are not trusted as such: each is re-derived from the
solver's dual multipliers (:func:`certified_lp_minimum`), and a MILP contributes only its proven dual
bound, widened by ``MILP_SLACK``.
"""

from __future__ import annotations

import highspy
import numpy as np

from robustmip.bounds.result import ROUNDING_SLACK
from robustmip.deadline import Deadline
from robustmip.network import Network
from robustmip.solvers import new_highs, use_highs_threads

MILP_SLACK = 1e-6
"""A MILP bound is widened by ``1e-6 (1 + |bound|)`` against the solver's feasibility and
integrality tolerances (``1e-6``), which can only enlarge its relaxation (weaken its bound)."""
SIGN_CUTOFF = 1e-5
"""A sign-deciding MILP proves ``a >= 1e-5`` (or ``a <= -1e-5``), so a neuron it proves stable stays
stable by a clear margin after every widening (alpha-beta-CROWN's refinement uses the same 1e-5)."""


def certified_lp_minimum(
    cost: np.ndarray,
    col_lower: np.ndarray,
    col_upper: np.ndarray,
    rows: tuple[np.ndarray, np.ndarray, np.ndarray],
    row_lower: np.ndarray,
    row_upper: np.ndarray,
    row_dual: np.ndarray,
) -> float:
    """A lower bound on ``min cost.x`` s.t. ``row_lower <= A x <= row_upper``, ``col bounds`` (weak duality).

    Valid for *any* multipliers ``row_dual``: ``cost.x = (cost - A^T y).x + y.(A x)``, and each term is
    bounded below over the (finite) column box and the row ranges. Multipliers that point at an
    infinite row side are set to zero. With the solver's optimal duals the bound equals the LP
    optimum up to rounding; with poor duals it is weaker but still sound.

    Args:
        rows: ``(row index, column index, value)`` triplets of the sparse matrix ``A``.
    """
    y = np.where((row_dual > 0) & ~np.isfinite(row_lower), 0.0, row_dual)
    y = np.where((y < 0) & ~np.isfinite(row_upper), 0.0, y)
    row_idx, col_idx, values = rows
    reduced = cost - np.bincount(col_idx, weights=values * y[row_idx], minlength=cost.shape[0])
    row_term = np.where(y > 0, y * np.where(y > 0, row_lower, 0.0), y * np.where(y < 0, row_upper, 0.0)).sum()
    col_term = np.where(reduced > 0, reduced * col_lower, reduced * col_upper).sum()
    return float(row_term + col_term)


class LpTightener:
    """Incremental LP (or MILP) over a relaxation of a network, used to tighten bounds layer by layer.

    Columns are the inputs and the post-activations ``h_k`` of the layers added so far; each added
    layer contributes an equality row per stable-active or identity neuron and two rows (``h >= a``,
    triangle upper side) per unstable ReLU. Stably inactive neurons are columns fixed at 0.

    Each layer's pre-activation is taken from :meth:`affine_band`: ``W h_prev + b`` for the plain
    network; a subclass may widen it to a band ``W_lo h_prev + b_lo <= a <= W_hi h_prev + b_hi``
    (parameter boxes, :mod:`robustmip.params.lp`), whose rows then replace the equalities: the lower
    side in ``h >= a``, the upper side in the triangle's and the big-M upper rows, both sides around
    an exact neuron, and the LP bounds minimise the lower side and maximise the upper side.

    With ``binaries=True`` every unstable ReLU also gets an indicator column ``v`` in ``[0, 1]`` and the
    two big-M rows of :mod:`robustmip.milp.encode` (``h <= u v``, ``h <= a - l (1 - v)``). Their LP
    relaxation is exactly the triangle, so LP bounds do not change; declaring the indicators integer
    (``tighten_layer(..., exact=True)``) turns the model into the exact MILP of the earlier layers.
    """

    def __init__(
        self, net: Network, lower: np.ndarray, upper: np.ndarray, threads: int = 1,
        deadline: Deadline | None = None, binaries: bool = False,
    ):
        self.net = net
        self.deadline = deadline or Deadline()
        self.binaries = binaries
        self.solves = 0
        self.milp_solves = 0
        self.threads = int(threads)
        self.highs = new_highs(self.threads)
        self.col_lower = lower.copy()
        self.col_upper = upper.copy()
        self.layer_cols: list[np.ndarray] = []
        self.indicator_cols = np.zeros(0, dtype=np.int32)
        self.input_cols = np.arange(lower.shape[0])
        self.highs.addVars(lower.shape[0], lower, upper)
        self.row_idx = np.zeros(0, dtype=np.int64)
        self.col_idx = np.zeros(0, dtype=np.int64)
        self.values = np.zeros(0)
        self.row_lower = np.zeros(0)
        self.row_upper = np.zeros(0)

    def affine_band(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(W_lo, b_lo, W_hi, b_hi)`` with ``W_lo h + b_lo <= a_k <= W_hi h + b_hi`` over the relaxation.

        The plain network's ``(W, b, W, b)`` (the same arrays, so the rows stay equalities).
        """
        layer = self.net.layers[k]
        return layer.W, layer.b, layer.W, layer.b

    def _previous_cols(self, k: int) -> np.ndarray:
        return self.input_cols if k == 0 else self.layer_cols[k - 1]

    def _add_cols(self, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
        first_col = self.col_lower.shape[0]
        self.highs.addVars(lower.shape[0], lower, upper)
        self.col_lower = np.concatenate([self.col_lower, lower])
        self.col_upper = np.concatenate([self.col_upper, upper])
        return np.arange(first_col, first_col + lower.shape[0])

    def add_layer(self, k: int, lower: np.ndarray, upper: np.ndarray) -> None:
        """Add layer ``k``'s post-activation columns and relaxation rows, using its final bounds."""
        if k == len(self.net.layers) - 1:
            return
        layer = self.net.layers[k]
        relu = layer.activation == "relu"
        h_lo = np.maximum(lower, 0.0) if relu else lower
        h_up = np.maximum(upper, 0.0) if relu else upper
        cols = self._add_cols(h_lo, h_up)
        self.layer_cols.append(cols)
        prev = self._previous_cols(k)

        exact = (lower >= 0) if relu else np.ones(layer.n_out, dtype=bool)
        unstable = np.flatnonzero((lower < 0) & (upper > 0)) if relu else np.zeros(0, dtype=np.int64)
        W_lo, b_lo, W_hi, b_hi = self.affine_band(k)
        # A row: (columns, coefficients, lower, upper) over [own column(s), previous layer].
        blocks: list[tuple[np.ndarray, np.ndarray, float, float]] = []
        for i in np.flatnonzero(exact):  # h - W h_prev = b for identity / stably active neurons
            if W_lo is W_hi:
                blocks.append(self._row(cols[i], 1.0, layer.W[i], prev, layer.b[i], layer.b[i]))
            else:
                blocks.append(self._row(cols[i], 1.0, W_lo[i], prev, b_lo[i], np.inf))
                blocks.append(self._row(cols[i], 1.0, W_hi[i], prev, -np.inf, b_hi[i]))
        for i in unstable:
            slope = upper[i] / (upper[i] - lower[i])
            blocks.append(self._row(cols[i], 1.0, W_lo[i], prev, b_lo[i], np.inf))  # h >= W h_prev + b
            blocks.append(self._row(cols[i], 1.0, slope * W_hi[i], prev, -np.inf, slope * (b_hi[i] - lower[i])))
        if self.binaries and unstable.shape[0]:
            v_cols = self._add_cols(np.zeros(unstable.shape[0]), np.ones(unstable.shape[0]))
            self.indicator_cols = np.concatenate([self.indicator_cols, v_cols.astype(np.int32)])
            for i, v in zip(unstable, v_cols):
                own = np.array([cols[i], v])
                blocks.append((own, np.array([1.0, -upper[i]]), -np.inf, 0.0))  # h <= u v
                # h <= W h_prev + b - l (1 - v)
                blocks.append(self._row(own, np.array([1.0, -lower[i]]), W_hi[i], prev, -np.inf, b_hi[i] - lower[i]))
        if blocks:
            self._add_rows(blocks)

    @staticmethod
    def _row(own_cols, own_coefs, w_row: np.ndarray, prev: np.ndarray, lo: float, up: float):
        nz = np.flatnonzero(w_row)
        return (
            np.concatenate([np.atleast_1d(own_cols), prev[nz]]),
            np.concatenate([np.atleast_1d(own_coefs), -w_row[nz]]),
            lo,
            up,
        )

    def _add_rows(self, blocks: list[tuple[np.ndarray, np.ndarray, float, float]]) -> None:
        first_row = self.row_lower.shape[0]
        lengths = [cols.shape[0] for cols, _, _, _ in blocks]
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int32)
        idx = np.concatenate([cols for cols, _, _, _ in blocks]).astype(np.int32)
        val = np.concatenate([coefs for _, coefs, _, _ in blocks]).astype(np.float64)
        lows = np.array([lo for _, _, lo, _ in blocks], dtype=np.float64)
        ups = np.array([up for _, _, _, up in blocks], dtype=np.float64)
        self.highs.addRows(
            len(blocks),
            np.where(np.isfinite(lows), lows, -highspy.kHighsInf),
            np.where(np.isfinite(ups), ups, highspy.kHighsInf),
            int(idx.shape[0]),
            starts,
            idx,
            val,
        )
        self.row_idx = np.concatenate([self.row_idx, np.repeat(np.arange(first_row, first_row + len(blocks)), lengths)])
        self.col_idx = np.concatenate([self.col_idx, idx.astype(np.int64)])
        self.values = np.concatenate([self.values, val])
        self.row_lower = np.concatenate([self.row_lower, lows])
        self.row_upper = np.concatenate([self.row_upper, ups])

    def _time_left(self, cap: float | None = None) -> float | None:
        """Seconds for the next solve (None: unlimited), ``<= 0`` when the budget is spent."""
        return self.deadline.capped(cap)

    def minimum(self, cost: np.ndarray) -> float | None:
        """Certified lower bound on ``min cost.x`` over the current LP (``cost`` one entry per column).

        ``None`` when out of time or not solved to optimality (then :meth:`proven_infeasible` tells
        whether the LP has no point at all).
        """
        left = self._time_left()
        if left is not None and left <= 0:
            return None
        self.highs.setOptionValue("time_limit", float(left) if left is not None else highspy.kHighsInf)
        self.highs.changeColsCost(cost.shape[0], np.arange(cost.shape[0], dtype=np.int32), cost)
        use_highs_threads(self.threads)
        self.highs.run()
        self.solves += 1
        if self.highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return None
        duals = np.asarray(self.highs.getSolution().row_dual, dtype=np.float64)
        rows = (self.row_idx, self.col_idx, self.values)
        args = (self.col_lower, self.col_upper, rows, self.row_lower, self.row_upper)
        return max(certified_lp_minimum(cost, *args, duals), certified_lp_minimum(cost, *args, -duals))

    def proven_infeasible(self) -> bool:
        """Whether the last solve ended infeasible *and* its dual ray certifies it in float64.

        A Farkas ray ``y`` proves emptiness when the weak-duality bound of the zero objective,
        :func:`certified_lp_minimum` with multipliers ``t y``, is positive (it then grows without bound
        with ``t``); both signs of the solver's ray are tried.
        """
        if self.highs.getModelStatus() != highspy.HighsModelStatus.kInfeasible:
            return False
        _, exists, ray = self.highs.getDualRay()
        if not exists:
            return False
        ray = np.asarray(ray, dtype=np.float64)
        zero = np.zeros(self.col_lower.shape[0])
        rows = (self.row_idx, self.col_idx, self.values)
        args = (self.col_lower, self.col_upper, rows, self.row_lower, self.row_upper)
        return max(certified_lp_minimum(zero, *args, ray), certified_lp_minimum(zero, *args, -ray)) > 0.0

    def _milp_minimum(self, cost: np.ndarray, neuron_time_limit: float) -> float | None:
        """A proven lower bound on ``min cost.x`` over the MILP (the solver's dual bound, widened)."""
        left = self._time_left(neuron_time_limit)
        if left <= 0:
            return None
        self.highs.setOptionValue("time_limit", float(left))
        self.highs.changeColsCost(cost.shape[0], np.arange(cost.shape[0], dtype=np.int32), cost)
        use_highs_threads(self.threads)
        self.highs.run()
        self.milp_solves += 1
        status = self.highs.getModelStatus()
        if status not in (highspy.HighsModelStatus.kOptimal, highspy.HighsModelStatus.kTimeLimit):
            return None
        bound = float(self.highs.getInfo().mip_dual_bound)
        if not np.isfinite(bound):
            return None
        return bound - MILP_SLACK * (1.0 + abs(bound))

    def _milp_sign(self, cost: np.ndarray, offset: float, neuron_time_limit: float) -> tuple[bool, float | None]:
        """Is ``min cost.x + offset >= SIGN_CUTOFF`` (so the value is positive everywhere)? The solve stops
        as soon as that is proved (HiGHS's cutoff) or a point with a negative value is found (its target).

        Returns ``(proved, bound)``: ``bound`` is a proven lower bound on ``min cost.x`` (widened), or None.
        """
        left = self._time_left(neuron_time_limit)
        if left <= 0:
            return False, None
        cutoff = SIGN_CUTOFF - offset
        self.highs.setOptionValue("time_limit", float(left))
        self.highs.setOptionValue("objective_bound", cutoff + MILP_SLACK * (1.0 + abs(cutoff)))
        self.highs.setOptionValue("objective_target", -offset)
        self.highs.changeColsCost(cost.shape[0], np.arange(cost.shape[0], dtype=np.int32), cost)
        use_highs_threads(self.threads)
        try:
            self.highs.run()
        finally:
            self.highs.setOptionValue("objective_bound", highspy.kHighsInf)
            self.highs.setOptionValue("objective_target", -highspy.kHighsInf)
        self.milp_solves += 1
        status = self.highs.getModelStatus()
        if status == highspy.HighsModelStatus.kInfeasible:  # every node cut off: no point below the cutoff
            return True, cutoff
        bound = float(self.highs.getInfo().mip_dual_bound)
        if not np.isfinite(bound):
            return False, None
        # Nodes pruned by the cutoff only hold values >= cutoff: the bound is valid up to the cutoff.
        bound = min(bound, cutoff)
        return False, bound - MILP_SLACK * (1.0 + abs(bound))

    def decide_signs(
        self, k: int, lower: np.ndarray, upper: np.ndarray, order: np.ndarray, neuron_time_limit: float = 1.0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Try to prove layer ``k``'s unstable ReLUs stable by sign-deciding MILPs, in ``order``.

        For each neuron the side whose bound is closer to 0 is tried first: a MILP over the exact
        encoding of the earlier layers asks whether the pre-activation can lie below
        :data:`SIGN_CUTOFF` (or above ``-SIGN_CUTOFF``) and stops as soon as that is decided, so a
        proof costs no more than deciding the sign (MIPVerify's cutoff at 0, MN-BaB's early stop). A
        proof makes the neuron stable (its bound set to 0); the second side is then skipped. Without a
        proof the solver's dual bound still tightens that side. Needs ``binaries=True``; each MILP
        is capped by ``neuron_time_limit`` and by the deadline.

        Args:
            order: indices of layer ``k``'s neurons, most important first; stable ones are skipped.
        """
        lower, upper = lower.copy(), upper.copy()
        if not self.binaries or self.indicator_cols.shape[0] == 0:
            return lower, upper
        layer = self.net.layers[k]
        prev = self._previous_cols(k)
        n_cols = self.col_lower.shape[0]
        self._set_integrality(True)
        try:
            for i in order:
                if not (lower[i] < 0 < upper[i]):
                    continue
                if self.deadline.expired():
                    break
                cost = np.zeros(n_cols)
                cost[prev] = layer.W[i]
                for side in ((+1, -1) if -lower[i] < upper[i] else (-1, +1)):
                    proved, bound = self._milp_sign(side * cost, side * layer.b[i], neuron_time_limit)
                    if side > 0:
                        lower[i] = 0.0 if proved else max(lower[i], -np.inf if bound is None else bound + layer.b[i])
                    else:
                        upper[i] = 0.0 if proved else min(upper[i], np.inf if bound is None else -bound + layer.b[i])
                    if proved:
                        break
        finally:
            self._set_integrality(False)
        return lower, upper

    def _set_integrality(self, integer: bool) -> None:
        n = self.indicator_cols.shape[0]
        kind = highspy.HighsVarType.kInteger if integer else highspy.HighsVarType.kContinuous
        self.highs.changeColsIntegrality(n, self.indicator_cols, np.array([kind] * n))

    def tighten_layer(
        self, k: int, lower: np.ndarray, upper: np.ndarray, exact: bool = False, neuron_time_limit: float = 1.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """LP (or, with ``exact``, MILP) bounds for layer ``k``'s unstable ReLUs (every neuron of an identity layer).

        ``exact`` needs ``binaries=True`` and does nothing when the earlier layers have no unstable
        ReLU (the LP is then exact already); ``neuron_time_limit`` caps each MILP (seconds).
        """
        layer = self.net.layers[k]
        lower, upper = lower.copy(), upper.copy()
        if layer.activation == "relu":
            targets = np.flatnonzero((lower < 0) & (upper > 0))
        else:
            targets = np.arange(layer.n_out)
        if exact and (not self.binaries or self.indicator_cols.shape[0] == 0):
            return lower, upper
        prev = self._previous_cols(k)
        n_cols = self.col_lower.shape[0]
        if exact:
            self._set_integrality(True)

        def minimum(cost: np.ndarray) -> float | None:
            return self._milp_minimum(cost, neuron_time_limit) if exact else self.minimum(cost)

        W_lo, b_lo, W_hi, b_hi = self.affine_band(k)
        try:
            for i in targets:
                cost = np.zeros(n_cols)
                cost[prev] = -W_hi[i]
                neg_max = minimum(cost)
                if neg_max is not None:
                    upper[i] = min(upper[i], -neg_max + b_hi[i] + ROUNDING_SLACK * (1 + abs(neg_max)))
                if layer.activation == "relu" and upper[i] <= 0:
                    continue
                cost = np.zeros(n_cols)
                cost[prev] = W_lo[i]
                low = minimum(cost)
                if low is not None:
                    lower[i] = max(lower[i], low + b_lo[i] - ROUNDING_SLACK * (1 + abs(low)))
        finally:
            if exact:
                self._set_integrality(False)
        return lower, upper
