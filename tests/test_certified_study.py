"""The certified-training study end to end at toy size: every stage, the report, resume, the settings guard."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from robustmip.errors import DataError, InvalidInput
from robustmip.studies.certified_study import (
    PUBLISHED_TABLE3,
    CertifiedStudyConfig,
    load_config,
    main,
    run_study,
)


def _config(tmp_path, **changes) -> CertifiedStudyConfig:
    values = dict(run="toy", out_root=str(tmp_path), arch="mlp-8", train_eps=[0.5], methods=["ibp", "gm-crown-ibp"],
                  epochs=1, schedule_start=0, schedule_length=1, kappa=[1.0, 0.5], gm_n=2, batch_size=50,
                  train_images=200, images=2, grid_step=0.1, timeout=10, pgd_steps=10, pgd_restarts=2, workers=1,
                  backend="serial", embedded=True)
    values.update(changes)
    return CertifiedStudyConfig(**values)


def test_toy_run_writes_every_output_and_resumes(tmp_path, capsys):
    cfg = _config(tmp_path)
    summary = run_study(cfg)
    run_dir = tmp_path / "toy"
    for name in ("report.md", "table3.csv", "fig3_curves.csv", "training.csv", "fig3.png", "config.json",
                 "training.jsonl", "grid.jsonl", "table_ibp_eps0.5.jsonl", "nets/gm-crown-ibp_eps0.5.npz"):
        assert (run_dir / name).is_file(), name
    rows = summary["table3"]
    assert {(r["eps_eval"], r["method"]) for r in rows} == {(e, m) for (t, e) in PUBLISHED_TABLE3 if t == 0.5
                                                            for m in ("ibp", "gm-crown-ibp")}
    for r in rows:
        assert r["ordered"] and r["pgd"] <= r["exact_lo"] <= r["exact_hi"] <= min(r[m] for m in ("ibp", "lp"))
        assert r["published_verified"] == PUBLISHED_TABLE3[(0.5, r["eps_eval"])][r["method"]][1]
    config = json.loads((run_dir / "config.json").read_text())
    assert config["config"]["gm_n"] == 2 and "torch" in config["versions"] and config["nets"]
    grid = [json.loads(line) for line in (run_dir / "grid.jsonl").read_text().splitlines()]
    assert len(grid) == 4 and all(len(r["exact"]) == 5 for r in grid)
    before = (run_dir / "grid.jsonl").read_text()
    assert run_study(_config(tmp_path, images=2))["table3"] == rows  # resumed: nothing recomputed
    assert (run_dir / "grid.jsonl").read_text() == before
    with pytest.raises(InvalidInput, match="other settings"):
        run_study(_config(tmp_path, epochs=2))


def test_command_line_runs_a_config_file(tmp_path, capsys):
    config = tmp_path / "toy.json"
    config.write_text(json.dumps({k: v for k, v in asdict(_config(tmp_path)).items() if k != "out_root"}))
    assert main(["--config", str(config), "--out-root", str(tmp_path), "--run", "cli", "--images", "1"]) == 0
    assert (tmp_path / "cli" / "report.md").is_file() and "Table 3" in capsys.readouterr().out


def test_configs_are_checked(tmp_path):
    with pytest.raises(InvalidInput, match="methods"):
        _config(tmp_path, methods=["pgd"])
    with pytest.raises(InvalidInput, match="grid"):
        _config(tmp_path, grid_step=0.3)
    assert load_config("demo").run == "demo"
    assert load_config("full").arch == "cnn-crown-small"
    with pytest.raises(DataError):
        load_config(str(tmp_path / "absent.json"))
