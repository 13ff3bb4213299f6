"""Certified training at large eps and the exact verified error of what it trains (seed 004).

Liang et al. 2023 (FITEE 24(10)) report that IBP-family training "draws down" at large eps and that
global, monotonically decreasing multi-radius training (GM) helps; their evidence is verified error from
relaxed bounds. This study trains IBP, CROWN-IBP and GM-CROWN-IBP nets on MNIST at the two training
radii of their Table 3 (0.5 and 0.6) and measures, on the same test images,

* the verified error of the sound float64 bounds (IBP, CROWN-IBP, CROWN, LP; :mod:`robustmip.certify`),
* the PGD error, and
* the exact verified error from the MILP: adversarial (lower) and adversarial + unknown (upper),

at Table 3's eval radii (``table_*.jsonl``, one row per image and eps) and on the grid of Fig. 3
(``grid.jsonl``: eps_eval = step, 2 step, ..., eps_train; IBP and CROWN-IBP at every radius and the exact
verdict at every radius from a few MILPs by monotone bisection, :func:`robustmip.certify.exact_on_grid`).

Stages, each resumable (training per epoch, the rest per row; a rerun under other settings is refused):

1. ``train``: one job per (method, eps_train) through :func:`robustmip.parallel.run_instances`
   (``training.jsonl``, checkpoints and ``.npz`` networks in ``nets/``);
2. ``table``: :func:`robustmip.certify.run_certify` at Table 3's eval radii, bounds and PGD;
3. ``grid``: the bound curves and the exact verdicts of Fig. 3 (also the exact columns of the table);
4. the report: ``report.md``, ``table3.csv``, ``fig3_curves.csv``, ``training.csv``, ``fig3.png`` and
   ``config.json`` (settings, versions, seeds, data and model hashes) in ``results/certified_study/<run>/``.

Choices the seed does not fix (stated in the report): the architecture (CROWN-IBP's small CNN
``cnn-crown-small`` in the full config), epochs and schedule, kappa 1 -> 0, beta 1 -> 0, Adam 5e-4, batch
256, GM with N = 5 and inverse weights; "verified error" of a method is the better of its IBP and
CROWN-IBP float64 bounds per image (CROWN-IBP's evaluation). CIFAR is out of reach offline (no data here).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from robustmip.bounds import BOUNDS_METHODS
from robustmip.certify import (
    BOUND_METHODS,
    CertifyRow,
    CertifySettings,
    cached_network,
    exact_on_grid,
    margin_lower_bounds,
    run_certify,
    summarize,
)
from robustmip.data import Dataset, load_dataset
from robustmip.errors import InvalidInput
from robustmip.io import from_torch
from robustmip.io.checkpoint import save_checkpoint
from robustmip.models import build_model
from robustmip.parallel import run_instances
from robustmip.report import markdown_table, plot_curves, write_csv
from robustmip.spec import input_box
from robustmip.studies.runs import (
    StudyJobsFailed,
    load_settings,
    logger,
    open_run,
    run_problems,
    sha256,
    study_main,
    versions,
    write_json,
)
from robustmip.training import train
from robustmip.training.certified import CertifiedTraining

METHODS = ("ibp", "crown-ibp", "gm-crown-ibp")
PUBLISHED_TABLE3 = {
    (0.5, 0.2): {"ibp": (46.38, 62.79), "crown-ibp": (17.13, 36.19), "gm-crown-ibp": (7.98, 16.00)},
    (0.5, 0.3): {"ibp": (46.38, 72.14), "crown-ibp": (17.13, 48.55), "gm-crown-ibp": (7.98, 24.03)},
    (0.5, 0.4): {"ibp": (46.38, 81.92), "crown-ibp": (17.13, 65.48), "gm-crown-ibp": (7.98, 43.73)},
    (0.6, 0.25): {"ibp": (30.34, 61.73), "crown-ibp": (16.47, 48.85), "gm-crown-ibp": (17.10, 31.25)},
    (0.6, 0.35): {"ibp": (30.34, 88.70), "crown-ibp": (16.47, 80.72), "gm-crown-ibp": (17.10, 50.14)},
}
"""Liang et al. 2023, Table 3, MNIST: (eps_train, eps_eval) -> method -> (standard error %, verified error %)."""
METRIC_IMAGES = 1000
"""Test images of the float32 per-epoch verified error (a progress indicator only)."""


@dataclass
class CertifiedStudyConfig:
    """Everything that defines a run; written to ``config.json``. Radii in pixel units."""

    run: str = "default"
    out_root: str = "results/certified_study"
    arch: str = "cnn-crown-small"
    train_eps: list[float] = field(default_factory=lambda: [0.5, 0.6])
    methods: list[str] = field(default_factory=lambda: list(METHODS))
    epochs: int = 20
    schedule_start: float = 1.0
    schedule_length: float = 10.0
    kappa: list[float] = field(default_factory=lambda: [1.0, 0.0])
    beta: list[float] = field(default_factory=lambda: [1.0, 0.0])
    gm_n: int = 5
    lr: float = 5e-4
    batch_size: int = 256
    train_images: int | None = None
    images: int = 100
    grid_step: float = 0.01
    solver: str = "highs"
    timeout: float = 30.0
    milp_bounds: str = "lp"
    pgd_steps: int = 50
    pgd_restarts: int = 8
    workers: int | None = None
    backend: str = "processes"
    torch_threads: int = 1
    data_dir: str | None = None
    embedded: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        problems = []
        if not self.train_eps or not all(0 < e <= 1 for e in self.train_eps):
            problems.append("train_eps must be a non-empty list of radii in (0, 1]")
        if not self.methods or any(m not in METHODS for m in self.methods):
            problems.append(f"methods must be a non-empty subset of {METHODS}")
        for name in ("epochs", "gm_n", "batch_size", "images", "pgd_steps", "pgd_restarts", "torch_threads"):
            if not (isinstance(getattr(self, name), int) and getattr(self, name) >= 1):
                problems.append(f"{name} must be an integer >= 1")
        if any(v is not None and not (isinstance(v, int) and v >= 1) for v in (self.train_images, self.workers)):
            problems.append("train_images and workers must be integers >= 1 (or null: all)")
        if not (0 < self.grid_step <= min(self.train_eps or [1])):
            problems.append("grid_step must lie in (0, min(train_eps)]")
        elif any(e not in self.grid(t) for t in self.train_eps for e in self.table_eps(t)):
            problems.append("Table 3's eval radii must lie on the grid: use a grid_step that divides them")
        if not (self.lr > 0 and self.timeout > 0 and self.schedule_start >= 0 and self.schedule_length >= 0):
            problems.append("lr and timeout must be > 0, the schedule's epochs >= 0")
        if len(self.kappa) != 2 or len(self.beta) != 2 or not all(0 <= v <= 1 for v in (*self.kappa, *self.beta)):
            problems.append("kappa and beta must be [start, end] pairs in [0, 1]")
        if self.milp_bounds not in BOUNDS_METHODS:
            problems.append(f"milp_bounds must be one of {BOUNDS_METHODS}")
        problems += run_problems(self)
        if problems:
            raise InvalidInput("invalid certified study settings: " + "; ".join(problems))

    @property
    def run_dir(self) -> Path:
        return Path(self.out_root) / self.run

    def nets(self) -> list[tuple[str, str, float]]:
        """``(name, method, eps_train)`` of every net, e.g. ``("gm-crown-ibp_eps0.5", "gm-crown-ibp", 0.5)``."""
        return [(f"{m}_eps{e:g}", m, float(e)) for e in self.train_eps for m in self.methods]

    def grid(self, eps_train: float) -> list[float]:
        """Fig. 3's eval radii: ``grid_step, 2 grid_step, ..., eps_train`` (rounded to 1e-9)."""
        return [round(k * self.grid_step, 9) for k in range(1, int(round(eps_train / self.grid_step)) + 1)]

    def table_eps(self, eps_train: float) -> list[float]:
        """Table 3's eval radii for ``eps_train`` (none when the seed has no row for it)."""
        return [e for (t, e) in PUBLISHED_TABLE3 if t == eps_train]

    def certify_settings(self, bounds: tuple[str, ...] = BOUND_METHODS) -> CertifySettings:
        """Settings of the table's rows (PGD on every image, a cross-check of the bounds) and grid probes."""
        return CertifySettings(bounds, False, self.solver, self.timeout, 1, self.milp_bounds, self.pgd_steps,
                               self.pgd_restarts, self.seed, pgd_always=True)


