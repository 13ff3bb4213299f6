"""The pruning-robustness study of Bai et al. 2020, end to end (``robustmip study``).

Stages, each resumable (a finished stage's files are reused; MILP rows are appended as they finish):

1. the original net: load ``--model`` or PGD-train ``--arch`` (``original.pt``);
2. MIP neuron-importance pruning (ElAraby et al.) of the original (``pruned_before_retraining.pt``);
3. PGD-adversarial retraining of the pruned net (``pruned.pt``);
4. targeted max-margin MILPs on both nets, the first ``--images`` test images that both classify
   correctly, all 9 targets each, every eps (``milp_rows.jsonl``, counterexamples in ``adv/``);
5. transfer ("reverse testing accuracy"): each net's accuracy on the other's adversarial examples;
6. the report: ``report.md``, CSVs, PNGs and ``config.json`` in ``results/prune_robustness/<run>/``.

Run ``robustmip study --help`` (or the thin script ``experiments/prune_robustness.py``). A config is
a JSON file of :class:`StudyConfig` fields; a bare name (``demo``, ``paper``) is one shipped in
``robustmip/studies/configs/``.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import platform
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from robustmip.attacks import PGDConfig, clean_accuracy, transfer_accuracy
from robustmip.attacks.milp_attack import milp_job
from robustmip.bounds import BOUNDS_METHODS
from robustmip.data import Dataset, load_dataset
from robustmip.errors import DataError, InvalidInput, RobustMipError
from robustmip.io import from_torch
from robustmip.io.checkpoint import load_checkpoint, save_checkpoint
from robustmip.models import build_model
from robustmip.parallel import BACKENDS, run_instances
from robustmip.pruning import ImportanceSettings, prune_and_retrain
from robustmip.report import (
    STAT_COLUMNS,
    confusion,
    count_by,
    describe,
    markdown_table,
    plot_confusion,
    plot_histograms,
    plot_image_grid,
    write_csv,
)
from robustmip.solvers import SOLVERS
from robustmip.training import PGDAdversarial, train

PUBLISHED = {
    "accuracy_original": 97.05, "accuracy_pruned": 97.11,
    "adversarial_original": 148, "adversarial_pruned": 139,
    "reverse_original_on_pruned": 14.4, "reverse_pruned_on_original": 22.3,
    "time_mean_successful": 6.3, "time_mean_unsuccessful": 5.0, "time_max": 337.0,
}
PUBLISHED_MILPS = 900  # 100 test images x 9 targets per net
NETS = ("original", "pruned")


@dataclass
class StudyConfig:
    """Everything that defines a run; written to ``config.json``."""

    run: str = "default"
    out_root: str = "results/prune_robustness"
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
    images: int = 100
    eps: list[float] = field(default_factory=lambda: [0.05, 0.1])
    solver: str = "highs"
    time_limit: float = 600.0
    decide_time_limit: float | None = None
    bounds: str = "lp"
    pgd_start: bool = True
    workers: int | None = None
    backend: str = "processes"
    torch_threads: int = 1
    data_dir: str | None = None
    embedded: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """InvalidInput naming every field out of its domain (checked before any stage runs)."""
        problems = []
        positive = ("train_epochs", "pgd_steps", "images", "images_per_class", "torch_threads")
        problems += [f"{name} must be an integer >= 1" for name in positive
                     if not (isinstance(getattr(self, name), int) and getattr(self, name) >= 1)]
        problems += [f"{name} must be an integer >= 0" for name in ("retrain_epochs", "eps_ramp_epochs", "seed")
                     if not (isinstance(getattr(self, name), int) and getattr(self, name) >= 0)]
        problems += [f"{name} must be > 0 seconds" for name in ("time_limit", "prune_time_limit")
                     if not _number(getattr(self, name)) or not getattr(self, name) > 0]
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
        if not self.eps or not all(_number(e) and 0 <= e <= 1 for e in self.eps):
            problems.append("eps must be a non-empty list of numbers in [0, 1]")
        if self.workers is not None and not (isinstance(self.workers, int) and self.workers >= 1):
            problems.append("workers must be an integer >= 1")
        if self.solver not in SOLVERS:
            problems.append(f"solver must be one of {SOLVERS}")
        if self.bounds not in BOUNDS_METHODS:
            problems.append(f"bounds must be one of {BOUNDS_METHODS}")
        if self.backend not in BACKENDS:
            problems.append(f"backend must be one of {BACKENDS}")
        if not self.run or "/" in self.run:
            problems.append("run must be a non-empty name without '/'")
        if problems:
            raise InvalidInput("invalid study settings: " + "; ".join(problems))

    @property
    def run_dir(self) -> Path:
        return Path(self.out_root) / self.run

    @property
    def decision_seconds(self) -> float:
        """Seconds for the decision MILP after a time-limited optimum (default: ``time_limit``; 0: none)."""
        return self.time_limit if self.decide_time_limit is None else self.decide_time_limit


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)


CONFIG_NAMES = ("demo", "paper")
"""Configs shipped in ``robustmip/studies/configs/``."""


def load_config(name_or_path: str) -> dict:
    """The fields of a config: a shipped one by bare name (``demo``), or a JSON file by path."""
    path = Path(name_or_path)
    if name_or_path in CONFIG_NAMES and not path.exists():
        text = (importlib.resources.files("robustmip.studies") / "configs" / f"{name_or_path}.json").read_text()
        source = f"the shipped config {name_or_path!r}"
    else:
        if not path.is_file():
            raise DataError(f"study config {path} not found (a file path, or one of the shipped {CONFIG_NAMES})")
        text, source = path.read_bytes(), str(path)
    try:
        loaded = json.loads(text)
    except ValueError as exc:  # UnicodeDecodeError is a ValueError too
        raise DataError(f"{source} is not valid JSON ({exc})") from exc
    if not isinstance(loaded, dict):
        raise DataError(f"{source} must hold a JSON object of study settings")
    unknown = set(loaded) - {f.name for f in fields(StudyConfig)}
    if unknown:
        raise InvalidInput(f"unknown fields in {source}: {sorted(unknown)}")
    return loaded


# Fields that may change between invocations of one run: the rows they add stay comparable.
RESUMABLE_CHANGES = {"run", "out_root", "images", "eps", "workers", "backend", "torch_threads", "data_dir"}
"""The rest is recorded in ``config.json`` before the first stage; a rerun that changes it is refused."""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _log(message: str) -> None:
    print(f"[study {time.strftime('%H:%M:%S')}] {message}", flush=True)


STAGES = ("original", "pruned", "milp")


def stage_seconds(cfg: StudyConfig) -> dict:
    """``timings.json``: wall seconds per stage summed over every invocation of the run, and their count."""
    path = cfg.run_dir / "timings.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _add_stage_seconds(cfg: StudyConfig, stage: str, seconds: float) -> None:
    timings = stage_seconds(cfg)
    entry = timings.setdefault(stage, {"seconds": 0.0, "invocations": 0})
    entry["seconds"] += seconds
    entry["invocations"] += 1
    tmp = cfg.run_dir / "timings.json.tmp"
    tmp.write_text(json.dumps(timings, indent=2))
    tmp.replace(cfg.run_dir / "timings.json")


def _load_data(cfg: StudyConfig) -> tuple[Dataset, Dataset]:
    source = "embedded" if cfg.embedded else "auto"
    return load_dataset("train", source, cfg.data_dir), load_dataset("test", source, cfg.data_dir)


def _adv_config(cfg: StudyConfig) -> PGDConfig:
    return PGDConfig(cfg.train_eps, cfg.pgd_steps, cfg.pgd_step_size)


def stage_original(cfg: StudyConfig, train_set: Dataset, test_set: Dataset) -> Path:
    """``original.pt``: the given checkpoint, copied with its metadata, or a freshly PGD-trained net."""
    path = cfg.run_dir / "original.pt"
    if path.is_file():
        return path
    if cfg.model:
        model, meta = load_checkpoint(cfg.model)
        save_checkpoint(path, model, meta.arch, {**meta.train_config, "source_checkpoint": str(cfg.model)},
                        meta.data_fingerprint, meta.seed, meta.metrics)
        return path
    _log(f"training the original {cfg.arch}: PGD eps {cfg.train_eps}, {cfg.train_epochs} epochs")
    start = time.perf_counter()
    model = build_model(cfg.arch, seed=cfg.seed)
    train(model, train_set, epochs=cfg.train_epochs, seed=cfg.seed,
          objective=PGDAdversarial(_adv_config(cfg), cfg.eps_ramp_epochs), device="cpu", progress=False)
    model.eval()
    metrics = {"clean_test_accuracy": clean_accuracy(model, test_set.images, test_set.labels)}
    save_checkpoint(path, model, cfg.arch, {"adv_eps": cfg.train_eps, "epochs": cfg.train_epochs},
                    train_set.fingerprint, cfg.seed, metrics)
    _add_stage_seconds(cfg, "original", time.perf_counter() - start)
    return path


def stage_pruned(cfg: StudyConfig, original: Path, train_set: Dataset, test_set: Dataset) -> Path:
    """``pruned.pt``: one round of MIP-importance pruning of the original, then PGD-adversarial retraining."""
    path = cfg.run_dir / "pruned.pt"
    if path.is_file():
        return path
    start = time.perf_counter()
    model, meta = load_checkpoint(original)
    _log(f"MIP neuron importance on {10 * cfg.images_per_class} class-balanced images (lambda {cfg.prune_lambda}), "
         f"prune below {cfg.prune_threshold}, retrain adversarially for {cfg.retrain_epochs} epochs")
    result = prune_and_retrain(
        model, train_set, test_set, threshold=cfg.prune_threshold, images_per_class=cfg.images_per_class, rounds=1,
        importance=ImportanceSettings(lam=cfg.prune_lambda, solver=cfg.solver, time_limit=cfg.prune_time_limit),
        retrain_epochs=cfg.retrain_epochs, adv=_adv_config(cfg), seed=cfg.seed, device="cpu",
    )
    done = result.rounds[-1]
    report = result.reports[-1]
    final = done.accuracy_retrained if done.accuracy_retrained is not None else done.accuracy_pruned
    save_checkpoint(
        path, result.model, report.arch,
        {"pruned_from_sha256": _sha256(original), "threshold": cfg.prune_threshold, "lambda": cfg.prune_lambda,
         "images_per_class": cfg.images_per_class, "retrain_adv_eps": cfg.train_eps, "retrain_epochs": cfg.retrain_epochs},
        meta.data_fingerprint, cfg.seed,
        {"clean_test_accuracy": final, "accuracy_before_pruning": done.accuracy_before,
         "accuracy_before_retraining": done.accuracy_pruned, "mask": done.mask, "importance": done.importance},
    )
    _log(f"pruned {report.summary()}: accuracy {done.accuracy_before:.4f} -> {done.accuracy_pruned:.4f} (pruned) "
         + (f"-> {done.accuracy_retrained:.4f} (retrained)" if done.accuracy_retrained is not None else "(no retraining)"))
    _add_stage_seconds(cfg, "pruned", time.perf_counter() - start)
    return path


class StudyJobsFailed(RobustMipError):
    """Some MILP jobs of a study ended in an error row."""


def stage_milp(cfg: StudyConfig, nets: dict[str, Path], test_set: Dataset, redo_errors: bool = False) -> list[dict]:
    """MILP rows for both nets, every eps, the first ``cfg.images`` test images both classify correctly."""
    models = {name: load_checkpoint(path)[0] for name, path in nets.items()}
    preds = {name: torch.argmax(m(torch.as_tensor(test_set.images)), 1).numpy() for name, m in models.items()}
    both = np.flatnonzero((preds["original"] == test_set.labels) & (preds["pruned"] == test_set.labels))
    chosen = [int(i) for i in both[: cfg.images]]
    if len(chosen) < cfg.images:
        raise InvalidInput(f"only {len(chosen)} test images are classified correctly by both nets")
    network_paths = {}
    for name, model in models.items():
        network_paths[name] = cfg.run_dir / f"{name}.npz"
        if not network_paths[name].is_file():
            from_torch(model, input_shape=(1, 28, 28)).save(network_paths[name])
    # Image by image (both nets, every eps), so that a run stopped early leaves comparable rows.
    instances = []
    for i in chosen:
        for eps in cfg.eps:
            for name, network_path in network_paths.items():
                instances.append({
                    "key": f"{name}/{eps}/{i}", "net": name, "network": str(network_path), "eps": eps, "image": i,
                    "label": int(test_set.labels[i]), "x": test_set.images[i].reshape(-1).tolist(),
                    "solver": cfg.solver, "time_limit": cfg.time_limit, "bounds": cfg.bounds,
                    "pgd_start": cfg.pgd_start, "decide_time_limit": cfg.decision_seconds,
                    "adv_path": str(cfg.run_dir / "adv" / f"{name}_{eps}_{i}.npz"),
                })
    _log(f"{len(instances)} MILP jobs (x9 targets) on {cfg.backend} with {cfg.workers or 'all'} workers")
    start = time.perf_counter()
    results = run_instances(milp_job, instances, cfg.run_dir / "milp_rows.jsonl", key="key",
                            backend=cfg.backend, workers=cfg.workers, redo_errors=redo_errors)
    _add_stage_seconds(cfg, "milp", time.perf_counter() - start)
    failed = [(instance["key"], result.get("error", "")) for instance, result in zip(instances, results)
              if result.get("status") == "error"]
    if failed:
        first_key, first_error = failed[0]
        raise StudyJobsFailed(f"{len(failed)} MILP job(s) failed, e.g. {first_key}: {first_error}; the other "
                              f"rows are kept in {cfg.run_dir / 'milp_rows.jsonl'}: rerun with --redo-errors to retry")
    return [row for result in results for row in result["rows"]]


def adversarial_examples(cfg: StudyConfig, rows: list[dict], net: str, eps: float, test_set: Dataset):
    """The re-checked counterexamples of ``net`` at ``eps``: images ``(K, 1, 28, 28)``, labels, originals."""
    xs, ys, originals = [], [], []
    for r in rows:
        if r["net"] == net and r["eps"] == eps and r["status"] == "adversarial":
            with np.load(cfg.run_dir / "adv" / f"{net}_{eps}_{r['image']}.npz") as data:
                xs.append(data[f"target_{r['target']}"])
            ys.append(r["label"])
            originals.append(test_set.images[r["image"]].reshape(-1))
    shape = (-1, 1, 28, 28)
    return (np.asarray(xs, dtype=np.float32).reshape(shape), np.asarray(ys, dtype=np.int64),
            np.asarray(originals, dtype=np.float32).reshape(shape))


def stage_transfer(cfg: StudyConfig, nets: dict[str, Path], rows: list[dict], test_set: Dataset) -> dict:
    """Reverse testing accuracy, in %: each net on the other net's adversarial examples (true labels)."""
    models = {name: load_checkpoint(path)[0] for name, path in nets.items()}
    out = {}
    for eps in cfg.eps:
        for source, judge in (("pruned", "original"), ("original", "pruned")):
            x_adv, y, _ = adversarial_examples(cfg, rows, source, eps, test_set)
            value = 100.0 * transfer_accuracy(models[judge], x_adv, y) if len(y) else float("nan")
            out[f"{judge}_on_{source}@{eps}"] = {"accuracy": value, "examples": int(len(y))}
    return out


