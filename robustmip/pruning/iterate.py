"""Prune -> retrain, once or for several rounds: MIP importance, structured removal, (PGD) retraining.

Each round picks a class-balanced batch of training images (:func:`balanced_batch`), scores the
current model's neurons with :func:`~robustmip.pruning.importance.neuron_importance`, removes the
neurons below the threshold (:func:`~robustmip.pruning.prune.prune`), and retrains the smaller
model with :func:`robustmip.training.train` (standard, or PGD adversarial training with ``adv``).
The next round starts from the retrained model. Accuracies are measured on the test data before
pruning, after pruning and after retraining.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from robustmip.attacks.evaluate import clean_accuracy, predict, robust_accuracy
from robustmip.attacks.gradient import PGDConfig
from robustmip.data import Dataset
from robustmip.errors import InvalidInput
from robustmip.io import from_torch
from robustmip.pruning.importance import (
    BoundsMode,
    ImportanceResult,
    LayerTerms,
    neuron_importance,
)
from robustmip.pruning.prune import MaskReport, linear_layers, prune
from robustmip.training.loops import TrainData, train
from robustmip.training.objectives import PGDAdversarial


def balanced_batch(images: np.ndarray, labels: np.ndarray, per_class: int = 1, seed: int = 0,
                   model: nn.Module | None = None, n_classes: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``per_class`` images of every class, drawn at random (seeded), ordered by class.

    With ``model``, images it classifies correctly are preferred (the published code also picks
    batches the model gets right); a class with too few of them is filled up with misclassified
    ones. Returns ``(images, labels, indices)``; InvalidInput when a class has too few images.
    """
    if per_class < 1:
        raise InvalidInput(f"images per class must be at least 1, got {per_class}")
    labels = np.asarray(labels)
    ok = np.ones(len(labels), dtype=bool)
    if model is not None:
        ok = predict(model, images) == labels
    rng = np.random.default_rng(seed)
    chosen = []
    for c in range(n_classes):
        good, bad = np.flatnonzero((labels == c) & ok), np.flatnonzero((labels == c) & ~ok)
        if len(good) + len(bad) < per_class:
            raise InvalidInput(f"class {c} has {len(good) + len(bad)} images, need {per_class}")
        picked = rng.choice(good, size=min(per_class, len(good)), replace=False).tolist()
        if len(picked) < per_class:
            picked += rng.choice(bad, size=per_class - len(picked), replace=False).tolist()
        chosen.extend(sorted(picked))
    idx = np.asarray(chosen, dtype=np.int64)
    return images[idx], labels[idx], idx


@dataclass
class ImportanceSettings:
    """Arguments of :func:`~robustmip.pruning.importance.neuron_importance` used in every round."""

    lam: float = 5.0
    loss: str = "hinge"
    margin: float = 1.0
    bounds: BoundsMode = "published"
    layer_terms: LayerTerms = "published"
    relax_binaries: bool = False
    solver: str = "highs"
    time_limit: float | None = 120.0
    threads: int = 1
    mip_gap: float = 1e-4

    def run(self, model: nn.Module, images: np.ndarray, labels: np.ndarray) -> ImportanceResult:
        net = from_torch(model.cpu(), input_shape=tuple(images.shape[1:]))
        return neuron_importance(net, images, labels, lam=self.lam, loss=self.loss,  # type: ignore[arg-type]
                                 relax_binaries=self.relax_binaries, solver=self.solver,
                                 time_limit=self.time_limit, margin=self.margin, bounds=self.bounds,
                                 layer_terms=self.layer_terms, threads=self.threads, mip_gap=self.mip_gap)


@dataclass
class RoundResult:
    """One prune -> retrain round.

    Accuracies are fractions on the test data; ``pgd_*`` are PGD accuracies (clean and attacked
    correct) when an evaluation attack was given, else None. ``importance`` holds the scores
    (``importance["scores"]``, per hidden layer) and ``mask`` the kept neurons (``mask["layers"][k]
    ["kept_indices"]``, indices in the round's input model), so a round can be replayed and its
    neurons traced back.
    """

    round: int
    batch_indices: list[int]
    importance: dict
    mask: dict
    accuracy_before: float
    accuracy_pruned: float
    accuracy_retrained: float | None
    pgd_before: float | None = None
    pgd_pruned: float | None = None
    pgd_retrained: float | None = None
    retrain_history: dict | None = None
    seconds: dict = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PruneResult:
    """The final model of :func:`prune_and_retrain` and the record of each round."""

    model: nn.Sequential
    rounds: list[RoundResult]
    reports: list[MaskReport]

    @property
    def kept(self) -> list[int]:
        return self.reports[-1].kept

    def to_dict(self) -> dict[str, Any]:
        return {"kept": self.kept, "rounds": [r.to_dict() for r in self.rounds]}


def _accuracies(model: nn.Module, test: tuple[np.ndarray, np.ndarray], attack: PGDConfig | None,
                attack_n: int, seed: int, device) -> tuple[float, float | None]:
    model.eval()
    clean = clean_accuracy(model, *test, device=device)
    if attack is None:
        return clean, None
    x, y = test[0][:attack_n], test[1][:attack_n]
    return clean, robust_accuracy(model, x, y, device=device, seed=seed, **asdict(attack))


