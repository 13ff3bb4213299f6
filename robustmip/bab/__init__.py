"""Branch-and-bound over ReLU splits: complete decisions and optima where one monolithic MILP stalls.

``question`` (what is minimised: ``G = min_i max_j (A_ij y - c_ij)``), ``options`` (:class:`BabOptions`),
``root`` (the root's certified bounds), ``domains`` (batched domain tensors, the frontier), ``bound``
(beta-CROWN in float32, certified in float64), ``branching`` (BaBSR, KFSB), ``handoff`` (domains
solved by the MILP), ``search`` (the loop: :func:`branch_and_bound`), ``portfolio`` (both engines on
two cores), ``engine`` (the choice between the MILP and the branch-and-bound).

The names below are imported on first use: the engine choice imports torch only when the
branch-and-bound runs.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "BabOptions": "robustmip.bab.options",
    "Question": "robustmip.bab.question",
    "BabResult": "robustmip.bab.search",
    "branch_and_bound": "robustmip.bab.search",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'robustmip.bab' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
