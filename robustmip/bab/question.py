"""What the branch-and-bound minimises: ``G(x) = min_i max_j (A_ij y(x) - c_ij)`` over an input box.

For a disjunction of conjunctions ``OR_i (A_i y <= c_i)`` (:data:`robustmip.spec.OutputConjunction`),
``G(x) <= 0`` exactly when some conjunction holds at ``x`` (``G = -disjunction_slack``), so

* deciding the property is deciding the sign of ``min G``: ``sat`` with a point where ``G <= 0``
  (``G < 0`` for a strict question such as a counterexample to robustness, where a tie is not one),
  ``unsat`` once a sound lower bound of ``min G`` is ``> 0``;
* a targeted margin ``(e_label - e_target)^T y`` is ``G`` of the single row ``A = e_label - e_target``,
  ``c = 0``, and its optimum is ``min G``; several single-row conjunctions give the untargeted margin.

Each branch-and-bound domain carries one conjunction ``i``; its lower bound is ``max_j`` of the sound
lower bounds of its rows ``A_ij y - c_ij``. Conjunctions have their rows padded to a common count
``M`` by repeating their first row (a repeated row leaves the max unchanged).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from robustmip.errors import InvalidInput
from robustmip.spec import OutputConjunction, check_conjunctions, margin_coefficients


@dataclass
class Question:
    """``min G`` over ``[lower, upper]`` (float64 ``(n_inputs,)``); see the module docstring.

    Attributes:
        rows: ``(K, M, n_outputs)`` the padded ``A_i``; offsets: ``(K, M)`` the padded ``c_i``.
        conjunctions: the original ``(A_i, c_i)``.
        strict: a point counts only with ``G < 0`` (robustness), else with ``G <= 0`` (VNN-LIB).
    """

    lower: np.ndarray
    upper: np.ndarray
    rows: np.ndarray
    offsets: np.ndarray
    conjunctions: list[OutputConjunction]
    strict: bool = False

    @classmethod
    def of(cls, lower: np.ndarray, upper: np.ndarray, conjunctions: Sequence[OutputConjunction],
           n_outputs: int, strict: bool = False) -> Question:
        """The question for a box and a disjunction (checked against ``n_outputs``)."""
        pairs = check_conjunctions(conjunctions, n_outputs)
        M = max(A.shape[0] for A, _ in pairs)
        rows = np.stack([np.concatenate([A, np.repeat(A[:1], M - A.shape[0], axis=0)]) for A, _ in pairs])
        offsets = np.stack([np.concatenate([c, np.repeat(c[:1], M - c.shape[0])]) for _, c in pairs])
        lower = np.asarray(lower, dtype=np.float64).reshape(-1)
        upper = np.asarray(upper, dtype=np.float64).reshape(-1)
        if lower.shape != upper.shape or (lower > upper).any():
            raise InvalidInput("the input box needs lower <= upper of equal shapes")
        return cls(lower, upper, rows, offsets, pairs, strict)

    @classmethod
    def margin(cls, lower: np.ndarray, upper: np.ndarray, n_outputs: int, label: int,
               targets: Sequence[int]) -> Question:
        """``min_t (y_label - y_t)`` over ``targets``: the targeted (one target) or untargeted margin."""
        conjunctions = [(margin_coefficients(n_outputs, label, t)[None, :], np.zeros(1)) for t in targets]
        return cls.of(lower, upper, conjunctions, n_outputs, strict=True)

    @property
    def n_conjunctions(self) -> int:
        return self.rows.shape[0]

    def values(self, outputs: np.ndarray) -> np.ndarray:
        """``G(y)`` for each row of ``outputs`` ``(N, n_out)``."""
        values = np.einsum("kmo,no->nkm", self.rows, outputs) - self.offsets[None]
        return values.max(axis=2).min(axis=1)

    def satisfied(self, value: float) -> bool:
        """Whether a point with ``G = value`` meets the disjunction (``< 0`` when strict, else ``<= 0``)."""
        return value < 0.0 if self.strict else value <= 0.0
