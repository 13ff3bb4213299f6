"""What a question asks of a network: the input region and the output condition.

Everything here is plain numpy and sits below bounds, milp, bab, attacks and the VNN-LIB reader,
so none of them imports another for a type.

* The input region is a box ``[lower, upper]`` (float64 ``(n_inputs,)``); :func:`input_box` gives the
  l-infinity ball ``[x - eps, x + eps]`` clipped to the input domain.
* An output condition is a disjunction of conjunctions ``OR_i (A_i y <= c_i)`` over the outputs ``y``
  (:data:`OutputConjunction`). Robustness of ``label`` asks that no conjunction
  ``y_label - y_t <= 0`` is reachable (:func:`robustness_conjunctions`); a targeted margin is
  ``(e_label - e_target)^T y`` (:func:`margin_coefficients`).
* A :class:`Falsifier` is a cheap search (e.g. PGD) for an input satisfying the condition, run before
  any exact method; its candidates are always re-checked by the float64 forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

from robustmip.errors import InvalidInput

OutputConjunction = tuple[np.ndarray, np.ndarray]
"""``(A, c)`` meaning ``A @ y <= c``: ``A`` is ``(m, n_outputs)``, ``c`` is ``(m,)``."""

Domain = tuple[float | None, float | None]
"""The valid input range ``(low, high)`` a box is clipped to; ``None`` for no clipping. Pixels: ``(0, 1)``."""


def check_eps(eps: float, upper: float | None = None) -> float:
    """``eps`` as a float; InvalidInput unless finite, ``>= 0`` and (if given) ``<= upper``."""
    try:
        value = float(eps)
    except (TypeError, ValueError):
        raise InvalidInput(f"eps must be a number, got {eps!r}") from None
    if not np.isfinite(value) or value < 0 or (upper is not None and value > upper):
        bound = "" if upper is None else f" and <= {upper:g}"
        raise InvalidInput(f"eps must be a finite number >= 0{bound}, got {eps}")
    return value


def input_box(x: np.ndarray, eps: float, clip_lower: float | None = 0.0,
              clip_upper: float | None = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """The l-infinity ball ``[x - eps, x + eps]`` intersected with ``[clip_lower, clip_upper]``.

    Args:
        x: the centre, any shape; flattened in C order.
        eps: radius in input units (``>= 0``), a scalar or one value per input.
        clip_lower, clip_upper: the valid input domain (pixel range); ``None`` for no clipping.

    Returns:
        ``(lower, upper)``, float64 ``(n,)`` each.
    """
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    radius = np.asarray(eps, dtype=np.float64)
    if radius.ndim == 0:
        check_eps(float(radius))
    elif radius.size != x.size or not np.isfinite(radius).all() or (radius < 0).any():
        raise InvalidInput(f"per-input eps needs {x.size} finite values >= 0, got shape {radius.shape}")
    radius = radius.reshape(-1) if radius.ndim else radius
    if not np.isfinite(x).all():
        raise InvalidInput("the input contains NaN or infinite values")
    lower, upper = x - radius, x + radius
    if clip_lower is not None:
        lower = np.maximum(lower, clip_lower)
    if clip_upper is not None:
        upper = np.minimum(upper, clip_upper)
    if (lower > upper).any():
        raise InvalidInput("the input lies outside the valid domain [clip_lower, clip_upper] by more than eps")
    return lower, upper


def check_image(x: np.ndarray, label: int, n_inputs: int, n_outputs: int, domain: Domain = (0.0, 1.0),
                input_shape: Sequence[int] | None = None) -> np.ndarray:
    """The image flattened to float64 ``(n_inputs,)``, after checking it and its label.

    InvalidInput when the size differs from ``n_inputs``, the label is not a class, a value is not
    finite, or a value lies outside ``domain``.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.size != n_inputs:
        shape = tuple(input_shape) if input_shape is not None else (n_inputs,)
        raise InvalidInput(f"image has {x.size} values but the network expects shape {shape}")
    if not 0 <= int(label) < n_outputs:
        raise InvalidInput(f"label {label} is not one of the network's {n_outputs} classes")
    if not np.isfinite(x).all():
        raise InvalidInput("the image contains NaN or infinite values")
    lo, hi = domain
    if (lo is not None and x.min() < lo) or (hi is not None and x.max() > hi):
        raise InvalidInput(
            f"the image lies outside the input domain [{lo}, {hi}] (values {x.min():.3g}..{x.max():.3g}); "
            "scale pixels to [0, 1] or pass another domain"
        )
    return x.reshape(-1)