RESUMABLE_CHANGES = {"run", "out_root", "images", "workers", "backend", "torch_threads", "data_dir"}


def load_config(name_or_path: str) -> CertifiedStudyConfig:
    """A shipped config (``demo``, ``full``: ``configs/certified_<name>.json``) or a JSON file of its fields."""
    return load_settings("certified", name_or_path, CertifiedStudyConfig)


_log = logger("certified")


def _data(cfg: CertifiedStudyConfig) -> tuple[Dataset, Dataset]:
    source = "embedded" if cfg.embedded else "auto"
    return load_dataset("train", source, cfg.data_dir), load_dataset("test", source, cfg.data_dir)


def objective(cfg: CertifiedStudyConfig, method: str, eps: float) -> CertifiedTraining:
    """IBP (beta 0), CROWN-IBP at one radius, or GM-CROWN-IBP (``gm_n`` radii, weights ``∝ 1/r_i``)."""
    beta = (0.0, 0.0) if method == "ibp" else tuple(cfg.beta)
    n, weights = (cfg.gm_n, "inverse") if method == "gm-crown-ibp" else (1, "single")
    return CertifiedTraining("ibp" if method == "ibp" else "crown-ibp", eps, n, weights, tuple(cfg.kappa), beta,
                             cfg.schedule_length, cfg.schedule_start)


