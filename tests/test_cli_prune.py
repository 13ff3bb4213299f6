"""``robustmip prune`` end to end on a tiny model and the embedded MNIST subset."""

from __future__ import annotations

import argparse
import json

import pytest
import torch

from robustmip.cli import prune as cli_prune
from robustmip.cli import train as cli_train
from robustmip.data import load_dataset
from robustmip.io.checkpoint import load_checkpoint, save_checkpoint
from robustmip.models import build_model
from robustmip.training import train


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="robustmip")
    sub = parser.add_subparsers(dest="command")
    cli_train.add_parsers(sub)
    cli_prune.add_parsers(sub)
    args = parser.parse_args(list(argv))
    return args.func(args)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny mlp-16-12 trained for one epoch on the embedded subset."""
    torch.set_num_threads(1)
    data = load_dataset("train", "embedded")
    model = build_model("mlp-16-12", seed=0)
    train(model, data, epochs=1, seed=0, device="cpu", progress=False)
    path = tmp_path_factory.mktemp("prune") / "tiny.pt"
    save_checkpoint(path, model.eval(), "mlp-16-12", {"epochs": 1}, data.fingerprint, 0, {})
    return path


def test_prune_prints_counts_accuracies_and_saves_a_smaller_checkpoint(checkpoint, tmp_path, capsys):
    out = tmp_path / "pruned.pt"
    assert run("prune", str(checkpoint), "--images-per-class", "1", "--threshold", "0.1",
               "--retrain-epochs", "1", "--embedded", "--threads", "1", "--device", "cpu",
               "--out", str(out)) == 0
    text = capsys.readouterr().out
    assert "round 1: MIP optimal" in text and "binaries" in text
    assert "layer 0: kept" in text and "/16 neurons" in text and "/12 neurons" in text
    assert "accuracy before pruning" in text and "after pruning" in text and "after retraining" in text
    model, meta = load_checkpoint(out)
    kept = meta.train_config["pruning"]["kept"]
    assert meta.arch == f"mlp-{kept[0]}-{kept[1]}" and kept[0] <= 16 and kept[1] <= 12
    assert meta.train_config["pruning"]["threshold"] == 0.1
    assert meta.train_config["parent"]["arch"] == "mlp-16-12" and len(meta.train_config["parent"]["sha256"]) == 64
    assert 0 <= meta.metrics["clean_test_accuracy"] <= 1
    assert meta.metrics["rounds"][0]["importance"]["n_images"] == 10


def test_prune_with_adversarial_retraining_and_json(checkpoint, tmp_path, capsys):
    out = tmp_path / "adv.pt"
    assert run("prune", str(checkpoint), "--retrain-epochs", "1", "--adv-eps", "0.05", "--pgd-steps", "2",
               "--eval-steps", "3", "--eval-n", "50", "--rounds", "2", "--bounds", "published",
               "--embedded", "--threads", "1", "--device", "cpu", "--json", "--out", str(out)) == 0
    captured = capsys.readouterr()
    assert "PGD accuracy before pruning" in captured.err and "round 2:" in captured.err
    assert "warning: --bounds is deprecated" in captured.err
    rounds = json.loads(captured.out)["rounds"]  # stdout holds the JSON alone
    assert len(rounds) == 2 and rounds[1]["mask"]["total"] == rounds[0]["mask"]["kept"]
    _, meta = load_checkpoint(out)
    assert meta.train_config["retrain"]["adv"]["eps"] == 0.05 and "pgd_test_accuracy" in meta.metrics


@pytest.mark.parametrize("argv, message", [
    (["prune", "MISSING", "--embedded"], "does not exist"),
    (["prune", "CNN", "--embedded", "--retrain-epochs", "0"], "cannot prune"),
])
def test_bad_input_gives_one_line_error(tmp_path, capsys, argv, message):
    cnn = tmp_path / "cnn.pt"
    save_checkpoint(cnn, build_model("cnn-small", seed=0), "cnn-small", {}, "fp", 0, {})
    argv = [a.replace("MISSING", str(tmp_path / "absent.pt")).replace("CNN", str(cnn)) for a in argv]
    out = tmp_path / "out.pt"
    assert run(*argv, "--out", str(out)) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and not out.exists()


def test_negative_threshold_is_rejected_by_the_parser(capsys):
    with pytest.raises(SystemExit):
        run("prune", "m.pt", "--out", "p.pt", "--threshold", "-1")
    assert "error: argument --threshold" in capsys.readouterr().err
