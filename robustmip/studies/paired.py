"""Paired differences with a bootstrap confidence interval over units (images), optionally stratified.

Two nets are measured on the same units (test images); the paired difference of unit ``i`` is
``d_i = after_i - before_i``. The estimate is the mean of ``d`` (with strata, e.g. training seeds:
the mean over strata of each stratum's mean, so that every seed weighs the same). The interval is the
percentile bootstrap: units are drawn with replacement within each stratum, ``samples`` times, from a
seeded generator, and the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of the resampled
estimates are its ends. It describes the uncertainty from the choice of images given the strata
(seeds) at hand; the spread between seeds is reported beside it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from robustmip.errors import InvalidInput


@dataclass
class Interval:
    """A paired difference: ``estimate`` with its bootstrap interval ``[low, high]``.

    Attributes:
        units: paired units used; strata: number of strata; samples, seed, level: the bootstrap's.
    """

    estimate: float
    low: float
    high: float
    units: int
    strata: int
    samples: int
    seed: int
    level: float

    def to_dict(self) -> dict:
        return asdict(self)

    def sign(self) -> int:
        """-1 when the interval lies below 0, +1 above 0, 0 when it contains 0."""
        return -1 if self.high < 0 else (1 if self.low > 0 else 0)


def paired_bootstrap(before: Sequence[float], after: Sequence[float], *, strata: Sequence | None = None,
                     samples: int = 10000, seed: int = 0, level: float = 0.95) -> Interval:
    """Mean of ``after - before`` over paired units and its percentile bootstrap interval.

    Args:
        before, after: one value per unit, same length ``n >= 1``, finite.
        strata: one label per unit (e.g. the training seed); units are resampled within their stratum
            and the estimate weighs strata equally. None: one stratum.
        samples: bootstrap resamples; seed: their generator's seed; level: the interval's coverage.
    """
    d = np.asarray(after, dtype=np.float64) - np.asarray(before, dtype=np.float64)
    if d.ndim != 1 or d.size == 0 or len(before) != len(after):
        raise InvalidInput("paired_bootstrap needs two equally long non-empty sequences, "
                           f"got {len(before)} and {len(after)}")
    if not np.isfinite(d).all():
        raise InvalidInput("paired_bootstrap needs finite values")
    if not (isinstance(samples, int) and samples >= 1 and 0 < level < 1):
        raise InvalidInput(f"samples must be >= 1 and level in (0, 1), got {samples} and {level}")
    labels = (np.zeros(d.size, dtype=np.int64) if strata is None
              else np.unique(np.asarray(strata), return_inverse=True)[1])
    if labels.shape != d.shape:
        raise InvalidInput(f"strata must give one label per unit ({d.size}), got {len(strata)}")
    groups = [d[labels == k] for k in range(labels.max() + 1)]
    rng = np.random.default_rng(seed)
    resampled = np.mean([g[rng.integers(0, g.size, size=(samples, g.size))].mean(axis=1) for g in groups], axis=0)
    low, high = np.quantile(resampled, [(1 - level) / 2, (1 + level) / 2])
    estimate = float(np.mean([g.mean() for g in groups]))
    return Interval(estimate, float(low), float(high), int(d.size), len(groups), samples, seed, level)