def train_job(instance: dict) -> dict:
    """:func:`run_instances` job: train one net (resumable per epoch), save its checkpoint and network."""
    cfg = CertifiedStudyConfig(**instance["config"])
    torch.set_num_threads(cfg.torch_threads)
    train_set, test_set = _data(cfg)
    if cfg.train_images is not None:
        train_set = train_set.head(cfg.train_images)
    checkpoint, network = Path(instance["checkpoint"]), Path(instance["network"])
    goal = objective(cfg, instance["method"], instance["eps"])
    model = build_model(cfg.arch, seed=cfg.seed)
    start = time.perf_counter()
    history = train(model, train_set, test_set.head(METRIC_IMAGES), epochs=cfg.epochs, lr=cfg.lr,
                    batch_size=cfg.batch_size, seed=cfg.seed, objective=goal, device="cpu", progress=False,
                    resume_path=checkpoint.with_name(checkpoint.name + ".state"))
    model.eval()
    with torch.no_grad():
        predicted = torch.cat([model(torch.as_tensor(test_set.images[i:i + 1000])).argmax(1)
                               for i in range(0, len(test_set), 1000)]).numpy()
    metrics = {"clean_test_error": float((predicted != test_set.labels).mean()), "n_test": len(test_set),
               "epoch_seconds": [e.seconds for e in history.epochs], "history": history.to_dict(),
               "seconds_this_invocation": time.perf_counter() - start}
    save_checkpoint(checkpoint, model, cfg.arch, {"objective": goal.config(), "epochs": cfg.epochs, "lr": cfg.lr,
                                                  "batch_size": cfg.batch_size, "n_train": len(train_set)},
                    train_set.fingerprint, cfg.seed, metrics)
    from_torch(model, input_shape=(1, 28, 28)).save(network)
    checkpoint.with_name(checkpoint.name + ".state").unlink(missing_ok=True)
    return {"status": "ok", "method": instance["method"], "eps_train": instance["eps"], "network": str(network),
            "network_sha256": sha256(network), "clean_test_error": metrics["clean_test_error"],
            "epoch_seconds": metrics["epoch_seconds"], "n_test": len(test_set)}


def _check(rows: list[dict], stage: str, out: Path) -> list[dict]:
    failed = [r for r in rows if r.get("status") == "error"]
    if failed:
        raise StudyJobsFailed(f"{len(failed)} {stage} job(s) failed, e.g. {failed[0]['key']}: {failed[0].get('error')};"
                              f" the other rows are kept in {out}; rerun with --redo-errors to retry")
    return rows