def check_resumable(cfg: StudyConfig) -> None:
    """Refuse to add rows to a run made with other settings (its rows would not be comparable).

    Only the fields in ``RESUMABLE_CHANGES`` (more images or eps, other workers...) may differ from the
    run's ``config.json``; otherwise the error names the fields and suggests a new ``--run``.
    """
    path = cfg.run_dir / "config.json"
    if not path.is_file():
        return
    before = json.loads(path.read_text())["config"]
    now = asdict(cfg)
    changed = sorted(k for k in now if k not in RESUMABLE_CHANGES and before.get(k, "<absent>") != now[k])
    if changed:
        details = ", ".join(f"{k}: {before.get(k, '<absent>')!r} -> {now[k]!r}" for k in changed)
        raise InvalidInput(f"run {cfg.run_dir} was made with other settings ({details}); "
                           "resume it with the same settings or start another --run")


def write_config(cfg: StudyConfig, nets: dict[str, Path], train_set: Dataset | None, test_set: Dataset | None) -> None:
    import highspy
    import pyomo

    versions = {"python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__,
                "pyomo": pyomo.version.version, "highspy": getattr(highspy, "__version__", "unknown")}
    try:
        import gurobipy

        versions["gurobipy"] = gurobipy.gurobi.version()
    except ImportError:
        pass
    config = {
        "config": asdict(cfg), "versions": versions, "platform": platform.platform(),
        "data": {} if train_set is None or test_set is None else {
            "train": {"source": train_set.source, "fingerprint": train_set.fingerprint},
            "test": {"source": test_set.source, "fingerprint": test_set.fingerprint}},
        "models": {name: {"path": str(path), "sha256": _sha256(path)} for name, path in nets.items()},
        "published": PUBLISHED,
    }
    tmp = cfg.run_dir / "config.json.tmp"
    tmp.write_text(json.dumps(config, indent=2, default=str))
    tmp.replace(cfg.run_dir / "config.json")


