"""MIP neuron importance scores (ElAraby, Wolf & Carvalho 2020, arXiv 2002.07259), on the verification encoding.

Every neuron ``j`` of every hidden ReLU layer gets a continuous score ``s_j in [0, 1]``, shared by a
small batch of images (by default one per class). For each image the network is encoded with
:func:`robustmip.milp.encode.encode` (the one big-M ReLU encoding of robustmip), each hidden
pre-activation shifted by ``-(1 - s_j) * U+_j`` through its ``preactivation_shift`` hook::

    h_j = relu(a_j - (1 - s_j) * U+_j),   U+_j = max(U_j, 0),

so ``s_j = 1`` is the plain neuron. Written out, the constraints of a neuron with a binary are the
paper's and the published code's::

    h >= 0,  h <= v * U'+,  h >= a - (1 - s) U+,  h <= a - (1 - s) U+ - (1 - v) L',  v in {0, 1}

where ``[L', U'] = [L - U+, U]`` bounds the *shifted* pre-activation (the published code writes
``L``; see "Differences"). ``relax_binaries=True`` relaxes ``v`` to ``[0, 1]``.

The objective (minimised) is ``lam * loss(batch) + penalty(s)``:

* ``loss`` is linear, so the problem stays a MILP for HiGHS and Gurobi alike: the multi-class hinge
  ``(1/N) sum_i t_i`` with ``t_i >= 0`` and ``t_i >= z_{i,k} - z_{i,y_i} + margin`` for all
  ``k != y_i`` (the published code uses softmax cross-entropy, a log-sum-exp that needs an
  exponential-cone solver such as MOSEK);
* ``penalty`` sums, over hidden layers, ``T_l = (1/n_l) sum_j (s_j - 2)``. As in the published code,
  only the ``L - 1`` largest of the ``L`` layer terms are kept (all of them for a single hidden layer;
  ``layer_terms="all"`` keeps every term). The sum of the largest terms is modelled by the usual LP
  form ``(L-1) tau + sum_l e_l``, ``e_l >= T_l - tau``, ``e_l >= 0``.

Neurons with ``s_j < threshold`` are then pruned (:mod:`robustmip.pruning.prune`); the paper's section
3.2 uses 0.001, the published code 0.1 for fully connected nets.

The images are fixed, so the first layer's pre-activations are constants ``a0``; each image's
network is encoded with its input folded into that layer (one unused input variable instead of
784). Its neurons need no binary: ``h = a0 - (1 - s) a0 = s a0`` when ``a0 > 0``, else 0.

Bounds (``bounds=``), the one real choice:

``"sound"``
    Later layers' bounds hold for *every* score vector: ``relu(a - (1-s) U+)`` can be anywhere in
    ``[0, U+]``, so layer ``k`` gets interval arithmetic of ``W_k h + b_k`` over
    ``h in [0, U+_{k-1}]`` (:func:`scored_bounds`). The MIP is then exactly the scored network for all
    scores, ``s = 0`` switches a neuron off, and every score vector is feasible. But the big-M
    relaxation is weak: on LeNet-300-100 with 10 images (1000 binaries) HiGHS does not improve on the
    all-ones start within minutes (see experiments/pruning_report.py).
``"published"`` (default)
    What the published code does: hidden layers get the clean pass as bounds (their intervals have
    width ``2e-5`` around each image). Once a score is below 1 these are not bounds but constraints:
    with the shifted bound ``L' = L - U+ = 0`` every clean-active neuron is "active" (no binary) with
    ``a - (1-s) a_c in [0, a_c]``, and every clean-inactive one stays off; the rows
    ``L <= a <= 0`` added for the latter (the published code implies them too) keep the encoding
    exact. The problem becomes an LP over the scores restricted to a neighbourhood of the clean
    activation pattern, solved in seconds; the logits at the solution are exactly those of the
    scored network (``U+`` = clean activation), but ``s = 0`` switches a deeper neuron off only if
    its pre-activation does not exceed its clean value.

Differences from the published code (mip-for-ann), and why:

* the loss: hinge instead of cross-entropy (above);
* the lower big-M constant: they keep the unshifted ``L`` in ``h <= a - (1-s)U+ - (1-v)L``. With
  sound bounds that makes ``s = 0`` infeasible whenever ``a < L + U+`` (``v = 0`` needs
  ``a - U+ >= L``, ``v = 1`` needs ``a >= U+``), i.e. for almost every neuron; the shifted
  ``L' = L - U+`` keeps it feasible. With the published (clean-pass) bounds both give the same
  feasible set;
* the batch: one correctly classified image per class drawn at random (theirs: a class-balanced
  batch of a validation loader ranked by their "weighted accuracy").
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np
import pyomo.environ as pyo

from robustmip.bounds import Bounds, interval_layer
from robustmip.errors import InvalidInput, RobustMipError
from robustmip.io import from_torch
from robustmip.milp.encode import EncodedNetwork, PreactivationShift, encode
from robustmip.network import AffineLayer, Network
from robustmip.solvers import SOLVERS, MilpSolver

LossName = Literal["hinge"]
LOSSES: tuple[str, ...] = ("hinge",)
LayerTerms = Literal["published", "all"]
LAYER_TERMS: tuple[str, ...] = ("published", "all")
BoundsMode = Literal["sound", "published"]
BOUNDS_MODES: tuple[str, ...] = ("sound", "published")


class ImportanceFailed(RobustMipError):
    """The importance MIP ended without any solution (time limit too short, solver error)."""


@dataclass
class ImportanceResult:
    """Scores and solve statistics of :func:`neuron_importance`.

    Attributes:
        scores: per hidden ReLU layer, float64 ``(n_l,)`` in ``[0, 1]``.
        status: the solver's status (``optimal``, ``time_limit`` with an incumbent, ...).
        objective: objective value of the incumbent (``lam * loss + penalty``).
        bound: the solver's proven lower bound on the objective.
        loss_value: the batch loss at the incumbent (without ``lam``).
        penalty_value: the score penalty at the incumbent.
        seconds: solve time; build_seconds: Pyomo model construction; bounds_seconds: bounds.
        n_binaries: ReLU indicator variables over all images (relaxed to [0, 1] when
            ``config["relax_binaries"]``).
        n_images: images in the batch.
        logit_error: largest difference between the MIP's logits and the float64 forward pass of
            the scored network at the returned scores (0 up to solver tolerances; larger when the
            binaries are relaxed).
        config: the arguments of the call (lam, loss, margin, layer_terms, solver, ...).
    """

    scores: list[np.ndarray]
    status: str
    objective: float | None
    bound: float | None
    loss_value: float
    penalty_value: float
    seconds: float
    build_seconds: float
    bounds_seconds: float
    n_binaries: int
    n_images: int
    logit_error: float
    config: dict = field(default_factory=dict)
    message: str = ""

    def to_dict(self, with_scores: bool = False) -> dict:
        """JSON-ready dict (the score arrays only when asked)."""
        out = {
            "status": self.status, "objective": self.objective, "bound": self.bound,
            "loss_value": self.loss_value, "penalty_value": self.penalty_value,
            "seconds": self.seconds, "build_seconds": self.build_seconds,
            "bounds_seconds": self.bounds_seconds, "n_binaries": self.n_binaries,
            "n_images": self.n_images, "logit_error": self.logit_error, "config": dict(self.config),
            "message": self.message,
            "score_summary": [
                {"layer": k, "n": int(s.size), "min": float(s.min()), "mean": float(s.mean()),
                 "max": float(s.max()), "below_0.001": int((s < 1e-3).sum()),
                 "below_0.1": int((s < 0.1).sum())}
                for k, s in enumerate(self.scores)
            ],
        }
        if with_scores:
            out["scores"] = [s.tolist() for s in self.scores]
        return out


def as_network(net) -> Network:
    """``net`` itself, or a torch ``nn.Sequential`` imported with :meth:`Network.from_torch`."""
    if isinstance(net, Network):
        return net
    return from_torch(net)


def _check_scorable(net: Network) -> int:
    """Number of hidden ReLU layers; InvalidInput unless hidden layers are ReLU and the last identity."""
    acts = [layer.activation for layer in net.layers]
    if len(acts) < 2 or acts[-1] != "identity" or any(a != "relu" for a in acts[:-1]):
        raise InvalidInput("neuron importance needs ReLU hidden layers and an identity (logits) output "
                           f"layer; got activations {acts}")
    return len(acts) - 1


def _flat_images(net: Network, images) -> np.ndarray:
    x = np.asarray(images, dtype=np.float64)
    if x.ndim == 0 or x.size % net.n_inputs != 0 or x.size == 0:
        raise InvalidInput(f"images of shape {x.shape} do not hold whole inputs of {net.n_inputs} values")
    x = x.reshape(-1, net.n_inputs)
    if not np.isfinite(x).all():
        raise InvalidInput("images contain NaN or infinite values")
    return x


def scored_bounds(net: Network, x: np.ndarray, mode: BoundsMode = "sound") -> Bounds:
    """Pre-activation bounds of ``net`` at the fixed input ``x`` for the importance MIP.

    Layer 0's bounds are its exact pre-activation ``a0`` (``lower == upper``) in both modes.

    ``mode="sound"``: layer ``k >= 1`` gets interval arithmetic over ``h_{k-1} in [0, U+_{k-1}]``,
    the range of ``relu(a - (1 - s) U+)`` for all ``s in [0, 1]`` and all ``a <= U``; valid for
    every score vector.

    ``mode="published"``: the hidden layers get the clean pass itself (``lower == upper == a_k``), as
    the published code's intervals of width ``2e-5`` around each image do (up to that width); the
    output layer gets interval arithmetic over ``[0, U+]`` of the last hidden layer. These are not
    bounds once a score is below 1: in the MIP they act as constraints on the scores (see
    :func:`neuron_importance`).
    """
    start = time.perf_counter()
    _check_scorable(net)
    if mode not in BOUNDS_MODES:
        raise InvalidInput(f"unknown bounds mode {mode!r}; choose one of {BOUNDS_MODES}")
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    if x.shape != (net.n_inputs,):
        raise InvalidInput(f"input must have {net.n_inputs} values, got {x.size}")
    if mode == "published":
        _, pre = net.forward(x, return_preactivations=True)
        lower = [p.copy() for p in pre[:-1]]
        upper = [p.copy() for p in pre[:-1]]
        lo, up = interval_layer(net.layers[-1], np.zeros_like(upper[-1]), np.maximum(upper[-1], 0.0))
        lower.append(lo)
        upper.append(up)
    else:
        a0 = net.layers[0].W @ x + net.layers[0].b
        lower, upper = [a0.copy()], [a0.copy()]
        for layer in net.layers[1:]:
            h_up = np.maximum(upper[-1], 0.0)
            lo, up = interval_layer(layer, np.zeros_like(h_up), h_up)
            lower.append(lo)
            upper.append(up)
    activations = tuple(layer.activation for layer in net.layers)
    return Bounds(x.copy(), x.copy(), lower, upper, f"scored-{mode}", time.perf_counter() - start,
                  activations=activations)


def _fold_input(net: Network, bounds: Bounds) -> tuple[Network, Bounds]:
    """``net`` with its (fixed) input folded into layer 0's bias, and bounds for that network.

    The folded network has one input, fixed at 0 and unused: layer 0 is ``W = 0``, ``b = a0``.
    """
    first = net.layers[0]
    folded = Network([AffineLayer(np.zeros((first.n_out, 1)), bounds.upper[0], "relu"), *net.layers[1:]])
    zero = np.zeros(1)
    return folded, Bounds(zero, zero.copy(), bounds.lower, bounds.upper, bounds.method,
                          bounds.seconds, activations=bounds.activations)


def _scored_pass(net: Network, x: np.ndarray, scores: list[np.ndarray], bounds: Bounds):
    """Per layer ``(a, a_shifted, h)`` of the scored network ``h = relu(a - (1 - s) U+)`` at ``x``."""
    n_hidden = len(scores)
    h, out = x, []
    for k, layer in enumerate(net.layers):
        a = layer.W @ h + layer.b
        if k < n_hidden:
            shifted = a - (1.0 - scores[k]) * np.maximum(bounds.upper[k], 0.0)
            h = np.maximum(shifted, 0.0)
        else:
            shifted = h = a
        out.append((a, shifted, h))
    return out


def scored_forward(net, images, scores: Sequence[np.ndarray], mode: BoundsMode = "sound") -> np.ndarray:
    """Logits ``(N, n_outputs)`` of the scored network ``h = relu(a - (1 - s) U+)``, float64.

    ``U+`` is the upper bound of :func:`scored_bounds` (same ``mode``) for each image, as in the
    MIP; with all scores 1 this is :meth:`Network.forward`.
    """
    net = as_network(net)
    n_hidden = _check_scorable(net)
    scores = _check_scores(net, scores, n_hidden)
    return np.asarray([_scored_pass(net, x, scores, scored_bounds(net, x, mode))[-1][2]
                       for x in _flat_images(net, images)])


def _check_scores(net: Network, scores: Sequence[np.ndarray], n_hidden: int) -> list[np.ndarray]:
    if len(scores) != n_hidden:
        raise InvalidInput(f"need scores for {n_hidden} hidden layers, got {len(scores)}")
    out = []
    for k, s in enumerate(scores):
        s = np.asarray(s, dtype=np.float64).reshape(-1)
        if s.shape != (net.layers[k].n_out,):
            raise InvalidInput(f"layer {k} has {net.layers[k].n_out} neurons but {s.size} scores")
        out.append(s)
    return out


def _hinge_loss(model: pyo.ConcreteModel, encodings: list[EncodedNetwork], labels: np.ndarray,
                margin: float):
    """``(1/N) sum_i t_i`` with ``t_i >= max(0, max_{k != y_i} z_{i,k} - z_{i,y_i} + margin)``."""
    n, n_out = len(encodings), encodings[0].net.n_outputs
    model.t = pyo.Var(range(n), bounds=(0.0, None))
    pairs = [(i, k) for i in range(n) for k in range(n_out) if k != labels[i]]

    def rule(m, i, k):
        z = encodings[i].logits
        return m.t[i] >= z[k] - z[int(labels[i])] + margin

    model.hinge = pyo.Constraint(pairs, rule=rule)
    return sum(model.t[i] for i in range(n)) / n


def _hinge_value(logits: np.ndarray, labels: np.ndarray, margin: float) -> float:
    own = logits[np.arange(len(labels)), labels]
    others = logits.copy()
    others[np.arange(len(labels)), labels] = -np.inf
    return float(np.mean(np.maximum(0.0, others.max(axis=1) - own + margin)))


def _layer_terms(model: pyo.ConcreteModel, n_hidden: int):
    return [sum(getattr(model, f"s{k}")[j] - 2.0 for j in getattr(model, f"s{k}")) / len(getattr(model, f"s{k}"))
            for k in range(n_hidden)]


def _penalty(model: pyo.ConcreteModel, n_hidden: int, layer_terms: str):
    """Sum of the ``L - 1`` largest layer terms (published) or of all of them."""
    terms = _layer_terms(model, n_hidden)
    if layer_terms == "all" or n_hidden == 1:
        return sum(terms)
    keep = n_hidden - 1
    # sum of the `keep` largest of terms = min_tau keep*tau + sum_l max(T_l - tau, 0); T_l in [-2, -1].
    model.tau = pyo.Var(bounds=(-2.0, -1.0))
    model.excess = pyo.Var(range(n_hidden), bounds=(0.0, 1.0))
    model.top_terms = pyo.Constraint(range(n_hidden), rule=lambda m, k: m.excess[k] >= terms[k] - m.tau)
    return keep * model.tau + sum(model.excess[k] for k in range(n_hidden))


def _penalty_value(scores: list[np.ndarray], layer_terms: str) -> float:
    terms = sorted((float(np.mean(s - 2.0)) for s in scores), reverse=True)
    if layer_terms == "all" or len(terms) == 1:
        return float(sum(terms))
    return float(sum(terms[: len(terms) - 1]))


def _set_solution(model: pyo.ConcreteModel, encodings: list[EncodedNetwork], net: Network, x: np.ndarray,
                  y: np.ndarray, margin: float, scores: list[np.ndarray], all_bounds: list[Bounds],
                  layer_terms: str) -> None:
    """Load the point of the MIP that belongs to ``scores`` into the model's variables (a MIP start)."""
    n_hidden = len(scores)
    for k in range(n_hidden):
        for j, var in getattr(model, f"s{k}").items():
            var.set_value(float(scores[k][j]))
    logits = []
    for enc, xi, bounds in zip(encodings, x, all_bounds):
        enc.inputs[0].set_value(0.0)
        for k, (h_var, (_, shifted, h)) in enumerate(zip(enc.outputs, _scored_pass(net, xi, scores, bounds))):
            for j, var in h_var.items():
                if not var.fixed:
                    var.set_value(float(h[j]), skip_validation=True)
            v = enc.binaries[k]
            if v is not None:
                for j, var in v.items():
                    var.set_value(1.0 if shifted[j] > 0 else 0.0, skip_validation=True)
            if k == len(net.layers) - 1:
                logits.append(h)
    logits = np.asarray(logits)
    for i in range(len(y)):
        others = np.delete(logits[i], y[i])
        model.t[i].set_value(max(0.0, float(others.max() - logits[i, y[i]] + margin)))
    if hasattr(model, "tau"):
        terms = sorted((float(np.mean(sc - 2.0)) for sc in scores), reverse=True)
        tau = terms[n_hidden - 2]  # the smallest kept term: excess = T_l - tau on the kept ones
        model.tau.set_value(tau)
        for k in model.excess:
            model.excess[k].set_value(max(0.0, float(np.mean(scores[k] - 2.0)) - tau))


