"""Sound pre-activation bounds of every neuron over an input box.

Three levels, each at least as tight as the one before, all *sound* (never tighter than the truth):

``interval``
    interval arithmetic (IBP), layer by layer.
``crown``
    interval intersected with a linear relaxation with back-substitution to the input
    (CROWN / DeepPoly: triangle upper line, adaptive 0/1 lower line for unstable ReLUs).
``lp``
    ``crown``, then an LP over the triangle relaxation of all earlier layers for every neuron that is
    still unstable, layer by layer (HiGHS, warm-started). The LP value is not trusted as such: each
    bound is re-derived from the solver's dual multipliers by weak duality
    (:func:`_certified_lp_minimum`), so a solver tolerance cannot cut off a reachable value.
``milp``
    ``lp``, then, for every ReLU that is still unstable, a MILP over the exact big-M encoding of all
    earlier layers with a short time limit per neuron (``milp_neuron_time_limit``), as MIPVerify does.
    The bound taken is the solver's proven *dual* bound (valid whether or not the MILP finished),
    widened by ``1e-6 (1 + |bound|)`` against the MILP tolerances (feasibility and integrality
    ``1e-6``, which can only make the solver's relaxation larger, i.e. its bound weaker).
    The first hidden layer is skipped (interval bounds are exact there) and so are identity layers.

Bounds decide which ReLUs are stable and set the big-M constants of :mod:`robustmip.milp`. Every
computed bound is widened by a relative ``1e-9`` against floating-point rounding.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

import highspy
import numpy as np

from robustmip.errors import InvalidInput
from robustmip.network import AffineLayer, Network

BoundsMethod = Literal["interval", "crown", "lp", "milp"]
BOUNDS_METHODS: tuple[str, ...] = ("interval", "crown", "lp", "milp")
_ROUNDING_SLACK = 1e-9
_MILP_SLACK = 1e-6
# HiGHS options that switch its primal heuristics off, for solves whose work is the dual bound: the
# bound MILPs here (heuristics, sub-MIPs above all, took 60 % of their time on MNIST MLPs: 0.35-0.55 s
# instead of 1.1 s per neuron, measured) and milp.solve's focus="bound" (it imports this one set).
HIGHS_HEURISTICS_OFF = {
    "mip_heuristic_effort": 0.0,
    "mip_heuristic_run_rins": False,
    "mip_heuristic_run_rens": False,
    "mip_heuristic_run_root_reduced_cost": False,
    "mip_heuristic_run_feasibility_jump": False,
}

_highs_scheduler_threads = 0


def use_highs_threads(threads: int) -> None:
    """Size the process's HiGHS task scheduler for a run with ``threads`` threads; call before each run.

    Every HiGHS instance in a process shares one scheduler, sized by the first run's ``threads``
    option, and a later run asking for another count fails (an APPSI solve ends in "solver error",
    an LP returns no optimum). The scheduler is restarted (blocking, between runs) when the count
    changes, which costs milliseconds.
    """
    global _highs_scheduler_threads
    if threads != _highs_scheduler_threads:
        highspy.Highs.resetGlobalScheduler(True)
        _highs_scheduler_threads = threads


@dataclass
class Bounds:
    """Pre-activation bounds of a network over an input box.

    Attributes:
        input_lower, input_upper: the box, float64 ``(n_inputs,)``.
        lower, upper: per layer ``k``, float64 ``(n_k,)`` bounds of ``a_k = W_k h_{k-1} + b_k``
            (the last entry bounds the logits).
        method: the level that produced them.
        seconds: wall time spent computing them.
        lp_solves: number of LPs solved (``lp`` and ``milp`` levels).
        milp_solves: number of per-neuron MILPs solved (``milp`` level only).
    """

    input_lower: np.ndarray
    input_upper: np.ndarray
    lower: list[np.ndarray]
    upper: list[np.ndarray]
    method: str
    seconds: float = 0.0
    lp_solves: int = 0
    milp_solves: int = 0
    activations: tuple[str, ...] = field(default=())

    def post_activation(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Bounds of ``h_k`` (after layer ``k``'s activation); ``k = -1`` gives the input box."""
        if k < 0:
            return self.input_lower, self.input_upper
        if self.activations[k] == "relu":
            return np.maximum(self.lower[k], 0.0), np.maximum(self.upper[k], 0.0)
        return self.lower[k], self.upper[k]

    def unstable(self, k: int) -> np.ndarray:
        """Boolean mask of layer ``k``'s ReLUs whose sign is not fixed over the box."""
        if self.activations[k] != "relu":
            return np.zeros(self.lower[k].shape, dtype=bool)
        return (self.lower[k] < 0.0) & (self.upper[k] > 0.0)

    def n_unstable(self) -> int:
        return int(sum(self.unstable(k).sum() for k in range(len(self.lower))))

    def summary(self) -> dict:
        """Per-layer counts of stably active, stably inactive and unstable ReLUs."""
        rows = []
        for k, act in enumerate(self.activations):
            if act != "relu":
                continue
            rows.append(
                {
                    "layer": k,
                    "active": int((self.lower[k] >= 0).sum()),
                    "inactive": int((self.upper[k] <= 0).sum()),
                    "unstable": int(self.unstable(k).sum()),
                }
            )
        return {
            "method": self.method, "seconds": self.seconds, "lp_solves": self.lp_solves,
            "milp_solves": self.milp_solves, "layers": rows,
        }