def _closest_eps(cfg: StudyConfig, rows: list[dict]) -> str:
    """The eps whose adversarial rates are closest to the published ones ("a tie" when none is closer).

    Rates, not counts: the paper attacked 100 images x 9 targets per net, a run may use fewer
    images. Distance: sum over both nets of |ours / our MILPs - published / 900|.
    """
    def distance(eps: float) -> float:
        total = 0.0
        for net in NETS:
            sub = [r for r in rows if r["net"] == net and r["eps"] == eps]
            ours = sum(r["status"] == "adversarial" for r in sub) / max(len(sub), 1)
            total += abs(ours - PUBLISHED[f"adversarial_{net}"] / PUBLISHED_MILPS)
        return total

    distances = {eps: distance(eps) for eps in cfg.eps}
    best = min(distances.values())
    closest = [eps for eps, d in distances.items() if d == best]
    return str(closest[0]) if len(closest) == 1 else "a tie between " + ", ".join(map(str, closest))


def write_report(cfg: StudyConfig, nets: dict[str, Path], rows: list[dict], transfer: dict,
                 test_set: Dataset, wall_seconds: float) -> dict:
    """``report.md`` with every table (published vs ours), the CSVs and the PNGs; returns the summary."""
    out = cfg.run_dir
    metas = {name: load_checkpoint(path)[1] for name, path in nets.items()}
    models = {name: load_checkpoint(path)[0] for name, path in nets.items()}
    accuracy = {name: 100.0 * clean_accuracy(m, test_set.images, test_set.labels) for name, m in models.items()}
    pruned_meta = metas["pruned"].metrics
    lines = [f"# Pruning and robustness: run `{cfg.run}`", "",
             f"Data: {test_set.source} MNIST test set ({len(test_set)} images). Nets: original "
             f"`{metas['original'].arch}`, pruned `{metas['pruned'].arch}`. MILP: {cfg.solver}, {cfg.bounds} bounds, "
             f"{cfg.time_limit:g} s per MILP (then up to {cfg.decision_seconds:g} s for a decision when it "
             f"ends without a proof), {cfg.images} images x 9 targets per net and eps.", ""]
    timings = stage_seconds(cfg)
    stage_rows = [[stage, f"{timings[stage]['seconds']:.0f}", timings[stage]["invocations"]] if stage in timings
                  else [stage, "not recorded (reused from elsewhere)", 0] for stage in STAGES]
    recorded = sum(t["seconds"] for t in timings.values())
    lines += ["## Wall time (s, this machine)", "", markdown_table(["stage", "seconds", "invocations"], stage_rows),
              "", f"Recorded stages: {recorded:.0f} s in all; this invocation: {wall_seconds:.0f} s.", ""]

    lines += ["## Accuracy (%)", "", markdown_table(
        ["net", "published", "ours"],
        [["original", PUBLISHED["accuracy_original"], accuracy["original"]],
         ["pruned + adversarially retrained", PUBLISHED["accuracy_pruned"], accuracy["pruned"]],
         ["pruned, before retraining", "", 100.0 * pruned_meta.get("accuracy_before_retraining", float("nan"))]]), ""]

    summary_rows, csv_rows = [], []
    for eps in cfg.eps:
        for net in NETS:
            sub = [r for r in rows if r["net"] == net and r["eps"] == eps]
            counts = {s: sum(r["status"] == s for r in sub) for s in ("adversarial", "robust", "unknown")}
            timeouts = sum(r["solver_status"] == "time_limit" for r in sub)
            decided = sum(r.get("decision_status") is not None and r["status"] != "unknown" for r in sub)
            published = PUBLISHED[f"adversarial_{net}"]
            summary_rows.append([net, eps, published, counts["adversarial"], 100.0 * published / PUBLISHED_MILPS,
                                 100.0 * counts["adversarial"] / max(len(sub), 1), counts["robust"],
                                 counts["unknown"], timeouts, decided, len(sub)])
            csv_rows.append(summary_rows[-1])
    lines += ["## Adversarial examples found by the targeted MILP", "",
              "Every adversarial example passed a float64 forward-pass re-check; `robust` rows have a proven "
              "optimum or a proven bound > 0 (also when the MILP hit its time limit); `unknown` rows have "
              "neither a proof nor a checked counterexample. `time-outs` counts the optimisations that hit the "
              "time limit, whatever their verdict; `settled by decision` counts those of them without a proof "
              "that a decision MILP (solver cutoff at margin 0) then proved robust or adversarial.", "",
              markdown_table(["net", "eps", f"published (of {PUBLISHED_MILPS})", "adversarial", "published %",
                              "adversarial %", "robust", "unknown", "time-outs", "settled by decision", "MILPs"],
                             summary_rows), "",
              f"Closest eps to the published rates ({PUBLISHED['adversarial_original']}/{PUBLISHED_MILPS} and "
              f"{PUBLISHED['adversarial_pruned']}/{PUBLISHED_MILPS} MILPs adversarial): **{_closest_eps(cfg, rows)}** "
              "(the paper does not state its eps).", ""]
    write_csv(out / "adversarial_counts.csv",
              ["net", "eps", "published", "adversarial", "published_pct", "adversarial_pct", "robust", "unknown",
               "timeouts", "settled_by_decision", "milps"], csv_rows)

    transfer_rows = []
    for eps in cfg.eps:
        for judge, source, key in (("original", "pruned", "reverse_original_on_pruned"),
                                   ("pruned", "original", "reverse_pruned_on_original")):
            t = transfer[f"{judge}_on_{source}@{eps}"]
            transfer_rows.append([f"{judge} on {source}'s examples", eps, PUBLISHED[key], t["accuracy"], t["examples"]])
    lines += ["## Reverse testing accuracy (%)", "", markdown_table(
        ["accuracy of", "eps", "published", "ours", "examples"], transfer_rows), ""]
    write_csv(out / "reverse_testing.csv", ["accuracy_of", "eps", "published", "ours", "examples"], transfer_rows)

    for eps in cfg.eps:
        for field_name, title in (("label", "original label"), ("target", "target label")):
            per = {net: count_by([r for r in rows if r["net"] == net and r["eps"] == eps], field_name) for net in NETS}
            table = [[c, per["original"][c]["images"], per["original"][c]["adversarial"], per["pruned"][c]["adversarial"],
                      per["original"][c]["success_rate"], per["pruned"][c]["success_rate"]] for c in range(10)]
            header = [title, "images", "adv original", "adv pruned", "success original", "success pruned"]
            lines += [f"## Per {title}, eps {eps} (Fig. 3)", "", markdown_table(header, table), ""]
            write_csv(out / f"per_{field_name}_eps{eps}.csv", header, table)

    stat_rows = []
    for eps in cfg.eps:
        for net in NETS:
            sub = [r for r in rows if r["net"] == net and r["eps"] == eps]
            for outcome, pick in (("successful", "adversarial"), ("unsuccessful", "robust")):
                chosen = [r for r in sub if r["status"] == pick]
                for quantity in ("ofv", "time_s"):
                    # An OFV is only known at an optimum; a time-limited row has an incumbent and a bound.
                    values = [r[quantity] for r in chosen if quantity != "ofv" or r["solver_status"] == "optimal"]
                    d = describe(values)
                    stat_rows.append([net, eps, outcome, quantity, *[d[k] for k in STAT_COLUMNS]])
    lines += ["## OFV and generation time (Fig. 4)", "",
              f"Published times: mean {PUBLISHED['time_mean_successful']} s successful, "
              f"{PUBLISHED['time_mean_unsuccessful']} s unsuccessful, max {PUBLISHED['time_max']} s. Our time per MILP "
              "counts its PGD search and solve plus, on each image's first target, the image's bounds and model "
              "building. OFV statistics use the MILPs solved to optimality only (time-limited ones are in the "
              "time-outs column above).", "",
              markdown_table(["net", "eps", "outcome", "quantity", *STAT_COLUMNS], stat_rows), ""]
    write_csv(out / "ofv_time_stats.csv", ["net", "eps", "outcome", "quantity", *STAT_COLUMNS], stat_rows)

    lines += ["## Figures", ""]
    for eps in cfg.eps:
        for net in NETS:
            sub = [r for r in rows if r["net"] == net and r["eps"] == eps]
            name = f"{net}_eps{eps}"
            plot_confusion(confusion(sub), f"{net}, eps {eps}: adversarial examples", out / f"confusion_{name}.png")
            x_adv, y, originals = adversarial_examples(cfg, rows, net, eps, test_set)
            adv_rows = [r for r in sub if r["status"] == "adversarial"]
            pairs = [(originals[k], x_adv[k], f"{adv_rows[k]['label']}->{adv_rows[k]['predicted']}")
                     for k in range(min(10, len(adv_rows)))]
            plot_image_grid(pairs, f"{net}, eps {eps}: originals (top), MILP adversarial examples (bottom)",
                            out / f"grid_{name}.png")
            optimal = [r for r in sub if r["solver_status"] == "optimal"]
            plot_histograms({"successful": [r["ofv"] for r in optimal if r["status"] == "adversarial"],
                             "unsuccessful": [r["ofv"] for r in optimal if r["status"] == "robust"]},
                            "OFV (z_label - z_target)", f"{net}, eps {eps}", out / f"ofv_{name}.png")
            plot_histograms({"successful": [r["time_s"] for r in adv_rows],
                             "unsuccessful": [r["time_s"] for r in sub if r["status"] == "robust"]},
                            "seconds per MILP", f"{net}, eps {eps}", out / f"time_{name}.png")
            lines += [f"![grid {name}](grid_{name}.png) ![confusion {name}](confusion_{name}.png)",
                      f"![ofv {name}](ofv_{name}.png) ![time {name}](time_{name}.png)", ""]
    write_csv(out / "milp_rows.csv", list(rows[0].keys()) if rows else [], [list(r.values()) for r in rows])
    (out / "report.md").write_text("\n".join(lines) + "\n")
    summary = {"accuracy": accuracy, "counts": csv_rows, "transfer": transfer, "wall_seconds": wall_seconds,
               "stage_seconds": timings}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    first_detail = next(i for i, line in enumerate(lines) if line.startswith("## Per "))
    print("\n".join(lines[:first_detail]))
    return summary


