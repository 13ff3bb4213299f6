"""Adversarial attacks: gradient attacks (FGSM, PGD, torch), the numpy falsifier, accuracy under attack.

The names below load on first use: the falsifier (numpy) must not pull in torch, which the
verification commands never need.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "PGDConfig": "robustmip.attacks.gradient",
    "fgsm": "robustmip.attacks.gradient",
    "linf_box": "robustmip.attacks.gradient",
    "pgd": "robustmip.attacks.gradient",
    "PGDEvaluation": "robustmip.attacks.evaluate",
    "clean_accuracy": "robustmip.attacks.evaluate",
    "evaluate_pgd": "robustmip.attacks.evaluate",
    "pgd_examples": "robustmip.attacks.evaluate",
    "predict": "robustmip.attacks.evaluate",
    "robust_accuracy": "robustmip.attacks.evaluate",
    "transfer_accuracy": "robustmip.attacks.evaluate",
    "property_falsifier": "robustmip.attacks.falsify",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'robustmip.attacks' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
