"""The exact MILP: encoding, objectives, the persistent per-image problem and its entry points.

``encode`` (big-M encoding as a Pyomo block), ``objectives`` (margins, disjunctions, distortion),
``options`` (:class:`SolveOptions`), ``problem`` (:class:`ImageProblem`, :class:`Verdict`, the
float64 re-check), ``verify`` (verify, find_adversarial, minimal_distortion), ``properties`` (output properties)
and ``outputs`` (output optima on one persistent model per box).
"""

from robustmip.milp.encode import EncodedNetwork, encode
from robustmip.milp.objectives import (
    add_disjunction,
    add_linf_distortion,
    candidate_targets,
    output_expression,
    targeted_margin,
    untargeted_margin,
)
from robustmip.milp.options import SolveOptions
from robustmip.milp.outputs import OutputOptimum, OutputProblem, optimize_output
from robustmip.milp.problem import ImageProblem, Verdict, recheck
from robustmip.milp.properties import PropertyResult, decide_output_property
from robustmip.milp.verify import (
    DistortionResult,
    find_adversarial,
    minimal_distortion,
    verify,
)

__all__ = [
    "EncodedNetwork", "encode", "add_disjunction", "add_linf_distortion", "candidate_targets",
    "output_expression", "targeted_margin", "untargeted_margin", "SolveOptions", "ImageProblem", "Verdict",
    "recheck", "OutputOptimum", "OutputProblem", "PropertyResult", "decide_output_property", "optimize_output",
    "DistortionResult", "find_adversarial", "minimal_distortion", "verify",
]
