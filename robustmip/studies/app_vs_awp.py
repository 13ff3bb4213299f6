"""APP against AWP (seed 003's two tables) on MNIST, with a column no one else has: exact certification.

CIFAR-10 is not available offline, so the nets are MNIST MLPs (``arch``). Trained per input radius
``eps`` of ``eps_values`` (0.001, 0.005, 2/255, 0.01 in the paper): PGD adversarial training, APP with
the tanh radius, APP with the abs radius (:class:`robustmip.training.APP` at ``train_lambda``), and
AWP around PGD training (:class:`robustmip.training.AWP`); one standard net serves every row. Per net:

* clean accuracy and PGD accuracy at the row's ``eps`` (``eval_images`` test images);
* per ``lambda`` of ``lambdas``: the success rate of the parameter attack (``param_pgd`` over every
  weight and bias moving by ``lambda |p|``, the fixed box of the attack for every method) on the first
  ``attack_images`` correctly classified test images, as the paper's second table;
* per ``lambda``: the fraction of the first ``certify_images`` test images certified *exactly* against
  the joint perturbation (input within ``eps`` and every parameter within ``lambda |p|``):
  :func:`robustmip.params.verify_parameter_robustness` (robust proved, flips re-checked, unknown at
  the time limit).

Resumable: nets are trained with per-epoch state and kept as ``nets/<name>.npz``; evaluation and
certification rows go to JSONL as they finish. ``report.md``, CSVs, a PNG and ``config.json`` go to
``<out_root>/<run>/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from robustmip.errors import InvalidInput
from robustmip.milp.options import SolveOptions
from robustmip.network import Network
from robustmip.parallel import run_instances
from robustmip.report import _pyplot, markdown_table, write_csv
from robustmip.studies.runs import logger, open_run, study_main

METHODS = ("standard", "pgd", "app_tanh", "app_abs", "awp")
PUBLISHED_ACCURACY = {  # seed 003, CIFAR-10 CNN4: (clean %, AutoAttack %) per eps and method
    0.001: {"app_tanh": (68.15, 42.75), "app_abs": (59.48, 36.08), "awp": (59.88, 39.01)},
    0.005: {"app_tanh": (67.17, 49.92), "app_abs": (60.15, 44.92), "awp": (61.9, 43.33)},
    round(2 / 255, 6): {"app_tanh": (63.8, 49.63), "app_abs": (52.71, 42.85), "awp": (60.68, 44.16)},
    0.01: {"app_tanh": (60.77, 48.18), "app_abs": (48.81, 41.94), "awp": (58.1, 43.7)},
}
log = logger("app_vs_awp")


@dataclass
class AppSettings:
    """Everything that defines a run (written to ``config.json``)."""

    run: str = "demo"
    out_root: str = "results/app_vs_awp"
    arch: str = "mlp-50-50"
    methods: list[str] = field(default_factory=lambda: list(METHODS))
    eps_values: list[float] = field(default_factory=lambda: [0.001, 0.005, round(2 / 255, 6), 0.01])
    lambdas: list[float] = field(default_factory=lambda: [0.02, 0.04, 0.06, 0.08, 0.1])
    train_lambda: float = 0.05
    app_s: float = 10.0
    app_m: float = 1.0
    app_kappa: float = 0.5
    awp_gamma: float = 0.01
    epochs: int = 10
    ramp_epochs: float = 3.0
    pgd_steps: int = 10
    eval_images: int = 1000
    attack_images: int = 100
    certify_images: int = 20
    time_limit: float = 60.0
    embedded: bool = True
    data_dir: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if set(self.methods) - set(METHODS) or not self.methods:
            raise InvalidInput(f"methods must be among {METHODS}, got {self.methods}")
        if not self.eps_values or any(not 0 < e <= 1 for e in self.eps_values):
            raise InvalidInput("eps_values must be numbers in (0, 1]")
        if not self.lambdas or any(lam < 0 for lam in self.lambdas) or self.train_lambda < 0:
            raise InvalidInput("lambdas and train_lambda must be >= 0")
        if min(self.epochs, self.pgd_steps, self.eval_images) < 1 or min(self.attack_images,
                                                                           self.certify_images) < 0:
            raise InvalidInput("need epochs, pgd_steps, eval_images >= 1 and attack/certify images >= 0")

    @property
    def run_dir(self) -> Path:
        return Path(self.out_root) / self.run


RESUMABLE = {"run", "out_root", "eval_images", "attack_images", "certify_images", "lambdas", "time_limit", "data_dir"}


def _data(settings: AppSettings, split: str):
    from robustmip.data import load_dataset

    return load_dataset(split, "embedded" if settings.embedded else "auto", settings.data_dir)


def net_names(settings: AppSettings) -> list[tuple[str, str, float]]:
    """``(name, method, eps)`` of every net: the standard one once, the others per eps."""
    names = [("standard", "standard", 0.0)] if "standard" in settings.methods else []
    return names + [(f"{m}_{eps:g}", m, eps) for eps in settings.eps_values for m in settings.methods
                    if m != "standard"]


def _objective(settings: AppSettings, method: str, eps: float):
    from robustmip.attacks.gradient import PGDConfig
    from robustmip.training import APP, AWP, CrossEntropy, PGDAdversarial

    attack = PGDConfig(eps, settings.pgd_steps) if eps > 0 else None
    if method == "standard":
        return CrossEntropy()
    if method == "pgd":
        return PGDAdversarial(attack, int(round(settings.ramp_epochs)))
    if method == "awp":
        return AWP(attack, settings.awp_gamma)
    return APP(eps, settings.train_lambda, method.removeprefix("app_"), settings.app_s, settings.app_m,  # type: ignore
               settings.app_kappa, settings.ramp_epochs)


def stage_nets(settings: AppSettings) -> dict[str, Path]:
    """Train every net once (per-epoch state beside it, so an interrupted run resumes); ``nets/<name>.npz``."""
    import torch

    from robustmip.io import from_torch
    from robustmip.models import build_model
    from robustmip.training import train

    folder = settings.run_dir / "nets"
    folder.mkdir(exist_ok=True)
    paths = {}
    train_set = None
    for name, method, eps in net_names(settings):
        path = folder / f"{name}.npz"
        if not path.is_file():
            train_set = train_set or _data(settings, "train")
            log(f"training {name} ({settings.arch}, {settings.epochs} epochs)")
            torch.manual_seed(settings.seed)
            model = build_model(settings.arch, seed=settings.seed)
            state = folder / f"{name}.state"
            train(model, train_set, epochs=settings.epochs, seed=settings.seed,
                  objective=_objective(settings, method, eps), device="cpu", progress=False, resume_path=state)
            from_torch(model.eval(), input_shape=(1, 28, 28)).save(path)
            state.unlink(missing_ok=True)
        paths[name] = path
    return paths


def eval_job(instance: dict) -> dict:
    """Clean and PGD accuracy, and the parameter attack's success per lambda, of one net."""
    import torch

    from robustmip.attacks.evaluate import clean_accuracy, evaluate_pgd
    from robustmip.params import ParamAttack, ParamBox, param_pgd
    from robustmip.spec import robustness_conjunctions

    torch.set_num_threads(1)
    net = Network.load(instance["network"])
    model = net.to_torch(torch.float32).eval()
    images = np.asarray(instance["images"], dtype=np.float32).reshape(-1, 1, 28, 28)
    labels = np.asarray(instance["labels"])
    row = {"clean": clean_accuracy(model, images, labels),
           "pgd": evaluate_pgd(model, images, labels, instance["eps"], steps=20).robust_accuracy}
    correct = [i for i in range(len(labels)) if int(np.argmax(net.forward(images[i]))) == int(labels[i])]
    chosen = correct[:instance["attack_images"]]
    for lam in instance["lambdas"]:
        box = ParamBox.relative(net, lam)
        flipped = 0
        for i in chosen:
            x, label = images[i].reshape(-1).astype(np.float64), int(labels[i])
            conjunctions = robustness_conjunctions(10, label, [t for t in range(10) if t != label])
            point, deltas, _ = param_pgd(net, box, x, x, conjunctions, ParamAttack(steps=20, restarts=4))
            logits = box.realise(net, deltas).forward(point)
            flipped += int(np.max(np.delete(logits, label)) > logits[label])
        row[f"attack_{lam:g}"] = flipped / max(len(chosen), 1)
    row["attack_images"] = len(chosen)
    return row


