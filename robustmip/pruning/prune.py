"""Structured neuron removal from fully connected torch models, and the baselines to compare with.

A *mask* is, per hidden layer, a boolean array over its neurons (True = kept). :func:`apply_masks`
returns a **physically smaller** ``nn.Sequential``: the pruned neurons' rows of their ``Linear`` layer
(weights and bias) and the matching columns of the next ``Linear`` are removed. A neuron whose ReLU
output is always 0 on the inputs of interest contributes nothing to the next layer, so removing it
leaves the function unchanged there; otherwise the smaller model equals the *masked* model
(:func:`masked_model`: same shapes, pruned neurons' outgoing weights zeroed).

Masks come from MIP importance scores (:func:`masks_from_scores`, ``score >= threshold`` is kept),
or, for comparison at the same number of kept neurons per layer, from the L1 norm of each neuron's
incoming weights (:func:`magnitude_masks`, largest kept) or uniformly at random
(:func:`random_masks`).

Supported models are ``nn.Sequential`` of ``Flatten``, ``Linear``, ``ReLU`` (``Identity`` and
``Dropout`` pass through), with a ReLU after every ``Linear`` but the last; nested Sequentials are
not. The pruned copy keeps the module positions, so a pruned ``mlp-H1-H2`` model loads back as
``mlp-K1-K2`` (:func:`pruned_arch`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from torch import nn

from robustmip.errors import InvalidInput, UnsupportedLayer

_PASS_THROUGH = (nn.Flatten, nn.ReLU, nn.Identity, nn.Dropout)


def linear_layers(model: nn.Module) -> list[tuple[int, nn.Linear]]:
    """``(position, Linear)`` of every ``Linear`` of ``model``; UnsupportedLayer for other layer types.

    Every ``Linear`` but the last must be followed (possibly after Identity/Dropout) by a ReLU.
    """
    if not isinstance(model, nn.Sequential):
        raise UnsupportedLayer(f"pruning needs an nn.Sequential model, got {type(model).__name__}")
    found: list[tuple[int, nn.Linear]] = []
    relu_after: list[bool] = []
    for pos, module in enumerate(model):
        if isinstance(module, nn.Linear):
            found.append((pos, module))
            relu_after.append(False)
        elif isinstance(module, nn.ReLU):
            if not found or relu_after[-1]:
                raise UnsupportedLayer(f"ReLU at position {pos} does not follow a Linear layer")
            relu_after[-1] = True
        elif not isinstance(module, _PASS_THROUGH):
            raise UnsupportedLayer(f"cannot prune a model with {type(module).__name__} at position {pos}; "
                                   "only Flatten, Linear, ReLU, Identity and Dropout are supported")
    if len(found) < 2:
        raise InvalidInput("the model has no hidden layer to prune (fewer than two Linear layers)")
    if not all(relu_after[:-1]) or relu_after[-1]:
        raise UnsupportedLayer("every Linear but the last must be followed by a ReLU, and the last by none")
    return found


def hidden_widths(model: nn.Module) -> list[int]:
    """Number of neurons of each hidden (ReLU) layer."""
    return [lin.out_features for _, lin in linear_layers(model)[:-1]]


@dataclass
class LayerMask:
    """Kept neurons of one hidden layer."""

    layer: int
    kept: int
    total: int
    kept_indices: list[int] = field(default_factory=list)

    def to_dict(self, with_indices: bool = False) -> dict:
        out = {"layer": self.layer, "kept": self.kept, "total": self.total,
               "kept_fraction": self.kept / self.total}
        if with_indices:
            out["kept_indices"] = list(self.kept_indices)
        return out


@dataclass
class MaskReport:
    """Per-layer kept/total counts of a pruning, and how the masks were chosen.

    Attributes:
        layers: one :class:`LayerMask` per hidden layer.
        method: ``mip``, ``magnitude``, ``random`` or ``given``.
        threshold: the score threshold (``mip`` only).
        forced: hidden layers in which every score was below the threshold and the best-scored
            neuron was kept anyway (a layer cannot have zero neurons).
        params_before, params_after: number of weights and biases.
    """

    layers: list[LayerMask]
    method: str
    threshold: float | None = None
    forced: list[int] = field(default_factory=list)
    params_before: int = 0
    params_after: int = 0

    @property
    def kept(self) -> list[int]:
        return [m.kept for m in self.layers]

    @property
    def total(self) -> list[int]:
        return [m.total for m in self.layers]

    @property
    def arch(self) -> str:
        return pruned_arch(self.kept)

    def masks(self) -> list[np.ndarray]:
        out = []
        for m in self.layers:
            mask = np.zeros(m.total, dtype=bool)
            mask[m.kept_indices] = True
            out.append(mask)
        return out

    def to_dict(self, with_indices: bool = False) -> dict:
        return {"method": self.method, "threshold": self.threshold, "arch": self.arch,
                "kept": self.kept, "total": self.total, "forced": list(self.forced),
                "params_before": self.params_before, "params_after": self.params_after,
                "layers": [m.to_dict(with_indices) for m in self.layers]}

    def summary(self) -> str:
        """One line, e.g. ``layer 0: 120/300, layer 1: 41/100``."""
        return ", ".join(f"layer {m.layer}: {m.kept}/{m.total}" for m in self.layers)


def pruned_arch(kept: Sequence[int]) -> str:
    """Architecture name of a pruned MLP, ``mlp-K1-K2-...`` (loads with :func:`robustmip.models.build_model`)."""
    return "mlp-" + "-".join(str(int(k)) for k in kept)


def _check_masks(model: nn.Module, masks: Sequence[np.ndarray]) -> list[np.ndarray]:
    widths = hidden_widths(model)
    if len(masks) != len(widths):
        raise InvalidInput(f"need one mask per hidden layer ({len(widths)}), got {len(masks)}")
    out = []
    for k, (mask, width) in enumerate(zip(masks, widths)):
        mask = np.asarray(mask).reshape(-1)
        if mask.dtype != bool or mask.shape != (width,):
            raise InvalidInput(f"mask of hidden layer {k} must be a boolean array of {width} entries")
        if not mask.any():
            raise InvalidInput(f"mask of hidden layer {k} keeps no neuron; keep at least one")
        out.append(mask)
    return out


def _n_params(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def _report(model: nn.Module, smaller: nn.Module, masks: list[np.ndarray], method: str,
            threshold: float | None = None, forced: Sequence[int] = ()) -> MaskReport:
    layers = [LayerMask(k, int(m.sum()), int(m.size), np.flatnonzero(m).tolist()) for k, m in enumerate(masks)]
    return MaskReport(layers, method, threshold, list(forced), _n_params(model), _n_params(smaller))


def apply_masks(model: nn.Module, masks: Sequence[np.ndarray], method: str = "given") -> tuple[nn.Sequential, MaskReport]:
    """A physically smaller copy of ``model`` keeping the neurons where ``masks`` is True.

    Returns the new ``nn.Sequential`` (same module positions, same dtype and device, eval mode if
    ``model`` was) and its :class:`MaskReport`. ``model`` is not changed.
    """
    masks = _check_masks(model, masks)
    lins = linear_layers(model)
    smaller = copy.deepcopy(model)
    keep_in: np.ndarray | None = None
    for k, (pos, lin) in enumerate(lins):
        rows = torch.as_tensor(np.flatnonzero(masks[k]) if k < len(masks) else np.arange(lin.out_features),
                               device=lin.weight.device)
        weight = lin.weight.detach()[rows]
        if keep_in is not None:
            weight = weight[:, torch.as_tensor(keep_in, device=lin.weight.device)]
        new = nn.Linear(weight.shape[1], weight.shape[0], bias=lin.bias is not None,
                        dtype=lin.weight.dtype, device=lin.weight.device)
        with torch.no_grad():
            new.weight.copy_(weight)
            if lin.bias is not None:
                new.bias.copy_(lin.bias.detach()[rows])
        smaller[pos] = new
        keep_in = np.flatnonzero(masks[k]) if k < len(masks) else None
    smaller.train(model.training)
    return smaller, _report(model, smaller, masks, method)


def masked_model(model: nn.Module, masks: Sequence[np.ndarray]) -> nn.Sequential:
    """A copy of ``model`` with the same shapes in which the pruned neurons are switched off.

    Their incoming weights, biases and outgoing weights are set to 0, so they output 0 and nothing
    reads them: the function :func:`apply_masks` computes, in the original architecture.
    """
    masks = _check_masks(model, masks)
    out = copy.deepcopy(model)
    lins = linear_layers(out)
    with torch.no_grad():
        for k, mask in enumerate(masks):
            off = torch.as_tensor(np.flatnonzero(~mask), device=lins[k][1].weight.device)
            lins[k][1].weight[off] = 0.0
            if lins[k][1].bias is not None:
                lins[k][1].bias[off] = 0.0
            lins[k + 1][1].weight[:, off] = 0.0
    return out


def masks_from_scores(scores: Sequence[np.ndarray], threshold: float) -> tuple[list[np.ndarray], list[int]]:
    """Keep ``score >= threshold``; in a layer where nothing passes, keep its best-scored neuron.

    Returns the masks and the layers where that happened.
    """
    if not np.isfinite(threshold):
        raise InvalidInput(f"threshold must be finite, got {threshold}")
    masks, forced = [], []
    for k, s in enumerate(scores):
        s = np.asarray(s, dtype=np.float64).reshape(-1)
        mask = s >= threshold
        if not mask.any():
            mask[int(np.argmax(s))] = True
            forced.append(k)
        masks.append(mask)
    return masks, forced


def prune(model: nn.Module, scores, threshold: float) -> tuple[nn.Sequential, MaskReport]:
    """Remove the hidden neurons whose importance score is below ``threshold``.

    Args:
        model: the torch model the scores were computed for.
        scores: per hidden layer arrays of scores in ``[0, 1]``, or an
            :class:`~robustmip.pruning.importance.ImportanceResult`.
        threshold: neurons with ``score < threshold`` are removed (0.001 in the paper, 0.1 in the
            published code). A layer always keeps at least its best-scored neuron.

    Returns:
        the physically smaller ``nn.Sequential`` and the :class:`MaskReport`.
    """
    scores = getattr(scores, "scores", scores)
    masks, forced = masks_from_scores(scores, threshold)
    smaller, report = apply_masks(model, masks, method="mip")
    report.threshold = float(threshold)
    report.forced = forced
    return smaller, report


def _check_counts(model: nn.Module, kept: Sequence[int]) -> list[int]:
    widths = hidden_widths(model)
    if len(kept) != len(widths) or any(not 1 <= int(k) <= w for k, w in zip(kept, widths)):
        raise InvalidInput(f"kept counts {list(kept)} must give 1..width neurons for each of the hidden "
                           f"layers of widths {widths}")
    return [int(k) for k in kept]


def magnitude_masks(model: nn.Module, kept: Sequence[int]) -> list[np.ndarray]:
    """Per hidden layer, keep the ``kept[k]`` neurons with the largest L1 norm of incoming weights."""
    kept = _check_counts(model, kept)
    masks = []
    for k, (_, lin) in enumerate(linear_layers(model)[:-1]):
        norms = lin.weight.detach().abs().sum(dim=1).cpu().double().numpy()
        order = np.argsort(-norms, kind="stable")
        mask = np.zeros(norms.size, dtype=bool)
        mask[order[: kept[k]]] = True
        masks.append(mask)
    return masks


def random_masks(model: nn.Module, kept: Sequence[int], seed: int = 0) -> list[np.ndarray]:
    """Per hidden layer, keep ``kept[k]`` neurons drawn uniformly without replacement (seeded)."""
    kept = _check_counts(model, kept)
    rng = np.random.default_rng(seed)
    masks = []
    for k, width in enumerate(hidden_widths(model)):
        mask = np.zeros(width, dtype=bool)
        mask[rng.choice(width, size=kept[k], replace=False)] = True
        masks.append(mask)
    return masks


def prune_like(model: nn.Module, kept: Sequence[int], method: str, seed: int = 0) -> tuple[nn.Sequential, MaskReport]:
    """Baseline pruning to the same per-layer counts: ``method`` is ``magnitude`` or ``random``."""
    if method == "magnitude":
        masks = magnitude_masks(model, kept)
    elif method == "random":
        masks = random_masks(model, kept, seed)
    else:
        raise InvalidInput(f"unknown baseline {method!r}; use magnitude or random")
    return apply_masks(model, masks, method=method)
