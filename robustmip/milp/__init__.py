"""MILP encoding, objectives, solver layer and checked verdicts."""

from robustmip.milp.encode import EncodedNetwork, encode
from robustmip.milp.objectives import (
    add_disjunction,
    add_linf_distortion,
    candidate_targets,
    output_expression,
    targeted_margin,
    untargeted_margin,
)
from robustmip.milp.solve import SOLVERS, MilpSolver, SolveResult, check_solver
from robustmip.milp.verify import (
    DistortionResult,
    ImageProblem,
    OutputOptimum,
    PropertyResult,
    Verdict,
    decide_output_property,
    find_adversarial,
    minimal_distortion,
    optimize_output,
    recheck,
    verify,
)

__all__ = [
    "EncodedNetwork", "encode", "add_disjunction", "add_linf_distortion", "candidate_targets",
    "output_expression", "targeted_margin", "untargeted_margin", "SOLVERS", "MilpSolver", "SolveResult",
    "check_solver", "DistortionResult", "ImageProblem", "OutputOptimum", "PropertyResult", "Verdict",
    "decide_output_property", "find_adversarial", "minimal_distortion", "optimize_output", "recheck", "verify",
]
