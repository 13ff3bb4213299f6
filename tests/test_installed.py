"""The built wheel runs its main job outside the source checkout (embedded data, shipped config)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_runs_the_study_outside_the_checkout(tmp_path):
    wheels, target, work = tmp_path / "wheels", tmp_path / "site", tmp_path / "elsewhere"
    work.mkdir()
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(wheels), str(ROOT)], check=True, capture_output=True)
    (wheel,) = wheels.glob("robustmip-*.whl")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(target), "ROBUSTMIP_DATA": ""}
    where = subprocess.run([sys.executable, "-c", "import robustmip; print(robustmip.__file__)"], cwd=work, env=env,
                           capture_output=True, text=True, check=True)
    assert Path(where.stdout.strip()).is_relative_to(target), "the installed copy, not the checkout, must run"
    # The shipped demo config by its bare name, shrunk by flags to a tiny run.
    run = subprocess.run(
        [sys.executable, "-m", "robustmip", "study", "--config", "demo", "--out-root", str(work / "runs"),
         "--arch", "mlp-8", "--train-epochs", "1", "--retrain-epochs", "0", "--images", "1", "--eps", "0.05",
         "--timeout", "20", "--max-timeout", "20", "--prune-timeout", "20", "--backend", "serial", "--embedded",
         "--seeds", "0", "--no-calibrate", "--no-retrain-control", "--no-robust-prune", "--sweep-thresholds"],
        cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    report = work / "runs" / "demo" / "report.md"
    assert report.is_file() and "Adversarial pairs found" in report.read_text()
    assert json.loads((work / "runs" / "demo" / "config.json").read_text())["config"]["arch"] == "mlp-8"