def stage_train(cfg: CertifiedStudyConfig) -> dict[str, dict]:
    """``training.jsonl``: name -> the trained net's row (network path and hash, errors, seconds per epoch)."""
    (cfg.run_dir / "nets").mkdir(parents=True, exist_ok=True)
    instances = [{"key": name, "method": method, "eps": eps, "config": asdict(cfg),
                  "checkpoint": str(cfg.run_dir / "nets" / f"{name}.pt"),
                  "network": str(cfg.run_dir / "nets" / f"{name}.npz")} for name, method, eps in cfg.nets()]
    settings = {k: v for k, v in asdict(cfg).items() if k not in RESUMABLE_CHANGES}
    out = cfg.run_dir / "training.jsonl"
    _log(f"training {len(instances)} nets ({cfg.arch}, {cfg.epochs} epochs)")
    rows = run_instances(train_job, instances, out, key="key", settings=settings, backend=cfg.backend,
                         workers=cfg.workers, worker_threads=cfg.torch_threads, desc="train", progress=False)
    return {r["key"]: r for r in _check(rows, "training", out)}


def stage_table(cfg: CertifiedStudyConfig, nets: dict[str, dict], test_set: Dataset) -> dict[str, list[CertifyRow]]:
    """``table_<net>.jsonl``: every bound's verdict and PGD at Table 3's eval radii, per net."""
    out = {}
    for name, method, eps_train in cfg.nets():
        radii = cfg.table_eps(eps_train)
        if not radii:
            continue
        path = cfg.run_dir / f"table_{name}.jsonl"
        _log(f"table {name}: {cfg.images} images x eps {radii}")
        out[name] = run_certify(nets[name]["network"], test_set.images, test_set.labels, range(cfg.images), radii,
                                cfg.certify_settings(), path, data_id=test_set.fingerprint, workers=cfg.workers,
                                backend=cfg.backend)
    return out


def grid_job(instance: dict) -> dict:
    """:func:`run_instances` job: one image of one net on Fig. 3's grid: IBP and CROWN-IBP verdicts at every
    radius, then the exact verdict at every radius (bisection, starting above the largest bound-verified one)."""
    net = cached_network(instance["network"])
    x, label, grid = np.asarray(instance["x"]), instance["label"], instance["grid"]
    settings = CertifySettings(**instance["settings"])
    start = time.perf_counter()
    verified = {m: [] for m in ("ibp", "crown-ibp")}
    for eps in grid:
        lower, upper = input_box(x, eps)
        for method, flags in verified.items():
            flags.append(bool(margin_lower_bounds(net, lower, upper, label, method).min() > 0))
    either = [a or b for a, b in zip(verified["ibp"], verified["crown-ibp"])]
    robust_upto = max((k + 1 for k, ok in enumerate(either) if ok), default=0)
    bound_seconds = time.perf_counter() - start
    exact = exact_on_grid(net, x, label, grid, settings, robust_upto)
    return {"status": "ok", "net": instance["net"], "index": instance["index"], "label": label, "grid": grid,
            "ibp": verified["ibp"], "crown-ibp": verified["crown-ibp"], "exact": exact.status,
            "proof": exact.proof, "questions": exact.questions, "milps": exact.milps,
            "bound_seconds": bound_seconds, "exact_seconds": exact.seconds}


def stage_grid(cfg: CertifiedStudyConfig, nets: dict[str, dict], test_set: Dataset) -> list[dict]:
    """``grid.jsonl``: one row per (net, image) (see :func:`grid_job`), image by image over the nets."""
    settings = cfg.certify_settings(bounds=("crown",))
    instances = [{"key": f"{name}/{i}", "net": name, "network": nets[name]["network"], "index": i,
                  "label": int(test_set.labels[i]), "x": test_set.images[i].reshape(-1).astype(float).tolist(),
                  "grid": cfg.grid(eps_train), "settings": settings.to_dict()}
                 for i in range(cfg.images) for name, _, eps_train in cfg.nets()]
    guard = {"settings": settings.to_dict(), "grid_step": cfg.grid_step, "data": test_set.fingerprint,
             "nets": {name: nets[name]["network_sha256"] for name, _, _ in cfg.nets()}}
    out = cfg.run_dir / "grid.jsonl"
    _log(f"grid: {len(instances)} (net, image) jobs, eval radii in steps of {cfg.grid_step}")
    rows = run_instances(grid_job, instances, out, key="key", settings=guard, backend=cfg.backend,
                         workers=cfg.workers, desc="grid", progress=False)
    return _check(rows, "grid", out)


