"""The pruning-robustness study of Bai et al. 2020, end to end (``robustmip study``), with the questions
the paper left open.

Stages, each resumable (a finished stage's files are reused; optimisation rows are appended as they
finish), for every training seed of ``seeds``:

1. ``original``: load ``model`` (``{seed}`` in the path is replaced) or PGD-train ``arch``;
2. ``pruned``: MIP neuron-importance pruning (ElAraby et al.) of the original, PGD retraining;
3. ``calibration``: targeted PGD rates of every net over ``calibration_eps``; the eps at which the
   originals' mean rate is nearest the published 148/900 joins the study's ``eps``
   (:mod:`robustmip.studies.calibration`);
4. ``milp``: targeted max-margin optimisations, every net x eps x image x 9 targets, on the first
   ``images`` test images that every original and pruned net classifies correctly, through one
   function with an ``engine`` setting (:mod:`robustmip.studies.engines`) over a ladder of time
   limits until optimal (``milp_rows.jsonl``, counterexamples in ``adv/``);
5. ``neurons``: importance scores of the original and the pruned net on clean images and on their
   re-checked MILP counterexamples: critical neurons for accuracy vs robustness, their overlap, their
   fate under pruning (:mod:`robustmip.studies.critical_neurons`);
6. ``retrained`` (the control: the original retrained like the pruned net, without pruning) and
   ``pruned_robust`` (robustness-aware pruning: scores from the clean batch plus the original's
   counterexamples, retrained the same way), optimised like the others at the calibrated eps;
7. ``sweep`` (first seed): pruning at several thresholds of the same scores, retrained: accuracy, PGD
   accuracy and exact adversarial rate against neurons kept;
8. transfer ("reverse testing accuracy") and the report (:mod:`robustmip.studies.prune_robustness_report`):
   ``report.md``, CSVs, PNGs, ``config.json``, copied to ``report_dir`` when set.

Run ``robustmip study --help`` (or the thin script ``experiments/prune_robustness.py``). A config is
a JSON file of :class:`StudyConfig` fields; a bare name (``demo``, ``full``) is one shipped in
``robustmip/studies/configs/`` (``prune_robustness_<name>.json``).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from robustmip.attacks import (
    PGDConfig,
    clean_accuracy,
    robust_accuracy,
    transfer_accuracy,
)
from robustmip.attacks.milp_attack import AttackRow, time_ladder
from robustmip.data import Dataset, load_dataset
from robustmip.errors import InvalidInput
from robustmip.io import from_torch
from robustmip.io.checkpoint import load_checkpoint, save_checkpoint
from robustmip.models import build_model
from robustmip.network import Network
from robustmip.parallel import read_results
from robustmip.pruning import ImportanceSettings, prune, prune_and_retrain
from robustmip.studies import calibration, critical_neurons
from robustmip.studies.engines import ENGINES, image_job
from robustmip.studies.runs import (
    add_stage_seconds,
    load_settings,
    logger,
    open_run,
    run_jobs,
    run_problems,
    sha256,
    versions,
    write_json,
)
from robustmip.training import PGDAdversarial, train

PUBLISHED = {
    "accuracy_original": 97.05, "accuracy_pruned": 97.11,
    "adversarial_original": 148, "adversarial_pruned": 139,
    "reverse_original_on_pruned": 14.4, "reverse_pruned_on_original": 22.3,
    "time_mean_successful": 6.3, "time_mean_unsuccessful": 5.0, "time_max": 337.0,
}
PUBLISHED_MILPS = 900  # 100 test images x 9 targets per net
PUBLISHED_RATE = PUBLISHED["adversarial_original"] / PUBLISHED_MILPS
"""The original net's published adversarial rate (148/900), the calibration's target."""
PUBLISHED_FIG3 = {
    # Fig. 3: per class, MILPs of both nets, adversarial of the original, of the pruned.
    "label": {0: (144, 1, 2), 1: (252, 38, 36), 2: (144, 10, 8), 3: (198, 5, 6), 4: (252, 34, 35),
              5: (126, 6, 9), 6: (180, 12, 6), 7: (270, 17, 10), 8: (36, 1, 1), 9: (198, 24, 26)},
    "target": {0: (184, 2, 0), 1: (172, 6, 6), 2: (184, 8, 8), 3: (178, 36, 28), 4: (172, 5, 4),
               5: (186, 19, 13), 6: (180, 7, 10), 7: (170, 16, 28), 8: (196, 27, 23), 9: (178, 22, 19)},
}
PUBLISHED_FIG4 = {
    # Fig. 4: both nets' 1800 MILPs; count, mean, std, min, 25%, 50%, 75%, max.
    ("successful", "ofv"): (287, -3.38663, 2.80574, -13.2354, -4.90792, -2.53535, -1.25681, -0.0173092),
    ("successful", "time_s"): (287, 6.3261, 7.63883, 0.663828, 2.57388, 4.16219, 7.10247, 60.0291),
    ("unsuccessful", "ofv"): (1513, 9.97858, 6.87621, 0.0544291, 4.57773, 8.76774, 14.1734, 39.9802),
    ("unsuccessful", "time_s"): (1513, 5.01184, 10.2095, 0.376705, 2.1257, 3.3787, 5.3636, 337.692),
}
NETS = ("original", "pruned")
ROBUST_NET = "pruned_robust"
CONTROL_NET = "retrained"
"""The original net retrained like the pruned one, without pruning: separates pruning from extra training."""


def _grid(start: float, stop: float, step: float) -> list[float]:
    return [round(start + k * step, 6) for k in range(int(round((stop - start) / step)) + 1)]


@dataclass
class StudyConfig:
    """Everything that defines a run; written to ``config.json``.

    Time limits are seconds. ``time_limit`` is the first rung of each optimisation's ladder, which
    grows by ``time_factor`` up to ``max_time_limit`` until the solver closes its gap (relative
    ``mip_gap``); a row counts as optimal when ``incumbent - bound <= max(abs_gap, mip_gap * |incumbent|)``.
    ``decide_time_limit`` (None: ``max_time_limit``; 0: none) bounds a decision MILP after the last
    rung, which settles the verdict of an optimisation still open.
    """

    run: str = "default"
    out_root: str = "results/prune_robustness"
    report_dir: str | None = None
    model: str | None = None
    arch: str = "mlp-100-100"
    train_eps: float = 0.1
    train_epochs: int = 20
    pgd_steps: int = 10
    pgd_step_size: float = 0.025
    eps_ramp_epochs: int = 5
    prune_threshold: float = 0.1
    prune_lambda: float = 5.0
    images_per_class: int = 1
    prune_time_limit: float = 600.0
    retrain_epochs: int = 2
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    images: int = 100
    eps: list[float] = field(default_factory=lambda: [0.05, 0.1])
    calibrate: bool = True
    calibration_eps: list[float] = field(default_factory=lambda: _grid(0.01, 0.3, 0.01))
    calibration_images: int = 100
    calibration_pgd_steps: int = 50
    calibration_pgd_restarts: int = 2
    engine: str = "milp"
    solver: str = "highs"
    time_limit: float = 60.0
    max_time_limit: float = 3600.0
    time_factor: float = 4.0
    mip_gap: float = 1e-4
    abs_gap: float = 1e-6
    decide_time_limit: float | None = None
    bounds: str = "lp"
    pgd_start: bool = True
    robust_prune: bool = True
    retrain_control: bool = True
    adv_importance_images: int = 20
    critical_level: float = 0.5
    sweep_thresholds: list[float] = field(default_factory=lambda: [0.3, 0.5, 0.7])
    sweep_images: int = 20
    pgd_eval_images: int = 1000
    bootstrap_samples: int = 10000
    bootstrap_seed: int = 0
    workers: int | None = None
    backend: str = "processes"
    torch_threads: int = 1
    data_dir: str | None = None
    embedded: bool = False

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """InvalidInput naming every field out of its domain (checked before any stage runs)."""
        problems = []
        positive = ("train_epochs", "pgd_steps", "images", "images_per_class", "torch_threads", "calibration_images",
                    "calibration_pgd_steps", "calibration_pgd_restarts", "sweep_images", "pgd_eval_images",
                    "bootstrap_samples", "adv_importance_images")
        problems += [f"{name} must be an integer >= 1" for name in positive if not _integer(getattr(self, name), 1)]
        problems += [f"{name} must be an integer >= 0" for name in ("retrain_epochs", "eps_ramp_epochs",
                                                                      "bootstrap_seed")
                     if not _integer(getattr(self, name), 0)]
        problems += [f"{name} must be > 0 seconds" for name in ("time_limit", "max_time_limit", "prune_time_limit")
                     if not _number(getattr(self, name)) or not getattr(self, name) > 0]
        if _number(self.time_limit) and _number(self.max_time_limit) and self.max_time_limit < self.time_limit:
            problems.append("max_time_limit must be >= time_limit")
        if not (_number(self.time_factor) and self.time_factor > 1):
            problems.append("time_factor must be > 1")
        if not (_number(self.mip_gap) and 0 < self.mip_gap < 1) or not (_number(self.abs_gap) and self.abs_gap >= 0):
            problems.append("mip_gap must lie in (0, 1) and abs_gap be >= 0")
        if self.decide_time_limit is not None and not (_number(self.decide_time_limit) and self.decide_time_limit >= 0):
            problems.append("decide_time_limit must be >= 0 seconds (0: no decision MILP)")
        if not (_number(self.train_eps) and 0 <= self.train_eps <= 1):
            problems.append("train_eps must lie in [0, 1]")
        if not (_number(self.pgd_step_size) and self.pgd_step_size > 0):
            problems.append("pgd_step_size must be > 0")
        if not (_number(self.prune_threshold) and self.prune_threshold >= 0):
            problems.append("prune_threshold must be >= 0")
        if not (_number(self.prune_lambda) and self.prune_lambda >= 0):
            problems.append("prune_lambda must be >= 0")
        if not (_number(self.critical_level) and 0 < self.critical_level <= 1):
            problems.append("critical_level must lie in (0, 1]")
        if (not isinstance(self.eps, list) or not (self.eps or self.calibrate)
                or not all(_number(e) and 0 <= e <= 1 for e in self.eps)):
            problems.append("eps must be a list of numbers in [0, 1], not empty without calibrate")
        if not isinstance(self.calibration_eps, list) or (self.calibrate and not self.calibration_eps) or not all(
                _number(e) and 0 < e <= 1 for e in self.calibration_eps):
            problems.append("calibration_eps must be a list of numbers in (0, 1] (non-empty when calibrate)")
        if not isinstance(self.sweep_thresholds, list) or not all(_number(t) and t >= 0 for t in self.sweep_thresholds):
            problems.append("sweep_thresholds must be a list of numbers >= 0")
        if (not isinstance(self.seeds, list) or not self.seeds or not all(_integer(s, 0) for s in self.seeds)
                or len(set(self.seeds)) != len(self.seeds)):
            problems.append("seeds must be a non-empty list of distinct integers >= 0")
        elif self.model and len(self.seeds) > 1 and "{seed}" not in self.model:
            problems.append("model must contain '{seed}' (one checkpoint per seed) when there are several seeds")
        if self.engine not in ENGINES:
            problems.append(f"engine must be one of {sorted(ENGINES)}")
        problems += run_problems(self)
        if problems:
            raise InvalidInput("invalid study settings: " + "; ".join(problems))

    @property
    def run_dir(self) -> Path:
        return Path(self.out_root) / self.run

    @property
    def decision_seconds(self) -> float:
        """Seconds for the decision MILP after an optimisation left open (default ``max_time_limit``; 0: none)."""
        return self.max_time_limit if self.decide_time_limit is None else self.decide_time_limit

    @property
    def ladder(self) -> list[float]:
        """The time limits of one optimisation's attempts."""
        return time_ladder(self.time_limit, self.max_time_limit, self.time_factor)

    def seed_dir(self, seed: int) -> Path:
        return self.run_dir / f"seed{seed}"


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)


