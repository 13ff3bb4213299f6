"""Exact output optima of nets with few unstable ReLUs: branch-and-bound on the certified LP relaxation.

For ``min c^T y`` over an input box, the LP of :class:`~robustmip.bounds.tighten.LpTightener` with
indicator columns (the big-M rows of :mod:`robustmip.milp.encode`, relaxed to ``[0, 1]``) is solved
at every node of a best-first search over the indicators of the unstable ReLUs. Fixing an indicator
at 0 makes its ReLU exactly inactive (``h = 0``, ``a <= 0``), at 1 exactly active (``h = a >= 0``),
so a node with every indicator fixed is exact. Each node's bound is the LP minimum re-derived from the
solver's duals (:func:`~robustmip.bounds.tighten.certified_lp_minimum`, with the node's column bounds)
and widened by ``ROUNDING_SLACK``: sound. Every LP solution's input columns are an input of the box,
whose float64 forward pass gives an attained value: the incumbent. A node whose LP solution is a true
network point (no ReLU relaxed) needs no branching.

One LP (warm-started by HiGHS from the previous node's basis) serves every question on the same box,
which is what makes this faster than a MILP solver's per-question presolve and root work when the
net has only a few unstable ReLUs (an output box of a small MNIST net: 20 questions, ~10 binaries).
It is an exact engine, not a heuristic: with many unstable ReLUs the tree grows like ``2^n`` and the
MILP solver is the better choice (``robustmip.sensitivity.exact.LP_BAB_UNSTABLE`` draws the line for
the output box). Branching: the free ReLU whose LP point is furthest from ``max(a, 0)``.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass

import numpy as np

from robustmip.bounds.result import ROUNDING_SLACK, Bounds
from robustmip.bounds.tighten import LpTightener
from robustmip.deadline import Deadline
from robustmip.network import Network

VIOLATION = 1e-6
"""A ReLU counts as relaxed at an LP solution when ``h - max(a, 0)`` exceeds this (above HiGHS's
primal feasibility tolerance, 1e-7, so a solution's rounding is not mistaken for a relaxed ReLU)."""


@dataclass
class LpOptimum:
    """``min c^T y`` over the box: ``value`` attained at ``argument`` (float64 forward pass), ``bound`` proven.

    ``status``: ``optimal`` (the gap ``value - bound`` is closed, or every node was searched: then it is
    at most the LP tolerances' effect, about ``1e-6``), ``time_limit``, or ``unknown`` (searched to
    the end, but some node's LP was neither solved nor certified empty, so its parent's bound stands);
    ``nodes``: LPs solved.
    """

    status: str
    value: float
    argument: np.ndarray
    bound: float
    nodes: int


class LpBranchAndBound:
    """One relaxation LP over ``net`` and the box of ``bounds``, for any number of output questions.

    Args:
        net: the network (its last layer is the output; identity activation).
        bounds: sound bounds over the input box (they fix the stable ReLUs and the big-M constants).
        threads: HiGHS threads.
    """

    def __init__(self, net: Network, bounds: Bounds, threads: int = 1):
        self.net, self.bounds = net, bounds
        self.lp = LpTightener(net, bounds.input_lower, bounds.input_upper, threads=threads, binaries=True)
        self.neurons: list[tuple[int, int, int]] = []  # (layer, neuron, indicator column)
        for k in range(len(net.layers) - 1):
            before = self.lp.indicator_cols.shape[0]
            self.lp.add_layer(k, bounds.lower[k], bounds.upper[k])
            cols = self.lp.indicator_cols[before:]
            self.neurons += [(k, int(j), int(v)) for j, v in zip(np.flatnonzero(bounds.unstable(k)), cols)]
        self.root_lower = self.lp.col_lower.copy()
        self.root_upper = self.lp.col_upper.copy()

    @property
    def n_unstable(self) -> int:
        return len(self.neurons)

    def _fix(self, fixings: dict[int, float]) -> None:
        """Set the indicator columns' bounds to the node's fixings (the others back to ``[0, 1]``)."""
        cols = np.array([v for _, _, v in self.neurons], dtype=np.int32)
        if cols.size == 0:
            return
        lo, up = self.root_lower[cols].copy(), self.root_upper[cols].copy()
        for i, col in enumerate(cols):
            if int(col) in fixings:
                lo[i] = up[i] = fixings[int(col)]
        self.lp.col_lower[cols], self.lp.col_upper[cols] = lo, up
        self.lp.highs.changeColsBounds(int(cols.size), cols, lo, up)

    def _relaxed(self, values: np.ndarray, fixings: dict[int, float]) -> list[tuple[float, int]]:
        """``(h - max(a, 0), indicator column)`` of the free ReLUs relaxed at the LP solution, largest first."""
        out = []
        for k, j, v in self.neurons:
            if v in fixings:
                continue
            prev = self.lp.input_cols if k == 0 else self.lp.layer_cols[k - 1]
            a = float(self.net.layers[k].W[j] @ values[prev] + self.net.layers[k].b[j])
            gap = float(values[self.lp.layer_cols[k][j]]) - max(a, 0.0)
            if gap > VIOLATION:
                out.append((gap, v))
        return sorted(out, reverse=True)

    def minimize(self, c: np.ndarray, deadline: Deadline | None = None, start: np.ndarray | None = None,
                 abs_gap: float = 1e-6, rel_gap: float = 1e-6) -> LpOptimum:
        """Minimise ``c^T y`` (``c`` float64 ``(n_outputs,)``) over the box.

        ``start`` (an input of the box) gives the first incumbent; the search stops when the incumbent
        is within ``max(abs_gap, rel_gap |incumbent|)`` of the lowest open bound, or at ``deadline``.
        """
        deadline = deadline or Deadline()
        self.lp.deadline = deadline
        last = self.net.layers[-1]
        cost = np.zeros(self.lp.col_lower.shape[0])
        cost[self.lp.layer_cols[-1]] = c @ last.W
        constant = float(c @ last.b)
        box = (self.bounds.input_lower, self.bounds.input_upper)
        point = 0.5 * (box[0] + box[1]) if start is None else np.clip(np.asarray(start, dtype=np.float64), *box)
        best_point, best = point, float(c @ self.net.forward(point))
        counter = itertools.count()
        heap: list[tuple[float, int, dict[int, float]]] = [(-np.inf, next(counter), {})]
        floor = np.inf  # the lowest bound among the nodes closed so far
        uncertain = False  # a node was closed at its parent's bound (its LP neither solved nor certified empty)
        nodes = 0

        def closed(lower: float) -> bool:
            return best - lower <= max(abs_gap, rel_gap * abs(best))

        while heap and not closed(heap[0][0]) and not deadline.expired():
            parent_bound, _, fixings = heapq.heappop(heap)
            self._fix(fixings)
            solved = self.lp.solves
            minimum = self.lp.minimum(cost)
            if self.lp.solves == solved:  # the deadline passed before the LP ran: the node stays open
                heapq.heappush(heap, (parent_bound, next(counter), fixings))
                break
            nodes += 1
            if minimum is None:
                if self.lp.proven_infeasible():
                    continue  # these fixings leave no input (certified): nothing to search
                if not deadline.expired():  # infeasible without a certificate, or unsolved: keep its
                    floor, uncertain = min(floor, parent_bound), True  # parent's bound, search on
                    continue
                heapq.heappush(heap, (parent_bound, next(counter), fixings))  # out of time: stays open
                break
            bound = max(parent_bound, minimum + constant - ROUNDING_SLACK * (1.0 + abs(minimum + constant)))
            values = np.asarray(self.lp.highs.getSolution().col_value, dtype=np.float64)
            x = np.clip(values[self.lp.input_cols], *box)
            value = float(c @ self.net.forward(x))
            if value < best:
                best, best_point = value, x
            relaxed = self._relaxed(values, fixings)
            if closed(bound) or not relaxed:  # pruned, or the LP's point is a network point (exact node)
                floor = min(floor, bound)
                continue
            col = relaxed[0][1]
            for side in (0.0, 1.0):
                heapq.heappush(heap, (bound, next(counter), {**fixings, col: side}))
        lowest = min([floor, best] + [b for b, _, _ in heap])
        searched = not heap or closed(heap[0][0])  # not stopped by the deadline
        if closed(lowest) or (searched and not uncertain):
            status = "optimal"
        else:
            status = "unknown" if searched else "time_limit"
        return LpOptimum(status, best, best_point, lowest, nodes)
