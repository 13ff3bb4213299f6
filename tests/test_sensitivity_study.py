"""The sensitivity study end to end at toy size (slow: about 2 minutes on a busy 2-core machine): every stage,
the report, resuming, refusing other settings; its configs and CLI errors (fast)."""

from __future__ import annotations

import json

import pytest

from robustmip.cli import main
from robustmip.errors import InvalidInput
from robustmip.studies.sensitivity_study import SensitivityStudyConfig, load_config, run_study

TOY = {"embedded": True, "train_images": 100, "batch_size": 50, "table1_arch": "conv-1-1", "table1_epochs": 1,
       "table23_arch": "conv-1", "table23_epochs": 1, "kw_ramp_epochs": 1, "metrics_test": 20, "metrics_train": 20,
       "exact_images": 1, "exact_timeout": 1, "iris_minima": 2, "iris_samples": 1, "iris_iterations": 20,
       "iris_sigmas": [0.1], "iris_timeout": 1, "backend": "serial"}


@pytest.mark.slow
def test_toy_study_writes_every_table_and_resumes(tmp_path, capsys):
    cfg = SensitivityStudyConfig(run="toy", out_root=str(tmp_path), **TOY)
    summary = run_study(cfg)
    run = tmp_path / "toy"
    report = (run / "report.md").read_text()
    for title in ("Table 1 (test)", "Table 2 (training data)", "Table 3 (test)", "Iris energy landscape",
                  "S_dual / S_exact"):
        assert title in report
    for name in ("table1.csv", "table2.csv", "table3.csv", "exact_gap.csv", "iris_minima.csv", "config.json",
                 "sense_table1.png", "iris_energy_sigma0.1.png"):
        assert (run / name).is_file(), name
    assert set(summary["table3"]) == {"base", "kw", "sm"}
    rows = [json.loads(line) for line in (run / "exact_rows.jsonl").read_text().splitlines()]
    assert len(rows) == 7 and all(r["log10_kw"] >= r["log10_exact"] - 1e-9 for r in rows)
    assert all(r["decision"] in ("sat", "unsat", "unknown") for r in rows)
    assert all(not r["pgd_adversarial"] or r["decision"] == "sat" for r in rows)
    config = json.loads((run / "config.json").read_text())
    assert config["config"]["table1_arch"] == "conv-1-1" and "torch" in config["versions"]
    stamp = (run / "models" / "table1_sm.pt").stat().st_mtime
    run_study(cfg)  # everything reused
    assert (run / "models" / "table1_sm.pt").stat().st_mtime == stamp
    with pytest.raises(InvalidInput, match="sigma"):
        run_study(SensitivityStudyConfig(run="toy", out_root=str(tmp_path), **{**TOY, "sigma": 0.1}))


def test_shipped_configs_load_and_bad_settings_are_named(tmp_path):
    for name in ("demo", "full"):
        assert isinstance(load_config(name), SensitivityStudyConfig)
    with pytest.raises(InvalidInput, match="iris_sigmas"):
        SensitivityStudyConfig(iris_sigmas=[])
    (tmp_path / "bad.json").write_text('{"epochs": 3}')
    with pytest.raises(InvalidInput, match="unknown fields"):
        load_config(str(tmp_path / "bad.json"))


def test_cli_refuses_a_missing_config(capsys):
    assert main(["sensitivity-study", "--config", "no-such-config"]) == 2
    assert "not found" in capsys.readouterr().err