def _integer(value, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def load_config(name_or_path: str) -> StudyConfig:
    """A shipped config by name (``demo``, ``full``: ``configs/prune_robustness_<name>.json``) or a JSON file."""
    return load_settings("prune_robustness", name_or_path, StudyConfig)


# Fields that may change between invocations of one run: the rows they add stay comparable.
# More time (max_time_limit) only reruns the optimisations that the earlier limit left open.
RESUMABLE_CHANGES = {"run", "out_root", "report_dir", "images", "eps", "workers", "backend", "torch_threads",
                     "data_dir", "max_time_limit", "sweep_images", "bootstrap_samples", "bootstrap_seed",
                     "critical_level"}
"""The rest is recorded in ``config.json`` before the first stage; a rerun that changes it is refused."""

ROW_SETTINGS = ("engine", "solver", "time_limit", "time_factor", "mip_gap", "bounds", "pgd_start",
                "decide_time_limit")
"""The settings every optimisation row depends on, guarded beside ``milp_rows.jsonl`` as well."""


_log = logger("study")


STAGES = ("original", "pruned", "calibration", "milp", "neurons", "retrained", "pruned_robust", "milp_extra",
          "sweep", "milp_sweep", "report")


def _load_data(cfg: StudyConfig) -> tuple[Dataset, Dataset]:
    source = "embedded" if cfg.embedded else "auto"
    return load_dataset("train", source, cfg.data_dir), load_dataset("test", source, cfg.data_dir)


def _adv_config(cfg: StudyConfig) -> PGDConfig:
    return PGDConfig(cfg.train_eps, cfg.pgd_steps, cfg.pgd_step_size)


def _importance_settings(cfg: StudyConfig) -> ImportanceSettings:
    return ImportanceSettings(lam=cfg.prune_lambda, solver=cfg.solver, time_limit=cfg.prune_time_limit)


def stage_original(cfg: StudyConfig, seed: int, train_set: Dataset, test_set: Dataset) -> Path:
    """``seed<s>/original.pt``: the given checkpoint, copied with its metadata, or a freshly PGD-trained net."""
    path = cfg.seed_dir(seed) / "original.pt"
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    if cfg.model:
        source = cfg.model.format(seed=seed)
        model, meta = load_checkpoint(source)
        save_checkpoint(path, model, meta.arch, {**meta.train_config, "source_checkpoint": source},
                        meta.data_fingerprint, meta.seed, meta.metrics)
        return path
    _log(f"seed {seed}: training the original {cfg.arch}: PGD eps {cfg.train_eps}, {cfg.train_epochs} epochs")
    start = time.perf_counter()
    model = build_model(cfg.arch, seed=seed)
    train(model, train_set, epochs=cfg.train_epochs, seed=seed,
          objective=PGDAdversarial(_adv_config(cfg), cfg.eps_ramp_epochs), device="cpu", progress=False)
    model.eval()
    metrics = {"clean_test_accuracy": clean_accuracy(model, test_set.images, test_set.labels)}
    save_checkpoint(path, model, cfg.arch, {"adv_eps": cfg.train_eps, "epochs": cfg.train_epochs},
                    train_set.fingerprint, seed, metrics)
    add_stage_seconds(cfg.run_dir, "original", time.perf_counter() - start)
    return path


def _save_pruned(cfg: StudyConfig, path: Path, original: Path, result, seed: int, extra: dict) -> None:
    model_meta = load_checkpoint(original)[1]
    done, report = result.rounds[-1], result.reports[-1]
    final = done.accuracy_retrained if done.accuracy_retrained is not None else done.accuracy_pruned
    save_checkpoint(
        path, result.model, report.arch,
        {"pruned_from_sha256": sha256(original), "threshold": cfg.prune_threshold, "lambda": cfg.prune_lambda,
         "images_per_class": cfg.images_per_class, "retrain_adv_eps": cfg.train_eps,
         "retrain_epochs": cfg.retrain_epochs, **extra},
        model_meta.data_fingerprint, seed,
        {"clean_test_accuracy": final, "accuracy_before_pruning": done.accuracy_before,
         "accuracy_before_retraining": done.accuracy_pruned, "mask": done.mask, "importance": done.importance,
         "batch_indices": done.batch_indices},
    )
    _log(f"seed {seed}: {path.stem} {report.summary()}: accuracy {done.accuracy_before:.4f} -> "
         f"{done.accuracy_pruned:.4f} (pruned) -> {final:.4f}")


def stage_pruned(cfg: StudyConfig, seed: int, original: Path, train_set: Dataset, test_set: Dataset,
                 extra_batch: tuple[np.ndarray, np.ndarray] | None = None, name: str = "pruned") -> Path:
    """``seed<s>/<name>.pt``: one round of MIP-importance pruning of the original, then PGD retraining.

    With ``extra_batch`` (adversarial images and true labels) the importance batch holds them beside
    the clean images: robustness-aware pruning.
    """
    path = cfg.seed_dir(seed) / f"{name}.pt"
    if path.is_file():
        return path
    start = time.perf_counter()
    model = load_checkpoint(original)[0]
    extra = 0 if extra_batch is None else len(extra_batch[1])
    _log(f"seed {seed}: {name}: MIP importance on {10 * cfg.images_per_class} class-balanced images"
         + (f" and {extra} adversarial ones" if extra else "")
         + f" (lambda {cfg.prune_lambda}), prune below {cfg.prune_threshold}, retrain for {cfg.retrain_epochs} epochs")
    result = prune_and_retrain(
        model, train_set, test_set, threshold=cfg.prune_threshold, images_per_class=cfg.images_per_class, rounds=1,
        importance=_importance_settings(cfg), retrain_epochs=cfg.retrain_epochs, adv=_adv_config(cfg), seed=seed,
        device="cpu", extra_batch=extra_batch,
    )
    _save_pruned(cfg, path, original, result, seed, {"adversarial_images": extra})
    add_stage_seconds(cfg.run_dir, "pruned" if extra_batch is None else ROBUST_NET, time.perf_counter() - start)
    return path


def _predictions(path: Path, test_set: Dataset) -> np.ndarray:
    model = load_checkpoint(path)[0]
    with torch.no_grad():
        return torch.argmax(model(torch.as_tensor(test_set.images)), 1).numpy()


def eligible_images(nets: dict[int, dict[str, Path]], test_set: Dataset) -> np.ndarray:
    """Test indices that every original and plainly pruned net (all seeds) classifies correctly."""
    ok = np.ones(len(test_set), dtype=bool)
    for per_seed in nets.values():
        for name in NETS:
            ok &= _predictions(per_seed[name], test_set) == test_set.labels
    return np.flatnonzero(ok)


def stage_calibration(cfg: StudyConfig, nets: dict[int, dict[str, Path]], test_set: Dataset,
                      eligible: np.ndarray) -> dict:
    """``calibration.json``: targeted PGD rates of every net over ``calibration_eps`` and the chosen eps.

    The chosen eps is the grid point where the originals' mean rate (over seeds) is nearest
    :data:`PUBLISHED_RATE`; computed on the first ``calibration_images`` eligible test images.
    """
    path = cfg.run_dir / "calibration.json"
    if path.is_file():
        return json.loads(path.read_text())
    indices = eligible[: cfg.calibration_images]
    if len(indices) < cfg.calibration_images:
        raise InvalidInput(f"only {len(indices)} test images are classified correctly by every net; "
                           f"lower calibration_images ({cfg.calibration_images})")
    start = time.perf_counter()
    images, labels = test_set.images[indices], test_set.labels[indices]
    attack = {"steps": cfg.calibration_pgd_steps, "restarts": cfg.calibration_pgd_restarts, "seed": 0}
    rates = {}
    for seed, per_seed in nets.items():
        for name in NETS:
            model = load_checkpoint(per_seed[name])[0]
            rates[f"{seed}/{name}"] = calibration.targeted_pgd_rates(model, images, labels, cfg.calibration_eps,
                                                                     **attack)
    mean = {eps: float(np.mean([rates[f"{s}/original"][eps] for s in nets])) for eps in cfg.calibration_eps}
    chosen = calibration.pick_eps(mean, PUBLISHED_RATE)
    result = {"target_rate": PUBLISHED_RATE, "eps": chosen, "rate_at_eps": mean[chosen], "images": len(indices),
              "attack": attack, "grid": cfg.calibration_eps, "mean_original": mean,
              "rates": {key: {str(e): r for e, r in value.items()} for key, value in rates.items()}}
    write_json(path, result)
    _log(f"calibration: targeted PGD rate {100 * mean[chosen]:.1f} % at eps {chosen} "
         f"(target {100 * PUBLISHED_RATE:.1f} %)")
    add_stage_seconds(cfg.run_dir, "calibration", time.perf_counter() - start)
    return result


def _network_path(path: Path) -> Path:
    """The float64 :class:`Network` of a checkpoint, saved beside it (``.npz``)."""
    out = path.with_suffix(".npz")
    if not out.is_file():
        from_torch(load_checkpoint(path)[0], input_shape=(1, 28, 28)).save(out)
    return out


def adv_path(cfg: StudyConfig, seed: int, net: str, eps: float, image: int) -> Path:
    return cfg.run_dir / "adv" / f"seed{seed}" / f"{net}_{eps}_{image}.npz"


def row_optimal(row: dict, cfg: StudyConfig) -> bool:
    """The optimisation closed its gap: solver optimal and ``gap <= max(abs_gap, mip_gap * |incumbent|)``."""
    if row.get("solver_status") != "optimal" or row.get("gap") is None:
        return False
    return row["gap"] <= max(cfg.abs_gap, cfg.mip_gap * abs(row["ofv"]))


_ROW_FIELDS = {f.name for f in fields(AttackRow)}


def stage_milp(cfg: StudyConfig, jobs: list[tuple[int, str, Path]], eps_list: list[float], images: list[int],
               test_set: Dataset, stage: str, redo_errors: bool = False) -> list[dict]:
    """Rows of every (seed, net, checkpoint) in ``jobs`` x ``eps_list`` x ``images`` x 9 targets.

    One job per (seed, net, eps, image), image by image, so that a run stopped early leaves comparable
    rows. A job already in ``milp_rows.jsonl`` is reused; one with a target left open by an earlier,
    shorter ladder runs again, keeping its optimal targets and starting the others above their last limit.
    """
    ladder = cfg.ladder
    out = cfg.run_dir / "milp_rows.jsonl"
    done = read_results(out) if out.is_file() else {}
    networks = {(seed, net): _network_path(path) for seed, net, path in jobs}
    instances = []
    for i in images:
        for eps in eps_list:
            for seed, net, _ in jobs:
                key = f"s{seed}/{net}/{eps}/{i}"
                earlier = done.get(key, {}).get("rows", [])
                instances.append({
                    "key": key, "network": str(networks[seed, net]), "eps": eps, "image": i,
                    "label": int(test_set.labels[i]), "x": test_set.images[i].reshape(-1).tolist(),
                    "engine": cfg.engine, "solver": cfg.solver, "time_limits": ladder, "mip_gap": cfg.mip_gap,
                    "bounds": cfg.bounds, "pgd_start": cfg.pgd_start,
                    "decide_time_limit": cfg.decision_seconds or None,
                    "adv_path": str(adv_path(cfg, seed, net, eps, i)), "fields": {"net": net, "seed": seed},
                    "settled": {r["target"]: {k: v for k, v in r.items() if k in _ROW_FIELDS}
                                for r in earlier if r.get("solver_status") == "optimal"},
                    "previous_limits": {r["target"]: r.get("time_limit") for r in earlier
                                        if r.get("solver_status") != "optimal"},
                })

    def open_row(result: dict) -> bool:
        return any(r.get("solver_status") != "optimal" and (r.get("time_limit") or 0) < ladder[-1]
                   for r in result.get("rows", []))

    _log(f"{stage}: {len(instances)} optimisation jobs (x9 targets, engine {cfg.engine}, ladder "
         f"{', '.join(f'{t:g}' for t in ladder)} s) on {cfg.backend} with {cfg.workers or 'all'} workers")
    results = run_jobs(image_job, instances, out, what="optimisation", backend=cfg.backend, workers=cfg.workers,
                       redo_errors=redo_errors, redo=open_row, stage=stage,
                       settings={name: getattr(cfg, name) for name in ROW_SETTINGS})
    return [row for result in results for row in result["rows"]]


def load_counterexample(cfg: StudyConfig, row: dict) -> np.ndarray | None:
    """The stored counterexample of a row (flat float64), or None."""
    path = adv_path(cfg, row["seed"], row["net"], row["eps"], row["image"])
    if not path.is_file():
        return None
    with np.load(path) as data:
        name = f"target_{row['target']}"
        return data[name] if name in data.files else None


def counterexamples(cfg: StudyConfig, net_path: Path, rows: list[dict], test_set: Dataset):
    """The re-checked counterexamples of ``rows`` (:func:`critical_neurons.checked_counterexamples`)."""
    network = Network.load(_network_path(net_path))
    clean = {r["image"]: test_set.images[r["image"]] for r in rows}
    return critical_neurons.checked_counterexamples(network, rows, clean, lambda r: load_counterexample(cfg, r))


def _select(rows: list[dict], seed: int, net: str, eps: float) -> list[dict]:
    return [r for r in rows if r["seed"] == seed and r["net"] == net and r["eps"] == eps]


def adversarial_batch(cfg: StudyConfig, net_path: Path, rows: list[dict], test_set: Dataset):
    """Up to ``adv_importance_images`` re-checked counterexamples, one per image (its lowest OFV), with their
    clean images: ``(adversarial (M, 1, 28, 28), clean (M, 1, 28, 28), true labels (M,), rows)``."""
    picked = critical_neurons.one_per_image(rows, cfg.adv_importance_images)
    x_adv, labels, kept = counterexamples(cfg, net_path, picked, test_set)
    clean = np.asarray([test_set.images[r["image"]] for r in kept], dtype=np.float32).reshape(-1, 1, 28, 28)
    return x_adv.astype(np.float32).reshape(-1, 1, 28, 28), clean, labels, kept


def _scores(model, images: np.ndarray, labels: np.ndarray, settings: ImportanceSettings) -> list[np.ndarray] | None:
    return None if len(labels) == 0 else settings.run(model, images, labels).scores


def stage_neurons(cfg: StudyConfig, seed: int, nets: dict[str, Path], rows: list[dict], test_set: Dataset,
                  eps: float) -> dict:
    """``seed<s>/neurons.json``: importance scores of the original and pruned nets on clean images and
    on their own re-checked counterexamples at ``eps``, critical sets (score >= ``critical_level``) and
    their overlaps, in the original's neuron indices."""
    path = cfg.seed_dir(seed) / "neurons.json"
    if path.is_file():
        return json.loads(path.read_text())
    start = time.perf_counter()
    settings = _importance_settings(cfg)
    _, clean_images, clean_labels, base_rows = adversarial_batch(cfg, nets["original"],
                                                                 _select(rows, seed, "original", eps), test_set)
    out = {"eps": eps, "clean_images": [r["image"] for r in base_rows], "nets": {}}
    for name in NETS:
        model, meta = load_checkpoint(nets[name])
        x_adv, _, y_adv, adv_rows = adversarial_batch(cfg, nets[name], _select(rows, seed, name, eps), test_set)
        kept = (meta.metrics["mask"]["layers"] if name != "original" else None)
        out["nets"][name] = {
            "clean": _plain(_scores(model, clean_images, clean_labels, settings)),
            "adversarial": _plain(_scores(model, x_adv, y_adv, settings)),
            "adversarial_rows": [{k: r[k] for k in ("image", "target", "ofv")} for r in adv_rows],
            "kept_indices": None if kept is None else [layer["kept_indices"] for layer in kept],
        }
    out["nets"]["original"]["pruning_batch"] = load_checkpoint(nets["pruned"])[1].metrics["importance"]["scores"]
    write_json(path, out)
    add_stage_seconds(cfg.run_dir, "neurons", time.perf_counter() - start)
    return out


def _plain(scores: list[np.ndarray] | None) -> list[list[float]] | None:
    return None if scores is None else [np.asarray(s).tolist() for s in scores]


def neuron_sets(entry: dict, level: float) -> dict:
    """One seed's ``neurons.json`` summarised: critical sets (score >= ``level``, in the original's indices),
    their sizes and pairwise comparisons, and the share of the original's critical neurons pruning kept."""
    sets = {}
    if entry["nets"]["original"]["clean"] is None:  # no counterexample of the original at this eps
        return {"sizes": {}, "compare": {}, "kept_by_pruning": {}}
    for name, net in entry["nets"].items():
        for kind in ("clean", "adversarial", "pruning_batch"):
            if net.get(kind) is not None:
                found = critical_neurons.critical(net[kind], level)
                if net["kept_indices"] is not None:
                    found = critical_neurons.in_original_indices(found, net["kept_indices"])
                sets[f"{name}/{kind}"] = found
    layers = len(entry["nets"]["original"]["clean"])
    compare = {}
    for a, b, what in (("original/clean", "original/adversarial", "accuracy vs robustness, original"),
                       ("original/pruning_batch", "original/adversarial", "pruning batch vs robustness, original"),
                       ("pruned/clean", "pruned/adversarial", "accuracy vs robustness, pruned"),
                       ("original/clean", "pruned/clean", "accuracy: original vs pruned"),
                       ("original/adversarial", "pruned/adversarial", "robustness: original vs pruned")):
        if a in sets and b in sets:
            compare[what] = critical_neurons.compare_sets(sets[a], sets[b], layers)
    kept = {(k, j) for k, layer in enumerate(entry["nets"]["pruned"]["kept_indices"]) for j in layer}
    survived = {kind: len(sets[f"original/{kind}"] & kept) / len(sets[f"original/{kind}"])
                for kind in ("clean", "adversarial") if sets.get(f"original/{kind}")}
    return {"sizes": {k: len(v) for k, v in sets.items()}, "compare": compare, "kept_by_pruning": survived}


def _retrain(cfg: StudyConfig, model, train_set: Dataset, seed: int) -> None:
    """PGD retraining as after pruning (:func:`prune_and_retrain`'s defaults), in place."""
    if cfg.retrain_epochs:
        train(model, train_set, epochs=cfg.retrain_epochs, seed=seed, objective=PGDAdversarial(_adv_config(cfg)),
              device="cpu", progress=False)
    model.eval()


def stage_control(cfg: StudyConfig, seed: int, original: Path, train_set: Dataset, test_set: Dataset) -> Path:
    """``seed<s>/retrained.pt``: the original, PGD-retrained for ``retrain_epochs`` like the pruned net but
    not pruned (the control that separates pruning from the extra adversarial training)."""
    path = cfg.seed_dir(seed) / f"{CONTROL_NET}.pt"
    if path.is_file():
        return path
    start = time.perf_counter()
    model, meta = load_checkpoint(original)
    _retrain(cfg, model, train_set, seed)
    save_checkpoint(path, model, meta.arch, {"retrained_from_sha256": sha256(original),
                                             "retrain_adv_eps": cfg.train_eps, "retrain_epochs": cfg.retrain_epochs},
                    meta.data_fingerprint, seed, {"clean_test_accuracy": clean_accuracy(model, test_set.images,
                                                                                        test_set.labels)})
    add_stage_seconds(cfg.run_dir, CONTROL_NET, time.perf_counter() - start)
    return path


def stage_sweep(cfg: StudyConfig, seed: int, nets: dict[str, Path], train_set: Dataset, test_set: Dataset,
                eps: float) -> dict[str, Path]:
    """``seed<s>/sweep_t<threshold>.pt``: the plain pruning's scores cut at each of ``sweep_thresholds``,
    PGD-retrained like the plain pruned net; ``sweep.json``: their accuracy and PGD accuracy at ``eps``."""
    out = {}
    model, _ = load_checkpoint(nets["original"])
    meta = load_checkpoint(nets["pruned"])[1]
    scores = [np.asarray(s) for s in meta.metrics["importance"]["scores"]]
    start, trained = time.perf_counter(), False
    for threshold in cfg.sweep_thresholds:
        name = f"sweep_t{threshold:g}"
        path = cfg.seed_dir(seed) / f"{name}.pt"
        out[name] = path
        if path.is_file():
            continue
        smaller, report = prune(model, scores, threshold)
        before = clean_accuracy(smaller, test_set.images, test_set.labels)
        _retrain(cfg, smaller, train_set, seed)
        save_checkpoint(path, smaller, report.arch,
                        {"pruned_from_sha256": sha256(nets["original"]), "threshold": threshold,
                         "lambda": cfg.prune_lambda, "retrain_adv_eps": cfg.train_eps,
                         "retrain_epochs": cfg.retrain_epochs},
                        meta.data_fingerprint, seed,
                        {"clean_test_accuracy": clean_accuracy(smaller, test_set.images, test_set.labels),
                         "accuracy_before_retraining": before, "mask": report.to_dict(with_indices=True)})
        _log(f"seed {seed}: {name} {report.summary()}")
        trained = True
    if trained:
        add_stage_seconds(cfg.run_dir, "sweep", time.perf_counter() - start)
    return out


def pgd_accuracy(cfg: StudyConfig, path: Path, test_set: Dataset, eps: float) -> float:
    """Fraction of the first ``pgd_eval_images`` test images correct clean and under (untargeted) PGD at ``eps``."""
    model = load_checkpoint(path)[0]
    n = cfg.pgd_eval_images
    return robust_accuracy(model, test_set.images[:n], test_set.labels[:n], eps, steps=cfg.calibration_pgd_steps,
                           restarts=cfg.calibration_pgd_restarts, seed=0)


def adversarial_examples(cfg: StudyConfig, rows: list[dict], seed: int, net: str, eps: float,
                         test_set: Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict]]:
    """Every stored counterexample of one net at one eps: ``(x_adv, true labels, clean images, rows)``, images
    ``(M, 1, 28, 28)`` float32 (they passed the float64 re-check when the row was made)."""
    xs, ys, originals, used = [], [], [], []
    for r in _select(rows, seed, net, eps):
        if r["status"] == "adversarial":
            point = load_counterexample(cfg, r)
            if point is not None:
                xs.append(point)
                ys.append(r["label"])
                originals.append(test_set.images[r["image"]].reshape(-1))
                used.append(r)
    shape = (-1, 1, 28, 28)
    return (np.asarray(xs, dtype=np.float32).reshape(shape), np.asarray(ys, dtype=np.int64),
            np.asarray(originals, dtype=np.float32).reshape(shape), used)


