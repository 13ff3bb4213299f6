"""Batched, differentiable torch bounds of ReLU networks (linear relaxation based perturbation analysis).

One family of bounds shared by certified training, output sensitivity and the branch-and-bound:
IBP, CROWN, Wong & Kolter's dual (``kw``), CROWN-IBP, alpha-CROWN and beta-CROWN, on an
``nn.Sequential`` of Linear, Conv2d, Flatten, ReLU, Identity, Dropout and Normalize (or a Network),
for a batch of input boxes ``(B, *input_shape)`` and a specification ``C`` folded into the last
layer; lower (and upper) bounds ``(B, m)`` of ``C y``, the intermediate bounds of every ReLU layer,
split constraints of branch-and-bound domains, float32 or float64.

Modules: ``ops`` (affine operators: forward, interval, transpose), ``graph`` (layers as blocks; input,
spec and split checks), ``relu`` (relaxation lines, slope rules, split clamps), ``ibp``, ``crown``
(back-substitution), ``alpha`` (optimised slopes and split multipliers), ``compute``
(:func:`lirpa_bounds`, every method), ``float64`` (:func:`reevaluate_float64`), ``result``.

Soundness. These bounds serve training and search. In exact arithmetic every one of them is sound; in
floating point a float32 bound can be off by rounding in either direction. A robustness *claim* is
made only from the float64 numpy bounds (:mod:`robustmip.bounds`), the MILP, or a float64
re-evaluation of a LiRPA bound (:func:`reevaluate_float64`): every lower slope in ``[0, 1]`` and
every split multiplier ``>= 0`` gives a valid bound, so slopes and multipliers found by a float32
optimisation are evaluated again in float64, with every bound widened outward like
:func:`robustmip.bounds.result.widen`; that bound is sound up to float64 rounding.
"""

from robustmip.bounds.lirpa.alpha import OptimizeOptions
from robustmip.bounds.lirpa.compute import METHODS, Method, lirpa_bounds
from robustmip.bounds.lirpa.float64 import reevaluate_float64
from robustmip.bounds.lirpa.graph import SUPPORTED_LAYERS, LirpaGraph, margin_specs
from robustmip.bounds.lirpa.result import BoundParams, LirpaBounds

__all__ = [
    "METHODS", "SUPPORTED_LAYERS", "BoundParams", "LirpaBounds", "LirpaGraph", "Method", "OptimizeOptions",
    "lirpa_bounds", "margin_specs", "reevaluate_float64",
]
