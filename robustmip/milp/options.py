"""How a question is answered: one options object handed down instead of loose arguments.

The solver object (:class:`robustmip.solvers.MilpSolver`) holds the time limit of one question and
the threads (of the solver and of the LP bound tightening); :class:`SolveOptions` adds the bound
level, the input domain and the falsifier. Every entry point of :mod:`robustmip.milp` starts one
:class:`robustmip.deadline.Deadline` from ``solver.time_limit`` and every stage draws from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from robustmip.bounds import BOUNDS_METHODS, BoundsMethod
from robustmip.deadline import Deadline
from robustmip.errors import InvalidInput
from robustmip.solvers import MilpSolver
from robustmip.spec import Domain, Falsifier


@dataclass
class SolveOptions:
    """Settings of a question.

    Attributes:
        solver: a :class:`MilpSolver` (its ``time_limit`` is the question's budget in seconds, its
            ``threads`` are used by the solver and the LP bounds) or a solver name, turned into
            ``MilpSolver(name)`` (60 s, 1 thread).
        bounds: the bound level before the MILP (:data:`robustmip.bounds.BOUNDS_METHODS`).
        domain: the valid input range every box is clipped to (pixels: ``(0, 1)``).
        falsifier: a cheap search run before any MILP (e.g.
            :func:`robustmip.attacks.falsify.property_falsifier`), or None.
    """

    solver: MilpSolver | str = "highs"
    bounds: BoundsMethod = "lp"
    domain: Domain = (0.0, 1.0)
    falsifier: Falsifier | None = None
    engine: MilpSolver = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.bounds not in BOUNDS_METHODS:
            raise InvalidInput(f"unknown bounds method {self.bounds!r}; choose one of {BOUNDS_METHODS}")
        self.engine = self.solver if isinstance(self.solver, MilpSolver) else MilpSolver(self.solver)

    @classmethod
    def create(cls, solver: MilpSolver | str = "highs", time_limit: float | None = 60.0, threads: int = 1,
               **fields: Any) -> SolveOptions:
        """Options with a new ``MilpSolver(solver, time_limit, threads)`` (a given solver object is kept)."""
        engine = solver if isinstance(solver, MilpSolver) else MilpSolver(solver, time_limit, threads)
        return cls(solver=engine, **fields)

    @property
    def threads(self) -> int:
        return self.engine.threads

    @property
    def time_limit(self) -> float | None:
        return self.engine.time_limit

    def deadline(self) -> Deadline:
        """A new deadline, ``time_limit`` seconds from now."""
        return Deadline(self.engine.time_limit)
