"""How a question is answered: one options object handed down instead of loose arguments.

The solver object (:class:`robustmip.solvers.MilpSolver`) holds the time limit of one question and
the threads (of the solver and of the LP bound tightening); :class:`SolveOptions` adds the bound
level, the input domain, the falsifier and the engine. Every entry point starts one
:class:`robustmip.deadline.Deadline` from ``solver.time_limit`` and every stage draws from it.

The engine: ``"milp"`` (one monolithic MILP per question, :mod:`robustmip.milp`), ``"bab"`` (the
branch-and-bound of :mod:`robustmip.bab`, with the MILP for small domains) or ``"auto"`` (chosen per
question from the root bounds). The entry points of :mod:`robustmip.milp` are the MILP engine itself;
:mod:`robustmip.bab.engine` (``robustmip.verify``, ``robustmip.decide_output_property``, the command
line) chooses between the engines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from robustmip.bounds import BOUNDS_METHODS, BoundsMethod
from robustmip.deadline import Deadline
from robustmip.errors import InvalidInput
from robustmip.solvers import MilpSolver
from robustmip.spec import Domain, Falsifier

Engine = Literal["milp", "bab", "auto"]
ENGINES: tuple[str, ...] = ("milp", "bab", "auto")


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
        engine: ``"milp"``, ``"bab"`` or ``"auto"`` (module docstring).
        bab: the branch-and-bound's settings (a :class:`robustmip.bab.BabOptions`), None for its defaults.
    """

    solver: MilpSolver | str = "highs"
    bounds: BoundsMethod = "lp"
    domain: Domain = (0.0, 1.0)
    falsifier: Falsifier | None = None
    engine: Engine = "milp"
    bab: Any = None
    milp_solver: MilpSolver = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.bounds not in BOUNDS_METHODS:
            raise InvalidInput(f"unknown bounds method {self.bounds!r}; choose one of {BOUNDS_METHODS}")
        if self.engine not in ENGINES:
            raise InvalidInput(f"unknown engine {self.engine!r}; choose one of {ENGINES}")
        self.milp_solver = self.solver if isinstance(self.solver, MilpSolver) else MilpSolver(self.solver)

    @classmethod
    def create(cls, solver: MilpSolver | str = "highs", time_limit: float | None = 60.0, threads: int = 1,
               **fields: Any) -> SolveOptions:
        """Options with a new ``MilpSolver(solver, time_limit, threads)`` (a given solver object is kept)."""
        milp_solver = solver if isinstance(solver, MilpSolver) else MilpSolver(solver, time_limit, threads)
        return cls(solver=milp_solver, **fields)

    @property
    def threads(self) -> int:
        return self.milp_solver.threads

    @property
    def time_limit(self) -> float | None:
        return self.milp_solver.time_limit

    def deadline(self) -> Deadline:
        """A new deadline, ``time_limit`` seconds from now."""
        return Deadline(self.milp_solver.time_limit)

    def require_milp(self, what: str) -> None:
        """InvalidInput unless the engine is ``"milp"``: ``what`` is an entry point of the MILP engine."""
        if self.engine != "milp":
            raise InvalidInput(f"{what} is the MILP engine; for engine {self.engine!r} call the same question "
                               "through robustmip.bab.engine (robustmip.verify, robustmip.decide_output_property)")
