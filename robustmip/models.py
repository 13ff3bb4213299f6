"""Named MNIST architectures (checkpoints: :mod:`robustmip.io.checkpoint`).

Every model is a plain ``torch.nn.Sequential`` of ``Flatten``, ``Linear``, ``ReLU`` and
``Conv2d`` layers that takes images ``(N, 1, 28, 28)`` in ``[0, 1]`` and returns logits
``(N, 10)``; no normalization layer (inputs are used as they are), so a ``Network`` sees the
same function.

Architectures (:func:`build_model`):

- ``mlp-H1-H2-...``: fully connected ``784-H1-H2-...-10`` with ReLU after every hidden layer,
  e.g. ``mlp-50-50``, ``mlp-100-100``;
- ``lenet-300-100``: the classic ``784-300-100-10`` MLP (same as ``mlp-300-100``);
- ``cnn-small``: two convolutions and one fully connected layer (the shape of Wang et al.'s
  MNIST network, whose paper gives no sizes; these are Wong & Kolter's small-CNN convolutions):
  ``Conv2d(1,16,4,stride=2,padding=1)-ReLU-Conv2d(16,32,4,stride=2,padding=1)-ReLU-Flatten-
  Linear(32*7*7,10)``.
"""

from __future__ import annotations

from functools import partial
from typing import Callable

import torch
from torch import nn

from robustmip.errors import InvalidInput

INPUT_SIZE = 28 * 28
NUM_CLASSES = 10
NAMED_ARCHITECTURES = ("mlp-50-50", "mlp-100-100", "lenet-300-100", "cnn-small", "cnn-crown-small")


def _mlp(hidden: list[int]) -> nn.Sequential:
    """``Flatten`` then ``784-hidden...-10`` Linear layers with ReLU between them."""
    widths = [INPUT_SIZE, *hidden, NUM_CLASSES]
    layers: list[nn.Module] = [nn.Flatten()]
    for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(fan_in, fan_out))
        if i < len(hidden):
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _convfc(channels: list[int]) -> nn.Sequential:
    """``Conv2d(.., C, 4, stride 2, padding 1)-ReLU`` per width in ``channels``, then ``Flatten-Linear(.., 10)``."""
    layers: list[nn.Module] = []
    side, previous = 28, 1
    for width in channels:
        layers += [nn.Conv2d(previous, width, 4, stride=2, padding=1), nn.ReLU()]
        side, previous = side // 2, width
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(previous * side * side, NUM_CLASSES))


def _cnn_crown_small() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 4, 4, stride=2, padding=1), nn.ReLU(),  # 4 x 14 x 14
        nn.Conv2d(4, 8, 4, stride=2, padding=1), nn.ReLU(),  # 8 x 7 x 7
        nn.Flatten(),
        nn.Linear(8 * 7 * 7, 128), nn.ReLU(),
        nn.Linear(128, NUM_CLASSES),
    )


def _parse_hidden(arch: str) -> list[int]:
    """Hidden widths of ``mlp-H1-H2-...`` / ``lenet-H1-H2-...``; InvalidInput when malformed."""
    parts = arch.split("-")[1:]
    if not parts or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise InvalidInput(f"malformed architecture {arch!r}: hidden widths must be positive "
                           "integers, e.g. mlp-100-100")
    return [int(p) for p in parts]


def build_model(arch: str, seed: int | None = None) -> nn.Sequential:
    """A freshly initialised model of architecture ``arch`` (see the module doc).

    With ``seed``, the initial weights are a function of the seed only (the global torch RNG
    is left untouched); without it they come from the global RNG.
    Raises :class:`InvalidInput` for an unknown or malformed name.
    """
    builder: Callable[[], nn.Sequential]
    if arch == "cnn-small":
        builder = partial(_convfc, [16, 32])
    elif arch == "cnn-crown-small":
        builder = _cnn_crown_small
    elif arch.startswith("mlp-") or arch == "lenet-300-100":
        builder = partial(_mlp, _parse_hidden(arch))
    elif arch.startswith("conv-") and len(_parse_hidden(arch)) <= 3:
        builder = partial(_convfc, _parse_hidden(arch))
    else:
        raise InvalidInput(f"unknown architecture {arch!r}; use mlp-H1-H2-... (e.g. mlp-100-100), "
                           f"conv-C1-... (at most 3 convolutions, e.g. conv-16) or one of "
                           f"{', '.join(NAMED_ARCHITECTURES)}")
    if seed is None:
        return builder()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return builder()
