"""Adversarial attacks: gradient attacks (FGSM, PGD) and accuracy under attack."""

from robustmip.attacks.evaluate import (
    PGDEvaluation,
    clean_accuracy,
    evaluate_pgd,
    pgd_examples,
    predict,
    robust_accuracy,
    transfer_accuracy,
)
from robustmip.attacks.gradient import PGDConfig, fgsm, linf_box, pgd

__all__ = [
    "PGDConfig",
    "PGDEvaluation",
    "clean_accuracy",
    "evaluate_pgd",
    "fgsm",
    "linf_box",
    "pgd",
    "pgd_examples",
    "predict",
    "robust_accuracy",
    "transfer_accuracy",
]
