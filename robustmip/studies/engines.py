"""The exact engine behind a study's per-target optimisations, chosen by name, and the per-image job.

Every max-margin optimisation of a study goes through :func:`optimise_target` with an ``engine``
setting. ``milp`` is the monolithic MILP (:func:`robustmip.attacks.milp_attack.optimise_margin`: one
solve per rung of a time ladder, each starting from the last incumbent). An engine is a function
``(problem, target, time_limits) -> TargetOptimum`` registered in :data:`ENGINES`; ``bab`` is the
branch-and-bound (:func:`robustmip.bab.engine.optimise_target`: one anytime search for the whole
ladder, to a relative gap of 1e-4).

:func:`image_job` is the picklable job that :func:`robustmip.parallel.run_instances` runs: one
(net, eps, image), all targets, rows with the engine's status, incumbent, bound and gap, counterexamples
saved beside them.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from robustmip.attacks.milp_attack import (
    Optimiser,
    TargetOptimum,
    attack_image,
    optimise_margin,
)
from robustmip.bab.engine import optimise_target as optimise_bab_target
from robustmip.errors import InvalidInput
from robustmip.milp import ImageProblem
from robustmip.network import Network

ENGINES: dict[str, Optimiser] = {"milp": optimise_margin, "bab": optimise_bab_target}
"""Engine name -> optimiser."""


def optimise_target(problem: ImageProblem, target: int, time_limits: Sequence[float], *,
                    engine: str = "milp") -> TargetOptimum:
    """Minimise ``z_label - z_target`` over the problem's box with ``engine``, over a ladder of time limits."""
    if engine not in ENGINES:
        raise InvalidInput(f"unknown engine {engine!r}; choose one of {sorted(ENGINES)}")
    return ENGINES[engine](problem, target, time_limits)


def _continued(problem: ImageProblem, target: int, time_limits: Sequence[float], *, engine: str,
               previous: dict[int, float]) -> TargetOptimum:
    """:func:`optimise_target` on the rungs above the limit an earlier run stopped at for this target."""
    above = [t for t in time_limits if t > (previous.get(target) or 0.0)]
    return optimise_target(problem, target, above or list(time_limits)[-1:], engine=engine)


def _save_examples(path: Path, examples: dict[int, np.ndarray]) -> None:
    """Add ``target_<t>`` arrays to the ``.npz`` at ``path`` (atomically; earlier targets are kept)."""
    merged = {}
    if path.is_file():
        with np.load(path) as data:
            merged = {name: data[name] for name in data.files}
    merged.update({f"target_{t}": v for t, v in examples.items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez_compressed(tmp, **merged)
    tmp.replace(path)


def image_job(instance: dict) -> dict:
    """One image's targeted optimisations, for :func:`robustmip.parallel.run_instances`.

    ``instance`` holds ``network`` (a saved :class:`Network` ``.npz``), ``x`` (flat pixel list),
    ``label``, ``eps``, ``image``, ``engine``, ``solver``, ``time_limits`` (the ladder, seconds),
    ``mip_gap``, ``bounds``, ``pgd_start``, ``decide_time_limit`` (None: no decision), ``adv_path``
    (counterexamples go there as ``target_<t>`` arrays), ``settled`` (``{target: row}`` solved to
    optimality by an earlier run: kept as they are), ``previous_limits`` (``{target: seconds}``: the
    last limit an earlier run tried on a target it left open; this run starts above it) and
    ``fields`` (copied into every row, e.g. the net's name and seed). Torch runs on one thread here
    (beside other solver processes more threads only spin). Returns ``{"rows": [...]}``.
    """
    torch.set_num_threads(1)
    net = Network.load(instance["network"])
    rows, examples = attack_image(
        net, np.asarray(instance["x"], dtype=np.float64), instance["label"], instance["eps"],
        image=instance["image"], solver=instance["solver"], time_limits=instance["time_limits"],
        mip_gap=instance["mip_gap"], bounds_method=instance["bounds"], pgd_start=instance["pgd_start"],
        decide_time_limit=instance["decide_time_limit"],
        optimiser=partial(_continued, engine=instance["engine"],
                          previous={int(t): v for t, v in instance.get("previous_limits", {}).items()}),
        settled={int(t): row for t, row in instance.get("settled", {}).items()},
    )
    if examples:
        _save_examples(Path(instance["adv_path"]), examples)
    return {"rows": [dict(r.to_dict(), engine=instance["engine"], **instance["fields"]) for r in rows]}