def run_study(cfg: StudyConfig, redo_errors: bool = False) -> dict:
    """All stages; returns the summary that ``report.md`` opens with.

    The settings are checked against an earlier invocation's ``config.json`` (and recorded there)
    before any stage runs; ``redo_errors`` retries MILP jobs that ended in an error row.
    """
    start = time.perf_counter()
    cfg.validate()
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    check_resumable(cfg)
    if not (cfg.run_dir / "config.json").is_file():
        write_config(cfg, {}, None, None)
    torch.manual_seed(cfg.seed)
    # One torch thread by default: beside solver processes, OpenMP spin-waiting made a training
    # epoch ~100x slower on 2 cores (STACK_NOTES); on an idle machine 2 threads gain only ~1.4x.
    torch.set_num_threads(cfg.torch_threads)
    train_set, test_set = _load_data(cfg)
    _log(f"data: {train_set.source} MNIST ({len(train_set)} train / {len(test_set)} test); run dir {cfg.run_dir}")
    original = stage_original(cfg, train_set, test_set)
    pruned = stage_pruned(cfg, original, train_set, test_set)
    nets = {"original": original, "pruned": pruned}
    write_config(cfg, nets, train_set, test_set)
    rows = stage_milp(cfg, nets, test_set, redo_errors)
    transfer = stage_transfer(cfg, nets, rows, test_set)
    summary = write_report(cfg, nets, rows, transfer, test_set, time.perf_counter() - start)
    _log(f"report: {cfg.run_dir / 'report.md'}")
    return summary
