"""Root bounds of the branch-and-bound: the intermediate bounds every domain keeps, and the root's verdicts.

Stages, each sound in float64 and intersected with the one before: CROWN (or the ``lp`` level), then
alpha-CROWN with the intermediate layers optimised for the question's rows (float32 search, float64
certificate, :func:`robustmip.bounds.alpha.alpha_bounds`), then, within ``refine_seconds``, the
sign-deciding MILP refinement (:func:`robustmip.bounds.refine.refine_bounds`) followed by alpha-CROWN
again over the refined bounds. The certified lower bounds of the question's rows close the
conjunctions the root already proves.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from robustmip.bab.options import BabOptions
from robustmip.bab.question import Question
from robustmip.bounds import Bounds, compute_bounds
from robustmip.bounds.alpha import alpha_bounds
from robustmip.bounds.refine import refine_bounds
from robustmip.deadline import Deadline
from robustmip.network import Network


@dataclass
class Root:
    """What the root stage hands to the search.

    Attributes:
        bounds: sound float64 bounds of every layer over the box (the domains' fixed intermediate bounds).
        conjunction_lower: ``(K,)`` sound lower bounds of each conjunction's ``g_i`` (-inf if not computed).
        params: float32 slopes of the last alpha-CROWN (its final rows: the question's flattened rows).
        row_of_conjunction: ``(K, M)`` index of each padded row among the flattened rows.
        seconds: wall time of the stage.
    """

    bounds: Bounds
    conjunction_lower: np.ndarray
    params: object | None
    row_of_conjunction: np.ndarray
    seconds: float

    def n_unstable(self) -> int:
        return self.bounds.n_unstable()


def root_bounds(net: Network, question: Question, options: BabOptions, deadline: Deadline, threads: int = 1,
                given: Bounds | None = None) -> Root:
    """The root stage (module docstring); ``given`` replaces the first stage (sound bounds over the box)."""
    start = time.perf_counter()
    K, M = question.rows.shape[:2]
    spec = question.rows.reshape(K * M, -1)
    flat = np.arange(K * M).reshape(K, M)
    bounds = given
    if bounds is None:
        level = "lp" if options.root_bounds == "lp" else "crown"
        bounds = compute_bounds(net, question.lower, question.upper, level, deadline=deadline, threads=threads)
    alpha = alpha_bounds(net, bounds, spec, iterations=options.root_iterations, deadline=deadline, threads=threads)
    if options.refine_seconds > 0 and not deadline.expired():
        refined = refine_bounds(net, alpha.bounds, deadline.within(options.refine_seconds),
                                neuron_time_limit=options.refine_neuron_seconds, threads=threads)
        if refined.n_unstable() < alpha.bounds.n_unstable():
            alpha = alpha_bounds(net, refined, spec, iterations=options.root_iterations, deadline=deadline,
                                 threads=threads)
        else:
            alpha.bounds = refined
    lower = np.full(K, -np.inf)
    if alpha.spec_lower is not None:
        lower = (alpha.spec_lower[flat] - question.offsets).max(axis=1)
    return Root(alpha.bounds, lower, alpha.params, flat, time.perf_counter() - start)
