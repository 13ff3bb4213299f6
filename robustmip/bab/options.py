"""Settings of the branch-and-bound: one frozen dataclass, defaults chosen on mnist_fc (784-256xL-10)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from robustmip.errors import InvalidInput

Branching = Literal["babsr", "kfsb"]
RootBounds = Literal["alpha", "lp"]


@dataclass(frozen=True)
class BabOptions:
    """How the branch-and-bound searches (the question's time limit, threads and solver come from
    :class:`robustmip.milp.SolveOptions`).

    Attributes:
        batch_size: domains bounded together (children included) per round.
        iterations: Adam steps of the beta-CROWN optimisation per round (float32).
        lr_alpha, lr_beta, lr_decay: its step sizes and their decay per step.
        branching: ``"babsr"`` (Bunel et al.'s score) or ``"kfsb"`` (the ``candidates`` best neurons by
            BaBSR and by intercept score, each judged by the bounds of its two children).
        candidates: neurons per score that ``kfsb`` evaluates.
        min_frontier_ratio: when fewer than ``batch_size * min_frontier_ratio`` domains are open, each
            picked domain is split on several neurons at once (``2^d`` children) to fill the batch.
        max_split_depth: at most this many neurons split per domain in one round.
        root_bounds: intermediate bounds the domains keep: ``"alpha"`` (alpha-CROWN, certified) or
            ``"lp"`` (the ``lp`` level, then alpha-CROWN on top).
        root_iterations: Adam steps of the root alpha-CROWN (intermediate layers included).
        refine_seconds: budget of the sign-deciding MILP refinement of the root bounds
            (:func:`robustmip.bounds.refine.refine_bounds`), 0 to skip it.
        refine_neuron_seconds: time cap of one refinement MILP.
        refine_after: a decision (with a time limit and ``refine_seconds`` 0) that the search has not
            settled after this many seconds starts again from MILP-refined root bounds (``inf``: never).
            Easy questions end before it; on hard ones the loose intermediate bounds of alpha-CROWN,
            not the search, were what stalled.
        refine_share: the share of the time left at that restart given to the refinement.
        milp_free_neurons: a domain with at most this many unsplit unstable ReLUs is handed to the MILP
            (its split binaries fixed; none left: an LP); negative: never (except fully split domains).
        milp_stalled: a domain whose bound has not improved over this many splits in a row is handed to
            the MILP too (0: never).
        milp_seconds: time cap of one hand-off MILP.
        milp_share: most of the search time the hand-off MILPs take while domains wait for branching.
        max_domains: most open domains kept (memory); more ends the search ``unknown``.
        seed: seed of the random tie-breaks.
    """

    batch_size: int = 512
    iterations: int = 20
    lr_alpha: float = 0.1
    lr_beta: float = 0.05
    lr_decay: float = 0.98
    branching: Branching = "kfsb"
    candidates: int = 3
    min_frontier_ratio: float = 0.25
    max_split_depth: int = 6
    root_bounds: RootBounds = "alpha"
    root_iterations: int = 20
    refine_seconds: float = 0.0
    refine_neuron_seconds: float = 1.0
    refine_after: float = 30.0
    refine_share: float = 0.4
    milp_free_neurons: int = 8
    milp_stalled: int = 6
    milp_seconds: float = 5.0
    milp_share: float = 0.5
    max_domains: int = 200_000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.batch_size < 2 or self.iterations < 0 or self.root_iterations < 0:
            raise InvalidInput("batch_size must be >= 2 and the iteration counts >= 0")
        if self.branching not in ("babsr", "kfsb"):
            raise InvalidInput(f"branching must be 'babsr' or 'kfsb', got {self.branching!r}")
        if self.root_bounds not in ("alpha", "lp"):
            raise InvalidInput(f"root_bounds must be 'alpha' or 'lp', got {self.root_bounds!r}")
        if self.candidates < 1 or self.max_split_depth < 1 or not 0 < self.min_frontier_ratio <= 1:
            raise InvalidInput("candidates and max_split_depth must be >= 1, min_frontier_ratio in (0, 1]")
        if self.milp_stalled < 0 or not 0 < self.milp_share <= 1:
            raise InvalidInput("milp_stalled must be >= 0 and milp_share in (0, 1]")
        if self.refine_seconds < 0 or self.refine_neuron_seconds <= 0 or self.milp_seconds <= 0:
            raise InvalidInput("refine_seconds must be >= 0, refine_neuron_seconds and milp_seconds > 0")
        if not self.refine_after > 0 or not 0 < self.refine_share < 1:
            raise InvalidInput("refine_after must be > 0 seconds (inf: never) and refine_share in (0, 1)")
        if self.max_domains < self.batch_size:
            raise InvalidInput("max_domains must be at least batch_size")
