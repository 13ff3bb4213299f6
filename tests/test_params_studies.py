"""The three parameter studies at toy size: they write their reports, resume, and refuse other settings."""

from __future__ import annotations

import json

import pytest
import torch

from robustmip.errors import InvalidInput
from robustmip.studies.app_vs_awp import AppSettings
from robustmip.studies.app_vs_awp import run_study as run_app
from robustmip.studies.param_murthy import MurthySettings
from robustmip.studies.param_murthy import run_study as run_murthy
from robustmip.studies.quant_certify import QuantSettings
from robustmip.studies.quant_certify import run_study as run_quant
from robustmip.studies.runs import load_settings

torch.set_num_threads(1)


def test_murthy_reproduces_the_cat_sigma_row_and_resumes(tmp_path):
    settings = MurthySettings(out_root=str(tmp_path), models=["cat"], deltas=[0.005], map_points=6, map_chunk=3)
    run_murthy(settings)
    report = (settings.run_dir / "report.md").read_text()
    assert "| cat | 0.005 | 0.024 | 0.0244 | 0.021 | 0.0213 | 0.00691 |" in report
    assert "published eps row is inconsistent" in report
    for name in ("table.csv", "map_cat_0.005.csv", "map_cat_0.005.png", "config.json"):
        assert (settings.run_dir / name).is_file()
    before = (settings.run_dir / "table.jsonl").read_text()
    run_murthy(settings)  # resumes: every row is reused
    assert (settings.run_dir / "table.jsonl").read_text() == before
    with pytest.raises(InvalidInput, match="other settings"):
        run_murthy(MurthySettings(out_root=str(tmp_path), models=["cat"], deltas=[0.01], map_points=6, map_chunk=3))


def test_quant_certify_writes_the_bits_table(tmp_path):
    settings = QuantSettings(out_root=str(tmp_path), nets=["demo"], bits=[16, 3], images=2, time_limit=30)
    table = run_quant(settings)
    assert [row[1] for row in table] == [16, 3]
    assert all(row[5] >= row[4] for row in table)  # MILP-certified >= interval-certified
    assert table[0][5] == 2  # 16 bits: both images certified
    assert (settings.run_dir / "bits_table.csv").is_file() and (settings.run_dir / "certified.png").is_file()


def test_app_vs_awp_at_toy_size(tmp_path):
    settings = AppSettings(out_root=str(tmp_path), arch="mlp-10", methods=["standard", "app_abs", "awp"],
                           eps_values=[0.01], lambdas=[0.02], epochs=1, ramp_epochs=0.5, pgd_steps=2, eval_images=50,
                           attack_images=2, certify_images=1, time_limit=20)
    run_app(settings)
    report = (settings.run_dir / "report.md").read_text()
    assert "app_abs" in report and "awp" in report and "certified" in report
    rows = [json.loads(line) for line in (settings.run_dir / "certify.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(r["verdict"] in ("robust", "flips", "unknown") for r in rows)


@pytest.mark.parametrize("study, settings_class", [("param_murthy", MurthySettings), ("quant_certify", QuantSettings),
                                                   ("app_vs_awp", AppSettings)])
def test_shipped_configs_load(study, settings_class):
    for name in ("demo", "full"):
        assert load_settings(study, name, settings_class).run == name
