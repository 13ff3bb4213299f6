"""Training: one loop (:mod:`~robustmip.training.loops`) and pluggable objectives (standard, PGD, APP, AWP, ...)."""

from robustmip.attacks.gradient import PGDConfig
from robustmip.training.app import APP
from robustmip.training.awp import AWP
from robustmip.training.loops import (
    OPTIMIZERS,
    EpochStats,
    History,
    default_device,
    ramp_eps,
    retrain,
    train,
)
from robustmip.training.objectives import (
    CrossEntropy,
    LossOutput,
    Objective,
    PGDAdversarial,
    Ramp,
    StepContext,
)

__all__ = [
    "APP", "AWP", "OPTIMIZERS", "CrossEntropy", "EpochStats", "History", "LossOutput", "Objective", "PGDAdversarial",
    "PGDConfig", "Ramp", "StepContext", "default_device", "ramp_eps", "retrain", "train",
]
