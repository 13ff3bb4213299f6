"""A domain handed to the MILP: the root's big-M encoding with the domain's split binaries fixed.

The encoding (:func:`robustmip.milp.encode`) is built once, over the root bounds (sound on every
domain, so valid big-M constants), on first use. A split fixes the ReLU's binary: ``v = 1`` forces
``a >= 0`` (and ``h = a``), ``v = 0`` forces ``a <= 0`` (and ``h = 0``), so the MILP is exactly the
domain; with every root-unstable ReLU split it is an LP. The objective is the domain's conjunction
``g_i = max_j (A_ij y - c_ij)`` (:func:`robustmip.milp.add_disjunction`, minimising ``-s``), decided
against a cutoff or minimised; the solver (:class:`robustmip.solvers.MilpSolver`) and its proofs are
those of the MILP engine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyomo.environ as pyo

from robustmip.bab.question import Question
from robustmip.bounds import Bounds
from robustmip.bounds.tighten import MILP_SLACK
from robustmip.milp import EncodedNetwork, add_disjunction, encode
from robustmip.network import Network
from robustmip.solvers import MilpSolver

DECIDE_BELOW = 1e-9
"""A decision asks whether ``g_i`` can be below this: no solution below it proves ``g_i > 0`` on the domain."""


@dataclass
class HandoffResult:
    """What one domain MILP established.

    Attributes:
        closed: the domain needs no more work (proved above the cutoff, or solved to optimality).
        lower: a sound lower bound of ``g_i`` on the domain (``-inf`` when none).
        point: the solver's input point (to be re-checked by the caller), or None.
        status: the solver's status; seconds: its wall time.
    """

    closed: bool
    lower: float
    point: np.ndarray | None
    status: str
    seconds: float


class DomainMilp:
    """Persistent MILP of one question's domains (built on first use)."""

    def __init__(self, net: Network, question: Question, root: Bounds, solver: MilpSolver):
        self.net, self.question, self.root, self.solver = net, question, root, solver
        self._enc: EncodedNetwork | None = None
        self.build_seconds = 0.0
        self.calls = 0

    @property
    def encoding(self) -> EncodedNetwork:
        if self._enc is None:
            enc = encode(self.net, self.root)
            enc.block.objective = pyo.Objective(expr=0.0, sense=pyo.minimize)
            self._enc = enc
            self.build_seconds = enc.build_seconds
        return self._enc

    def solve(self, conjunction: int, splits: list[tuple[np.ndarray, np.ndarray]], time_limit: float,
              cutoff: float | None, start: np.ndarray | None = None) -> HandoffResult:
        """Decide (``cutoff`` given: is ``g_i`` below it?) or minimise ``g_i`` on one domain.

        Args:
            splits: per hidden layer ``(neurons, signs)``: the split ReLUs (root-unstable indices) and
                their signs (+1 active, -1 inactive).
            cutoff: a decision's threshold (stops at the first point below it, or proves none exists);
                None: minimise (to the solver's gap).
            start: an input to seed the solver with (MIP start), or None.
        """
        enc = self.encoding
        self.calls += 1
        A, c = self.question.conjunctions[conjunction]
        slack = add_disjunction(enc, [(A, c)], "handoff")
        fixed = []
        try:
            for k, (neurons, signs) in enumerate(splits):
                binaries = enc.binaries[k]
                for j, sign in zip(neurons.tolist(), signs.tolist()):
                    binaries[j].fix(1.0 if sign > 0 else 0.0)
                    fixed.append(binaries[j])
            enc.block.objective.set_value(-slack)
            if start is not None:
                enc.set_point(start)
            result = self.solver.solve(enc.block, time_limit, warm_start=start is not None,
                                       decide_below=None if cutoff is None else max(cutoff, DECIDE_BELOW))
            point = None
            if result.has_solution:
                point = np.clip(enc.input_values(), self.question.lower, self.question.upper)
        finally:
            for var in fixed:
                var.unfix()
            enc.block.del_component("handoff")
        bound = -np.inf if result.bound is None else result.bound - MILP_SLACK * (1.0 + abs(result.bound))
        if cutoff is not None and result.status == "infeasible":
            return HandoffResult(True, max(cutoff, DECIDE_BELOW), point, result.status, result.seconds)
        closed = cutoff is None and result.status in ("optimal", "infeasible")
        if result.status == "infeasible":  # an empty domain: no input satisfies its splits
            bound = np.inf
        return HandoffResult(closed, bound, point, result.status, result.seconds)
