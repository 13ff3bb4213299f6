"""What an output-box computation returns: :class:`OutputBox`, and the volume of a box in ``log10``."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from robustmip.errors import InvalidInput


def log10_volume(lower: np.ndarray, upper: np.ndarray) -> float:
    """``log10 prod_i (upper_i - lower_i)``; ``-inf`` when some width is 0."""
    widths = np.asarray(upper, dtype=np.float64) - np.asarray(lower, dtype=np.float64)
    if (widths < 0).any():
        raise InvalidInput("a box has upper < lower")
    with np.errstate(divide="ignore"):
        return float(np.sum(np.log10(widths)))


@dataclass
class OutputBox:
    """A box containing every output reachable from an input box.

    Attributes:
        method: how it was computed (:data:`robustmip.sensitivity.box.METHODS`).
        lower, upper: the (outer) box, float64 ``(n_outputs,)``: proven to contain every reachable output.
        seconds: wall time.
        inner_lower, inner_upper: for ``exact``, the box of outputs attained at re-checked inputs
            (float64 forward passes), ``(n_outputs,)``; it lies inside the exact box.
        status: ``bound`` for a relaxation; for ``exact``, ``exact`` when every bound was proven
            optimal, else ``time_limit`` (the outer box is then still sound, only looser).
        solves: for ``exact``, one dict per (output, sense) question: status, value, bound, seconds.
    """

    method: str
    lower: np.ndarray
    upper: np.ndarray
    seconds: float = 0.0
    inner_lower: np.ndarray | None = None
    inner_upper: np.ndarray | None = None
    status: str = "bound"
    solves: list[dict] = field(default_factory=list)

    @property
    def log10_volume(self) -> float:
        return log10_volume(self.lower, self.upper)

    @property
    def inner_log10_volume(self) -> float | None:
        if self.inner_lower is None or self.inner_upper is None:
            return None
        return log10_volume(self.inner_lower, self.inner_upper)

    def to_dict(self) -> dict:
        """JSON-ready: ``method``, ``lower``, ``upper``, ``log10_volume``, ``seconds`` and, for ``exact``,
        ``inner_lower``, ``inner_upper``, ``inner_log10_volume`` and ``status``."""
        out = {"method": self.method, "lower": self.lower.tolist(), "upper": self.upper.tolist(),
               "log10_volume": self.log10_volume, "seconds": self.seconds}
        if self.method == "exact":
            out.update(inner_lower=self.inner_lower.tolist(), inner_upper=self.inner_upper.tolist(),
                       inner_log10_volume=self.inner_log10_volume, status=self.status)
        return out
