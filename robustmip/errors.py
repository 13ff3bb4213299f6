"""Exceptions raised by robustmip.

Every exception carries a message that says what went wrong and what to do about it. The CLI turns
them into a one-line error on stderr and a non-zero exit code.
"""

from __future__ import annotations


class RobustMipError(Exception):
    """Base class of every error robustmip raises on purpose."""


class InvalidInput(RobustMipError, ValueError):
    """An argument is out of its domain: negative eps, wrong image shape, NaN weights, ..."""


class DataError(RobustMipError):
    """A data or checkpoint file is missing, truncated or malformed."""


class UnsupportedLayer(RobustMipError):
    """A torch module or ONNX operator that the piecewise-linear Network cannot represent."""


class SolverNotAvailable(RobustMipError):
    """The requested MILP/LP solver is not installed or cannot start."""


class SolverLicenseLimit(RobustMipError):
    """The solver's licence refuses the model (e.g. Gurobi's size-limited pip licence)."""


class VnnlibError(RobustMipError):
    """A VNN-LIB property file that cannot be parsed or uses unsupported constructs."""
