"""``train``, ``attack`` and ``info`` subcommands, run in-process through argparse."""

from __future__ import annotations

import argparse
import contextlib
import io
import json

import numpy as np
import pytest

from robustmip.cli import train as cli_train


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="robustmip")
    cli_train.add_parsers(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    return args.func(args)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny PGD-trained checkpoint on the embedded subset, and what training printed."""
    path = tmp_path_factory.mktemp("cli") / "tiny.pt"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = run("train", "--arch", "mlp-20", "--epochs", "1", "--adv-eps", "0.05",
                   "--pgd-steps", "3", "--eps-ramp-epochs", "1", "--eval-steps", "5",
                   "--embedded", "--threads", "1", "--device", "cpu", "--out", str(path))
    assert code == 0
    return path, printed.getvalue()


@pytest.fixture
def checkpoint(trained):
    return trained[0]


def test_train_prints_progress_and_accuracies(trained):
    checkpoint, out = trained
    assert checkpoint.is_file()
    assert "epoch 1/1" in out and "loss" in out
    assert "clean test accuracy" in out and "PGD test accuracy (eps 0.05" in out


def test_info_prints_metadata(checkpoint, capsys):
    assert run("info", str(checkpoint)) == 0
    out = capsys.readouterr().out
    assert "arch: mlp-20" in out and "clean_test_accuracy" in out and '"ramp_epochs": 1' in out
    assert run("info", str(checkpoint), "--json") == 0
    meta = json.loads(capsys.readouterr().out)
    assert meta["arch"] == "mlp-20" and meta["train_config"]["objective"]["attack"]["eps"] == 0.05
    assert 0 <= meta["metrics"]["pgd_test_accuracy"] <= meta["metrics"]["clean_test_accuracy"]


def test_attack_prints_and_saves_adversarial_images(checkpoint, tmp_path, capsys):
    adv_path = tmp_path / "adv.npz"
    assert run("attack", str(checkpoint), "--eps", "0.1", "--n", "50", "--steps", "5",
               "--embedded", "--save-adv", str(adv_path), "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 50 and 0 <= result["pgd_accuracy"] <= result["clean_accuracy"] <= 1
    with np.load(adv_path) as saved:
        x_adv, labels = saved["x_adv"], saved["labels"]
    assert x_adv.shape == (50, 1, 28, 28) and labels.shape == (50,)
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert run("attack", str(checkpoint), "--eps", "0.1", "--n", "50", "--steps", "5",
               "--embedded") == 0
    assert "PGD accuracy (eps 0.1, 5 steps" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["train", "--arch", "vgg16", "--embedded"], "unknown architecture"),
    (["attack", "MISSING", "--eps", "0.1", "--embedded"], "not found"),
    (["info", "MISSING"], "does not exist"),
    (["train", "--data-dir", "NODATA"], "no MNIST train IDX files"),
])
def test_bad_input_gives_message_and_nonzero_exit(tmp_path, capsys, argv, message):
    argv = [a.replace("MISSING", str(tmp_path / "absent.pt")).replace("NODATA", str(tmp_path))
            for a in argv]
    out = tmp_path / "out.pt"
    assert run(*argv, *(["--out", str(out)] if argv[0] == "train" else [])) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("argv", [["attack", "m.pt", "--eps", "-0.1"],
                                  ["train", "--out", "m.pt", "--epochs", "0"],
                                  ["train", "--out", "m.pt", "--adv-eps", "abc"]])
def test_out_of_domain_numbers_are_rejected_by_the_parser(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        run(*argv)
    assert exit_info.value.code == 2
    assert "error: argument" in capsys.readouterr().err


def test_output_that_cannot_be_written_fails_before_training(tmp_path, monkeypatch, capsys):
    def must_not_train(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr("robustmip.training.loops.train", must_not_train)
    assert run("train", "--embedded", "--out", str(tmp_path)) == 2
    assert "cannot write" in capsys.readouterr().err


def test_interrupted_training_writes_nothing(tmp_path, monkeypatch, capsys):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("robustmip.training.loops.train", interrupt)
    out = tmp_path / "m.pt"
    assert run("train", "--embedded", "--out", str(out)) == 130
    assert not out.exists() and "interrupted" in capsys.readouterr().err
