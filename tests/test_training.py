"""Standard and PGD adversarial training on the embedded subset."""

from __future__ import annotations

import pytest
import torch

from robustmip.attacks import clean_accuracy
from robustmip.data import load_dataset
from robustmip.errors import InvalidInput
from robustmip.models import build_model
from robustmip.training import (
    PGDAdversarial,
    PGDConfig,
    Ramp,
    StepContext,
    ramp_eps,
    retrain,
    train,
)


@pytest.fixture(scope="module")
def train_set():
    torch.set_num_threads(1)
    return load_dataset("train", "embedded")


@pytest.fixture(scope="module")
def test_set():
    return load_dataset("test", "embedded")


def weights(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def test_one_epoch_improves_accuracy(train_set, test_set):
    model = build_model("mlp-50-50", seed=0)
    before = clean_accuracy(model, test_set.images, test_set.labels)
    history = train(model, train_set, test_set, epochs=1, seed=0, device="cpu", progress=False)
    after = clean_accuracy(model, test_set.images, test_set.labels)
    assert before < 0.3 and after > 0.75
    assert history.last.test_accuracy == after
    assert history.last.eps == 0.0 and history.last.loss > 0


@pytest.mark.parametrize("adv", [None, PGDConfig(0.1, steps=3)])
def test_same_seed_gives_identical_weights(train_set, adv):
    data = train_set.head(1000)
    runs = []
    for seed in (4, 4, 5):
        model = build_model("mlp-20", seed=0)
        train(model, data, epochs=1, seed=seed, batch_size=64, objective=adv and PGDAdversarial(adv),
              device="cpu", progress=False)
        runs.append(weights(model))
    assert all(torch.equal(a, b) for a, b in zip(runs[0], runs[1]))
    assert not all(torch.equal(a, c) for a, c in zip(runs[0], runs[2]))


def test_adversarial_training_with_eps_ramp(train_set):
    model = build_model("mlp-20", seed=0)
    data = train_set.head(1280)  # 10 batches of 128 per epoch
    seen = []
    history = train(model, data, epochs=3, seed=0, objective=PGDAdversarial(PGDConfig(0.1, steps=2), 2),
                    device="cpu", progress=False, on_epoch=seen.append)
    assert [e.eps for e in history.epochs] == pytest.approx([0.05, 0.1, 0.1])
    assert seen == history.epochs
    assert [e["epoch"] for e in history.to_dict()["epochs"]] == [1, 2, 3]


def test_ramp_eps_is_linear_per_batch():
    assert [ramp_eps(0.1, s, 4) for s in range(6)] == pytest.approx(
        [0.025, 0.05, 0.075, 0.1, 0.1, 0.1])
    assert ramp_eps(0.1, 0, 0) == 0.1


def test_retraining_continues_from_the_given_weights(train_set, test_set):
    assert retrain is train
    model = build_model("mlp-50-50", seed=0)
    first = train(model, train_set, epochs=1, seed=0, device="cpu", progress=False)
    second = retrain(model, train_set, epochs=1, seed=1, device="cpu", progress=False)
    assert second.last.loss < first.last.loss


@pytest.mark.parametrize("kwargs, match", [({"epochs": 0}, "epochs"),
                                           ({"epochs": 1, "lr": 0.0}, "learning rate"),
                                           ({"epochs": 1, "batch_size": 0}, "batch size"),
                                           ({"epochs": 1, "optimizer": "lbfgs"}, "optimizer")])
def test_invalid_settings(train_set, kwargs, match):
    with pytest.raises(InvalidInput, match=match):
        train(build_model("mlp-5"), train_set, device="cpu", progress=False, **kwargs)


def test_mismatched_data_is_invalid():
    data = (torch.zeros(4, 1, 28, 28).numpy(), torch.zeros(3, dtype=torch.int64).numpy())
    with pytest.raises(InvalidInput, match="labels"):
        train(build_model("mlp-5"), data, epochs=1, device="cpu", progress=False)


def test_ramp_schedule_per_batch():
    ctx = lambda step: StepContext(epoch=1, step=step, steps_per_epoch=4, generator=torch.Generator())  # noqa: E731
    ramp = Ramp(0.0, 0.4, length=1.0)
    assert [ramp(ctx(s)) for s in range(6)] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.4, 0.4])
    delayed = Ramp(1.0, 0.0, length=1.0, delay=1.0)
    assert [delayed(ctx(s)) for s in range(9)] == pytest.approx([1.0] * 4 + [0.75, 0.5, 0.25, 0.0, 0.0])
    with pytest.raises(InvalidInput):
        PGDAdversarial(PGDConfig(0.1), ramp_epochs=-1)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_interrupted_run_resumes_bit_for_bit(train_set, tmp_path, optimizer):
    """Stopping after epoch 1 and resuming gives the weights of an uninterrupted run; other settings are refused."""
    data = train_set.head(640)
    objective = PGDAdversarial(PGDConfig(0.1, steps=2), ramp_epochs=1)
    settings = dict(epochs=2, seed=3, batch_size=64, objective=objective, optimizer=optimizer, device="cpu",
                    progress=False)
    straight = build_model("mlp-20", seed=0)
    train(straight, data, **settings)

    state = tmp_path / "run.state"

    def stop_after_first(stats):
        if stats.epoch == 1:
            raise KeyboardInterrupt

    first = build_model("mlp-20", seed=0)
    with pytest.raises(KeyboardInterrupt):
        train(first, data, **settings, resume_path=state, on_epoch=stop_after_first)
    assert state.is_file()
    with pytest.raises(InvalidInput, match="lr"):
        train(build_model("mlp-20", seed=0), data, **{**settings, "lr": 0.5}, resume_path=state)
    resumed = build_model("mlp-20", seed=0)
    seen = []
    history = train(resumed, data, **settings, resume_path=state, on_epoch=seen.append)
    assert [e.epoch for e in seen] == [1, 2] and len(history.epochs) == 2
    assert all(torch.equal(a, b) for a, b in zip(weights(straight), weights(resumed)))
