"""Exact certification of weight quantization on MNIST MLPs: the bits table of issue 17.

For each net (``demo``: the shipped 784-32-32-10; an architecture name such as ``mlp-100-100``:
trained here with the standard objective; a path: that model), each bit width and each of the first
``images`` test images (the float net's prediction is the label):

* ``agree``: the quantized net (round to nearest, per-layer scale ``max|W| / (2^(k-1) - 1)``) predicts
  the same class;
* ``interval``: interval bounds over the quantization box (every rounding of every weight) alone prove
  that no rounding changes the label;
* ``milp``: the exact verdict over the box (``robust`` proved by LP bounds or the MILP, ``flips`` with a
  re-checked witness in the box, ``unknown`` at the time limit), with its seconds.

Rows go to ``rows.jsonl`` as they finish (a rerun resumes; other settings are refused); ``report.md``,
``bits_table.csv``, ``rows.csv``, ``certified.png`` and ``config.json`` to ``<out_root>/<run>/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from robustmip.errors import InvalidInput
from robustmip.milp.options import SolveOptions
from robustmip.network import Network
from robustmip.parallel import BACKENDS, run_instances
from robustmip.params.box import check_bits
from robustmip.params.quantization import quantization_row
from robustmip.report import _pyplot, markdown_table, write_csv
from robustmip.studies.runs import logger, open_run, study_main

log = logger("quant_certify")


@dataclass
class QuantSettings:
    """Everything that defines a run (written to ``config.json``)."""

    run: str = "demo"
    out_root: str = "results/quant_certify"
    nets: list[str] = field(default_factory=lambda: ["demo", "mlp-100-100"])
    bits: list[int] = field(default_factory=lambda: [16, 12, 10, 8, 6, 4])
    rounding: str = "nearest"
    images: int = 100
    eps: float = 0.0
    time_limit: float = 60.0
    train_epochs: int = 5
    embedded: bool = True
    data_dir: str | None = None
    backend: str = "serial"
    workers: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        for bits in self.bits:
            check_bits(bits)
        if not self.nets or self.images < 1 or not self.time_limit > 0 or self.train_epochs < 1:
            raise InvalidInput("need nets, images >= 1, time_limit > 0 and train_epochs >= 1")
        if self.rounding not in ("nearest", "floor") or self.backend not in BACKENDS or not 0 <= self.eps <= 1:
            raise InvalidInput(f"rounding must be nearest or floor, backend one of {BACKENDS}, eps in [0, 1]")

    @property
    def run_dir(self) -> Path:
        return Path(self.out_root) / self.run


RESUMABLE = {"run", "out_root", "images", "bits", "backend", "workers", "data_dir"}


def _test_set(settings: QuantSettings):
    from robustmip.data import load_dataset

    return load_dataset("test", "embedded" if settings.embedded else "auto", settings.data_dir)


def stage_nets(settings: QuantSettings) -> dict[str, Path]:
    """``<name>.npz`` per net: the shipped demo net, a model file, or a net trained here (once)."""
    from robustmip.data import load_dataset, load_demo_network
    from robustmip.io import from_torch, load_network

    paths = {}
    for name in settings.nets:
        path = settings.run_dir / f"{Path(name).stem}.npz"
        if not path.is_file():
            if name == "demo":
                load_demo_network().save(path)
            elif Path(name).is_file():
                load_network(name).save(path)
            else:
                import torch

                from robustmip.models import build_model
                from robustmip.training import train

                log(f"training {name} (standard, {settings.train_epochs} epochs)")
                torch.manual_seed(settings.seed)
                model = build_model(name, seed=settings.seed)
                source = "embedded" if settings.embedded else "auto"
                train(model, load_dataset("train", source, settings.data_dir), epochs=settings.train_epochs,
                      seed=settings.seed, device="cpu", progress=False)
                from_torch(model.eval(), input_shape=(1, 28, 28)).save(path)
        paths[Path(name).stem] = path
    return paths


def quant_job(instance: dict) -> dict:
    """One (net, bits, image) row of the bits table."""
    import torch

    torch.set_num_threads(1)
    net = Network.load(instance["network"])
    options = SolveOptions.create("highs", instance["time_limit"])
    return quantization_row(net, np.asarray(instance["x"]), instance["bits"], instance["rounding"],
                            instance["eps"], options)


def stage_rows(settings: QuantSettings, nets: dict[str, Path]) -> list[dict]:
    test = _test_set(settings)
    instances = []
    for name, path in nets.items():
        for bits in settings.bits:
            for i in range(min(settings.images, len(test))):
                instances.append({"key": f"{name}/{bits}/{i}", "net": name, "network": str(path), "bits": bits,
                                  "image": i, "x": test.images[i].reshape(-1).tolist(), "rounding": settings.rounding,
                                  "eps": settings.eps, "time_limit": settings.time_limit})
    log(f"{len(instances)} rows ({len(nets)} nets x {len(settings.bits)} bit widths x {settings.images} images)")
    rows = run_instances(quant_job, instances, settings.run_dir / "rows.jsonl", key="key", backend=settings.backend,
                         workers=settings.workers, progress=False)
    failed = [r for r in rows if r.get("status") == "error"]
    if failed:
        raise InvalidInput(f"{len(failed)} row(s) failed, e.g. {failed[0].get('error')}; rerun to retry them")
    return [dict(r, net=i["net"], image=i["image"]) for r, i in zip(rows, instances)]


def summarise(rows: list[dict]) -> list[list]:
    """One line per (net, bits): images, agree %, interval-certified, MILP-certified, flips, unknown, seconds."""
    table = []
    for net in dict.fromkeys(r["net"] for r in rows):
        for bits in dict.fromkeys(r["bits"] for r in rows if r["net"] == net):
            sub = [r for r in rows if r["net"] == net and r["bits"] == bits]
            counts = {s: sum(r["status"] == s for r in sub) for s in ("robust", "flips", "unknown")}
            interval = sum(r["interval_certified"] for r in sub)
            if counts["robust"] < interval:
                raise AssertionError(f"{net} {bits} bits: MILP-certified {counts['robust']} < interval {interval}")
            seconds = [r["seconds"] for r in sub]
            table.append([net, bits, len(sub), 100.0 * sum(r["agree"] for r in sub) / len(sub), interval,
                          counts["robust"], counts["flips"], counts["unknown"], float(np.median(seconds)),
                          float(np.max(seconds))])
    return table


HEADER = ["net", "bits", "images", "agree %", "interval-certified", "MILP-certified", "flips found", "unknown",
          "median s", "max s"]


def write_report(settings: QuantSettings, rows: list[dict]) -> list[list]:
    out = settings.run_dir
    table = summarise(rows)
    write_csv(out / "bits_table.csv", [h.replace(" ", "_").replace("%", "pct") for h in HEADER], table)
    write_csv(out / "rows.csv", list(rows[0].keys()), [list(r.values()) for r in rows])
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for net in dict.fromkeys(r[0] for r in table):
        sub = [r for r in table if r[0] == net]
        ax.plot([r[1] for r in sub], [100.0 * r[5] / r[2] for r in sub], "o-", label=f"{net}: MILP-certified")
        ax.plot([r[1] for r in sub], [100.0 * r[4] / r[2] for r in sub], "x--", label=f"{net}: interval-certified")
        ax.plot([r[1] for r in sub], [r[3] for r in sub], ":", label=f"{net}: quantized net agrees")
    ax.set_xlabel("bits")
    ax.set_ylabel("% of test images")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "certified.png", dpi=120)
    plt.close(fig)
    lines = [f"# Quantization certified exactly: run `{settings.run}`", "",
             f"First {settings.images} test images, the float net's prediction as the label, weights rounded to "
             f"{settings.rounding} on a symmetric per-layer grid (biases in float), input "
             f"{'fixed' if settings.eps == 0 else f'within eps {settings.eps}'}. *agree*: the quantized net keeps "
             "the prediction. *interval-certified*: interval bounds over every rounding at once (the quantization "
             "box) prove it. *MILP-certified*: LP bounds or the MILP prove it for every rounding; *flips found*: a "
             f"parameter in the box (not necessarily a grid point) changes it, re-checked in float64. HiGHS, "
             f"{settings.time_limit:g} s per question, seconds per image on this machine (bounds, param_pgd, "
             "MILP).", "",
             markdown_table(HEADER, table), "", "MILP-certified >= interval-certified on every row (checked).", "",
             "![certified](certified.png)", ""]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    log(f"report: {out / 'report.md'}")
    return table


def run_study(settings: QuantSettings) -> list[list]:
    open_run(settings, settings.run_dir, RESUMABLE)
    nets = stage_nets(settings)
    return write_report(settings, stage_rows(settings, nets))


def main(argv: list[str] | None = None) -> int:
    extra = {"images": (int, "test images per net and bit width"),
             "workers": (int, "parallel workers (with backend processes)")}
    return study_main("quant_certify", QuantSettings, run_study, __doc__.splitlines()[0], argv, extra)