def input_box(
    x: np.ndarray, eps: float, clip_lower: float | None = 0.0, clip_upper: float | None = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """The l-infinity ball ``[x - eps, x + eps]`` intersected with ``[clip_lower, clip_upper]``.

    Args:
        x: the centre, any shape; flattened in C order.
        eps: radius in input units (``>= 0``).
        clip_lower, clip_upper: the valid input domain (pixel range); ``None`` for no clipping.
    """
    if not np.isfinite(eps) or eps < 0:
        raise InvalidInput(f"eps must be a finite number >= 0, got {eps}")
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    if not np.isfinite(x).all():
        raise InvalidInput("the input contains NaN or infinite values")
    lower, upper = x - eps, x + eps
    if clip_lower is not None:
        lower = np.maximum(lower, clip_lower)
    if clip_upper is not None:
        upper = np.minimum(upper, clip_upper)
    if (lower > upper).any():
        raise InvalidInput("the input lies outside the valid domain [clip_lower, clip_upper] by more than eps")
    return lower, upper


def _widen(lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (
        lower - _ROUNDING_SLACK * (1.0 + np.abs(lower)),
        upper + _ROUNDING_SLACK * (1.0 + np.abs(upper)),
    )


def interval_layer(layer: AffineLayer, h_lower: np.ndarray, h_upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Interval bounds of ``W h + b`` for ``h`` in ``[h_lower, h_upper]``."""
    W_pos, W_neg = np.maximum(layer.W, 0.0), np.minimum(layer.W, 0.0)
    lower = W_pos @ h_lower + W_neg @ h_upper + layer.b
    upper = W_pos @ h_upper + W_neg @ h_lower + layer.b
    return _widen(lower, upper)


def _relu_relaxation(lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
            alpha, slope, offset = _relu_relaxation(lower[j], upper[j])
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
    return _widen(lo, up)


def compute_bounds(
    net: Network,
    lower: np.ndarray,
    upper: np.ndarray,
    method: BoundsMethod = "lp",
    lp_time_limit: float | None = None,
    threads: int = 1,
    milp_neuron_time_limit: float = 1.0,
) -> Bounds:
    """Bounds of every pre-activation of ``net`` for inputs in ``[lower, upper]``.

    Args:
        lower, upper: the input box, float64 ``(n_inputs,)``.
        method: ``"interval"``, ``"crown"``, ``"lp"`` or ``"milp"`` (see the module docstring).
        lp_time_limit: wall-clock budget in seconds for all LPs and MILPs together; neurons left when
            it runs out keep their bounds from the cheaper levels (still sound).
        threads: HiGHS threads for the LPs and MILPs.
        milp_neuron_time_limit: seconds per MILP (one bound of one neuron) at the ``milp`` level.
    """
    if method not in BOUNDS_METHODS:
        raise InvalidInput(f"unknown bounds method {method!r}; choose one of {BOUNDS_METHODS}")
    if not milp_neuron_time_limit > 0:
        raise InvalidInput(f"milp_neuron_time_limit must be > 0 seconds, got {milp_neuron_time_limit}")
    lower = np.asarray(lower, dtype=np.float64).reshape(-1)
    upper = np.asarray(upper, dtype=np.float64).reshape(-1)
    if lower.shape != (net.n_inputs,) or upper.shape != (net.n_inputs,):
        raise InvalidInput(f"input box must have {net.n_inputs} entries, got {lower.shape} and {upper.shape}")
    if (lower > upper).any():
        raise InvalidInput("input box has lower > upper")
    start = time.perf_counter()
    activations = tuple(layer.activation for layer in net.layers)
    result = Bounds(lower, upper, [], [], method, activations=activations)
    tightener = None
    if method in ("lp", "milp"):
        deadline = None if lp_time_limit is None else start + lp_time_limit
        tightener = LpTightener(net, lower, upper, threads=threads, deadline=deadline, binaries=method == "milp")
    for k, layer in enumerate(net.layers):
        h_lo, h_up = result.post_activation(k - 1) if k > 0 else (lower, upper)
        lo, up = interval_layer(layer, h_lo, h_up)
        if method != "interval" and k > 0:
            c_lo, c_up = crown_layer(net, k, result.lower, result.upper, (lower, upper))
            lo, up = np.maximum(lo, c_lo), np.minimum(up, c_up)
        if tightener is not None and k > 0:
            lo, up = tightener.tighten_layer(k, lo, up)
            if method == "milp" and layer.activation == "relu":
                lo, up = tightener.tighten_layer(k, lo, up, exact=True, neuron_time_limit=milp_neuron_time_limit)
        result.lower.append(lo)
        result.upper.append(up)
        if tightener is not None:
            tightener.add_layer(k, lo, up)
    result.seconds = time.perf_counter() - start
    if tightener is not None:
        result.lp_solves, result.milp_solves = tightener.solves, tightener.milp_solves
    return result


def _certified_lp_minimum(
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

    With ``binaries=True`` every unstable ReLU also gets an indicator column ``v`` in ``[0, 1]`` and the
    two big-M rows of :mod:`robustmip.milp.encode` (``h <= u v``, ``h <= a - l (1 - v)``). Their LP
    relaxation is exactly the triangle, so LP bounds do not change; declaring the indicators integer
    (``tighten_layer(..., exact=True)``) turns the model into the exact MILP of the earlier layers.
    """

    def __init__(
        self, net: Network, lower: np.ndarray, upper: np.ndarray, threads: int = 1,
        deadline: float | None = None, binaries: bool = False,
    ):
        self.net = net
        self.deadline = deadline
        self.binaries = binaries
        self.solves = 0
        self.milp_solves = 0
        self.highs = highspy.Highs()
        self.highs.setOptionValue("output_flag", False)
        self.threads = int(threads)
        self.highs.setOptionValue("threads", self.threads)
        for option, value in HIGHS_HEURISTICS_OFF.items():
            self.highs.setOptionValue(option, value)
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
        # A row: (columns, coefficients, lower, upper) over [own column(s), previous layer].
        blocks: list[tuple[np.ndarray, np.ndarray, float, float]] = []
        for i in np.flatnonzero(exact):  # h - W h_prev = b for identity / stably active neurons
            blocks.append(self._row(cols[i], 1.0, layer.W[i], prev, layer.b[i], layer.b[i]))
        for i in unstable:
            slope = upper[i] / (upper[i] - lower[i])
            blocks.append(self._row(cols[i], 1.0, layer.W[i], prev, layer.b[i], np.inf))  # h >= W h_prev + b
            blocks.append(self._row(cols[i], 1.0, slope * layer.W[i], prev, -np.inf, slope * (layer.b[i] - lower[i])))
        if self.binaries and unstable.shape[0]:
            v_cols = self._add_cols(np.zeros(unstable.shape[0]), np.ones(unstable.shape[0]))
            self.indicator_cols = np.concatenate([self.indicator_cols, v_cols.astype(np.int32)])
            for i, v in zip(unstable, v_cols):
                own = np.array([cols[i], v])
                blocks.append((own, np.array([1.0, -upper[i]]), -np.inf, 0.0))  # h <= u v
                # h <= W h_prev + b - l (1 - v)
                blocks.append(self._row(own, np.array([1.0, -lower[i]]), layer.W[i], prev, -np.inf, layer.b[i] - lower[i]))
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
        left = None if self.deadline is None else self.deadline - time.perf_counter()
        if cap is not None:
            left = cap if left is None else min(left, cap)
        return left

    def _minimum(self, cost: np.ndarray) -> float | None:
        """Certified ``min cost.x`` over the current LP, or ``None`` when out of time or unsolved."""
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
        return max(_certified_lp_minimum(cost, *args, duals), _certified_lp_minimum(cost, *args, -duals))

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
        return bound - _MILP_SLACK * (1.0 + abs(bound))

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
            return self._milp_minimum(cost, neuron_time_limit) if exact else self._minimum(cost)

        try:
            for i in targets:
                cost = np.zeros(n_cols)
                cost[prev] = layer.W[i]
                neg_max = minimum(-cost)
                if neg_max is not None:
                    upper[i] = min(upper[i], -neg_max + layer.b[i] + _ROUNDING_SLACK * (1 + abs(neg_max)))
                if layer.activation == "relu" and upper[i] <= 0:
                    continue
                low = minimum(cost)
                if low is not None:
                    lower[i] = max(lower[i], low + layer.b[i] - _ROUNDING_SLACK * (1 + abs(low)))
        finally:
            if exact:
                self._set_integrality(False)
        return lower, upper
