"""robustmip: exact robustness verification (MILP, branch-and-bound), attacks and MIP pruning of ReLU networks.

The names below are imported on first use (``robustmip.verify`` loads the MILP layer, not before),
so that ``import robustmip`` and the command line start at once.
"""

from __future__ import annotations

import importlib

__version__ = "0.2.0"

_EXPORTS = {
    "AffineLayer": "robustmip.layers",
    "Network": "robustmip.network",
    "from_onnx": "robustmip.io",
    "from_torch": "robustmip.io",
    "load_network": "robustmip.io",
    "Bounds": "robustmip.bounds",
    "compute_bounds": "robustmip.bounds",
    "input_box": "robustmip.spec",
    "MilpSolver": "robustmip.solvers",
    "SolveOptions": "robustmip.milp",
    "ImageProblem": "robustmip.milp",
    "Verdict": "robustmip.milp",
    "decide_output_property": "robustmip.bab.engine",
    "optimize_margin": "robustmip.bab.engine",
    "encode": "robustmip.milp",
    "find_adversarial": "robustmip.milp",
    "minimal_distortion": "robustmip.milp",
    "optimize_output": "robustmip.milp",
    "verify": "robustmip.bab.engine",
    "RobustMipError": "robustmip.errors",
    "InvalidInput": "robustmip.errors",
    "DataError": "robustmip.errors",
    "UnsupportedLayer": "robustmip.errors",
    "SolverNotAvailable": "robustmip.errors",
    "SolverLicenseLimit": "robustmip.errors",
    "VnnlibError": "robustmip.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'robustmip' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