def stage_transfer(cfg: StudyConfig, nets: dict[int, dict[str, Path]], rows: list[dict], eps_list: list[float],
                   test_set: Dataset) -> dict:
    """Reverse testing accuracy, in %: each net on the other net's adversarial examples (true labels),
    per seed and eps, keyed ``"<seed>/<judge>_on_<source>@<eps>"``."""
    out = {}
    for seed, per_seed in nets.items():
        models = {name: load_checkpoint(per_seed[name])[0] for name in NETS}
        for eps in eps_list:
            for source, judge in (("pruned", "original"), ("original", "pruned")):
                x_adv, y, _, _ = adversarial_examples(cfg, rows, seed, source, eps, test_set)
                value = 100.0 * transfer_accuracy(models[judge], x_adv, y) if len(y) else float("nan")
                out[f"{seed}/{judge}_on_{source}@{eps}"] = {"accuracy": value, "examples": int(len(y))}
    return out


def write_config(cfg: StudyConfig, nets: dict[int, dict[str, Path]], train_set: Dataset,
                 test_set: Dataset) -> None:
    """``config.json``: the settings (as :func:`open_run` records them) with the versions, the data's
    fingerprints, every checkpoint's hash and the published values."""
    write_json(cfg.run_dir / "config.json", {
        "config": asdict(cfg), "versions": versions(),
        "data": {"train": {"source": train_set.source, "fingerprint": train_set.fingerprint},
                 "test": {"source": test_set.source, "fingerprint": test_set.fingerprint}},
        "models": {f"{seed}/{name}": {"path": str(path), "sha256": sha256(path)}
                   for seed, per_seed in nets.items() for name, path in per_seed.items()},
        "published": PUBLISHED,
    })


