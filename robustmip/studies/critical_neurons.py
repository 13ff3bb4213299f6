"""Which neurons matter for accuracy, which for robustness: MIP importance on clean and adversarial images.

The importance MIP (:mod:`robustmip.pruning.importance`) scores each hidden neuron by how much of it
the net needs to keep a batch's loss low. Run on clean images it measures importance for accuracy; run
on adversarial images with their true labels, for classifying perturbed inputs correctly, i.e. for
robustness. The adversarial images are the exact MILP's counterexamples, and only those that pass the
float64 re-check here (inside their eps-box, target logit above the label's in
:meth:`Network.forward`): :func:`checked_counterexamples`.

A neuron is *critical* for a batch when its score is at least a level (e.g. 0.5): the MIP could not
scale it down far without raising the loss. Sets are compared with the Jaccard index
``|A & B| / |A | B|`` (1 for two empty sets), per hidden layer and over all hidden neurons, and
traced through pruning by the kept indices of the pruned net (its neuron ``j`` of layer ``k`` is the
original's ``kept_indices[k][j]``).
"""

from __future__ import annotations

from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from robustmip.milp.problem import recheck
from robustmip.network import Network
from robustmip.spec import input_box

Neuron = tuple[int, int]
"""(hidden layer, neuron index)."""

BOX_TOLERANCE = 1e-9
"""How far (input units) a stored counterexample may lie outside its eps-box (solver tolerances)."""


def checked_counterexamples(
    net: Network, rows: Iterable[dict], clean: Mapping[int, np.ndarray], load_point: Callable[[dict], np.ndarray | None]
) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """The counterexamples of ``rows`` that are adversarial for ``net``, re-checked here in float64.

    Args:
        net: the net the rows attacked.
        rows: MILP rows (``status``, ``image``, ``label``, ``target``, ``eps``); only ``adversarial``
            rows are considered.
        clean: the clean image of each row's ``image`` index (any shape with ``net.n_inputs`` values).
        load_point: a row's stored counterexample, or None when there is none.

    Returns:
        ``(points (M, n_inputs) float64, true labels (M,), the rows kept)``. A point is kept only when
        it lies in the row's eps-box around its clean image (up to :data:`BOX_TOLERANCE`) and the
        float64 forward pass puts the row's target strictly above its label.
    """
    points, labels, kept = [], [], []
    for row in rows:
        if row.get("status") != "adversarial":
            continue
        point = load_point(row)
        if point is None:
            continue
        x = np.asarray(clean[row["image"]], dtype=np.float64).reshape(-1)
        point = np.asarray(point, dtype=np.float64).reshape(-1)
        lower, upper = input_box(x, row["eps"])
        if point.shape != x.shape or (point < lower - BOX_TOLERANCE).any() or (point > upper + BOX_TOLERANCE).any():
            continue
        ok, point, _, _ = recheck(net, point, int(row["label"]), (lower, upper), int(row["target"]))
        if ok:
            points.append(point)
            labels.append(int(row["label"]))
            kept.append(row)
    shape = (len(points), net.n_inputs)
    return np.asarray(points, dtype=np.float64).reshape(shape), np.asarray(labels, dtype=np.int64), kept


def one_per_image(rows: Sequence[dict], limit: int) -> list[dict]:
    """Per image, its adversarial row of lowest OFV (most adversarial target), the first ``limit`` images."""
    best: dict[int, dict] = {}
    for row in rows:
        if row.get("status") == "adversarial":
            current = best.get(row["image"])
            if current is None or (row["ofv"] if row["ofv"] is not None else 0.0) < (current["ofv"] or 0.0):
                best[row["image"]] = row
    return [best[i] for i in sorted(best)][:limit]


def critical(scores: Sequence[np.ndarray], level: float) -> set[Neuron]:
    """Neurons whose score is ``>= level``, as (layer, index) pairs."""
    return {(k, int(j)) for k, s in enumerate(scores) for j in np.flatnonzero(np.asarray(s) >= level)}


def jaccard(a: set, b: set) -> float:
    """``|a & b| / |a | b|``; 1.0 when both are empty."""
    union = a | b
    return 1.0 if not union else len(a & b) / len(union)


def in_original_indices(neurons: set[Neuron], kept_indices: Sequence[Sequence[int]]) -> set[Neuron]:
    """A pruned net's neurons renamed to the original net's indices (``kept_indices`` per hidden layer)."""
    return {(k, int(kept_indices[k][j])) for k, j in neurons}


def per_layer(neurons: set[Neuron], layers: int) -> list[set[Neuron]]:
    """``neurons`` split by hidden layer."""
    return [{n for n in neurons if n[0] == k} for k in range(layers)]


def compare_sets(a: set[Neuron], b: set[Neuron], layers: int) -> dict:
    """Sizes and Jaccard index of two neuron sets, overall and per hidden layer."""
    return {"size_a": len(a), "size_b": len(b), "common": len(a & b), "jaccard": jaccard(a, b),
            "jaccard_per_layer": [jaccard(x, y) for x, y in zip(per_layer(a, layers), per_layer(b, layers))]}
