"""One wall-clock deadline shared by every stage of a question (falsifier, bounds, build, solve).

A :class:`Deadline` is created once, when a question starts, from its time limit in seconds; each
stage asks how much is left (:meth:`Deadline.left`) and hands that to the next solver call, so the
stages together never exceed the limit (beyond the granularity of the solver's own clock checks).
"""

from __future__ import annotations

import math
import time

from robustmip.errors import InvalidInput


class Deadline:
    """A point in ``time.perf_counter()`` time, or none (no limit).

    Args:
        seconds: the budget from now, ``> 0``, or None for no limit.
    """

    def __init__(self, seconds: float | None = None):
        if seconds is not None and not (isinstance(seconds, (int, float)) and seconds > 0 and math.isfinite(seconds)):
            raise InvalidInput(f"a time limit must be a finite number of seconds > 0, got {seconds}")
        self.seconds = None if seconds is None else float(seconds)
        self.start = time.perf_counter()
        self.at = None if seconds is None else self.start + float(seconds)

    def left(self) -> float | None:
        """Seconds left (may be ``<= 0`` once passed), or None without a limit."""
        return None if self.at is None else self.at - time.perf_counter()

    def expired(self) -> bool:
        left = self.left()
        return left is not None and left <= 0

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def capped(self, seconds: float | None) -> float | None:
        """The smaller of ``seconds`` and what is left (None when both are unlimited)."""
        left = self.left()
        if seconds is None:
            return left
        return seconds if left is None else min(seconds, left)

    def within(self, seconds: float | None) -> Deadline:
        """A deadline ``seconds`` from now, but never later than this one."""
        child = Deadline.__new__(Deadline)
        child.start = time.perf_counter()
        child.seconds = self.capped(seconds)
        child.at = None if child.seconds is None else child.start + child.seconds
        return child

    def __repr__(self) -> str:
        left = self.left()
        return "Deadline(none)" if left is None else f"Deadline({left:.3f} s left of {self.seconds:g})"
