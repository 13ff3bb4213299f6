"""robustmip: exact (MILP) robustness verification, attacks and MIP pruning of ReLU networks."""

from robustmip.bounds import Bounds, compute_bounds, input_box
from robustmip.errors import (
    DataError,
    InvalidInput,
    RobustMipError,
    SolverLicenseLimit,
    SolverNotAvailable,
    UnsupportedLayer,
    VnnlibError,
)
from robustmip.milp import (
    ImageProblem,
    MilpSolver,
    Verdict,
    decide_output_property,
    encode,
    find_adversarial,
    minimal_distortion,
    optimize_output,
    verify,
)
from robustmip.network import AffineLayer, Network

__version__ = "0.1.0"

__all__ = [
    "AffineLayer", "Bounds", "DataError", "ImageProblem", "InvalidInput", "MilpSolver", "Network",
    "RobustMipError", "SolverLicenseLimit", "SolverNotAvailable", "UnsupportedLayer", "Verdict",
    "VnnlibError", "compute_bounds", "decide_output_property", "encode", "find_adversarial", "input_box",
    "minimal_distortion", "optimize_output", "verify",
]