def _published_inactive_constraints(block: pyo.Block, enc: EncodedNetwork, net: Network, bounds: Bounds,
                                    n_hidden: int) -> None:
    """``L <= a <= 0`` for neurons of hidden layers ``k >= 1`` that are inactive in the clean pass.

    With ``bounds="published"`` their upper bound is ``<= 0``, so the encoding fixes them at 0; these
    rows keep the encoding exact (the published code's constraints imply the same range).
    """
    for k in range(1, n_hidden):
        layer, prev = net.layers[k], enc.outputs[k - 1]
        prev_idx = [m for m in range(layer.n_in) if not prev[m].fixed]
        rows = np.flatnonzero(bounds.upper[k] <= 0.0).tolist()

        def pre(j, layer=layer, prev=prev, prev_idx=prev_idx):
            return sum(float(layer.W[j, m]) * prev[m] for m in prev_idx if layer.W[j, m] != 0.0) + float(layer.b[j])

        block.add_component(f"published_inactive{k}", pyo.Constraint(
            rows, rule=lambda _, j, pre=pre, lo=bounds.lower[k]: pyo.inequality(float(lo[j]), pre(j), 0.0)))


@dataclass
class ImportanceMIP:
    """The importance MIP of one batch, before solving (see :func:`build_importance_mip`).

    Attributes:
        model: the Pyomo model; ``model.s{k}`` are the score variables of hidden layer ``k`` and
            ``model.images[i]`` holds image ``i``'s encoding.
        scores: the score variables per hidden layer.
        encodings: one :class:`EncodedNetwork` per image (of the network with that image folded
            into its first layer).
        bounds: per image, the :func:`scored_bounds` used.
    """

    model: pyo.ConcreteModel
    scores: list[pyo.Var]
    encodings: list[EncodedNetwork]
    bounds: list[Bounds]
    net: Network
    images: np.ndarray
    labels: np.ndarray
    margin: float
    layer_terms: str
    bounds_seconds: float = 0.0
    build_seconds: float = 0.0

    def logits(self) -> np.ndarray:
        """The logits variables' solution values, ``(N, n_outputs)``."""
        return np.array([[0.0 if enc.logits[c].value is None else enc.logits[c].value
                          for c in range(self.net.n_outputs)] for enc in self.encodings])

    def score_values(self) -> list[np.ndarray]:
        """The scores' solution values clipped to [0, 1] (0 for a score the solver never saw)."""
        return [np.clip(np.array([0.0 if s[j].value is None else s[j].value for j in s], dtype=np.float64),
                        0.0, 1.0) for s in self.scores]

    def set_solution(self, scores: Sequence[np.ndarray]) -> None:
        """Load the point of the MIP that belongs to ``scores`` into the variables (a MIP start)."""
        _set_solution(self.model, self.encodings, self.net, self.images, self.labels, self.margin,
                      _check_scores(self.net, scores, len(self.scores)), self.bounds, self.layer_terms)

    def n_binaries(self) -> int:
        return sum(enc.n_binaries() for enc in self.encodings)


