"""The branch-and-bound loop: decide the sign of ``min G``, or minimise ``G`` to a gap.

Best-first on the sound lower bounds (Bunel et al. 2020; alpha-beta-CROWN's loop, Wang et al. 2021):

1. Root (:mod:`robustmip.bab.root`): fixed intermediate bounds, one domain per conjunction the root
   does not close; a given start point (e.g. the falsifier's) is the first incumbent.
2. Each round pops the domains with the lowest bounds (several split levels at once when few are
   open), splits each on the ReLU chosen by BaBSR or KFSB (:mod:`robustmip.bab.branching`),
   optimises the children's slopes and multipliers in float32 and certifies their bounds in float64
   (:mod:`robustmip.bab.bound`); a child keeps the larger of its own and its parent's bound.
3. Every child's candidate point is run through ``Network.forward`` (float64): the best value is the
   incumbent ``U``; a decision ends ``sat`` as soon as a point meets the disjunction.
4. A child is closed when its sound bound exceeds the threshold: ``0`` for a decision, ``U - tol`` when
   optimising (``tol = max(abs_gap, rel_gap |U|)``). Children with few free unstable ReLUs, or whose
   bound has stalled over several splits, go to the MILP (:mod:`robustmip.bab.handoff`), which takes at
   most ``milp_share`` of the time while other domains wait; the rest are pushed.

Soundness: a bound enters only from the float64 certificate or a MILP proof; ``unsat`` needs every
domain closed; the lower bound reported is the minimum over closed and open domains' sound bounds; a
time limit gives ``unknown`` (decision) or ``time_limit`` with both bounds (optimisation).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Literal

import numpy as np
import torch

from robustmip.bab.bound import Certified, DomainBounder
from robustmip.bab.branching import candidate_lists, children_of, split_decisions
from robustmip.bab.domains import Domains, Frontier
from robustmip.bab.handoff import DomainMilp
from robustmip.bab.options import BabOptions
from robustmip.bab.question import Question
from robustmip.bab.root import Root, root_bounds
from robustmip.bounds.alpha import relu_layers_supported, torch_threads
from robustmip.deadline import Deadline
from robustmip.errors import InvalidInput
from robustmip.network import Network
from robustmip.solvers import MilpSolver

Mode = Literal["decide", "optimize"]
STALL_GAIN = 1e-3
"""A child's bound counts as an improvement over its parent's when higher by ``1e-3 (1 + |bound|)``."""
Status = Literal["sat", "unsat", "optimal", "time_limit", "unknown"]


@dataclass
class BabResult:
    """Outcome of a branch-and-bound.

    Attributes:
        status: decision ``sat`` / ``unsat`` / ``unknown``; optimisation ``optimal`` (within the gap),
            ``time_limit`` or ``unknown`` (domain limit, or a fully split domain the MILP did not settle).
        lower_bound: sound lower bound of ``min G`` (float64; ``-inf`` if none).
        incumbent: ``G`` at ``point`` in the float64 forward pass (an upper bound of ``min G``), or None.
        point: the best input found (float64 ``(n_inputs,)``), or None.
        reason: why it ended so.
        stats: counts and seconds (``root_s``, ``bab_s``, ``milp_s``, ``domains``, ``rounds``, ...).
    """

    status: Status
    lower_bound: float
    incumbent: float | None
    point: np.ndarray | None
    reason: str = ""
    stats: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"status": self.status, "lower_bound": self.lower_bound, "incumbent": self.incumbent,
                "reason": self.reason, "stats": dict(self.stats)}


def gap_tolerance(incumbent: float, abs_gap: float, rel_gap: float) -> float:
    """``max(abs_gap, rel_gap |U|)``: how far above the lower bound the incumbent may stay."""
    return max(abs_gap, rel_gap * abs(incumbent))


class _Search:
    """State of one run (see :func:`branch_and_bound`)."""

    def __init__(self, net: Network, question: Question, root: Root, options: BabOptions, mode: Mode,
                 deadline: Deadline, solver: MilpSolver | None, abs_gap: float, rel_gap: float,
                 progress: Callable[[dict], None] | None, stop: Callable[[], bool] | None):
        self.net, self.question, self.root, self.options, self.mode = net, question, root, options, mode
        self.deadline, self.abs_gap, self.rel_gap, self.progress = deadline, abs_gap, rel_gap, progress
        self.stop = stop
        self.bounder = DomainBounder(net, question, root.bounds)
        self.milp = None if solver is None else DomainMilp(net, question, root.bounds, solver)
        self.frontier, self.queue = Frontier(), Frontier()
        self.stuck: list[Domains] = []
        self.closed_min = math.inf
        self.incumbent, self.point = math.inf, None
        self.found = False
        self.generator = torch.Generator().manual_seed(options.seed)
        self.stats = {"root_s": root.seconds, "bab_s": 0.0, "milp_s": 0.0, "rounds": 0, "domains": 0,
                      "milp_calls": 0, "max_depth": 0, "unstable": root.n_unstable()}

    # -- thresholds and bookkeeping ---------------------------------------------------------------

    def threshold(self) -> float:
        """Domains whose sound bound exceeds this are closed."""
        if self.mode == "decide":
            return 0.0
        if not math.isfinite(self.incumbent):
            return math.inf
        return self.incumbent - gap_tolerance(self.incumbent, self.abs_gap, self.rel_gap)

    def lower_bound(self) -> float:
        open_min = min(self.frontier.min_lower(), self.queue.min_lower(),
                       min((float(d.lower.min()) for d in self.stuck), default=math.inf))
        return min(self.closed_min, open_min)

    def open_count(self) -> int:
        return len(self.frontier) + len(self.queue) + sum(len(d) for d in self.stuck)

    def offer(self, points: np.ndarray) -> None:
        """Re-check candidate points by the float64 forward pass; keep the best as the incumbent."""
        if points.shape[0] == 0:
            return
        points = np.clip(points, self.question.lower, self.question.upper)
        values = self.question.values(self.net.forward(points).reshape(points.shape[0], -1))
        best = int(np.argmin(values))
        if values[best] < self.incumbent:
            self.incumbent, self.point = float(values[best]), points[best].copy()
        if self.mode == "decide" and self.question.satisfied(self.incumbent):
            self.found = True

    def done(self) -> bool:
        if self.found or self.open_count() == 0:
            return True
        if self.mode == "optimize" and math.isfinite(self.incumbent):
            return self.incumbent - self.lower_bound() <= gap_tolerance(self.incumbent, self.abs_gap, self.rel_gap)
        return False

    def close(self, lower: torch.Tensor) -> None:
        if lower.numel():
            self.closed_min = min(self.closed_min, float(lower.min()))

    # -- bounding ---------------------------------------------------------------------------------

    def stop_above(self) -> float | None:
        """Early stop of the float32 optimisation (all rows of the batch above the threshold), when the
        rows share one offset (the optimiser sees ``A y`` without it)."""
        offsets = self.question.offsets
        threshold = self.threshold()
        if not math.isfinite(threshold) or not np.all(offsets == offsets.flat[0]):
            return None
        return threshold + float(offsets.flat[0]) + 1e-6 * (1.0 + abs(threshold))

    def bound(self, domains: Domains) -> None:
        """Optimise, certify, re-check points, then close, queue for the MILP, or push each domain."""
        if len(domains) == 0:
            return
        left = self.deadline.left()
        self.bounder.optimise(domains, self.options, self.stop_above(), None if left is None else max(0.0, left))
        certified: Certified = self.bounder.certify(domains)
        gained = certified.lower > domains.lower + STALL_GAIN * (1.0 + domains.lower.abs())
        domains.stalled = torch.where(gained, torch.zeros_like(domains.stalled), domains.stalled + 1)
        domains.lower = torch.maximum(domains.lower, certified.lower)
        self.stats["domains"] += len(domains)
        self.stats["max_depth"] = max(self.stats["max_depth"], int(domains.depth.max()))
        self.offer(certified.points)
        closed = domains.lower > self.threshold()
        self.close(domains.lower[closed])
        domains.candidates = candidate_lists(certified, self.options)
        domains = domains.select(~closed)
        handoff = domains.free_neurons() <= max(self.options.milp_free_neurons, 0)
        if self.options.milp_stalled:
            handoff |= domains.stalled >= self.options.milp_stalled
        if self.milp is None:
            handoff = torch.zeros_like(handoff)
        self.queue.push(domains.select(handoff))
        rest = domains.select(~handoff)
        stuck = rest.free_neurons() == 0
        if bool(stuck.any()):
            self.stuck.append(rest.select(stuck))
        self.frontier.push(rest.select(~stuck))

    # -- the MILP side ----------------------------------------------------------------------------

    def handoff(self, domain: Domains, time_cap: float) -> None:
        """Solve one domain (a batch of one) with the MILP and file it by the outcome."""
        assert self.milp is not None
        left = self.deadline.capped(time_cap)
        if left is not None and left <= 0:
            self.queue.push(domain)
            return
        splits = [(torch.nonzero(s[0]).reshape(-1), s[0][s[0] != 0]) for s in domain.splits]
        splits = [(self.bounder.unstable[k][idx].numpy(), signs.numpy()) for k, (idx, signs) in enumerate(splits)]
        cutoff = 0.0 if self.mode == "decide" else None
        start = time.perf_counter()
        outcome = self.milp.solve(int(domain.conjunction[0]), splits, left if left is not None else time_cap,
                                  cutoff, start=self.point)
        self.stats["milp_s"] += time.perf_counter() - start
        self.stats["milp_calls"] += 1
        if outcome.point is not None:
            self.offer(outcome.point[None])
        domain.lower = torch.maximum(domain.lower, torch.tensor([outcome.lower], dtype=torch.float64))
        domain.stalled.zero_()
        if outcome.closed or bool(domain.lower[0] > self.threshold()):
            self.close(domain.lower)
        elif int(domain.free_neurons()[0]) == 0:
            self.stuck.append(domain)
        else:
            self.frontier.push(domain)

    def milp_turn(self) -> None:
        """Hand queued domains (worst first) to the MILP while it has used at most ``milp_share`` of the time."""
        if self.milp is None:
            return
        while len(self.queue) and not self.deadline.expired() and not self.done():
            share = self.options.milp_share
            if len(self.frontier) and self.stats["milp_s"] >= share * (self.stats["milp_s"] + self.stats["bab_s"]):
                break
            domain = self.queue.pop_worst(1)
            self.handoff(domain, self.options.milp_seconds)
        if not len(self.frontier) and not len(self.queue) and self.stuck and not self.done():
            retry, self.stuck = Domains.cat(self.stuck), []
            order = torch.argsort(retry.lower)
            for i in order.tolist():  # fully split domains left: give them the time that remains
                if self.deadline.expired() or self.done():
                    self.stuck.append(retry.select(torch.tensor([i])))
                    continue
                self.handoff(retry.select(torch.tensor([i])), self.deadline.left() or self.options.milp_seconds)

    # -- the loop ---------------------------------------------------------------------------------

    def branch_round(self) -> None:
        options = self.options
        open_now = len(self.frontier)
        parents = self.frontier.pop_worst(max(1, options.batch_size // 2))
        if parents is None:
            return
        depth = 1
        if open_now < options.batch_size * options.min_frontier_ratio:
            depth = max(1, min(options.max_split_depth, int(math.log2(max(options.batch_size // len(parents), 1)))))
        depth = max(1, min(depth, int(parents.free_neurons().min())))
        decisions = split_decisions(self.bounder, parents, depth, options)
        children = children_of(parents, decisions, self.bounder)
        self.bound(children)

    def run(self) -> BabResult:
        start = time.perf_counter()
        K = self.question.n_conjunctions
        threshold = self.threshold()
        open_root = np.flatnonzero(~(self.root.conjunction_lower > threshold))
        self.close(torch.as_tensor(self.root.conjunction_lower[self.root.conjunction_lower > threshold]))
        roots = self.bounder.root_domains(self.root.params, self.root.row_of_conjunction, open_root)
        roots.lower = torch.as_tensor(self.root.conjunction_lower[open_root], dtype=torch.float64)
        reason = ""
        try:
            if len(roots) and not self.found:
                self.bound(roots)
            while not self.done():
                if self.deadline.expired():
                    reason = f"time limit ({self.deadline.seconds} s) reached"
                    break
                if self.stop is not None and self.stop():
                    reason = "stopped: another engine decided first"
                    break
                if len(self.frontier) > self.options.max_domains:
                    reason = f"more than {self.options.max_domains} open domains"
                    break
                if len(self.frontier):
                    round_start = time.perf_counter()
                    self.branch_round()
                    self.stats["bab_s"] += time.perf_counter() - round_start
                    self.stats["rounds"] += 1
                    self.report()
                if not self.done():
                    self.milp_turn()
                if not len(self.frontier) and not len(self.queue) and self.stuck and not self.done():
                    if self.milp is None or self.deadline.expired():
                        reason = "fully split domains left that no MILP settled"
                        break
        finally:
            self.stats["search_s"] = time.perf_counter() - start
            self.stats["open"] = self.open_count()
            self.stats["conjunctions"] = K
        return self.result(reason)

    def report(self) -> None:
        if self.progress is not None:
            self.progress({"rounds": self.stats["rounds"], "domains": self.stats["domains"],
                           "open": self.open_count(), "lower_bound": self.lower_bound(),
                           "incumbent": self.incumbent, "seconds": self.deadline.elapsed()})

    def result(self, reason: str) -> BabResult:
        lower = self.lower_bound()
        incumbent = self.incumbent if math.isfinite(self.incumbent) else None
        point = self.point
        if self.mode == "decide":
            if self.found:
                return BabResult("sat", lower, incumbent, point, "a re-checked point meets the disjunction", self.stats)
            if self.open_count() == 0 and not reason:
                return BabResult("unsat", lower, incumbent, point, "every domain closed by a sound bound", self.stats)
            return BabResult("unknown", lower, incumbent, point, reason or "search ended undecided", self.stats)
        if incumbent is not None and incumbent - lower <= gap_tolerance(incumbent, self.abs_gap, self.rel_gap):
            return BabResult("optimal", min(lower, incumbent), incumbent, point, "within the gap", self.stats)
        if not reason and self.open_count() == 0:
            reason = (f"every domain closed, but the MILP's tolerances leave a gap of {incumbent - lower:.3g}"
                      if incumbent is not None else "every domain closed without an incumbent")
        status: Status = "time_limit" if reason.startswith("time limit") else "unknown"
        return BabResult(status, lower, incumbent, point, reason, self.stats)


def branch_and_bound(
    net: Network,
    question: Question,
    *,
    mode: Mode = "decide",
    options: BabOptions | None = None,
    deadline: Deadline | None = None,
    threads: int = 1,
    solver: MilpSolver | None = None,
    start: np.ndarray | None = None,
    root: Root | None = None,
    abs_gap: float = 1e-4,
    rel_gap: float = 1e-4,
    progress: Callable[[dict], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> BabResult:
    """Decide the sign of ``min G`` or minimise ``G`` over the question's box (module docstring).

    Args:
        question: the box and the conjunctions (:class:`robustmip.bab.question.Question`).
        mode: ``"decide"`` (``sat`` / ``unsat`` / ``unknown``) or ``"optimize"`` (to the gap).
        options: search settings (:class:`BabOptions`).
        deadline: when to stop (``unknown`` / ``time_limit``, never ``unsat``); None: no limit.
        threads: torch threads (the search is set to this count and restored after).
        solver: the MILP for hand-offs (None: no hand-off; fully split domains then stay open).
        start: points ``(n_inputs,)`` or ``(N, n_inputs)`` to re-check first (the incumbent's seed).
        root: a root stage already computed (:func:`robustmip.bab.root.root_bounds`), else computed here.
        abs_gap, rel_gap: optimisation stops when ``U - L <= max(abs_gap, rel_gap |U|)``.
        progress: called after every round with counts and both bounds.
        stop: asked before every round; True ends the search ``unknown`` (e.g. another engine decided).
    """
    if mode not in ("decide", "optimize"):
        raise InvalidInput(f"mode must be 'decide' or 'optimize', got {mode!r}")
    if not (abs_gap >= 0 and rel_gap >= 0) or (mode == "optimize" and abs_gap == 0 and rel_gap == 0):
        raise InvalidInput("the gaps must be >= 0, and one of them > 0 when optimising")
    if not relu_layers_supported(net):
        raise InvalidInput("the branch-and-bound needs a network of ReLU hidden layers and an identity output layer")
    options = options or BabOptions()
    deadline = deadline or Deadline()
    with torch_threads(threads):
        root = root or root_bounds(net, question, options, deadline, threads)
        search = _Search(net, question, root, options, mode, deadline, solver, abs_gap, rel_gap, progress, stop)
        if start is not None:
            search.offer(np.atleast_2d(np.asarray(start, dtype=np.float64)).reshape(-1, net.n_inputs))
        return search.run()
