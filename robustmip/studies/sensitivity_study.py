"""Seed 001 (Wang et al., "Towards Robust Deep Neural Networks"), measured exactly (``robustmip sensitivity-study``).

Stages, each resumable (finished files are reused; MILP rows are appended as they finish):

1. **models**: every method of Table 1 (``conv`` net with two convolutions, Adam: Base, specM, jacobM,
   SM) and of Tables 2/3 (one convolution, plain SGD: Base, K&W, SM), trained on identical
   mini-batches (one seed), resumable per epoch (``models/*.pt``);
2. **metrics**: seed 001's metrics of each model on the test set (and, for Tables 2/3, the training
   set): CE, ERR, ADV_LOSS, ADV_ERR, SENSE (mean ``S_dual``), JACOB, SPECTRAL (float64 bounds);
3. **exact**: on the first ``exact_images`` test images of each model, the columns nobody has: the
   exact output box (EXACT_SENSE and ``S_dual / S_exact``), the PGD error and the exact adversarial
   error (MILP) over the same box (``exact_rows.jsonl``);
4. **iris**: the energy-landscape experiment: many minima of a 4-25-25-25-3 net on Iris from
   multi-start L-BFGS, their energies (loss at the minimum), exact and dual sensitivity at each
   ``sigma``, and the Spearman correlation of energy with sensitivity (``iris_rows.jsonl``);
5. **report**: ``report.md`` with the published figures beside ours, CSVs, PNGs, ``config.json``.

Radii are seed 001's: ``eps_j = sigma * range_j`` over the training data, not clipped to ``[0, 1]``
unless ``clip``. The paper gives no widths: ours are in the config (``table1_arch``,
``table23_arch``), so orderings and orders of magnitude are what compare.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from robustmip.data import Dataset, load_dataset, load_iris
from robustmip.errors import InvalidInput
from robustmip.io import from_torch, load_network
from robustmip.io.checkpoint import load_checkpoint, save_checkpoint
from robustmip.report import (
    markdown_table,
    plot_bars,
    plot_scatter,
    spearman,
    write_csv,
)
from robustmip.sensitivity.box import reachable_box
from robustmip.sensitivity.exact import ExactOptions, exact_box
from robustmip.sensitivity.measure import feature_eps, sense
from robustmip.studies import runs

PUBLISHED_TABLE1 = {  # MNIST test data; SENSE is the mean S_dual
    "base": {"CE": 0.033, "ERR": 0.92, "ADV_LOSS": 12.12, "ADV_ERR": 96.55, "SENSE": 4.58e12, "JACOB": 17.47,
             "SPECTRAL": 7.19},
    "specm": {"CE": 0.034, "ERR": 0.95, "ADV_LOSS": 10.31, "ADV_ERR": 97.53, "SENSE": 71.1e12, "JACOB": 12.49,
              "SPECTRAL": 4.17},
    "jacobm": {"CE": 0.155, "ERR": 2.74, "ADV_LOSS": 2.34, "ADV_ERR": 71.73, "SENSE": 44.5e6, "JACOB": 2.75,
               "SPECTRAL": 5.07},
    "sm": {"CE": 0.079, "ERR": 2.26, "ADV_LOSS": 0.41, "ADV_ERR": 12.62, "SENSE": 5.53e3, "JACOB": 7.75,
           "SPECTRAL": 6.83},
}
PUBLISHED_TABLE2 = {  # MNIST training data
    "base": {"CE": 0.071, "ERR": 1.94, "SENSE": 1.28e12, "ADV_LOSS": 6.25, "ADV_ERR": 91.98},
    "kw": {"CE": 0.285, "ERR": 8.02, "SENSE": 2.0e5, "ADV_LOSS": 0.55, "ADV_ERR": 16.02},
    "sm": {"CE": 0.138, "ERR": 3.56, "SENSE": 8.76e3, "ADV_LOSS": 0.85, "ADV_ERR": 26.36},
}
PUBLISHED_TABLE3 = {  # MNIST test data
    "base": {"CE": 0.082, "ERR": 2.38, "SENSE": 1.27e12, "ADV_LOSS": 6.11, "ADV_ERR": 91.23},
    "kw": {"CE": 0.262, "ERR": 7.3, "SENSE": 2.12e5, "ADV_LOSS": 0.51, "ADV_ERR": 14.54},
    "sm": {"CE": 0.125, "ERR": 3.25, "SENSE": 8.65e3, "ADV_LOSS": 0.79, "ADV_ERR": 24.5},
}
TABLES = {"table1": ("base", "specm", "jacobm", "sm"), "table23": ("base", "kw", "sm")}
PERCENT = ("ERR", "ADV_ERR")
"""Metrics reported in per cent (the models' metrics are fractions)."""
STUDY = "sensitivity"
IRIS_WIDTHS = (4, 25, 25, 25, 3)


@dataclass
class SensitivityStudyConfig:
    """Everything that defines a run; written to ``config.json``."""

    run: str = "default"
    out_root: str = "results/sensitivity_study"
    embedded: bool = False
    data_dir: str | None = None
    train_images: int | None = None
    seed: int = 0
    device: str = "cpu"
    torch_threads: int = 1
    sigma: float = 0.05
    clip: bool = False
    weight_decay: float = 5e-4
    batch_size: int = 50
    table1_arch: str = "conv-16-32"
    table1_epochs: int = 20
    table1_lr: float = 1e-3
    table23_arch: str = "conv-16"
    table23_epochs: int = 20
    table23_lr: float = 0.05
    sm_lambda: float = 1e-6
    jacobian_lambda: float = 0.05
    spectral_lambda: float = 0.01
    kw_ramp_epochs: int = 2
    metrics_test: int = 10000
    metrics_train: int = 10000
    exact_images: int = 20
    exact_timeout: float = 120.0
    solver: str = "highs"
    bounds: str = "lp"
    workers: int | None = None
    backend: str = "processes"
    iris_minima: int = 100
    iris_sigmas: list[float] = field(default_factory=lambda: [0.05, 0.1, 0.2])
    iris_samples: int = 150
    iris_l2: float = 0.001
    iris_iterations: int = 2000
    iris_timeout: float = 30.0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """InvalidInput naming every field out of its domain."""
        problems = runs.field_problems(
            self, positive_ints=("batch_size", "table1_epochs", "table23_epochs", "metrics_test", "metrics_train",
                                 "iris_minima", "iris_samples", "iris_iterations", "torch_threads"),
            nonneg_ints=("exact_images", "kw_ramp_epochs", "seed"),
            nonneg_numbers=("sigma", "weight_decay", "sm_lambda", "jacobian_lambda", "spectral_lambda", "iris_l2"),
            positive_numbers=("table1_lr", "table23_lr", "exact_timeout", "iris_timeout"))
        problems += runs.run_problems(self)
        if self.train_images is not None and not (isinstance(self.train_images, int) and self.train_images >= 1):
            problems.append("train_images must be an integer >= 1 (or null: all)")
        if not self.iris_sigmas or not all(isinstance(s, (int, float)) and s > 0 for s in self.iris_sigmas):
            problems.append("iris_sigmas must be a non-empty list of numbers > 0")
        if problems:
            raise InvalidInput("invalid study settings: " + "; ".join(problems))

    @property
    def run_dir(self) -> Path:
        return Path(self.out_root) / self.run

    @property
    def domain(self) -> tuple[float | None, float | None]:
        return (0.0, 1.0) if self.clip else (None, None)


RESUMABLE_CHANGES = {"run", "out_root", "workers", "backend", "torch_threads", "data_dir", "device"}
"""Fields that may differ between invocations of one run; a rerun that changes another is refused."""


def load_config(name_or_path: str) -> SensitivityStudyConfig:
    """The settings of a shipped config (``demo``, ``full``: ``configs/sensitivity_<name>.json``) or a JSON file."""
    return runs.load_settings(STUDY, name_or_path, SensitivityStudyConfig)


_log = runs.logger(STUDY)


# ---------------------------------------------------------------------------------------------- models


def _objective(cfg: SensitivityStudyConfig, method: str, eps: np.ndarray):
    from robustmip.training import CrossEntropy
    from robustmip.training.sensitivity import (
        JacobianRegularization,
        KWRobust,
        SensitivityMinimization,
        SpectralRegularization,
    )

    return {"base": lambda: CrossEntropy(), "sm": lambda: SensitivityMinimization(cfg.sm_lambda, eps, clip=cfg.clip),
            "jacobm": lambda: JacobianRegularization(cfg.jacobian_lambda),
            "specm": lambda: SpectralRegularization(cfg.spectral_lambda),
            "kw": lambda: KWRobust(eps, cfg.kw_ramp_epochs, clip=cfg.clip)}[method]()


def stage_models(cfg: SensitivityStudyConfig, train_set: Dataset, eps: np.ndarray) -> dict[str, Path]:
    """``models/<table>_<method>.pt`` for every method; each is trained (resumably) when missing."""
    from robustmip.models import build_model
    from robustmip.training import train

    paths = {}
    folder = cfg.run_dir / "models"
    folder.mkdir(parents=True, exist_ok=True)
    for table, methods in TABLES.items():
        arch = cfg.table1_arch if table == "table1" else cfg.table23_arch
        epochs = cfg.table1_epochs if table == "table1" else cfg.table23_epochs
        optimizer, lr = ("adam", cfg.table1_lr) if table == "table1" else ("sgd", cfg.table23_lr)
        for method in methods:
            name = f"{table}_{method}"
            paths[name] = folder / f"{name}.pt"
            if paths[name].is_file():
                continue
            _log(f"training {name}: {arch}, {optimizer}, {epochs} epochs")
            start = time.perf_counter()
            model = build_model(arch, seed=cfg.seed)  # identical initial weights and mini-batches
            objective = _objective(cfg, method, eps)
            history = train(model, train_set, epochs=epochs, lr=lr, batch_size=cfg.batch_size, seed=cfg.seed,
                            objective=objective, optimizer=optimizer, momentum=0.0, weight_decay=cfg.weight_decay,
                            device=cfg.device, progress=False, resume_path=folder / f"{name}.state")
            model.to("cpu").eval()
            save_checkpoint(paths[name], model, arch, {"objective": objective.config(), "optimizer": optimizer,
                                                       "lr": lr, "epochs": epochs, "weight_decay": cfg.weight_decay},
                            train_set.fingerprint, cfg.seed, {"history": history.to_dict()})
            (folder / f"{name}.state").unlink(missing_ok=True)
            runs.add_stage_seconds(cfg.run_dir, f"train {name}", time.perf_counter() - start)
    return paths


# --------------------------------------------------------------------------------------------- metrics


def stage_metrics(cfg: SensitivityStudyConfig, models: dict[str, Path], train_set: Dataset, test_set: Dataset,
                  eps: np.ndarray) -> dict[str, dict]:
    """Seed 001's metrics per model and split (``metrics/<model>_<split>.json``, reused when present)."""
    from robustmip.training.sensitivity import sensitivity_metrics

    folder = cfg.run_dir / "metrics"
    folder.mkdir(exist_ok=True)
    out = {}
    for name, path in models.items():
        splits = {"test": test_set.head(cfg.metrics_test)}
        if name.startswith("table23"):
            splits["train"] = train_set.head(cfg.metrics_train)
        for split, data in splits.items():
            file = folder / f"{name}_{split}.json"
            if not file.is_file():
                start = time.perf_counter()
                model, _ = load_checkpoint(path)
                m = sensitivity_metrics(model, data.images, data.labels, eps, clip=cfg.clip)
                agg = sense(m.pop("log10_volumes"))
                m.update(SENSE=agg["mean"], LOG10_SENSE=agg["log10_mean"], LOG10_GEOMEAN_SENSE=agg["log10_geomean"],
                         n=len(data))
                runs.write_json(file, m)
                runs.add_stage_seconds(cfg.run_dir, f"metrics {name} {split}", time.perf_counter() - start)
            out[f"{name}/{split}"] = json.loads(file.read_text())
    return out


# ----------------------------------------------------------------------------------------------- exact


def exact_job(instance: dict) -> dict:
    """One (model, image): the kw and exact output boxes, PGD and the exact adversarial decision over the box.

    ``instance``: ``network`` (.npz), ``x``, ``label``, ``eps`` (per input), ``clip``, ``solver``,
    ``timeout`` (seconds for the exact box, and again for the decision), ``bounds``.
    """
    import torch as torch_

    from robustmip.attacks.falsify import property_falsifier
    from robustmip.bounds.lirpa import reevaluate_float64
    from robustmip.milp import SolveOptions
    from robustmip.milp.properties import decide_output_property
    from robustmip.sensitivity.box import ball
    from robustmip.solvers import MilpSolver
    from robustmip.spec import margin_matrix, robustness_conjunctions, satisfies

    net = load_network(instance["network"])
    label = int(instance["label"])
    domain = (0.0, 1.0) if instance["clip"] else (None, None)
    lower, upper = ball(net, np.asarray(instance["x"]), np.asarray(instance["eps"]), domain)
    kw = reachable_box(net, lower, upper, "kw")
    exact = exact_box(net, lower, upper, ExactOptions(instance["solver"], instance["timeout"],
                                                      bounds=instance["bounds"]))
    conjunctions = robustness_conjunctions(net.n_outputs, label, [t for t in range(net.n_outputs) if t != label])
    point = property_falsifier()(net, lower, upper, conjunctions)
    pgd_adversarial = satisfies(net.forward(point), conjunctions)
    if pgd_adversarial:
        decision, decision_seconds = "sat", 0.0
    else:
        start = time.perf_counter()
        options = SolveOptions(MilpSolver(instance["solver"], instance["timeout"]), bounds=instance["bounds"],
                               domain=domain)
        decision = decide_output_property(net, lower, upper, conjunctions, options).status
        decision_seconds = time.perf_counter() - start
    margins = reevaluate_float64(net, torch_.as_tensor(lower)[None], torch_.as_tensor(upper)[None],
                                 margin_matrix(net.n_outputs, label), method="kw", intersect=False)
    return {"log10_kw": kw.log10_volume, "log10_exact": exact.log10_volume,
            "log10_exact_inner": exact.inner_log10_volume, "exact_status": exact.status,
            "exact_seconds": exact.seconds, "pgd_adversarial": bool(pgd_adversarial), "decision": decision,
            "decision_seconds": decision_seconds, "kw_adversarial": bool((margins.lower < 0).any()),
            "clean_wrong": int(np.argmax(net.forward(np.asarray(instance["x"])))) != label}


def stage_exact(cfg: SensitivityStudyConfig, models: dict[str, Path], test_set: Dataset, eps: np.ndarray,
                redo_errors: bool = False) -> list[dict]:
    """Rows of :func:`exact_job` for the first ``exact_images`` test images of every model."""
    if cfg.exact_images == 0:
        return []
    instances = []
    for name, path in models.items():
        network = cfg.run_dir / "models" / f"{name}.npz"
        if not network.is_file():
            from_torch(load_checkpoint(path)[0], input_shape=(1, 28, 28)).save(network)
        for i in range(min(cfg.exact_images, len(test_set))):
            instances.append({"key": f"{name}/{i}", "model": name, "image": i, "network": str(network),
                              "x": test_set.images[i].reshape(-1).tolist(), "label": int(test_set.labels[i]),
                              "eps": eps.tolist(), "clip": cfg.clip, "solver": cfg.solver,
                              "timeout": cfg.exact_timeout, "bounds": cfg.bounds})
    _log(f"{len(instances)} exact jobs (output box + adversarial decision, {cfg.exact_timeout:g} s each)")
    settings = {"models": {n: runs.sha256(p) for n, p in models.items()}, "sigma": cfg.sigma, "clip": cfg.clip,
                "solver": cfg.solver, "timeout": cfg.exact_timeout, "bounds": cfg.bounds}
    results = runs.run_jobs(exact_job, instances, cfg.run_dir / "exact_rows.jsonl", what="exact",
                              backend=cfg.backend, workers=cfg.workers, redo_errors=redo_errors, settings=settings,
                              stage="exact")
    return [{"model": instance["model"], "image": instance["image"], **result}
            for instance, result in zip(instances, results)]


# ------------------------------------------------------------------------------------------------ iris


def iris_net() -> nn.Sequential:
    """The 4-25-25-25-3 ReLU net of seed 001's Iris study."""
    layers: list[nn.Module] = []
    for k, (fan_in, fan_out) in enumerate(zip(IRIS_WIDTHS[:-1], IRIS_WIDTHS[1:])):
        layers.append(nn.Linear(fan_in, fan_out))
        if k < len(IRIS_WIDTHS) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def iris_minimum(seed: int, l2: float, iterations: int) -> tuple[nn.Sequential, float, float]:
    """One minimum of ``CE + l2 ||w||^2`` on all of Iris by full-batch L-BFGS from a seeded random start.

    Returns the net, its energy (the loss at the minimum) and its training accuracy.
    """
    features, labels = load_iris()
    x, y = torch.as_tensor(features), torch.as_tensor(labels)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = iris_net().double()
    optimizer = torch.optim.LBFGS(model.parameters(), lr=1.0, max_iter=iterations, tolerance_grad=1e-9,
                                  tolerance_change=1e-12, history_size=50, line_search_fn="strong_wolfe")

    def energy() -> torch.Tensor:
        return nn.functional.cross_entropy(model(x), y) + l2 * sum(p.pow(2).sum() for p in model.parameters())

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        value = energy()
        value.backward()
        return value

    optimizer.step(closure)
    with torch.no_grad():
        return model, float(energy()), float((model(x).argmax(1) == y).double().mean())


def iris_job(instance: dict) -> dict:
    """Per sample of Iris: ``log10`` of the dual (kw) and exact (outer and inner) output volumes at one sigma."""
    net = load_network(instance["network"])
    features, _ = load_iris()
    eps = np.asarray(instance["eps"])
    options = ExactOptions(instance["solver"], instance["timeout"], bounds=instance["bounds"])
    dual, outer, inner, closed = [], [], [], 0
    for i in instance["samples"]:
        lower, upper = features[i] - eps, features[i] + eps
        dual.append(reachable_box(net, lower, upper, "kw").log10_volume)
        box = exact_box(net, lower, upper, options)
        outer.append(box.log10_volume)
        inner.append(box.inner_log10_volume)
        closed += box.status == "exact"
    return {"log10_dual": dual, "log10_exact": outer, "log10_exact_inner": inner, "exact": closed}


def stage_iris(cfg: SensitivityStudyConfig, redo_errors: bool = False) -> tuple[list[dict], list[dict]]:
    """Minima (``iris/minima.json`` and one ``.npz`` each) and their sensitivity rows at every sigma."""
    folder = cfg.run_dir / "iris"
    folder.mkdir(exist_ok=True)
    index = folder / "minima.json"
    minima = json.loads(index.read_text()) if index.is_file() else []
    if len(minima) < cfg.iris_minima:
        start = time.perf_counter()
        _log(f"Iris: {cfg.iris_minima - len(minima)} L-BFGS runs from random starts")
        for k in range(len(minima), cfg.iris_minima):
            model, energy, accuracy = iris_minimum(cfg.seed + k, cfg.iris_l2, cfg.iris_iterations)
            path = folder / f"minimum_{k}.npz"
            from_torch(model, input_shape=(4,)).save(path)
            minima.append({"start": k, "energy": energy, "train_accuracy": accuracy, "network": str(path)})
            runs.write_json(index, minima)
        runs.add_stage_seconds(cfg.run_dir, "iris_minima", time.perf_counter() - start)
    distinct, seen = [], []
    for m in minima:  # energetically distinct minima only, as seed 001
        if all(abs(m["energy"] - e) > 1e-7 * (1 + abs(e)) for e in seen):
            distinct.append(m)
            seen.append(m["energy"])
    features, _ = load_iris()
    samples = np.unique(np.linspace(0, len(features) - 1, cfg.iris_samples).round().astype(int)).tolist()
    instances = [{"key": f"{m['start']}/{sigma}", "start": m["start"], "sigma": sigma, "network": m["network"],
                  "eps": feature_eps(features, sigma).tolist(), "samples": samples, "solver": cfg.solver,
                  "timeout": cfg.iris_timeout, "bounds": cfg.bounds}
                 for m in distinct for sigma in cfg.iris_sigmas]
    _log(f"Iris: {len(distinct)} distinct minima x {len(cfg.iris_sigmas)} sigmas, {len(samples)} samples each")
    settings = {"l2": cfg.iris_l2, "iterations": cfg.iris_iterations, "seed": cfg.seed, "samples": samples,
                "solver": cfg.solver, "timeout": cfg.iris_timeout, "bounds": cfg.bounds}
    results = runs.run_jobs(iris_job, instances, cfg.run_dir / "iris_rows.jsonl", what="Iris",
                              backend=cfg.backend, workers=cfg.workers, redo_errors=redo_errors, settings=settings,
                              stage="iris_sensitivity")
    rows = [{"start": inst["start"], "sigma": inst["sigma"], **res} for inst, res in zip(instances, results)]
    return distinct, rows


# ---------------------------------------------------------------------------------------------- report


def _fmt(value: float | None, metric: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if metric in PERCENT or metric.endswith("ADV_ERR") or metric.endswith("ADV_ERR_SUBSET") or metric == "PGD_ERR":
        return f"{value:.2f}%"
    if metric.startswith("SENSE") or metric == "EXACT_SENSE":
        return f"{value:.3g}"
    return f"{value:.4g}"


def _ordering(values: dict[str, float]) -> str:
    return " < ".join(sorted(values, key=lambda k: values[k]))


def _subset_columns(rows: list[dict], model: str) -> dict[str, float]:
    sub = [r for r in rows if r["model"] == model]
    if not sub:
        return {}
    n = len(sub)
    ratio = [r["log10_kw"] - r["log10_exact"] for r in sub]
    decided = [r for r in sub if r["decision"] in ("sat", "unsat")]
    return {"EXACT_SENSE": sense([r["log10_exact"] for r in sub])["mean"],
            "LOG10_DUAL_OVER_EXACT": float(np.mean(ratio)), "EXACT_CLOSED": sum(r["exact_status"] == "exact"
                                                                               for r in sub),
            "PGD_ERR": 100.0 * sum(r["pgd_adversarial"] for r in sub) / n,
            "EXACT_ADV_ERR": 100.0 * sum(r["decision"] == "sat" for r in sub) / n,
            "EXACT_UNKNOWN": n - len(decided),
            "KW_ADV_ERR_SUBSET": 100.0 * sum(r["kw_adversarial"] for r in sub) / n, "SUBSET": n}


def _table(title: str, published: dict, metrics: dict, exact_rows: list[dict], table: str, split: str,
           columns: tuple[str, ...], lines: list[str], csv_path: Path) -> dict[str, dict]:
    header = ["method"] + [f"{c} {who}" for c in columns for who in ("pub", "ours")]
    extra = ("EXACT_SENSE", "LOG10_DUAL_OVER_EXACT", "PGD_ERR", "EXACT_ADV_ERR", "KW_ADV_ERR_SUBSET")
    header += [*extra, "subset (closed / unknown)"]
    body, ours = [], {}
    for method, pub in published.items():
        m = metrics[f"{table}_{method}/{split}"]
        values = {c: (100.0 * m[c] if c in PERCENT else m[c]) for c in columns}
        ours[method] = values
        sub = _subset_columns(exact_rows, f"{table}_{method}") if split == "test" else {}
        row = [method] + [x for c in columns for x in (_fmt(pub.get(c), c), _fmt(values[c], c))]
        row += [_fmt(sub.get(c), c) for c in extra]
        row.append(f"{sub['SUBSET']} ({sub['EXACT_CLOSED']} / {sub['EXACT_UNKNOWN']})" if sub else "")
        body.append(row)
    lines += [f"## {title}", "", markdown_table(header, body), ""]
    write_csv(csv_path, header, body)
    orderings = [[c, _ordering({k: v[c] for k, v in published.items()}), _ordering({k: v[c] for k, v in ours.items()})]
                 for c in columns]
    orderings = [[c, p, o, "yes" if p == o else "no"] for c, p, o in orderings]
    lines += [f"Orderings ({title.split(' (')[0]}, smallest first):", "",
              markdown_table(["metric", "published", "ours", "same"], orderings), ""]
    return ours


def write_report(cfg: SensitivityStudyConfig, metrics: dict, exact_rows: list[dict], minima: list[dict],
                 iris_rows: list[dict], train_set: Dataset, test_set: Dataset, wall_seconds: float) -> dict:
    """``report.md``, the CSVs and the PNGs of a run; returns the summary written to ``summary.json``."""
    out = cfg.run_dir
    lines = [f"# Seed 001 (Wang et al.) measured exactly: run `{cfg.run}`", "",
             f"Data: {train_set.source} MNIST ({len(train_set)} training, {len(test_set)} test images). Radius "
             f"eps_j = {cfg.sigma} x range_j over the training images "
             f"({'clipped to [0, 1]' if cfg.clip else 'not clipped, as the seed'}). "
             f"Table 1 nets: `{cfg.table1_arch}` (Adam, lr {cfg.table1_lr}, {cfg.table1_epochs} epochs); Tables 2/3 "
             f"nets: `{cfg.table23_arch}` (plain SGD, lr {cfg.table23_lr}, {cfg.table23_epochs} epochs); batch "
             f"{cfg.batch_size}, l2 (weight decay) {cfg.weight_decay}, one seed ({cfg.seed}): identical initial "
             f"weights and mini-batches for every method. The paper gives no widths or epochs: these are ours. "
             f"lambda: SM {cfg.sm_lambda} (the paper's), jacobM {cfg.jacobian_lambda}, specM "
             f"{cfg.spectral_lambda} (ours). Metrics on the first {cfg.metrics_test} test (and "
             f"{cfg.metrics_train} training) images; SENSE is the mean of S_dual (Wong & Kolter's box, "
             "float64). The exact columns use the first "
             f"{cfg.exact_images} test images per model: EXACT_SENSE (mean S of the MILP's outer box; "
             f"{cfg.exact_timeout:g} s per box, {cfg.solver}), LOG10_DUAL_OVER_EXACT (mean log10 S_dual / S_exact), "
             "PGD_ERR and EXACT_ADV_ERR (the MILP's decision, unknowns counted apart), KW_ADV_ERR_SUBSET (the "
             "relaxation's on the same images).", ""]
    ours1 = _table("Table 1 (test): sensitivity-based training", PUBLISHED_TABLE1, metrics, exact_rows, "table1",
                   "test", ("CE", "ERR", "ADV_LOSS", "ADV_ERR", "SENSE", "JACOB", "SPECTRAL"), lines,
                   out / "table1.csv")
    ours2 = _table("Table 2 (training data): adversarial-margin-based training", PUBLISHED_TABLE2, metrics,
                   exact_rows, "table23", "train", ("CE", "ERR", "SENSE", "ADV_LOSS", "ADV_ERR"), lines,
                   out / "table2.csv")
    ours3 = _table("Table 3 (test): adversarial-margin-based training", PUBLISHED_TABLE3, metrics, exact_rows,
                   "table23", "test", ("CE", "ERR", "SENSE", "ADV_LOSS", "ADV_ERR"), lines, out / "table3.csv")
    claims = [["SENSE: SM < K&W < Base", ours3["sm"]["SENSE"] < ours3["kw"]["SENSE"] < ours3["base"]["SENSE"]],
              ["ADV_ERR: K&W < SM < Base", ours3["kw"]["ADV_ERR"] < ours3["sm"]["ADV_ERR"] < ours3["base"]["ADV_ERR"]],
              ["ERR: Base < SM < K&W", ours3["base"]["ERR"] < ours3["sm"]["ERR"] < ours3["kw"]["ERR"]]]
    claim_rows = [[c, "yes" if ok else "no"] for c, ok in claims]
    lines += ["## The orderings of Table 3 (test)", "", markdown_table(["claim", "reproduced"], claim_rows), ""]
    gap_rows = []
    for name in sorted({r["model"] for r in exact_rows}):
        sub = [r for r in exact_rows if r["model"] == name]
        ratio = np.array([r["log10_kw"] - r["log10_exact"] for r in sub])
        inner_gap = np.array([r["log10_exact"] - r["log10_exact_inner"] for r in sub])
        gap_rows.append([name, len(sub), sum(r["exact_status"] == "exact" for r in sub), float(np.median(ratio)),
                         float(ratio.mean()), float(ratio.max()), float(inner_gap.max()),
                         float(np.median([r["exact_seconds"] for r in sub]))])
    gap_header = ["model", "images", "exact boxes closed", "median log10 S_dual/S_exact", "mean", "max",
                  "max log10 outer/inner", "median s per box"]
    lines += ["## Exact vs relaxed: S_dual / S_exact per model", "",
              "S_exact from the outer (proven) box, so the ratio is a lower bound on the relaxation's looseness "
              "where a box was not closed (the last-but-one column shows how far outer and inner boxes are apart).",
              "", markdown_table(gap_header, gap_rows), ""]
    write_csv(out / "exact_gap.csv", gap_header, gap_rows)
    if exact_rows:
        write_csv(out / "exact_rows.csv", list(exact_rows[0]), [list(r.values()) for r in exact_rows])
    for table, published, ours in (("table1", PUBLISHED_TABLE1, ours1), ("table23", PUBLISHED_TABLE3, ours3)):
        series = {"published": [math.log10(published[m]["SENSE"]) for m in published],
                  "ours (S_dual)": [math.log10(ours[m]["SENSE"]) for m in published]}
        subsets = [_subset_columns(exact_rows, f"{table}_{m}") for m in published]
        if all(subsets):
            series["ours (S_exact, subset)"] = [math.log10(sub["EXACT_SENSE"]) for sub in subsets]
        plot_bars(list(published), series, "method", "log10 SENSE", f"{table} nets, test: SENSE",
                  out / f"sense_{table}.png")
    lines += ["![SENSE, Table 1](sense_table1.png) ![SENSE, Table 3](sense_table23.png)", ""]
    iris_summary = _iris_report(cfg, minima, iris_rows, lines)
    timings = runs.stage_seconds(out)
    lines += ["## Wall time (s, this machine, summed over invocations)", "",
              markdown_table(["stage", "seconds", "invocations"],
                             [[k, f"{v['seconds']:.0f}", v["invocations"]] for k, v in timings.items()]), "",
              f"This invocation: {wall_seconds:.0f} s.", ""]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    summary = {"table1": ours1, "table2": ours2, "table3": ours3, "table3_claims": {c: bool(ok) for c, ok in claims},
               "exact_gap": gap_rows, "iris": iris_summary, "timings": timings, "wall_seconds": wall_seconds}
    runs.write_json(out / "summary.json", summary)
    return summary


def _iris_report(cfg: SensitivityStudyConfig, minima: list[dict], rows: list[dict], lines: list[str]) -> dict:
    energy = {m["start"]: m["energy"] for m in minima}
    table, csv_rows, summary = [], [], {}
    for sigma in cfg.iris_sigmas:
        sub = [r for r in rows if r["sigma"] == sigma]
        e = [energy[r["start"]] for r in sub]
        exact = [sense(r["log10_exact"])["mean"] for r in sub]
        dual = [sense(r["log10_dual"])["mean"] for r in sub]
        relative = [(d - x) / x for d, x in zip(dual, exact)]
        closed = sum(r["exact"] for r in sub)
        total = sum(len(r["log10_exact"]) for r in sub)
        rho_exact, rho_dual = spearman(e, exact), spearman(e, dual)
        summary[str(sigma)] = {"spearman_exact": rho_exact, "spearman_dual": rho_dual, "minima": len(sub)}
        table.append([sigma, len(sub), rho_exact, rho_dual, float(np.median(relative)), float(np.max(relative)),
                      f"{closed} / {total}"])
        csv_rows += [[sigma, r["start"], energy[r["start"]], x, d] for r, x, d in zip(sub, exact, dual)]
        plot_scatter({"exact (MILP)": (e, exact), "dual (kw)": (e, dual)}, "energy (loss at the minimum)",
                     "mean sensitivity S", f"Iris, sigma {sigma}: Spearman exact {rho_exact:.2f}, dual {rho_dual:.2f}",
                     cfg.run_dir / f"iris_energy_sigma{sigma}.png", logy=True)
    header = ["sigma", "minima", "Spearman(energy, S_exact)", "Spearman(energy, S_dual)",
              "median (S_dual - S_exact) / S_exact", "max", "exact boxes closed"]
    write_csv(cfg.run_dir / "iris_minima.csv", ["sigma", "start", "energy", "mean_S_exact", "mean_S_dual"], csv_rows)
    lines += ["## Iris energy landscape (Figs. 4-5)", "",
              f"{len(minima)} energetically distinct minima of a 4-25-25-25-3 ReLU net (CE + {cfg.iris_l2} ||w||^2, "
              f"full-batch L-BFGS from {cfg.iris_minima} random starts; the paper used PELE's basin hopping and found "
              f"763). Sensitivity: mean S over {len(rows[0]['log10_exact']) if rows else 0} samples of Iris, radius "
              "sigma x each feature's range over all 150 flowers, not clipped. The paper reports a tendency of lower "
              "energy to lower sensitivity (Fig. 5, sigma 0.1) and that S_dual overestimates S_exact mostly by little, "
              "occasionally by much (Fig. 4).", "", markdown_table(header, table), ""]
    lines += [" ".join(f"![Iris sigma {s}](iris_energy_sigma{s}.png)" for s in cfg.iris_sigmas), ""]
    return summary


def write_config(cfg: SensitivityStudyConfig, train_set: Dataset | None, test_set: Dataset | None) -> None:
    runs.write_json(cfg.run_dir / "config.json", {
        "config": asdict(cfg), "versions": runs.versions(),
        "data": {} if train_set is None or test_set is None else {
            "train": {"source": train_set.source, "fingerprint": train_set.fingerprint},
            "test": {"source": test_set.source, "fingerprint": test_set.fingerprint}},
        "published": {"table1": PUBLISHED_TABLE1, "table2": PUBLISHED_TABLE2, "table3": PUBLISHED_TABLE3}})


def run_study(cfg: SensitivityStudyConfig, redo_errors: bool = False) -> dict:
    """Every stage (module docstring); returns the summary of ``report.md``."""
    start = time.perf_counter()
    cfg.validate()
    runs.open_run(cfg, cfg.run_dir, RESUMABLE_CHANGES)  # refuses other settings, records these
    torch.set_num_threads(cfg.torch_threads)
    source = "embedded" if cfg.embedded else "auto"
    train_set, test_set = load_dataset("train", source, cfg.data_dir), load_dataset("test", source, cfg.data_dir)
    if cfg.train_images is not None:
        train_set = train_set.head(cfg.train_images)
    write_config(cfg, train_set, test_set)
    _log(f"data: {train_set.source} MNIST ({len(train_set)} train / {len(test_set)} test); run dir {cfg.run_dir}")
    eps = feature_eps(train_set.images, cfg.sigma)
    models = stage_models(cfg, train_set, eps)
    metrics = stage_metrics(cfg, models, train_set, test_set, eps)
    exact_rows = stage_exact(cfg, models, test_set, eps, redo_errors)
    minima, iris_rows = stage_iris(cfg, redo_errors)
    summary = write_report(cfg, metrics, exact_rows, minima, iris_rows, train_set, test_set,
                           time.perf_counter() - start)
    _log(f"report: {cfg.run_dir / 'report.md'}")
    return summary
