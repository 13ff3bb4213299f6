"""The pruning-robustness study end to end at a tiny size: files, soundness and optimality of rows, resume,
more time for open rows, calibration, the counterexamples importance sees, notebook."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from robustmip.network import Network

ROOT = Path(__file__).resolve().parents[1]


def _study():
    from robustmip.studies import prune_robustness

    return prune_robustness


def _rows(cfg) -> list[dict]:
    from robustmip.parallel import read_results

    return [r for result in read_results(cfg.run_dir / "milp_rows.jsonl").values() for r in result["rows"]]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    study = _study()
    out = tmp_path_factory.mktemp("study")
    cfg = study.StudyConfig(
        run="tiny", out_root=str(out), report_dir=str(out / "report"), embedded=True, arch="mlp-8", train_epochs=1,
        retrain_epochs=1, seeds=[0, 1], images=1, eps=[0.05], time_limit=10, max_time_limit=40,
        prune_time_limit=30, calibration_eps=[0.1, 0.2], calibration_images=10, calibration_pgd_steps=5,
        calibration_pgd_restarts=1, adv_importance_images=3, sweep_thresholds=[0.5], sweep_images=1,
        pgd_eval_images=100, bootstrap_samples=200, backend="serial",
    )
    summary = study.run_study(cfg)
    return study, cfg, summary


def test_study_writes_every_artefact(tiny_run):
    _, cfg, summary = tiny_run
    run = cfg.run_dir
    for name in ("report.md", "config.json", "summary.json", "milp_rows.jsonl", "milp_rows.csv", "calibration.json",
                 "adversarial_counts.csv", "reverse_testing.csv", "ofv_time_stats.csv", "per_label.csv",
                 "per_target.csv", "calibration.csv", "paired_pruned_vs_original.csv", "paired_pruned_vs_control.csv",
                 "paired_robust_vs_plain.csv", "critical_neurons.csv", "sparsity_sweep.csv", "rate_vs_eps.png",
                 "sparsity_sweep.png", "seed0/original.pt", "seed1/pruned.pt", "seed1/pruned_robust.pt",
                 "seed0/retrained.pt", "seed0/sweep_t0.5.pt", "seed1/neurons.json"):
        assert (run / name).is_file(), name
    eps = sorted({0.05, summary["calibrated_eps"]})
    for e in eps:
        assert (run / f"confusion_eps{e:g}.png").is_file() and (run / f"ofv_eps{e:g}.png").is_file()
    config = json.loads((run / "config.json").read_text())
    assert config["data"]["test"]["source"] == "embedded" and config["versions"]["torch"]
    assert {"0/original", "1/pruned", "1/pruned_robust", "0/retrained", "0/sweep_t0.5"} <= set(config["models"])
    report = (run / "report.md").read_text()
    for text in ("## Findings", "Calibrated eps", "Paired differences", "Reverse testing", "Critical neurons",
                 "Sparsity sweep", "Fig. 3", "Fig. 4", "| 1 | original | mlp-8 | 97.05 |"):
        assert text in report, text
    timings = json.loads((run / "timings.json").read_text())
    assert {"original", "pruned", "calibration", "milp", "neurons", "retrained", "pruned_robust", "milp_extra",
            "sweep", "milp_sweep", "report"} <= set(timings)
    copied = Path(cfg.report_dir)
    assert (copied / "report.md").read_text() == report and (copied / "neurons_seed0.json").is_file()
    assert not list(copied.glob("*.pt")) and not list(copied.glob("*.jsonl"))
    assert summary["unknown"] == 0 and summary["not_optimal"] == 0


def test_rows_are_sound_optimal_and_complete(tiny_run):
    study, cfg, summary = tiny_run
    rows = _rows(cfg)
    eps = sorted({0.05, summary["calibrated_eps"]})
    # seeds x (2 nets x every eps + control and robustness-aware at the calibrated eps) x images x targets, + sweep
    assert len(eps) == 2 and len(rows) == 2 * (2 * len(eps) + 2) * 1 * 9 + 1 * 9
    from robustmip.data import load_embedded_mnist

    images, _ = load_embedded_mnist("test")
    for r in rows:
        assert r["engine"] == "milp" and r["status"] in ("adversarial", "robust")
        assert study.row_optimal(r, cfg) and r["gap"] is not None and r["attempts"] >= 1
        assert r["bound"] <= r["ofv"] + 1e-6
        if r["status"] == "robust":
            assert r["ofv"] > 0 and r["bound"] > 0
        else:
            net = Network.load(cfg.seed_dir(r["seed"]) / f"{r['net']}.npz")
            x_adv = study.load_counterexample(cfg, r)
            x = images[r["image"]].reshape(-1).astype(np.float64)
            assert np.abs(x_adv - x).max() <= r["eps"] + 1e-9 and x_adv.min() >= 0 and x_adv.max() <= 1
            logits = net.forward(x_adv)
            assert logits[r["target"]] > logits[r["label"]] and r["ofv"] < 0


def test_calibrated_eps_is_nearest_the_published_rate(tiny_run):
    study, cfg, summary = tiny_run
    from robustmip.studies.calibration import pick_eps

    calibration = json.loads((cfg.run_dir / "calibration.json").read_text())
    mean = {float(e): r for e, r in calibration["mean_original"].items()}
    assert calibration["eps"] == summary["calibrated_eps"] == pick_eps(mean, study.PUBLISHED_RATE)
    assert {r["eps"] for r in _rows(cfg)} == {0.05, calibration["eps"]}


def test_importance_batch_holds_only_rechecked_counterexamples(tiny_run, monkeypatch):
    study, cfg, summary = tiny_run
    from robustmip.data import load_embedded_mnist

    test_set = study.load_dataset("test", "embedded")
    eps = summary["calibrated_eps"]
    rows = [r for r in _rows(cfg) if r["net"] == "original" and r["eps"] == eps]
    adversarial = [r for r in rows if r["status"] == "adversarial"]
    if not adversarial:
        pytest.skip("the tiny original has no counterexample at the calibrated eps")
    net_path = cfg.seed_dir(adversarial[0]["seed"]) / "original.pt"
    same_seed = [r for r in rows if r["seed"] == adversarial[0]["seed"]]
    x_adv, clean, labels, kept = study.adversarial_batch(cfg, net_path, same_seed, test_set)
    assert len(kept) >= 1 and len(labels) == len(kept) == len(x_adv) == len(clean)
    # Replace one stored counterexample by its clean image (not adversarial): it is no longer used.
    victim = kept[0]
    images, _ = load_embedded_mnist("test")
    load = study.load_counterexample
    monkeypatch.setattr(study, "load_counterexample",
                        lambda c, r: images[r["image"]].reshape(-1) if r is victim else load(c, r))
    _, _, _, kept_after = study.adversarial_batch(cfg, net_path, same_seed, test_set)
    assert victim not in kept_after


def test_rerun_resumes_without_redoing(tiny_run):
    study, cfg, _ = tiny_run
    before = (cfg.run_dir / "milp_rows.jsonl").read_text()
    milp_before = json.loads((cfg.run_dir / "timings.json").read_text())["milp"]
    study.run_study(cfg)
    assert (cfg.run_dir / "milp_rows.jsonl").read_text() == before
    timings = json.loads((cfg.run_dir / "timings.json").read_text())
    assert timings["milp"]["invocations"] == milp_before["invocations"] + 1
    assert timings["original"]["invocations"] == 2  # one per seed, not retrained


def test_open_rows_are_rerun_with_more_time_keeping_the_optimal_ones(tiny_run):
    study, cfg, _ = tiny_run
    path = cfg.run_dir / "milp_rows.jsonl"
    lines = path.read_text().splitlines()
    job = json.loads(lines[0])
    opened = dict(job["rows"][0], solver_status="time_limit", time_limit=1.0, ofv=None, gap=None)
    job["rows"][0] = opened
    path.write_text("\n".join(lines + [json.dumps(job)]) + "\n")  # a later row replaces the earlier one
    study.run_study(cfg)
    rerun = [json.loads(line) for line in path.read_text().splitlines() if json.loads(line)["key"] == job["key"]][-1]
    assert study.row_optimal(rerun["rows"][0], cfg) and rerun["rows"][0]["time_limit"] == 10
    assert rerun["rows"][1:] == job["rows"][1:]  # the optimal targets were kept, not solved again


def test_resume_refuses_rows_made_with_other_settings(tiny_run):
    study, cfg, _ = tiny_run
    from robustmip.errors import InvalidInput
    from robustmip.studies.runs import open_run

    recorded = (cfg.run_dir / "config.json").read_text()
    try:
        open_run(replace(cfg, images=3, eps=[0.05, 0.2], workers=1, max_time_limit=80), cfg.run_dir,
                 study.RESUMABLE_CHANGES)
        with pytest.raises(InvalidInput, match=r"time_limit: 10 -> 5.*another run name"):
            open_run(replace(cfg, time_limit=5), cfg.run_dir, study.RESUMABLE_CHANGES)
        for change in ({"seeds": [0]}, {"decide_time_limit": 0.0}, {"mip_gap": 1e-6}, {"sweep_thresholds": [0.3]}):
            with pytest.raises(InvalidInput, match=next(iter(change))):
                open_run(replace(cfg, **change), cfg.run_dir, study.RESUMABLE_CHANGES)
    finally:
        (cfg.run_dir / "config.json").write_text(recorded)


def test_notebook_executes_on_the_run(tiny_run, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    _, cfg, _ = tiny_run
    monkeypatch.setenv("ROBUSTMIP_RESULTS", str(cfg.report_dir))
    notebook = nbformat.read(ROOT / "notebooks" / "prune_robustness.ipynb", as_version=4)
    nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)
