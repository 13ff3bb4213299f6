"""The exact MILP attack of Bai et al. 2020: for one image, minimise ``z_label - z_target`` for each target.

One persistent model per (network, image, eps) serves all of the image's targets
(:class:`robustmip.milp.ImageProblem`). Each target gives one row; a row with a negative optimum (OFV)
carries a counterexample that passed the float64 re-check.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from robustmip.attacks.falsify import property_falsifier
from robustmip.bounds import BoundsMethod
from robustmip.deadline import Deadline
from robustmip.milp import ImageProblem, SolveOptions
from robustmip.network import Network
from robustmip.solvers import MilpSolver


@dataclass
class AttackRow:
    """One (image, target) MILP.

    Attributes:
        status: ``adversarial`` (OFV < 0, re-checked), ``robust`` (proved OFV > 0) or ``unknown``.
        ofv: the optimal (or best found) margin ``z_label - z_target``; bound: its proven lower bound.
        solver_status: ``optimal``, ``time_limit``, ...
        bounds_s, build_s: the image's shared bound and model-building time (counted on its first row,
            0 on the others); solve_s: this target's PGD search and solve time.
        decision_status: the solver status of the decision MILP that settles a time-limited optimisation
            with no proof (``decided by bounds`` when no solve was needed; None when no decision ran);
            decision_s: its seconds; time_s: the sum of all four times.
        distortion: l-infinity distance of the counterexample; predicted: its float64 class.
    """

    image: int
    label: int
    target: int
    eps: float
    status: str
    solver_status: str
    ofv: float | None
    bound: float | None
    bounds_s: float
    build_s: float
    solve_s: float
    time_s: float
    distortion: float | None
    predicted: int | None
    reason: str
    decision_status: str | None = None
    decision_s: float = 0.0

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def attack_image(
    net: Network,
    x: np.ndarray,
    label: int,
    eps: float,
    *,
    image: int = 0,
    targets: Sequence[int] | None = None,
    solver: str = "highs",
    time_limit: float | None = 60.0,
    bounds_method: BoundsMethod = "lp",
    threads: int = 1,
    pgd_start: bool = True,
    decide_time_limit: float | None = None,
) -> tuple[list[AttackRow], dict[int, np.ndarray]]:
    """Targeted max-margin MILPs for every target of one image, solved to optimality.

    With ``pgd_start`` (default) a targeted PGD search runs before each MILP and its best point is the
    MIP start (faster with HiGHS, see benchmarks/README.md); its time is part of ``solve_s``.
    With ``decide_time_limit`` (seconds, > 0), an optimisation that stops at its time limit with
    neither a proof nor a counterexample is followed by a decision MILP ("is the margin below 0?",
    solver cutoff at 0, up to that many seconds): the row keeps the optimisation's incumbent and bound
    and takes the decision's verdict. On robustly trained nets a decision closes in seconds where the
    optimum does not (the cutoff prunes every node whose bound is >= 0).
    Returns the rows (one per target, in target order) and the re-checked counterexamples by target
    (flattened float64 ``(n_inputs,)``).
    """
    options = SolveOptions(MilpSolver(solver, time_limit, threads), bounds=bounds_method,
                           falsifier=property_falsifier() if pgd_start else None)
    problem = ImageProblem(net, x, label, eps, options)
    problem.compute_bounds()  # shared by every target, outside the per-MILP time limit
    targets = [t for t in range(net.n_outputs) if t != label] if targets is None else list(targets)
    rows, examples = [], {}
    build_seen = 0.0
    for i, target in enumerate(targets):
        optimum = problem.margin(target=target)
        build = problem.build_seconds - build_seen
        build_seen = problem.build_seconds
        solve = optimum.times.get("solve", 0.0) + optimum.times.get("falsify", 0.0)
        bounds = problem.bounds.seconds if i == 0 else 0.0
        verdict, decision_status, decision_s, ofv = optimum, None, 0.0, optimum.objective
        if optimum.status == "unknown" and optimum.solver_status == "time_limit" and decide_time_limit:
            # The falsifier has searched this target already: start from the image, skip a second search.
            started = time.perf_counter()
            verdict = problem.margin(target=target, decision=True, deadline=Deadline(decide_time_limit),
                                     start=problem.x)
            decision_status = verdict.solver_status or f"decided by {verdict.proof}"
            decision_s = time.perf_counter() - started
            if verdict.counterexample_margin is not None:
                ofv = verdict.counterexample_margin if ofv is None else min(ofv, verdict.counterexample_margin)
        rows.append(AttackRow(
            image=image, label=int(label), target=int(target), eps=float(eps), status=verdict.status,
            solver_status=optimum.solver_status, ofv=ofv, bound=optimum.bound,
            bounds_s=bounds, build_s=build, solve_s=solve, time_s=bounds + build + solve + decision_s,
            distortion=verdict.distortion, predicted=verdict.predicted, reason=verdict.reason,
            decision_status=decision_status, decision_s=decision_s,
        ))
        if verdict.counterexample is not None:
            examples[int(target)] = verdict.counterexample.reshape(-1)
    return rows, examples


def milp_job(instance: dict) -> dict:
    """A picklable job for :func:`robustmip.parallel.run_instances`: :func:`attack_image` on one image.

    ``instance`` holds ``network`` (a saved :class:`Network` ``.npz``), ``x`` (flat pixel list),
    ``label``, ``eps``, ``image``, ``net`` (a name copied into the rows), ``solver``, ``time_limit``,
    ``bounds``, optionally ``pgd_start`` (default True) and ``decide_time_limit`` (default None), and ``adv_path``: the counterexamples go
    there as ``target_<t>`` arrays (written atomically). Torch runs on one thread here (beside other
    solver processes more threads only spin). Returns ``{"rows": [...]}``.
    """
    torch.set_num_threads(1)
    net = Network.load(instance["network"])
    rows, examples = attack_image(
        net, np.asarray(instance["x"], dtype=np.float64), instance["label"], instance["eps"],
        image=instance["image"], solver=instance["solver"], time_limit=instance["time_limit"],
        bounds_method=instance["bounds"], pgd_start=instance.get("pgd_start", True),
        decide_time_limit=instance.get("decide_time_limit"),
    )
    if examples:
        adv_path = Path(instance["adv_path"])
        adv_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = adv_path.with_name(adv_path.stem + ".tmp.npz")
        np.savez_compressed(tmp, **{f"target_{t}": v for t, v in examples.items()})
        tmp.replace(adv_path)
    return {"rows": [dict(r.to_dict(), net=instance["net"]) for r in rows]}
