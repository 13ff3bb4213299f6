"""Sensitivity of a net over many inputs: per-feature radii, rows per (input, method), their aggregates.

* :func:`feature_eps`: seed 001's radius ``eps_j = sigma * range_j``, ``range_j`` feature ``j``'s
  range (max - min) over the training data; features that never change get ``eps_j = 0``.
* :func:`sensitivity`: one :class:`SensitivityRow` per (input, method) with the box, ``log10 S``
  and, when ``exact`` is among the methods, ``log10(S_method / S_exact)`` (against the exact
  method's outer box, so the ratio is a lower bound on the true looseness whenever that box is not
  closed; it is exact when the exact row's status is ``exact``).
* :func:`sense`: SENSE, the arithmetic mean of ``S`` over the inputs (seed 001 calls it the aggregate
  volume over the samples; its equation is missing from the text, so the mean is our choice), and
  the geometric mean, computed from ``log10 S`` without overflow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from robustmip.errors import InvalidInput
from robustmip.network import Network
from robustmip.sensitivity.box import METHODS, ball, reachable_box
from robustmip.sensitivity.exact import ExactOptions
from robustmip.sensitivity.result import OutputBox
from robustmip.spec import Domain


def feature_eps(data: np.ndarray, sigma: float) -> np.ndarray:
    """``sigma * (max_j - min_j)`` over the rows of ``data`` (``(N, ...)``), flattened to ``(n_features,)``."""
    sigma_value = float(sigma)
    if not np.isfinite(sigma_value) or sigma_value < 0:
        raise InvalidInput(f"sigma must be a finite number >= 0, got {sigma}")
    data = np.asarray(data, dtype=np.float64)
    if data.ndim < 2 or data.shape[0] == 0:
        raise InvalidInput(f"need a non-empty batch of examples (N, ...), got shape {data.shape}")
    flat = data.reshape(data.shape[0], -1)
    return sigma_value * (flat.max(axis=0) - flat.min(axis=0))


@dataclass
class SensitivityRow:
    """The output box of one input by one method.

    Attributes:
        index: the input's index (e.g. in the test set), or None.
        box: the :class:`OutputBox`.
        log10_ratio: ``log10(S_method / S_exact)`` against the exact row of the same input, or None.
    """

    index: int | None
    box: OutputBox
    log10_ratio: float | None = None

    @property
    def method(self) -> str:
        return self.box.method

    @property
    def log10_volume(self) -> float:
        return self.box.log10_volume

    def to_dict(self) -> dict:
        """``index``, ``method``, ``lower``, ``upper``, ``log10_volume``, ``seconds``, ``log10_ratio`` (when
        known) and, for ``exact``, ``inner_lower``, ``inner_upper``, ``inner_log10_volume``, ``status``."""
        out = {"index": self.index, **self.box.to_dict()}
        if self.log10_ratio is not None:
            out["log10_ratio"] = self.log10_ratio
        return out


def check_methods(methods: Sequence[str]) -> list[str]:
    """``methods`` without repeats, in order; InvalidInput for an unknown one or none."""
    methods = list(dict.fromkeys(methods))
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise InvalidInput(f"unknown or no output-box methods {unknown}; choose from {METHODS}")
    return methods


def box_rows(net: Network, lower: np.ndarray, upper: np.ndarray, methods: Sequence[str], index: int | None = None,
             exact_options: ExactOptions | None = None) -> list[SensitivityRow]:
    """The rows of one input box, one per method, with ``log10_ratio`` filled in when ``exact`` is among them."""
    rows = [SensitivityRow(index, reachable_box(net, lower, upper, m, exact_options)) for m in check_methods(methods)]
    exact = next((r for r in rows if r.method == "exact"), None)
    if exact is not None:
        for row in rows:
            row.log10_ratio = row.log10_volume - exact.log10_volume
    return rows


def image_rows(net: Network, x: np.ndarray, eps: float | np.ndarray, methods: Sequence[str], index: int | None = None,
               domain: Domain = (0.0, 1.0), exact_options: ExactOptions | None = None) -> list[SensitivityRow]:
    """The rows of the ball ``|x' - x| <= eps`` clipped to ``domain`` (see :func:`box_rows`)."""
    return box_rows(net, *ball(net, x, eps, domain), methods, index, exact_options)


def sensitivity(net: Network, images: np.ndarray, eps: float | np.ndarray, methods: Sequence[str] = ("kw", "exact"),
                *, indices: Sequence[int] | None = None, domain: Domain = (0.0, 1.0),
                exact_options: ExactOptions | None = None) -> list[SensitivityRow]:
    """Rows for every input of ``images`` (``(N, ...)``) and every method, input by input.

    Args:
        eps: a number or one radius per input feature (:func:`feature_eps`).
        indices: the inputs' indices to record (default ``0 .. N-1``).
        domain: what each ball is clipped to; ``(None, None)`` for no clipping.
        exact_options: settings of the ``exact`` method.
    """
    images = np.asarray(images)
    indices = list(range(len(images))) if indices is None else [int(i) for i in indices]
    if len(indices) != len(images):
        raise InvalidInput(f"{len(indices)} indices for {len(images)} images")
    return [row for i, x in zip(indices, images)
            for row in image_rows(net, x, eps, methods, i, domain, exact_options)]


def sense(log10_volumes: Sequence[float]) -> dict[str, float]:
    """SENSE (``mean``, arithmetic mean of ``S``) and ``geomean`` of ``S`` from ``log10 S`` values, with their
    ``log10`` (``inf`` where ``S`` itself overflows float64)."""
    logs = np.asarray(list(log10_volumes), dtype=np.float64)
    if logs.size == 0:
        return dict.fromkeys(("mean", "geomean", "log10_mean", "log10_geomean"), float("nan"))
    top = logs.max()
    log10_mean = float(top + np.log10(np.mean(10.0 ** (logs - top)))) if np.isfinite(top) else float(top)
    log10_geomean = float(logs.mean())
    with np.errstate(over="ignore"):
        mean, geomean = float(np.power(10.0, log10_mean)), float(np.power(10.0, log10_geomean))
    return {"mean": mean, "geomean": geomean, "log10_mean": log10_mean, "log10_geomean": log10_geomean}


def box_job(instance: dict) -> dict:
    """One input box's rows, for :func:`robustmip.parallel.run_instances` (picklable, top level).

    ``instance``: ``network`` (a model path, :func:`robustmip.io.load_network`), ``index`` (int or
    None), ``lower`` and ``upper`` (lists), ``methods`` and ``exact`` (:class:`ExactOptions` fields).
    Returns ``{"rows": [row dicts]}``.
    """
    from robustmip.io import load_network

    net = load_network(instance["network"])
    rows = box_rows(net, np.asarray(instance["lower"]), np.asarray(instance["upper"]), instance["methods"],
                    instance["index"], ExactOptions(**instance["exact"]))
    return {"rows": [row.to_dict() for row in rows]}
