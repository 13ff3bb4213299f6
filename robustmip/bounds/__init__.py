"""Sound pre-activation bounds over an input box, one module per algorithm.

``box`` (interval arithmetic), ``relax`` (CROWN / DeepPoly back-substitution), ``tighten`` (LP and
per-neuron MILP tightening, certified by duality), ``compute`` (the levels that combine them) and
``result`` (the :class:`Bounds` they return). These numpy float64 bounds are the ones robustness
claims rest on. The subpackage ``lirpa`` (imported on its own, it needs torch) holds the batched,
differentiable torch bounds for training and search, and their float64 re-evaluation.
"""

from robustmip.bounds.box import interval_layer
from robustmip.bounds.compute import compute_bounds
from robustmip.bounds.relax import crown_layer, relu_relaxation
from robustmip.bounds.result import BOUNDS_METHODS, Bounds, BoundsMethod

__all__ = [
    "BOUNDS_METHODS", "Bounds", "BoundsMethod", "compute_bounds", "crown_layer", "interval_layer",
    "relu_relaxation",
]