def certify_job(instance: dict) -> dict:
    """The exact joint (eps, lambda) verdict of one net on one image."""
    import torch

    from robustmip.params import ParamBox, verify_parameter_robustness

    torch.set_num_threads(1)
    net = Network.load(instance["network"])
    options = SolveOptions.create("highs", instance["time_limit"])
    verdict = verify_parameter_robustness(net, ParamBox.relative(net, instance["lambda"]), np.asarray(instance["x"]),
                                          instance["label"], instance["eps"], options)
    return {"verdict": verdict.status, "proof": verdict.proof, "seconds": verdict.seconds}


def stage_rows(settings: AppSettings, nets: dict[str, Path]) -> tuple[list[dict], list[dict]]:
    test = _data(settings, "test")
    n = min(settings.eval_images, len(test))
    eps_of = {name: eps for name, _, eps in net_names(settings)}
    evals = [{"key": name, "network": str(path), "eps": eps_of[name] or settings.eps_values[0],
              "images": test.images[:n].reshape(n, -1).tolist(), "labels": test.labels[:n].tolist(),
              "lambdas": settings.lambdas, "attack_images": settings.attack_images} for name, path in nets.items()]
    log(f"evaluating {len(evals)} nets (clean, PGD, parameter attack at {len(settings.lambdas)} lambdas)")
    eval_rows = run_instances(eval_job, evals, settings.run_dir / "eval.jsonl", key="key", backend="serial",
                              progress=False)
    certify = []
    for name, path in nets.items():
        for eps in ([eps_of[name]] if eps_of[name] > 0 else settings.eps_values):
            for lam in settings.lambdas:
                for i in range(min(settings.certify_images, len(test))):
                    certify.append({"key": f"{name}/{eps:g}/{lam:g}/{i}", "net": name, "network": str(path), "eps": eps,
                                    "lambda": lam, "image": i, "label": int(test.labels[i]),
                                    "x": test.images[i].reshape(-1).tolist(), "time_limit": settings.time_limit})
    log(f"{len(certify)} exact joint (eps, lambda) verdicts")
    certify_rows = run_instances(certify_job, certify, settings.run_dir / "certify.jsonl", key="key",
                                 backend="serial", progress=False)
    failed = [r for r in eval_rows + certify_rows if r.get("status") == "error"]
    if failed:
        raise InvalidInput(f"{len(failed)} job(s) failed, e.g. {failed[0].get('error')}; rerun to retry them")
    return ([dict(r, net=e["key"]) for r, e in zip(eval_rows, evals)],
            [dict(r, **{k: c[k] for k in ("net", "eps", "lambda", "image")}) for r, c in zip(certify_rows, certify)])