def margin_coefficients(n_outputs: int, label: int, target: int) -> np.ndarray:
    """``e_label - e_target``, float64 ``(n_outputs,)``: the targeted margin as ``c^T y``."""
    c = np.zeros(n_outputs)
    c[label], c[target] = 1.0, -1.0
    return c


def margin_matrix(n_outputs: int, label: int) -> np.ndarray:
    """The margin specification ``C_y``: row ``j`` is ``e_label - e_j`` for every ``j != label``.

    Shape ``(n_outputs - 1, n_outputs)``; ``C_y y > 0`` row-wise iff ``label`` wins against every class.
    """
    return np.stack([margin_coefficients(n_outputs, label, t) for t in range(n_outputs) if t != label])


def robustness_conjunctions(n_outputs: int, label: int, targets: Sequence[int]) -> list[OutputConjunction]:
    """``y_label - y_t <= 0`` for each target: "some target reaches the label's output"."""
    return [(margin_coefficients(n_outputs, label, t)[None, :], np.zeros(1)) for t in targets]


def check_conjunctions(conjunctions: Sequence[OutputConjunction], n_outputs: int) -> list[OutputConjunction]:
    """The conjunctions as float64 ``(A (m, n_outputs), c (m,))`` pairs; InvalidInput when there are none
    or a shape does not fit."""
    if not conjunctions:
        raise InvalidInput("a disjunction needs at least one conjunction")
    pairs = []
    for i, (A, c) in enumerate(conjunctions):
        A = np.atleast_2d(np.asarray(A, dtype=np.float64))
        c = np.atleast_1d(np.asarray(c, dtype=np.float64))
        if A.ndim != 2 or A.shape[0] == 0 or A.shape != (c.shape[0], n_outputs):
            raise InvalidInput(f"conjunction {i}: A has shape {A.shape}, expected ({c.shape[0]}, {n_outputs})")
        pairs.append((A, c))
    return pairs


def satisfies(outputs: np.ndarray, conjunctions: Sequence[OutputConjunction]) -> bool:
    """Whether ``outputs`` (float64 ``(n_outputs,)``) meets at least one conjunction exactly."""
    return any(bool(np.all(np.atleast_2d(A) @ outputs <= np.atleast_1d(c))) for A, c in conjunctions)


def disjunction_slack(outputs: np.ndarray, conjunctions: Sequence[OutputConjunction]) -> float:
    """``max_i min_j (c_ij - A_ij . y)``: ``>= 0`` iff some conjunction holds at ``outputs``."""
    return max(float(np.min(np.atleast_1d(c) - np.atleast_2d(A) @ outputs)) for A, c in conjunctions)


@dataclass
class PropertyCase:
    """One input box with the output conjunctions that are unsafe on it."""

    lower: np.ndarray
    upper: np.ndarray
    conjunctions: list[OutputConjunction]


@dataclass
class OutputProperty:
    """``sat`` (violated) iff some case has an input in its box meeting one of its conjunctions.

    The parsed form of a VNN-LIB file (:mod:`robustmip.io.vnnlib`).
    """

    n_inputs: int
    n_outputs: int
    cases: list[PropertyCase]


class Falsifier(Protocol):
    """A cheap search run before any exact method.

    ``falsifier(net, lower, upper, conjunctions)`` returns its best input in the box (float64
    ``(n_inputs,)``), or None. The point need not satisfy the condition: the caller re-checks it
    with the float64 forward pass and otherwise may use it as a MIP start.
    """

    def __call__(self, net, lower: np.ndarray, upper: np.ndarray,
                 conjunctions: Sequence[OutputConjunction]) -> np.ndarray | None: ...
