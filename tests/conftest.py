"""Shared fixtures: random tiny networks and solver availability."""

from __future__ import annotations

import numpy as np
import pytest

from robustmip.network import AffineLayer, Network


def random_network(rng: np.random.Generator, dims: list[int], bias_scale: float = 0.5) -> Network:
    """A ReLU network with layer widths ``dims`` (input first, logits last), Gaussian weights."""
    layers = []
    for k in range(len(dims) - 1):
        W = rng.normal(size=(dims[k + 1], dims[k])) / np.sqrt(dims[k])
        b = rng.normal(size=dims[k + 1]) * bias_scale
        layers.append(AffineLayer(W, b, "relu" if k < len(dims) - 2 else "identity"))
    return Network(layers)


def tiny_architectures() -> list[list[int]]:
    """2-4 inputs, 1-2 hidden layers of at most 6 ReLUs, 2-4 outputs (the brute-force range)."""
    return [[2, 6, 3], [3, 5, 4, 3], [4, 4, 4, 2], [2, 3, 6, 4], [4, 6, 2]]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


def scip_skip_reason() -> str | None:
    """Why SCIP tests cannot run here (pyscipopt, the ``scip`` extra, missing), or None when they can."""
    try:
        import pyscipopt  # noqa: F401
    except ImportError as exc:
        return f"pyscipopt not importable (pip install robustmip[scip]): {exc}"
    return None


def gurobi_skip_reason() -> str | None:
    """Why Gurobi tests cannot run here, or None when they can."""
    try:
        from pyomo.contrib.appsi.solvers import Gurobi
    except ImportError as exc:
        return f"gurobipy/pyomo appsi Gurobi not importable: {exc}"
    available = Gurobi().available()
    if not available:
        return f"Gurobi not available: {available}"
    return None
