"""The pruning-robustness study end to end at a tiny size: files, soundness of rows, resume, notebook."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from robustmip.network import Network

ROOT = Path(__file__).resolve().parents[1]


def _study():
    from robustmip.studies import prune_robustness

    return prune_robustness


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    study = _study()
    out = tmp_path_factory.mktemp("study")
    cfg = study.StudyConfig(
        run="tiny", out_root=str(out), embedded=True, arch="mlp-12-12", train_epochs=2, retrain_epochs=1,
        images=2, eps=[0.1], time_limit=30, prune_time_limit=30, backend="serial",
    )
    summary = study.run_study(cfg)
    return study, cfg, summary


def test_study_writes_every_artefact(tiny_run):
    _, cfg, summary = tiny_run
    run = cfg.run_dir
    for name in ("report.md", "config.json", "summary.json", "milp_rows.jsonl", "milp_rows.csv",
                 "adversarial_counts.csv", "reverse_testing.csv", "ofv_time_stats.csv",
                 "per_label_eps0.1.csv", "per_target_eps0.1.csv", "original.pt", "pruned.pt"):
        assert (run / name).is_file(), name
    assert len(list(run.glob("*.png"))) == 8
    config = json.loads((run / "config.json").read_text())
    assert config["data"]["test"]["source"] == "embedded"
    assert set(config["models"]) == {"original", "pruned"} and config["versions"]["torch"]
    report = (run / "report.md").read_text()
    assert "| original | 97.05 |" in report and "Reverse testing" in report
    timings = json.loads((run / "timings.json").read_text())
    assert set(timings) == {"original", "pruned", "milp"} and all(t["seconds"] > 0 for t in timings.values())
    assert summary["stage_seconds"] == timings


def test_rows_are_sound_and_complete(tiny_run):
    _, cfg, _ = tiny_run
    rows = [r for line in (cfg.run_dir / "milp_rows.jsonl").read_text().splitlines() for r in json.loads(line)["rows"]]
    assert len(rows) == 2 * 2 * 9
    from robustmip.data import load_embedded_mnist

    images, _ = load_embedded_mnist("test")
    for r in rows:
        assert r["status"] in ("adversarial", "robust", "unknown")
        if r["status"] == "robust":
            assert r["bound"] > 0 or r["decision_status"] in ("infeasible", "decided by bounds")
        if r["status"] == "adversarial":
            net = Network.load(cfg.run_dir / f"{r['net']}.npz")
            with np.load(cfg.run_dir / "adv" / f"{r['net']}_{r['eps']}_{r['image']}.npz") as data:
                x_adv = data[f"target_{r['target']}"]
            x = images[r["image"]].reshape(-1).astype(np.float64)
            assert np.abs(x_adv - x).max() <= r["eps"] + 1e-9 and x_adv.min() >= 0 and x_adv.max() <= 1
            logits = net.forward(x_adv)
            assert logits[r["target"]] > logits[r["label"]]


def test_rerun_resumes_without_redoing(tiny_run):
    study, cfg, _ = tiny_run
    before = (cfg.run_dir / "milp_rows.jsonl").read_text()
    milp_before = json.loads((cfg.run_dir / "timings.json").read_text())["milp"]
    study.run_study(cfg)
    assert (cfg.run_dir / "milp_rows.jsonl").read_text() == before
    timings = json.loads((cfg.run_dir / "timings.json").read_text())
    assert timings["milp"]["invocations"] == milp_before["invocations"] + 1
    assert timings["original"]["invocations"] == 1  # not retrained


def test_resume_refuses_rows_made_with_other_settings(tiny_run):
    study, cfg, _ = tiny_run
    from dataclasses import replace

    from robustmip.errors import InvalidInput

    study.check_resumable(replace(cfg, images=3, eps=[0.1, 0.2], workers=1))
    with pytest.raises(InvalidInput, match=r"time_limit: 30 -> 5.*another --run"):
        study.check_resumable(replace(cfg, time_limit=5))
    with pytest.raises(InvalidInput, match="decide_time_limit"):
        study.check_resumable(replace(cfg, decide_time_limit=0.0))


def test_notebook_executes_on_the_run(tiny_run, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    _, cfg, _ = tiny_run
    monkeypatch.setenv("ROBUSTMIP_RESULTS", str(cfg.run_dir))
    notebook = nbformat.read(ROOT / "notebooks" / "prune_robustness.ipynb", as_version=4)
    nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)