def _arrays(data: TrainData) -> tuple[np.ndarray, np.ndarray]:
    return (data.images, data.labels) if isinstance(data, Dataset) else (np.asarray(data[0]), np.asarray(data[1]))


def prune_and_retrain(
    model: nn.Sequential,
    train_data: TrainData,
    test_data: TrainData,
    *,
    threshold: float = 0.1,
    images_per_class: int = 1,
    rounds: int = 1,
    importance: ImportanceSettings | None = None,
    retrain_epochs: int = 2,
    adv: PGDConfig | None = None,
    lr: float = 1e-3,
    batch_size: int = 128,
    seed: int = 0,
    eval_attack: PGDConfig | None = None,
    eval_attack_n: int = 1000,
    extra_batch: tuple[np.ndarray, np.ndarray] | None = None,
    device: torch.device | str | None = None,
    progress: bool = False,
    on_pruned: Callable[[RoundResult], None] | None = None,
    on_round: Callable[[RoundResult], None] | None = None,
    on_epoch: Callable[[Any], None] | None = None,
) -> PruneResult:
    """Repeat ``rounds`` times: MIP importance -> prune below ``threshold`` -> retrain.

    Args:
        model: the trained ``nn.Sequential`` MLP (not modified).
        train_data: images for the importance batch and for retraining.
        test_data: images the accuracies are measured on.
        threshold: neurons with score below it are removed (0.1 published code, 0.001 paper).
        images_per_class: size of the class-balanced importance batch per class.
        importance: MIP settings (default :class:`ImportanceSettings`).
        retrain_epochs: epochs of retraining after each pruning (0: no retraining).
        adv: retrain adversarially with this PGD attack (None: standard training).
        lr, batch_size: retraining optimiser settings (Adam).
        seed: seeds the batch choice of round ``r`` (``seed + r``) and the retraining.
        eval_attack: also measure PGD accuracy with this attack on the first ``eval_attack_n``
            test images.
        extra_batch: ``(images, labels)`` added to every round's importance batch, e.g. adversarial
            examples of ``model`` with their true labels: robustness-aware pruning, whose scores keep
            the neurons that classify them (meaningful for one round: they belong to ``model``).
        device: torch device for retraining (default: the training default); importance and
            evaluation run on the CPU.
        on_pruned: called with each round's result after pruning, before retraining.
        on_round: called with each finished round.
        on_epoch: called with each retraining epoch's statistics.
    """
    if rounds < 1:
        raise InvalidInput(f"rounds must be at least 1, got {rounds}")
    if retrain_epochs < 0:
        raise InvalidInput(f"retrain epochs must be >= 0, got {retrain_epochs}")
    linear_layers(model)  # UnsupportedLayer before any work for models that cannot be pruned
    settings = importance or ImportanceSettings()
    train_x, train_y = _arrays(train_data)
    test = _arrays(test_data)
    current = model
    results, reports = [], []
    for r in range(rounds):
        times: dict[str, float] = {}
        current = current.cpu().eval()
        before, pgd_before = _accuracies(current, test, eval_attack, eval_attack_n, seed, "cpu")
        batch_x, batch_y, idx = balanced_batch(train_x, train_y, images_per_class, seed + r, model=current)
        if extra_batch is not None:
            extra_x = np.asarray(extra_batch[0], dtype=batch_x.dtype).reshape(-1, *batch_x.shape[1:])
            batch_x = np.concatenate([batch_x, extra_x])
            batch_y = np.concatenate([batch_y, np.asarray(extra_batch[1], dtype=batch_y.dtype)])
        start = time.perf_counter()
        scores = settings.run(current, batch_x, batch_y)
        times["importance"] = time.perf_counter() - start
        smaller, report = prune(current, scores, threshold)
        pruned, pgd_pruned = _accuracies(smaller, test, eval_attack, eval_attack_n, seed, "cpu")
        result = RoundResult(r + 1, idx.tolist(), scores.to_dict(with_scores=True), report.to_dict(with_indices=True),
                             before, pruned, None,
                             pgd_before, pgd_pruned, None, None, times)
        if on_pruned is not None:
            on_pruned(result)
        if retrain_epochs > 0:
            start = time.perf_counter()
            hist = train(smaller, train_data, None, epochs=retrain_epochs, lr=lr, batch_size=batch_size,
                         seed=seed + r, objective=PGDAdversarial(adv) if adv else None, device=device, progress=progress, on_epoch=on_epoch)
            times["retrain"] = time.perf_counter() - start
            result.retrain_history = hist.to_dict()
            smaller = smaller.cpu()
            result.accuracy_retrained, result.pgd_retrained = _accuracies(
                smaller, test, eval_attack, eval_attack_n, seed, "cpu")
        results.append(result)
        reports.append(report)
        if on_round is not None:
            on_round(result)
        current = smaller.eval()
    return PruneResult(current, results, reports)
