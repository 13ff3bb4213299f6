"""MIP neuron-importance pruning (ElAraby, Wolf & Carvalho 2020) with structured removal and retraining.

* :mod:`~robustmip.pruning.importance`: per-neuron scores from one MIP over a small batch, built on
  :func:`robustmip.milp.encode.encode` (the verification encoding) and solved by
  :class:`robustmip.milp.MilpSolver`;
* :mod:`~robustmip.pruning.prune`: physically smaller ``nn.Sequential`` models, mask reports, and the
  magnitude / random baselines at the same per-layer sparsity;
* :mod:`~robustmip.pruning.iterate`: prune -> retrain rounds (standard or PGD retraining).
"""

from robustmip.pruning.importance import (
    BOUNDS_MODES,
    ImportanceFailed,
    ImportanceResult,
    neuron_importance,
    scored_bounds,
    scored_forward,
)
from robustmip.pruning.iterate import (
    ImportanceSettings,
    PruneResult,
    RoundResult,
    balanced_batch,
    prune_and_retrain,
)
from robustmip.pruning.prune import (
    MaskReport,
    apply_masks,
    magnitude_masks,
    masked_model,
    masks_from_scores,
    prune,
    prune_like,
    pruned_arch,
    random_masks,
)

__all__ = [
    "BOUNDS_MODES", "ImportanceFailed", "ImportanceResult", "ImportanceSettings", "MaskReport",
    "PruneResult", "RoundResult", "apply_masks", "balanced_batch", "magnitude_masks", "masked_model",
    "masks_from_scores", "neuron_importance", "prune", "prune_and_retrain", "prune_like", "pruned_arch",
    "random_masks", "scored_bounds", "scored_forward",
]
