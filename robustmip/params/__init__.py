"""Parameter and quantization robustness, decided exactly on the one big-M encoding.

For a layer input ``h >= 0``, weights in ``[W0 - R, W0 + R]`` and biases in ``[b0 - rho, b0 + rho]``
give exactly ``|a - W0 h - b0| <= R h + rho`` row by row, so perturbing every layer at once (with the
input fixed or in a box) is a MILP with no binaries beyond the ReLUs' (inputs of either sign: one
sign binary each, exact too); see :mod:`robustmip.milp.encode`. Modules:

``box`` (:class:`ParamBox`: uniform, relative, APP and quantization boxes), ``quantize``
(:func:`quantize_network`), ``interval``/``lp``/``bounds`` (sound bounds over the box), ``attack``
(``param_pgd``), ``realise`` (witnesses as concrete parameters), ``problem`` (:class:`ParamProblem`,
:class:`ParamVerdict`), ``verify`` (:func:`verify_parameter_robustness`, properties), ``differential``
(two networks on one input: quantized vs float, def. 4, sigma*), ``confidence`` (Murthy et al.'s
eps and sigma on a sigmoid output), ``radius`` (the largest radius that keeps a label) and
``quantization`` (the rows of the bits table).
"""

from robustmip.params.attack import ParamAttack, param_pgd
from robustmip.params.bounds import compute_param_bounds
from robustmip.params.box import ParamBox
from robustmip.params.differential import PairProblem, sigmoid_as_two_class
from robustmip.params.problem import ParamOptimum, ParamProblem, ParamVerdict
from robustmip.params.quantize import quantize_network
from robustmip.params.radius import RadiusResult, parameter_radius
from robustmip.params.verify import (
    decide_parameter_property,
    verify_parameter_robustness,
)

__all__ = [
    "PairProblem", "ParamAttack", "ParamBox", "ParamOptimum", "ParamProblem", "ParamVerdict", "RadiusResult",
    "compute_param_bounds", "decide_parameter_property", "param_pgd", "parameter_radius", "quantize_network",
    "sigmoid_as_two_class", "verify_parameter_robustness",
]