def write_config(cfg: CertifiedStudyConfig, nets: dict[str, dict], test_set: Dataset) -> None:
    """``config.json``: the settings (what the resume guard compares), versions, seeds, data and net hashes."""
    write_json(cfg.run_dir / "config.json", {
        "config": asdict(cfg), "versions": versions(), "seeds": {"init_and_training": cfg.seed, "pgd": cfg.seed},
        "test_data": {"source": test_set.source, "fingerprint": test_set.fingerprint},
        "nets": {k: {"network": v["network"], "sha256": v["network_sha256"]} for k, v in nets.items()},
        "published_table3": {f"{t}/{e}": v for (t, e), v in PUBLISHED_TABLE3.items()}})


def grid_curves(cfg: CertifiedStudyConfig, grid_rows: list[dict]) -> dict[str, dict[str, np.ndarray]]:
    """Per net, error curves in % over its grid: ``ibp``, ``crown-ibp``, ``verified`` (the better of the
    two per image), ``exact_lo`` (adversarial) and ``exact_hi`` (adversarial + unknown)."""
    curves = {}
    for name, _, eps_train in cfg.nets():
        rows = [r for r in grid_rows if r["net"] == name]
        ibp = np.array([r["ibp"] for r in rows])
        crown = np.array([r["crown-ibp"] for r in rows])
        exact = np.array([r["exact"] for r in rows])
        curves[name] = {"eps": np.array(cfg.grid(eps_train)), "ibp": 100 * (~ibp).mean(0),
                        "crown-ibp": 100 * (~crown).mean(0), "verified": 100 * (~(ibp | crown)).mean(0),
                        "exact_lo": 100 * (exact == "adversarial").mean(0),
                        "exact_hi": 100 * (exact != "robust").mean(0)}
    return curves


def table_rows(cfg: CertifiedStudyConfig, tables: dict[str, list[CertifyRow]], grid_rows: list[dict]) -> list[dict]:
    """Table 3 side by side: per (eps_train, eps_eval, method) the published and our errors in %.

    The exact verdict of each (image, eps_eval) comes from the grid rows; the summary of
    :func:`robustmip.certify.summarize` checks PGD <= exact <= bound image by image.
    """
    exact = {(r["net"], r["index"], round(e, 9)): s for r in grid_rows for e, s in zip(r["grid"], r["exact"])}
    out = []
    for (eps_train, eps_eval), published in PUBLISHED_TABLE3.items():
        for name, method, t in cfg.nets():
            if t != eps_train or name not in tables:
                continue
            rows = [r for r in tables[name] if abs(r.eps - eps_eval) < 1e-12]
            for r in rows:
                r.exact = exact.get((name, r.index, round(r.eps, 9)))
            s = next(iter(summarize(rows)))
            best = np.mean([not any(r.verdicts[m] == "verified" for m in ("ibp", "crown-ibp")) for r in rows])
            std, verified = published[method]
            out.append({"eps_train": eps_train, "eps_eval": eps_eval, "method": method, "published_std": std,
                        "published_verified": verified, "clean": 100 * s.clean_error, "pgd": 100 * s.pgd_error,
                        "exact_lo": 100 * s.exact_lower, "exact_hi": 100 * s.exact_upper, "verified": 100 * best,
                        **{m: 100 * s.verified_error[m] for m in BOUND_METHODS}, "n": s.n,
                        "ordered": s.ordered and s.violations == 0})
    return out


def _ordering(values: dict[str, float]) -> str:
    """``'gm-crown-ibp < crown-ibp < ibp'`` style: the methods by increasing value (ties as ``=``)."""
    ranked = sorted(values, key=values.get)
    text = ranked[0]
    for a, b in zip(ranked, ranked[1:]):
        text += f" {'=' if values[a] == values[b] else '<'} {b}"
    return text