def _check_batch(net: Network, images, labels) -> tuple[np.ndarray, np.ndarray]:
    x = _flat_images(net, images)
    y = np.asarray(labels).reshape(-1)
    if y.shape[0] != x.shape[0]:
        raise InvalidInput(f"{x.shape[0]} images but {y.shape[0]} labels")
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= net.n_outputs:
        raise InvalidInput(f"labels must be integers in 0..{net.n_outputs - 1}")
    return x, y.astype(np.int64)


def build_importance_mip(
    net,
    images,
    labels,
    lam: float = 5.0,
    loss: LossName = "hinge",
    relax_binaries: bool = False,
    *,
    margin: float = 1.0,
    bounds: BoundsMode = "published",
    layer_terms: LayerTerms = "published",
) -> ImportanceMIP:
    """Build (without solving) the MIP of :func:`neuron_importance`; same arguments."""
    net = as_network(net)
    n_hidden = _check_scorable(net)
    x, y = _check_batch(net, images, labels)
    if loss not in LOSSES:
        raise InvalidInput(f"unknown loss {loss!r}; choose one of {LOSSES}")
    if layer_terms not in LAYER_TERMS:
        raise InvalidInput(f"unknown layer_terms {layer_terms!r}; choose one of {LAYER_TERMS}")
    if bounds not in BOUNDS_MODES:
        raise InvalidInput(f"unknown bounds mode {bounds!r}; choose one of {BOUNDS_MODES}")
    if not (np.isfinite(lam) and lam >= 0):
        raise InvalidInput(f"lam must be a finite number >= 0, got {lam}")
    if not (np.isfinite(margin) and margin >= 0):
        raise InvalidInput(f"margin must be a finite number >= 0, got {margin}")

    start = time.perf_counter()
    all_bounds = [scored_bounds(net, xi, bounds) for xi in x]
    bounds_seconds = time.perf_counter() - start

    start = time.perf_counter()
    model = pyo.ConcreteModel()
    scores_vars = []
    for k in range(n_hidden):
        s = pyo.Var(range(net.layers[k].n_out), bounds=(0.0, 1.0))
        model.add_component(f"s{k}", s)
        scores_vars.append(s)
    model.images = pyo.Block(range(len(x)))
    encodings = []
    for i, image_bounds in enumerate(all_bounds):
        folded, folded_bounds = _fold_input(net, image_bounds)
        shifts = {}
        for k in range(n_hidden):
            up = np.maximum(image_bounds.upper[k], 0.0)
            shifts[k] = PreactivationShift(
                expr=lambda j, s=scores_vars[k], up=up: float(up[j]) * s[j] - float(up[j]),
                lower=-up, upper=np.zeros_like(up))
        enc = encode(folded, folded_bounds, block=model.images[i], preactivation_shift=shifts)
        if bounds == "published":
            _published_inactive_constraints(model.images[i], enc, folded, image_bounds, n_hidden)
        if relax_binaries:
            for v in enc.binaries:
                if v is not None:
                    for j in v:
                        v[j].domain = pyo.UnitInterval
        encodings.append(enc)
    loss_expr = _hinge_loss(model, encodings, y, margin)
    penalty_expr = _penalty(model, n_hidden, layer_terms)
    model.objective = pyo.Objective(expr=lam * loss_expr + penalty_expr, sense=pyo.minimize)
    return ImportanceMIP(model, scores_vars, encodings, all_bounds, net, x, y, float(margin), layer_terms,
                         bounds_seconds, time.perf_counter() - start)


