"""Cheap falsification before any MILP: PGD on a property's own objective over its input box.

For a property ``OR_i (A_i y <= c_i)`` the objective is the disjunction's slack
``max_i min_j (c_ij - A_ij . y(x))`` (for robustness: ``max_t y_t - y_label``, the Carlini-Wagner
margin). The falsifier returns its best point whether or not it reaches slack ``>= 0``: the engine
re-checks it with the float64 forward pass before it reports anything, and otherwise uses it as the
MIP start of a max-margin MILP (a near-optimal incumbent, so the solver can focus on the bound).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from robustmip.attacks.gradient import projected_gradient_ascent
from robustmip.network import Network
from robustmip.spec import OutputConjunction


def property_falsifier(steps: int = 50, restarts: int = 8, seed: int = 0):
    """A falsifier ``(net, lower, upper, conjunctions) -> best point`` for the engine.

    Args:
        steps: signed-gradient steps per restart; restarts: random starts, run as one batch;
        seed: seed of the random starts (the result is deterministic).

    Returns the point (float64 ``(n_inputs,)``, inside the box) of the highest slack found.
    """
    cache: dict[str, object] = {}

    def falsify(net: Network, lower: np.ndarray, upper: np.ndarray,
                conjunctions: Sequence[OutputConjunction]) -> np.ndarray:
        if cache.get("net") is not net:  # one torch copy per network, not per question
            cache["net"], cache["model"] = net, net.to_torch(torch.float64)
        model = cache["model"]
        lo = torch.as_tensor(lower, dtype=torch.float64).reshape(1, -1).repeat(restarts, 1)
        hi = torch.as_tensor(upper, dtype=torch.float64).reshape(1, -1).repeat(restarts, 1)
        rows = [(torch.as_tensor(np.atleast_2d(A), dtype=torch.float64),
                 torch.as_tensor(np.atleast_1d(c), dtype=torch.float64)) for A, c in conjunctions]

        def objective(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            y = model(x)
            slack = torch.stack([(c[None, :] - y @ A.T).min(dim=1).values for A, c in rows], dim=1).max(dim=1).values
            return slack, slack >= 0

        centre, radius = (lo + hi) / 2, (hi - lo) / 2
        generator = torch.Generator().manual_seed(seed)
        points = projected_gradient_ascent(
            objective, centre, lo, hi, steps=steps, step_size=2.5 * radius / steps, restarts=1,
            random_start=True, radius=radius, generator=generator,
        )
        with torch.no_grad():
            slack, _ = objective(points)
        return points[int(torch.argmax(slack))].numpy().astype(np.float64)

    return falsify
