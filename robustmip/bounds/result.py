"""The result of a bound computation: pre-activation intervals of every layer over an input box.

Every bound robustmip computes is widened by a relative ``ROUNDING_SLACK`` (:func:`widen`) against
floating-point rounding, so a float64 bound is never tighter than the real-arithmetic one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, TypeVar

import numpy as np

BoundsMethod = Literal["interval", "crown", "alpha", "lp", "milp"]
BOUNDS_METHODS: tuple[str, ...] = ("interval", "crown", "alpha", "lp", "milp")
ROUNDING_SLACK = 1e-9
"""Relative widening of every computed bound: ``lower - 1e-9 (1 + |lower|)``, likewise above."""
ArrayT = TypeVar("ArrayT")


def widen(lower: ArrayT, upper: ArrayT) -> tuple[ArrayT, ArrayT]:
    """``(lower, upper)`` moved outward by ``ROUNDING_SLACK (1 + |value|)``.

    Works on numpy arrays and torch tensors alike (the torch bounds of :mod:`robustmip.bounds.lirpa`
    use it for their float64 re-evaluation).
    """
    return (
        lower - ROUNDING_SLACK * (1.0 + abs(lower)),
        upper + ROUNDING_SLACK * (1.0 + abs(upper)),
    )


@dataclass
class Bounds:
    """Pre-activation bounds of a network over an input box.

    Attributes:
        input_lower, input_upper: the box, float64 ``(n_inputs,)``.
        lower, upper: per layer ``k``, float64 ``(n_k,)`` bounds of ``a_k = W_k h_{k-1} + b_k``
            (the last entry bounds the logits).
        method: the level that produced them.
        seconds: wall time spent computing them.
        lp_solves: number of LPs solved (``lp`` and ``milp`` levels).
        milp_solves: number of per-neuron MILPs solved (``milp`` level only).
    """

    input_lower: np.ndarray
    input_upper: np.ndarray
    lower: list[np.ndarray]
    upper: list[np.ndarray]
    method: str
    seconds: float = 0.0
    lp_solves: int = 0
    milp_solves: int = 0
    activations: tuple[str, ...] = field(default=())

    def post_activation(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Bounds of ``h_k`` (after layer ``k``'s activation); ``k = -1`` gives the input box."""
        if k < 0:
            return self.input_lower, self.input_upper
        if self.activations[k] == "relu":
            return np.maximum(self.lower[k], 0.0), np.maximum(self.upper[k], 0.0)
        return self.lower[k], self.upper[k]

    def unstable(self, k: int) -> np.ndarray:
        """Boolean mask of layer ``k``'s ReLUs whose sign is not fixed over the box."""
        if self.activations[k] != "relu":
            return np.zeros(self.lower[k].shape, dtype=bool)
        return (self.lower[k] < 0.0) & (self.upper[k] > 0.0)

    def n_unstable(self) -> int:
        return int(sum(self.unstable(k).sum() for k in range(len(self.lower))))

    def summary(self) -> dict:
        """Per-layer counts of stably active, stably inactive and unstable ReLUs."""
        rows = []
        for k, act in enumerate(self.activations):
            if act != "relu":
                continue
            rows.append(
                {
                    "layer": k,
                    "active": int((self.lower[k] >= 0).sum()),
                    "inactive": int((self.upper[k] <= 0).sum()),
                    "unstable": int(self.unstable(k).sum()),
                }
            )
        return {
            "method": self.method, "seconds": self.seconds, "lp_solves": self.lp_solves,
            "milp_solves": self.milp_solves, "layers": rows,
        }