def write_report(cfg: CertifiedStudyConfig, nets: dict[str, dict], table: list[dict], curves: dict,
                 grid_rows: list[dict], test_set: Dataset, seconds: dict[str, float]) -> dict:
    out = cfg.run_dir
    lines = [f"# Certified training and its exact verified error: run `{cfg.run}`", "",
             f"Seed 004: Liang et al. 2023, Table 3 (MNIST rows) and Fig. 3. Architecture `{cfg.arch}`, "
             f"{cfg.epochs} epochs (warm-up {cfg.schedule_start:g}, eps/kappa/beta ramp {cfg.schedule_length:g}), "
             f"kappa {cfg.kappa[0]:g} -> {cfg.kappa[1]:g}, beta {cfg.beta[0]:g} -> {cfg.beta[1]:g} (CROWN-IBP nets), "
             f"GM: N = {cfg.gm_n}, weights 1/r_i; Adam {cfg.lr:g}, batch {cfg.batch_size}; training on "
             f"{cfg.train_images or 'all'} {test_set.source} MNIST training images. These are our choices: the seed "
             "states neither architecture nor epochs. Evaluation: the first "
             f"{cfg.images} {test_set.source} test images; 'verified' = the better of the sound float64 IBP and "
             "CROWN-IBP bounds per image; exact lo = MILP-proved adversarial, exact hi = adversarial + unknown "
             f"({cfg.solver}, {cfg.timeout:g} s per question; an unknown is never counted robust). CIFAR rows: "
             "out of reach offline (no CIFAR-10 here, and its nets are beyond a CPU MILP).", ""]
    train_rows = [[name, nets[name]["method"], nets[name]["eps_train"], f"{np.mean(nets[name]['epoch_seconds']):.1f}",
                   f"{sum(nets[name]['epoch_seconds']):.0f}", 100 * nets[name]["clean_test_error"],
                   nets[name]["n_test"]] for name, _, _ in cfg.nets()]
    header = ["net", "method", "eps_train", "s / epoch", "s total", "standard error %", "test images"]
    lines += ["## Training (this machine, 1 torch thread per net)", "", markdown_table(header, train_rows), ""]
    write_csv(out / "training.csv", header, train_rows)

    columns = ["eps_train", "eps_eval", "method", "published_std", "published_verified", "clean", "pgd", "exact_lo",
               "exact_hi", "verified", *BOUND_METHODS, "n", "ordered"]
    lines += ["## Table 3 (MNIST), errors in %", "",
              "Published standard error is on the full test set; ours (`clean`) on the evaluated images (the full "
              "test-set standard error is in the training table). Every row must satisfy "
              "pgd <= exact_lo <= exact_hi <= each bound column (`ordered`).", "",
              markdown_table(columns, [[r[c] for c in columns] for r in table]), ""]
    write_csv(out / "table3.csv", columns, [[r[c] for c in columns] for r in table])

    findings = []
    for (eps_train, eps_eval) in PUBLISHED_TABLE3:
        sub = {r["method"]: r for r in table if r["eps_train"] == eps_train and r["eps_eval"] == eps_eval}
        if len(sub) < 2:
            continue
        published = _ordering({m: PUBLISHED_TABLE3[(eps_train, eps_eval)][m][1] for m in sub})
        ours = _ordering({m: r["verified"] for m, r in sub.items()})
        exact = _ordering({m: r["exact_hi"] for m, r in sub.items()})
        findings.append([eps_train, eps_eval, published, ours, exact, "yes" if ours == published else "no",
                         all(r["ordered"] for r in sub.values())])
    lines += ["## Orderings (lower error first)", "", markdown_table(
        ["eps_train", "eps_eval", "published verified", "our verified", "our exact hi", "reproduced", "ordered"],
        findings), ""]

    drawdown = []
    for name, method, eps_train in cfg.nets():
        c = curves[name]
        k = len(c["eps"]) - 1
        drawdown.append([name, c["eps"][k], c["verified"][k], c["exact_hi"][k], c["exact_lo"][k],
                         c["verified"][k] - c["exact_hi"][k]])
    lines += ["## Drawdown: nets or bounds?", "",
              "At each net's training radius: the verified error splits into at least `exact lo` points of true "
              "non-robustness (a property of the net) and at least `verified - exact hi` points of bound looseness "
              "(images the bounds cannot verify that are robust).", "",
              markdown_table(["net", "eps", "verified %", "exact hi %", "exact lo %", "bound looseness >= %"],
                             drawdown), ""]

    curve_rows = [[name, e, *(curves[name][k][i] for k in ("ibp", "crown-ibp", "verified", "exact_lo", "exact_hi"))]
                  for name, _, _ in cfg.nets() for i, e in enumerate(curves[name]["eps"])]
    write_csv(out / "fig3_curves.csv", ["net", "eps_eval", "ibp", "crown_ibp", "verified", "exact_lo", "exact_hi"],
              curve_rows)
    panels = {}
    for eps_train in cfg.train_eps:
        series = []
        for name, method, t in cfg.nets():
            if t == eps_train:
                c = curves[name]
                series += [(f"{method} verified", c["eps"], c["verified"], "-"),
                           (f"{method} exact (adv + unknown)", c["eps"], c["exact_hi"], "--")]
        published = [(f"{m} (published)", [e], [v[m][1]]) for (t, e), v in PUBLISHED_TABLE3.items() if t == eps_train
                     for m in cfg.methods]
        panels[f"eps_train {eps_train:g}"] = (series, published)
    plot_curves(panels, "eps_eval", "error (%)", out / "fig3.png")
    milps = sum(r["milps"] for r in grid_rows)
    questions = sum(r["questions"] for r in grid_rows)
    lines += ["## Fig. 3: verified error against eps_eval", "",
              f"Steps of {cfg.grid_step:g}; solid: bounds, dashed: exact upper (adversarial + unknown); markers: the "
              f"seed's Table 3 values (its figure's data are not in the text we have). {len(grid_rows)} (net, image) "
              f"grids took {questions} exact questions ({milps} with a MILP); the rest follow by monotonicity.", "",
              "![fig3](fig3.png)", "", "## Wall time (s)", "",
              markdown_table(["stage", "seconds"], [[k, f"{v:.0f}"] for k, v in seconds.items()]), ""]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    summary = {"table3": table, "orderings": findings, "drawdown": drawdown, "seconds": seconds,
               "exact_questions": questions, "milps": milps}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float))
    print("\n".join(lines))
    return summary