def run_study(cfg: StudyConfig, redo_errors: bool = False) -> dict:
    """All stages; returns the summary that ``report.md`` opens with.

    The settings are checked against an earlier invocation's ``config.json`` (only the fields in
    ``RESUMABLE_CHANGES`` may differ) and recorded there before any stage runs; ``redo_errors`` retries
    optimisation jobs that ended in an error row.
    """
    from robustmip.studies.prune_robustness_report import write_report

    start = time.perf_counter()
    cfg.validate()
    open_run(cfg, cfg.run_dir, RESUMABLE_CHANGES)
    # One torch thread by default: beside solver processes, OpenMP spin-waiting made a training
    # epoch ~100x slower on 2 cores (STACK_NOTES); on an idle machine 2 threads gain only ~1.4x.
    torch.set_num_threads(cfg.torch_threads)
    train_set, test_set = _load_data(cfg)
    _log(f"data: {train_set.source} MNIST ({len(train_set)} train / {len(test_set)} test); run dir {cfg.run_dir}")
    nets: dict[int, dict[str, Path]] = {}
    for seed in cfg.seeds:
        torch.manual_seed(seed)
        original = stage_original(cfg, seed, train_set, test_set)
        nets[seed] = {"original": original, "pruned": stage_pruned(cfg, seed, original, train_set, test_set)}
    write_config(cfg, nets, train_set, test_set)

    eligible = eligible_images(nets, test_set)
    chosen = [int(i) for i in eligible[: cfg.images]]
    if len(chosen) < cfg.images:
        raise InvalidInput(f"only {len(chosen)} test images are classified correctly by every net")
    calibrated = stage_calibration(cfg, nets, test_set, eligible) if cfg.calibrate else None
    focus_eps = calibrated["eps"] if calibrated else max(cfg.eps)
    eps_list = sorted(set(cfg.eps) | {focus_eps})
    jobs = [(seed, name, per_seed[name]) for seed, per_seed in nets.items() for name in NETS]
    rows = stage_milp(cfg, jobs, eps_list, chosen, test_set, "milp", redo_errors)

    neurons, sweep = {}, {}
    for seed in cfg.seeds:
        neurons[seed] = stage_neurons(cfg, seed, nets[seed], rows, test_set, focus_eps)
    extra = []
    for seed in cfg.seeds:
        if cfg.retrain_control:
            nets[seed][CONTROL_NET] = stage_control(cfg, seed, nets[seed]["original"], train_set, test_set)
            extra.append((seed, CONTROL_NET, nets[seed][CONTROL_NET]))
        if cfg.robust_prune:
            x_adv, _, y_adv, _ = adversarial_batch(cfg, nets[seed]["original"],
                                                   _select(rows, seed, "original", focus_eps), test_set)
            nets[seed][ROBUST_NET] = stage_pruned(cfg, seed, nets[seed]["original"], train_set, test_set,
                                                  extra_batch=(x_adv, y_adv), name=ROBUST_NET)
            extra.append((seed, ROBUST_NET, nets[seed][ROBUST_NET]))
    if extra:
        rows += stage_milp(cfg, extra, [focus_eps], chosen, test_set, "milp_extra", redo_errors)
    if cfg.sweep_thresholds:
        seed = cfg.seeds[0]
        sweep = stage_sweep(cfg, seed, nets[seed], train_set, test_set, focus_eps)
        nets[seed].update(sweep)
        rows += stage_milp(cfg, [(seed, name, path) for name, path in sweep.items()], [focus_eps],
                           chosen[: cfg.sweep_images], test_set, "milp_sweep", redo_errors)
    write_config(cfg, nets, train_set, test_set)
    transfer = stage_transfer(cfg, nets, rows, eps_list, test_set)
    report_start = time.perf_counter()
    summary = write_report(cfg, nets, rows, transfer, calibrated, neurons, sorted(sweep), eps_list, focus_eps,
                           test_set, time.perf_counter() - start)
    add_stage_seconds(cfg.run_dir, "report", time.perf_counter() - report_start)
    _log(f"report: {cfg.run_dir / 'report.md'}" + (f" (copied to {cfg.report_dir})" if cfg.report_dir else ""))
    return summary