def neuron_importance(
    net,
    images,
    labels,
    lam: float = 5.0,
    loss: LossName = "hinge",
    relax_binaries: bool = False,
    solver: str | MilpSolver = "highs",
    time_limit: float | None = 120.0,
    *,
    margin: float = 1.0,
    bounds: BoundsMode = "published",
    layer_terms: LayerTerms = "published",
    threads: int = 1,
    mip_gap: float = 1e-4,
    warm_start: bool = True,
    initial_scores: Sequence[np.ndarray] | None = None,
    verbose: bool = False,
) -> ImportanceResult:
    """Neuron importance scores of ``net`` from one MIP over the batch ``images`` (see the module doc).

    Args:
        net: a :class:`Network` or a torch ``nn.Sequential`` (ReLU hidden layers, identity output).
        images: ``(N, ...)`` inputs, each with ``net.n_inputs`` values (e.g. ``(N, 1, 28, 28)``).
        labels: ``(N,)`` int class labels.
        lam: weight of the loss; a larger ``lam`` prunes less (default 5, as published).
        loss: ``"hinge"`` (multi-class hinge with ``margin``, linear).
        relax_binaries: relax the ReLU indicators to ``[0, 1]`` (an LP; the published experiments
            offer it too).
        solver: ``"highs"``, ``"gurobi"`` or ``"scip"``, or a :class:`MilpSolver` (its time limit is then
            overridden by ``time_limit`` unless that is None).
        time_limit: seconds for the solve; the incumbent at the limit is returned (status
            ``time_limit``).
        margin: hinge margin in logit units.
        bounds: ``"published"`` (the clean pass, as the published code: fast, restricts the scores)
            or ``"sound"`` (valid for every score: the global problem, much harder); see the module
            docstring.
        layer_terms: ``"published"`` keeps the ``L - 1`` largest layer terms of the penalty,
            ``"all"`` keeps all of them.
        threads, mip_gap, verbose: solver settings (``mip_gap`` relative).
        warm_start: give the solver the point of ``initial_scores`` (default: all scores 1, the
            plain network) as a MIP start.

    Raises:
        InvalidInput: malformed arguments. ImportanceFailed: the solve produced no solution.
    """
    mip = build_importance_mip(net, images, labels, lam, loss, relax_binaries, margin=margin, bounds=bounds,
                               layer_terms=layer_terms)
    n_hidden = len(mip.scores)
    start_scores = (_check_scores(mip.net, initial_scores, n_hidden) if initial_scores is not None
                    else [np.ones(mip.net.layers[k].n_out) for k in range(n_hidden)])
    if any(((s < 0) | (s > 1)).any() for s in start_scores):
        raise InvalidInput("initial_scores must lie in [0, 1]")
    if isinstance(solver, MilpSolver):
        engine = solver
    elif solver in SOLVERS:
        engine = MilpSolver(solver, time_limit, threads=threads, mip_gap=mip_gap, verbose=verbose)
    else:
        raise InvalidInput(f"unknown solver {solver!r}; choose one of {SOLVERS}")
    start = time.perf_counter()
    if warm_start:
        mip.set_solution(start_scores)
    build_seconds = mip.build_seconds + time.perf_counter() - start

    result = engine.solve(mip.model, time_limit=time_limit, warm_start=warm_start)
    if not result.has_solution:
        raise ImportanceFailed(f"the importance MIP ended with status {result.status} and no solution "
                               f"({result.message}) after {result.seconds:.1f} s; raise the time limit, "
                               "use fewer images or relax_binaries=True")
    scores = mip.score_values()
    mip_logits = mip.logits()
    true_logits = np.array([_scored_pass(mip.net, xi, scores, b)[-1][2] for xi, b in zip(mip.images, mip.bounds)])
    config = {"lam": float(lam), "loss": loss, "margin": float(margin), "bounds": bounds,
              "relax_binaries": bool(relax_binaries), "layer_terms": layer_terms, "solver": engine.name,
              "time_limit": time_limit, "threads": engine.threads, "mip_gap": engine.mip_gap,
              "warm_start": bool(warm_start), "labels": mip.labels.tolist()}
    return ImportanceResult(
        scores=scores,
        status=result.status,
        objective=result.objective,
        bound=result.bound,
        loss_value=_hinge_value(mip_logits, mip.labels, margin),
        penalty_value=_penalty_value(scores, layer_terms),
        seconds=result.seconds,
        build_seconds=build_seconds,
        bounds_seconds=mip.bounds_seconds,
        n_binaries=mip.n_binaries(),
        n_images=len(mip.images),
        logit_error=float(np.max(np.abs(mip_logits - true_logits))),
        config=config,
        message=result.message,
    )