def write_report(settings: AppSettings, eval_rows: list[dict], certify_rows: list[dict]) -> None:
    out = settings.run_dir
    methods = {name: (method, eps) for name, method, eps in net_names(settings)}
    lam_cert = settings.lambdas[0]
    lines = [f"# APP against AWP on MNIST, with exact certification: run `{settings.run}`", "",
             f"Nets: {settings.arch}, {settings.epochs} epochs on {'the embedded' if settings.embedded else 'full'} "
             f"MNIST; APP trained at lambda {settings.train_lambda:g} (tanh: lambda tanh({settings.app_s:g} p^2)/"
             f"{settings.app_m:g}; abs: lambda |p|), AWP with gamma {settings.awp_gamma:g}, both around the row's eps. "
             "Published: seed 003 on CIFAR-10 with a CNN4 and AutoAttack (shown for reference; our attack is "
             "PGD-20 and our data MNIST). The parameter attack and the certificates use the box "
             "|p - p0| <= lambda |p0| on every weight and bias, for every method alike.", ""]
    table1, csv1, table2, csv2 = [], [], [], []
    for eps in settings.eps_values:
        for name, (method, net_eps) in methods.items():
            if net_eps not in (0.0, eps):
                continue
            e = next(r for r in eval_rows if r["net"] == name)
            counts = {}
            for lam in settings.lambdas:
                cert = [r for r in certify_rows if r["net"] == name and r["eps"] == eps and r["lambda"] == lam]
                counts[lam] = {s: sum(r["verdict"] == s for r in cert) for s in ("robust", "flips", "unknown")}
                csv2.append([eps, method, lam, e[f"attack_{lam:g}"], e["attack_images"], counts[lam]["robust"],
                             counts[lam]["flips"], counts[lam]["unknown"], len(cert)])
            published = PUBLISHED_ACCURACY.get(round(eps, 6), {}).get(method, ("", ""))
            certified, total = counts[lam_cert]["robust"], sum(counts[lam_cert].values())
            table1.append([f"{eps:g}", method, published[0], f"{100 * e['clean']:.2f}", published[1],
                           f"{100 * e['pgd']:.2f}" if net_eps == eps else "", f"{certified}/{total}"])
            csv1.append([eps, method, published[0], e["clean"], published[1], e["pgd"], certified, total])
            table2.append([f"{eps:g}", method, *[f"{100 * e[f'attack_{lam:g}']:.0f} % / {counts[lam]['robust']}c "
                                                 f"{counts[lam]['unknown']}u" for lam in settings.lambdas]])
    lines += ["## Table 1: accuracy (%) and exact certificates", "",
              markdown_table(["eps", "method", "clean (published)", "clean", "AutoAttack (published)", "PGD-20",
                              f"certified (eps, lambda={lam_cert:g})"], table1), ""]
    write_csv(out / "accuracy.csv", ["eps", "method", "clean_published", "clean", "autoattack_published", "pgd",
                                     "certified", "certify_images"], csv1)
    lines += ["## Table 2: parameter-attack success / exactly certified (c) and unknown (u) per lambda", "",
              markdown_table(["eps", "method", *[f"lambda {lam:g}" for lam in settings.lambdas]], table2), "",
              f"Attack success: share of the first {settings.attack_images} correctly classified test images whose "
              "label param_pgd changes (re-checked). Certified: of the first "
              f"{settings.certify_images} test images, proved robust to every input within eps and every parameter "
              f"within lambda |p| together ({settings.time_limit:g} s each, HiGHS).", ""]
    write_csv(out / "param_attack_certified.csv", ["eps", "method", "lambda", "attack_success", "attack_images",
                                                   "certified", "flips", "unknown", "certify_images"], csv2)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for eps in settings.eps_values[:1]:
        for method in settings.methods:
            sub = [r for r in csv2 if r[0] == eps and r[1] == method]
            ax.plot([r[2] for r in sub], [100 * r[3] for r in sub], "o-", label=f"{method} (eps {eps:g})")
    ax.set_xlabel("lambda")
    ax.set_ylabel("parameter-attack success %")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "param_attack.png", dpi=120)
    plt.close(fig)
    lines += ["![param attack](param_attack.png)", ""]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    log(f"report: {out / 'report.md'}")


def run_study(settings: AppSettings) -> None:
    open_run(settings, settings.run_dir, RESUMABLE)
    nets = stage_nets(settings)
    eval_rows, certify_rows = stage_rows(settings, nets)
    write_report(settings, eval_rows, certify_rows)


def main(argv: list[str] | None = None) -> int:
    return study_main("app_vs_awp", AppSettings, run_study, __doc__.splitlines()[0], argv)
