"""Cheap falsification before any exact method: PGD on a property's own objective over its input box.

For a property ``OR_k (A_k y <= c_k)`` each conjunction ``k`` has the slack ``s_k(x) = min_j (c_kj -
A_kj . y(x))``; the property holds at ``x`` iff some ``s_k(x) >= 0`` (for robustness: ``y_t - y_label``,
the Carlini-Wagner margin of target ``t``). Every conjunction gets its own ``restarts`` random starts,
all run as one batch of ``restarts x K`` points through the network in numpy float64 (the nets are
dense: no torch, which keeps the command line's start-up short); each point ascends its own
conjunction's slack by signed gradient steps of decaying size, projected onto the box, and the search
stops at the
first step where some point satisfies the property. Otherwise the point with the largest slack of
the disjunction is returned: the engine re-checks it with the float64 forward pass before it reports
anything, and may use it as the MIP start of a max-margin MILP (a near-optimal incumbent).

:func:`output_extremes` is the same search for output optima: one point per direction ``c_k``
maximising ``c_k^T y`` over the box (MIP starts of the output-box MILPs).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from robustmip.errors import InvalidInput
from robustmip.network import Network
from robustmip.spec import Falsifier, OutputConjunction


def _forward(net: Network, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Logits ``(N, n_out)`` and, per layer, the ReLU masks ``(N, n_k)`` (None for identity layers)."""
    masks = []
    h = x
    for layer in net.layers:
        a = h @ layer.W.T + layer.b
        if layer.activation == "relu":
            mask = a > 0.0
            h = np.where(mask, a, 0.0)
            masks.append(mask)
        else:
            h = a
            masks.append(None)
    return h, masks


def _input_gradient(net: Network, masks: list[np.ndarray], grad_out: np.ndarray) -> np.ndarray:
    """Back-propagate ``grad_out`` ``(N, n_out)`` through the layers to the input ``(N, n_in)``."""
    g = grad_out
    for layer, mask in zip(reversed(net.layers), reversed(masks)):
        if mask is not None:
            g = g * mask
        g = g @ layer.W
    return g


def _active_rows(y: np.ndarray, rows: list[tuple[np.ndarray, np.ndarray]], owner: np.ndarray) -> np.ndarray:
    """For each point, the row ``A_kj`` ``(N, n_out)`` of its own conjunction ``k = owner`` attaining the slack."""
    active = np.empty_like(y)
    for k, (A, c) in enumerate(rows):
        idx = np.flatnonzero(owner == k)
        j = (c[None, :] - y[idx] @ A.T).argmin(axis=1)
        active[idx] = A[j]
    return active


def disjunction_slacks(y: np.ndarray, rows: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """``max_k min_j (c_kj - A_kj . y)`` for every row of ``y`` ``(N, n_out)``: ``>= 0`` iff the property holds."""
    return np.max(np.stack([(c[None, :] - y @ A.T).min(axis=1) for A, c in rows], axis=1), axis=1)


STEP_FRACTION = 0.25
"""First step size as a fraction of the box's half-width; steps then shrink to 0 on a cosine schedule.
Large early steps leave the flat regions (dead ReLUs) where a small fixed step stalls."""


def property_falsifier(steps: int = 50, restarts: int = 8, seed: int = 0) -> Falsifier:
    """A falsifier ``(net, lower, upper, conjunctions) -> best point`` for the engine.

    Args:
        steps: signed-gradient steps per start (cosine-decaying size, see :data:`STEP_FRACTION`).
        restarts: random starts per conjunction (the first starts at the box centre).
        seed: seed of the random starts (the result is deterministic).

    Returns the point (float64 ``(n_inputs,)``, inside the box) of the largest slack found; a point
    that satisfies the property as soon as one is found.
    """
    if steps < 1 or restarts < 1:
        raise InvalidInput(f"the falsifier needs steps >= 1 and restarts >= 1, got {steps} and {restarts}")

    def falsify(net: Network, lower: np.ndarray, upper: np.ndarray,
                conjunctions: Sequence[OutputConjunction]) -> np.ndarray:
        lower = np.asarray(lower, dtype=np.float64).reshape(-1)
        upper = np.asarray(upper, dtype=np.float64).reshape(-1)
        rows = [(np.atleast_2d(np.asarray(A, dtype=np.float64)), np.atleast_1d(np.asarray(c, dtype=np.float64)))
                for A, c in conjunctions]
        rng = np.random.default_rng(seed)
        owner = np.repeat(np.arange(len(rows)), restarts)
        x = rng.uniform(lower, upper, size=(owner.size, lower.size))
        x[::restarts] = 0.5 * (lower + upper)
        half_width = 0.5 * (upper - lower)
        best_x, best_slack = x[0].copy(), -np.inf
        for t in range(steps + 1):
            y, masks = _forward(net, x)
            overall = disjunction_slacks(y, rows)
            i = int(np.argmax(overall))
            if overall[i] > best_slack:
                best_x, best_slack = x[i].copy(), float(overall[i])
            if best_slack >= 0.0 or t == steps:
                break
            grad = _input_gradient(net, masks, -_active_rows(y, rows, owner))
            step = STEP_FRACTION * half_width * 0.5 * (1.0 + np.cos(np.pi * t / steps))
            x = np.clip(x + step * np.sign(grad), lower, upper)
        return best_x

    return falsify


def output_extremes(net: Network, lower: np.ndarray, upper: np.ndarray, directions: np.ndarray, steps: int = 50,
                    restarts: int = 4, seed: int = 0) -> np.ndarray:
    """Points of the box ``[lower, upper]`` that maximise ``c_k^T y`` for every row ``c_k`` of ``directions``.

    The same search as :func:`property_falsifier` with the objective ``c_k^T y`` (MIP starts of the
    output-box MILPs): ``restarts`` starts per direction (the first at the box centre), one batch of
    ``k * restarts`` points in numpy float64, signed-gradient steps of cosine-decaying size projected
    onto the box; each direction keeps its best iterate. Deterministic for a given ``seed``.

    Args:
        directions: ``(k, n_outputs)`` float64.

    Returns:
        float64 ``(k, n_inputs)``, every row inside the box.
    """
    if steps < 1 or restarts < 1:
        raise InvalidInput(f"the search needs steps >= 1 and restarts >= 1, got {steps} and {restarts}")
    lower = np.asarray(lower, dtype=np.float64).reshape(-1)
    upper = np.asarray(upper, dtype=np.float64).reshape(-1)
    C = np.atleast_2d(np.asarray(directions, dtype=np.float64))
    k = C.shape[0]
    rows = np.repeat(C, restarts, axis=0)
    x = np.random.default_rng(seed).uniform(lower, upper, size=(rows.shape[0], lower.size))
    x[::restarts] = 0.5 * (lower + upper)
    half_width = 0.5 * (upper - lower)
    best_x, best_value = x[::restarts].copy(), np.full(k, -np.inf)
    for t in range(steps + 1):
        y, masks = _forward(net, x)
        value = (y * rows).sum(axis=1).reshape(k, restarts)
        j = value.argmax(axis=1)
        better = value[np.arange(k), j] > best_value
        best_value = np.where(better, value[np.arange(k), j], best_value)
        best_x[better] = x.reshape(k, restarts, -1)[np.arange(k), j][better]
        if t == steps:
            break
        step = STEP_FRACTION * half_width * 0.5 * (1.0 + np.cos(np.pi * t / steps))
        x = np.clip(x + step * np.sign(_input_gradient(net, masks, rows)), lower, upper)
    return best_x