def run_study(cfg: CertifiedStudyConfig) -> dict:
    """Every stage (each resumable), then the report; returns its summary."""
    open_run(cfg, cfg.run_dir, RESUMABLE_CHANGES)
    torch.set_num_threads(cfg.torch_threads)
    seconds = {}
    start = time.perf_counter()
    nets = stage_train(cfg)
    seconds["train (this invocation)"] = time.perf_counter() - start
    _, test_set = _data(cfg)
    if cfg.images > len(test_set):
        raise InvalidInput(f"images {cfg.images} > the {len(test_set)} {test_set.source} test images")
    write_config(cfg, nets, test_set)
    start = time.perf_counter()
    tables = stage_table(cfg, nets, test_set)
    seconds["table (this invocation)"] = time.perf_counter() - start
    start = time.perf_counter()
    grid_rows = stage_grid(cfg, nets, test_set)
    seconds["grid (this invocation)"] = time.perf_counter() - start
    summary = write_report(cfg, nets, table_rows(cfg, tables, grid_rows), grid_curves(cfg, grid_rows), grid_rows,
                           test_set, seconds)
    _log(f"report: {cfg.run_dir / 'report.md'}")
    return summary


def main(argv: list[str] | None = None) -> int:
    """``python experiments/certified_study.py --config demo|full|FILE [--run R] [--images N] [--workers W]``."""
    extra = {"images": (int, "test images to evaluate (a run may grow)"),
             "workers": (int, "parallel worker processes (default: every core)"),
             "data_dir": (str, "folder holding MNIST/raw (full MNIST)")}
    return study_main("certified", CertifiedStudyConfig, run_study, __doc__.splitlines()[0], argv, extra)
