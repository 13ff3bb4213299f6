"""Two engines on two cores: the monolithic MILP in a child process, the branch-and-bound here.

The engines are complementary on mnist_fc (the MILP settles some 256x4 instances sooner, the
branch-and-bound most others and every 256x2 one sooner; notes in benchmarks/README.md), so with two
threads ``auto`` runs both, one thread each, and takes the first *decision*: the search asks before
every round whether the child has decided (an undecided child, e.g. a solver error, does not stop it),
and when the search ends undecided the child gets the time left. The child is forked after the
falsifier (it imports nothing new: numpy, Pyomo and HiGHS only), ignores Ctrl-C (the parent stops it)
and is terminated as soon as the race is over, so an interrupted race leaves no process behind.
"""

from __future__ import annotations

import multiprocessing
import signal
from typing import Callable, Generic, TypeVar

from robustmip.deadline import Deadline

Result = TypeVar("Result")


def _child(connection, job: Callable[[Deadline], object], seconds: float | None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        outcome = ("ok", job(Deadline(seconds) if seconds is not None else Deadline()))
    except BaseException as exc:  # report it: the parent's search goes on
        outcome = ("error", f"{type(exc).__name__}: {exc}")
    try:
        connection.send(outcome)
    finally:
        connection.close()


class _Child(Generic[Result]):
    """The child's answer, read once it is there."""

    def __init__(self, connection, decided: Callable[[Result], bool]):
        self.connection, self.decided = connection, decided
        self.result: Result | None = None
        self.error = ""
        self.done = False

    def check(self, wait: float = 0.0) -> bool:
        """True when the child has *decided* (waits up to ``wait`` seconds for its answer)."""
        if not self.done and self.connection.poll(wait):
            self.done = True
            try:
                kind, value = self.connection.recv()
            except EOFError:  # the child died without an answer
                kind, value = "error", "the MILP process ended without an answer"
            if kind == "ok":
                self.result = value
            else:
                self.error = value
        return self.result is not None and self.decided(self.result)


def race(milp: Callable[[Deadline], Result], bab: Callable[[Callable[[], bool]], Result],
         decided: Callable[[Result], bool], deadline: Deadline) -> tuple[Result, str]:
    """Run ``milp(deadline)`` in a forked child and ``bab(stop)`` here; return the first decided result
    and which engine gave it (``"milp"`` / ``"bab"``), else the search's undecided result.

    ``decided(result)`` says whether a result answers the question (sat/unsat, adversarial/robust).
    """
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    left = deadline.left()
    process = context.Process(target=_child, args=(sender, milp, None if left is None else max(left, 0.0)),
                              daemon=True)
    process.start()
    sender.close()
    child: _Child[Result] = _Child(receiver, decided)
    try:
        mine = bab(lambda: child.check())
        if decided(mine):
            return mine, "bab"
        remaining = deadline.left()
        if child.check(wait=None if remaining is None else max(remaining, 0.0) + 1.0):
            return child.result, "milp"
        return mine, "bab"
    finally:
        if process.is_alive():
            process.terminate()
        process.join(5)
        if process.is_alive():
            process.kill()
            process.join()
        receiver.close()
