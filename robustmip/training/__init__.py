"""Training: standard and PGD adversarial training, and retraining of existing models."""

from robustmip.attacks.gradient import PGDConfig
from robustmip.training.loops import (
    EpochStats,
    History,
    default_device,
    ramp_eps,
    retrain,
    train,
)

__all__ = ["EpochStats", "History", "PGDConfig", "default_device", "ramp_eps", "retrain", "train"]
