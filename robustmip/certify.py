"""Verified error from sound bounds and from the exact MILP, per test image and radius.

For one image ``x`` with label ``y`` and one l-infinity radius ``eps`` (the ball clipped to the pixel
range ``[0, 1]``), :func:`certify_image` gives

* ``clean_correct``: the float64 forward pass (:meth:`Network.forward`) classifies ``x`` as ``y``;
* one verdict per bound method, ``verified`` or ``not``: ``verified`` iff the method's sound float64
  lower bound on every margin ``z_y - z_j`` (``j != y``) is ``> 0`` over the ball (a tie is not
  verified). The margin rows ``C_y`` are folded into the last layer (:func:`spec_network`), so each
  method bounds the margins directly, not the logits one by one:

  ``ibp``        interval arithmetic through every layer (:func:`robustmip.bounds.interval_layer`);
  ``crown-ibp``  interval bounds for the hidden layers, then one CROWN back-substitution of the margin
                 layer with the adaptive lower slope (:func:`robustmip.bounds.crown_layer`), as in
                 CROWN-IBP (Zhang et al. 2020), evaluated in numpy float64;
  ``crown``      CROWN for every layer, intersected with intervals (``compute_bounds(..., "crown")``);
  ``lp``         ``crown``, then LP tightening of every unstable neuron and of every margin, certified
                 by duality (``compute_bounds(..., "lp")``).

  Every bound is widened against rounding (:func:`robustmip.bounds.result.widen`), so these are the
  verdicts claims rest on; the float32 torch bounds used in training are not. ``lp`` (seconds per image
  on a CNN at a large eps) is computed last and only when its verdict does not follow from the rest: a
  re-checked counterexample means no sound bound verifies, and ``lp >= crown >= ibp`` (row ``implied``).
* ``pgd``: ``adversarial`` when PGD on the margin (:func:`robustmip.attacks.falsify.property_falsifier`)
  finds a point of the ball that the float64 forward pass misclassifies (a misclassified image is its
  own counterexample), else ``none``;
* with ``exact``, the exact verdict: ``robust`` when some bound above verified it (sound, no MILP),
  ``adversarial`` when PGD found a counterexample, else :func:`robustmip.milp.verify` (its LP bounds,
  then one decision MILP per target they leave open) with the time left of ``timeout``: ``robust``,
  ``adversarial`` or ``unknown`` (time limit; never counted robust).

:func:`run_certify` fans (image, eps) pairs out through :func:`robustmip.parallel.run_instances`
(resumable JSONL, settings guard). :func:`summarize` gives per eps the errors in the order they must
hold: PGD error <= exact lower bound (adversarial) <= exact upper bound (adversarial + unknown) <= each
bound's verified error, and counts the images that break it (a soundness bug if ever non-zero).
:func:`exact_on_grid` decides one image on a whole grid of radii with few MILPs, using that
robustness is monotone in ``eps`` (the clipped balls are nested).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from robustmip.attacks.falsify import property_falsifier
from robustmip.bounds import compute_bounds, crown_layer
from robustmip.deadline import Deadline
from robustmip.errors import InvalidInput, RobustMipError
from robustmip.io import load_network
from robustmip.layers import AffineLayer
from robustmip.milp import SolveOptions, recheck, verify
from robustmip.network import Network
from robustmip.parallel import run_instances
from robustmip.spec import check_eps, input_box, margin_matrix, robustness_conjunctions

BOUND_METHODS: tuple[str, ...] = ("ibp", "crown-ibp", "crown", "lp")
"""Bound methods of a verdict, cheapest first (see the module docstring)."""


def spec_network(net: Network, label: int) -> Network:
    """``net`` with the margin rows ``C_y`` folded into its last layer: outputs ``z_y - z_j``, ``j != y``.

    The last layer ``(W, b)`` becomes ``(C_y W, C_y b)`` with identity activation; shape of the new
    output ``(n_outputs - 1,)``, in the order of the classes other than ``label``.
    """
    last = net.layers[-1]
    if last.activation != "identity":
        raise InvalidInput("the margin specification folds into an identity output layer; this net ends in a ReLU")
    C = margin_matrix(net.n_outputs, int(label))
    return Network([*net.layers[:-1], AffineLayer(C @ last.W, C @ last.b, "identity")], net.input_shape)


def margin_lower_bounds(net: Network, lower: np.ndarray, upper: np.ndarray, label: int, method: str,
                        threads: int = 1, deadline: Deadline | None = None) -> np.ndarray:
    """Sound float64 lower bounds on the margins ``z_label - z_j`` over the box ``[lower, upper]``.

    Args:
        method: one of :data:`BOUND_METHODS`.
        threads, deadline: for the LPs of ``lp`` (a passed deadline leaves weaker, still sound bounds).

    Returns:
        float64 ``(n_outputs - 1,)``, one bound per class other than ``label``, in class order.
    """
    spec = spec_network(net, label)
    if method == "ibp":
        return compute_bounds(spec, lower, upper, "interval").lower[-1]
    if method == "crown-ibp":
        ibp = compute_bounds(spec, lower, upper, "interval")
        last = len(spec.layers) - 1
        return crown_layer(spec, last, ibp.lower[:last], ibp.upper[:last], (lower, upper))[0]
    if method == "crown":
        return compute_bounds(spec, lower, upper, "crown").lower[-1]
    if method == "lp":
        return compute_bounds(spec, lower, upper, "lp", deadline=deadline, threads=threads).lower[-1]
    raise InvalidInput(f"unknown bound method {method!r}; choose from {BOUND_METHODS}")


@dataclass(frozen=True)
class CertifySettings:
    """Everything besides the image and eps that changes a row.

    Attributes:
        bounds: bound methods to give verdicts for (a subset of :data:`BOUND_METHODS`).
        exact: also decide exactly (PGD, then MILP).
        solver: MILP solver (``highs``, ``gurobi`` or ``scip``); timeout: seconds per (image, eps), every stage
            included (bounds, PGD, MILP: the ``lp`` bound's LPs and the MILP get what is left; what runs out
            of time is weaker bounds or ``unknown``, never a wrong verdict); threads: solver threads.
        milp_bounds: bound level inside the MILP (:data:`robustmip.bounds.BOUNDS_METHODS`).
        pgd_steps, pgd_restarts, seed: the PGD search (deterministic for a seed).
        pgd_always: run PGD also when a bound verified the image (a cross-check of the bounds: a
            counterexample there would be a soundness bug); otherwise its ``none`` is implied.
    """

    bounds: tuple[str, ...] = BOUND_METHODS
    exact: bool = False
    solver: str = "highs"
    timeout: float = 60.0
    threads: int = 1
    milp_bounds: str = "lp"
    pgd_steps: int = 50
    pgd_restarts: int = 8
    seed: int = 0
    pgd_always: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "bounds", tuple(self.bounds))
        unknown = [b for b in self.bounds if b not in BOUND_METHODS]
        if unknown or len(set(self.bounds)) != len(self.bounds):
            raise InvalidInput(f"bounds must be distinct methods of {BOUND_METHODS}, got {list(self.bounds)}")
        if not self.timeout > 0 or self.threads < 1 or self.pgd_steps < 1 or self.pgd_restarts < 1:
            raise InvalidInput("timeout must be > 0 and threads, pgd_steps, pgd_restarts >= 1")

    def to_dict(self) -> dict:
        return {**asdict(self), "bounds": list(self.bounds)}

    def falsifier(self):
        return property_falsifier(steps=self.pgd_steps, restarts=self.pgd_restarts, seed=self.seed)

    def solve_options(self, time_limit: float | None = None) -> SolveOptions:
        """Options of an exact question (``time_limit`` seconds, default ``timeout``); no falsifier, since
        :func:`pgd_counterexample` runs before it."""
        return SolveOptions.create(self.solver, time_limit or self.timeout, self.threads, bounds=self.milp_bounds)


@dataclass
class CertifyRow:
    """The verdicts of one (image, eps).

    Attributes:
        index: the image's index in its data set (-1 when not from one); eps: the radius.
        verdicts: bound method -> ``verified`` / ``not``.
        margins: bound method -> its lower bound on the smallest margin (logit units; None when not
            computed: the image is misclassified, or the verdict is implied).
        implied: the verdicts that follow without computing them: ``lp``'s (``not`` when PGD found a
            re-checked counterexample, since no sound bound can then verify; ``verified`` when ``ibp`` or
            ``crown`` verified, since ``lp >= crown >= ibp``) and ``pgd``'s (``none`` when a bound verified,
            unless ``pgd_always``).
        pgd: ``adversarial`` / ``none``; exact: ``robust`` / ``adversarial`` / ``unknown``, None without
            ``exact``; exact_proof: what decided it (``clean``, ``bounds``, ``pgd``, ``milp``) or None;
            milp: whether a MILP was solved for it; reason: the exact verdict's reason when unknown.
        seconds: wall time per stage (each bound method, ``pgd``, ``exact``).
    """

    index: int
    eps: float
    label: int
    clean_correct: bool
    verdicts: dict[str, str]
    margins: dict[str, float | None]
    pgd: str
    exact: str | None = None
    exact_proof: str | None = None
    milp: bool = False
    reason: str = ""
    seconds: dict[str, float] = field(default_factory=dict)
    implied: list[str] = field(default_factory=list)

    def interface(self) -> dict:
        """The fixed JSON object of ``robustmip certify --json``: index, eps, label, clean_correct, one key
        per bound method, pgd and (with ``exact``) exact."""
        out = {"index": self.index, "eps": self.eps, "label": self.label, "clean_correct": self.clean_correct,
               **self.verdicts, "pgd": self.pgd}
        if self.exact is not None:
            out["exact"] = self.exact
        return out

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, row: dict) -> CertifyRow:
        return cls(**{k: row[k] for k in cls.__dataclass_fields__ if k in row})


def pgd_counterexample(net: Network, x: np.ndarray, label: int, eps: float, falsifier) -> float | None:
    """The l-inf distance of a PGD point of the ball that the float64 forward pass misclassifies, or None."""
    flat = np.asarray(x, dtype=np.float64).reshape(-1)
    lower, upper = input_box(flat, eps)
    targets = [t for t in range(net.n_outputs) if t != label]
    point = falsifier(net, lower, upper, robustness_conjunctions(net.n_outputs, label, targets))
    if point is None:
        return None
    adversarial, point, _, _ = recheck(net, point, label, (lower, upper))
    return float(np.abs(point - flat).max()) if adversarial else None


def exact_verdict(net: Network, x: np.ndarray, label: int, eps: float,
                  options: SolveOptions) -> tuple[str, str | None, bool, str]:
    """``(status, proof, milp, reason)`` of :func:`robustmip.milp.verify` (PGD first, then MILP)."""
    verdict = verify(net, x, label, eps, options)
    return verdict.status, verdict.proof, _solved(verdict), verdict.reason


def _solved(verdict) -> bool:
    """Whether a MILP ran for a verdict of :func:`robustmip.milp.verify`."""
    return verdict.proof == "milp" or verdict.times.get("solve", 0.0) > 0


@dataclass
class GridResult:
    """Exact verdicts of one image on a grid of radii.

    Attributes:
        eps: the grid, increasing; status: ``robust`` / ``adversarial`` / ``unknown`` per radius;
        proof: per radius what decided it (``clean``, ``bounds``, ``pgd``, ``milp``, ``implied``: by a
            verdict at another radius, robustness being monotone in eps), None when unknown;
        questions: calls of :func:`robustmip.milp.verify`; milps: those that solved a MILP;
        seconds: wall time.
    """

    eps: list[float]
    status: list[str]
    proof: list[str | None]
    questions: int = 0
    milps: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def _bound_verifies(net: Network, x: np.ndarray, label: int, eps: float, settings: CertifySettings,
                    deadline: Deadline) -> bool:
    """Whether one of ``settings.bounds`` (tried in order) proves every margin > 0 over the ball."""
    lower, upper = input_box(x, eps)
    return any(margin_lower_bounds(net, lower, upper, label, m, settings.threads, deadline).min() > 0
               for m in settings.bounds)


def exact_on_grid(net: Network, x: np.ndarray, label: int, grid: Sequence[float], settings: CertifySettings,
                  robust_upto: int = 0) -> GridResult:
    """The exact verdict at every radius of ``grid`` with few questions, by bisection.

    Robustness is monotone in eps (the clipped balls are nested): robust at ``e`` is robust below ``e``,
    and a counterexample at distance ``d`` is one at every radius ``>= d``. So the undecided range is
    bisected; each probed radius is asked of PGD, then of the sound bounds, then of
    :func:`robustmip.milp.verify`: a robust midpoint settles its left part, an adversarial one (at distance ``d``) every
    radius ``>= d``, and an unknown one splits the range in two. At the end every verdict is propagated
    to the radii it implies.

    Args:
        grid: increasing radii in ``[0, 1]``; settings: the PGD search, the bounds tried at each probed
            radius before a MILP (in order, first success wins) and the exact questions' solver and time
            limit (per probed radius, every stage included); ``settings.exact`` is not used.
        robust_upto: the first ``robust_upto`` radii are known robust already (e.g. a sound bound
            verified the image at ``grid[robust_upto - 1]``).
    """
    start = time.perf_counter()
    grid = [check_eps(e, 1.0) for e in grid]
    if any(b <= a for a, b in zip(grid, grid[1:])):
        raise InvalidInput("the radii of a grid must increase")
    flat = np.asarray(x, dtype=np.float64).reshape(-1)
    n = len(grid)
    status: list[str | None] = [None] * n
    proof: list[str | None] = [None] * n
    result = GridResult(list(grid), [], [])
    if recheck(net, flat, label, (flat, flat))[0]:
        return GridResult(list(grid), ["adversarial"] * n, ["clean"] * n, seconds=time.perf_counter() - start)
    for i in range(min(robust_upto, n)):
        status[i], proof[i] = "robust", "bounds"
    ranges = [(min(robust_upto, n), n - 1)]
    while ranges:
        lo, hi = ranges.pop()
        if lo > hi:
            continue
        mid = (lo + hi) // 2
        deadline = Deadline(settings.timeout)
        distance = pgd_counterexample(net, flat, label, grid[mid], settings.falsifier())
        if distance is not None:
            outcome, proof[mid] = "adversarial", "pgd"
        elif _bound_verifies(net, flat, label, grid[mid], settings, deadline):
            outcome, proof[mid] = "robust", "bounds"
        elif deadline.expired():
            outcome = "unknown"
        else:
            verdict = verify(net, flat, label, grid[mid], settings.solve_options(deadline.left()))
            result.questions += 1
            result.milps += int(_solved(verdict))
            outcome, proof[mid], distance = verdict.status, verdict.proof, verdict.distortion
        status[mid] = outcome
        if outcome == "robust":
            ranges.append((mid + 1, hi))
        elif outcome == "adversarial":
            first = next(i for i in range(n) if grid[i] >= min(distance, grid[mid]))
            for i in range(first, n):
                if status[i] is None:
                    status[i], proof[i] = "adversarial", "implied"
            ranges.append((lo, min(mid, first) - 1))
        else:
            proof[mid] = None
            ranges += [(lo, mid - 1), (mid + 1, hi)]
    robust = [i for i in range(n) if status[i] == "robust"]
    adversarial = [i for i in range(n) if status[i] == "adversarial"]
    if robust and adversarial and max(robust) >= min(adversarial):
        raise RuntimeError(f"unsound: robust at eps {grid[max(robust)]} but adversarial at {grid[min(adversarial)]}")
    for i in range(n):
        if status[i] in (None, "unknown"):
            if robust and i < max(robust):
                status[i], proof[i] = "robust", "implied"
            elif adversarial and i > min(adversarial):
                status[i], proof[i] = "adversarial", "implied"
            else:
                status[i] = "unknown"
    result.status, result.proof = status, proof
    result.seconds = time.perf_counter() - start
    return result


def certify_image(net: Network, x: np.ndarray, label: int, eps: float, settings: CertifySettings,
                  index: int = -1) -> CertifyRow:
    """Every verdict of one image at one radius (see the module docstring)."""
    eps = check_eps(eps, 1.0)
    flat = np.asarray(x, dtype=np.float64).reshape(-1)
    lower, upper = input_box(flat, eps)
    clean_ok = not recheck(net, flat, label, (flat, flat))[0]  # margin >= 0: a tie is no counterexample
    row = CertifyRow(index, eps, int(label), clean_ok, {m: "not" for m in settings.bounds},
                     {m: None for m in settings.bounds}, "adversarial")
    if not clean_ok:
        if settings.exact:
            row.exact, row.exact_proof, row.reason = "adversarial", "clean", "the image itself is misclassified"
        return row
    deadline = Deadline(settings.timeout)

    def bound(method: str) -> None:
        start = time.perf_counter()
        value = margin_lower_bounds(net, lower, upper, label, method, settings.threads, deadline).min()
        row.margins[method], row.verdicts[method] = float(value), "verified" if value > 0 else "not"
        row.seconds[method] = time.perf_counter() - start

    for method in settings.bounds:
        if method != "lp":
            bound(method)
    verified = "verified" in row.verdicts.values()
    found = False
    if verified and not settings.pgd_always:
        row.pgd = "none"
        row.implied.append("pgd")
    else:
        start = time.perf_counter()
        found = pgd_counterexample(net, flat, label, eps, settings.falsifier()) is not None
        row.pgd = "adversarial" if found else "none"
        row.seconds["pgd"] = time.perf_counter() - start
    if "lp" in settings.bounds:  # the costly one: skipped when its verdict follows from the others
        if found or "verified" in (row.verdicts.get("ibp"), row.verdicts.get("crown")):
            row.verdicts["lp"] = "not" if found else "verified"
            row.implied.append("lp")
        else:
            bound("lp")
    if settings.exact:
        start = time.perf_counter()
        if "verified" in row.verdicts.values():
            row.exact, row.exact_proof = "robust", "bounds"
        elif found:
            row.exact, row.exact_proof = "adversarial", "pgd"
        elif deadline.expired():
            row.exact, row.reason = "unknown", f"time limit ({settings.timeout:g} s) reached in the bounds and PGD"
        else:
            row.exact, row.exact_proof, row.milp, row.reason = exact_verdict(
                net, flat, label, eps, settings.solve_options(deadline.left()))
        row.seconds["exact"] = time.perf_counter() - start
    return row


_NETWORKS: dict[tuple[str, float], Network] = {}


def cached_network(path: str | Path) -> Network:
    """The network of a model file, loaded once per process (and again when the file changes)."""
    if not Path(path).is_file():
        return load_network(path)  # raises the reader's DataError (not found, a directory)
    key = (str(path), Path(path).stat().st_mtime)
    if key not in _NETWORKS:
        _NETWORKS.clear()
        _NETWORKS[key] = load_network(path)
    return _NETWORKS[key]


def certify_job(instance: dict) -> dict:
    """:func:`run_instances` job: one (image, eps) of the model file ``instance["model"]``."""
    settings = CertifySettings(**instance["settings"])
    row = certify_image(cached_network(instance["model"]), np.asarray(instance["x"]), instance["label"],
                        instance["eps"], settings, instance["index"])
    return {"status": "ok", **row.to_dict()}


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class CertifyJobsFailed(RobustMipError):
    """Some (image, eps) pairs of :func:`run_certify` ended in an error row."""


def run_certify(model: str | Path, images: np.ndarray, labels: np.ndarray, indices: Sequence[int],
                eps: Sequence[float], settings: CertifySettings, out: str | Path, *, data_id: str = "",
                workers: int | None = 1, backend: str = "processes", progress: bool = False) -> list[CertifyRow]:
    """Certify every (index, eps) pair, image by image, resumably; returns the rows in that order.

    Args:
        model: ONNX file, checkpoint or ``.npz`` network; images, labels: the data set (``(N, ...)``
            in ``[0, 1]``, ``(N,)``); indices: which of its images; eps: the radii.
        out: the JSONL results file (a rerun skips the pairs it holds; other settings are refused).
        data_id: names the data set (e.g. its fingerprint) in the settings guard.
        workers, backend: see :func:`robustmip.parallel.run_instances` (``workers=1`` runs serially).

    Raises:
        CertifyJobsFailed: when some pair ended in an error row (the others are kept in ``out``).
    """
    for e in eps:
        check_eps(e, 1.0)
    cached_network(model)  # a missing or unreadable model fails here, not in every job
    instances = [{"key": f"{i}/{e!r}", "model": str(model), "index": int(i), "eps": float(e),
                  "label": int(labels[i]), "x": np.asarray(images[i], dtype=np.float64).reshape(-1).tolist(),
                  "settings": settings.to_dict()} for i in indices for e in eps]
    guard = {"model_sha256": file_sha256(model), "data": data_id, **settings.to_dict()}
    results = run_instances(certify_job, instances, out, key="key", settings=guard, progress=progress,
                            backend="serial" if workers == 1 else backend, workers=workers, desc="certify")
    failed = [r for r in results if r.get("status") == "error"]
    if failed:
        raise CertifyJobsFailed(f"{len(failed)} of {len(results)} (image, eps) pairs failed, e.g. {failed[0]['key']}: "
                           f"{failed[0].get('error')}; the others are kept in {out}")
    return [CertifyRow.from_dict(r) for r in results]


@dataclass
class EpsSummary:
    """Errors at one radius over ``n`` images, as fractions in ``[0, 1]``.

    Attributes:
        clean_error: misclassified images; pgd_error: images PGD (or the clean image) breaks.
        exact_lower: exact adversarial; exact_upper: adversarial + unknown (None without exact).
        verified_error: bound method -> images it does not verify.
        milps: images whose exact verdict needed a MILP; unknown: images left unknown.
        violations: images breaking PGD <= exact <= bound (a PGD or exact counterexample on an image a
            bound verified, or PGD adversarial but exact robust); 0 unless something is unsound.
    """

    eps: float
    n: int
    clean_error: float
    pgd_error: float
    exact_lower: float | None
    exact_upper: float | None
    verified_error: dict[str, float]
    milps: int
    unknown: int
    violations: int

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def ordered(self) -> bool:
        """PGD error <= exact lower <= exact upper <= every bound's verified error (exact ones skipped when absent)."""
        chain = [self.pgd_error] + ([self.exact_lower, self.exact_upper] if self.exact_lower is not None else [])
        return (all(a <= b for a, b in zip(chain, chain[1:]))
                and all(chain[-1] <= v for v in self.verified_error.values()))


def summarize(rows: Sequence[CertifyRow]) -> list[EpsSummary]:
    """One :class:`EpsSummary` per radius, in increasing eps; the shared verified-error helper."""
    out = []
    for eps in sorted({r.eps for r in rows}):
        sub = [r for r in rows if r.eps == eps]
        n = len(sub)
        exact = all(r.exact is not None for r in sub)
        methods = [m for m in BOUND_METHODS if all(m in r.verdicts for r in sub)]
        violations = 0
        for r in sub:
            verified = any(r.verdicts.get(m) == "verified" for m in methods)
            broken = r.pgd == "adversarial" or r.exact == "adversarial"
            violations += int((verified and broken) or (r.pgd == "adversarial" and r.exact == "robust"))
        out.append(EpsSummary(
            eps, n, sum(not r.clean_correct for r in sub) / n, sum(r.pgd == "adversarial" for r in sub) / n,
            sum(r.exact == "adversarial" for r in sub) / n if exact else None,
            sum(r.exact in ("adversarial", "unknown") for r in sub) / n if exact else None,
            {m: sum(r.verdicts[m] != "verified" for r in sub) / n for m in methods},
            sum(r.milp for r in sub), sum(r.exact == "unknown" for r in sub), violations))
    return out
