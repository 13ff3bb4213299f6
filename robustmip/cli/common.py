"""Pieces shared by the ``robustmip`` subcommands: argument types, shared options, error handling, printers.

Nothing here imports torch, Pyomo or a solver at module level: ``robustmip --help`` and argument
errors must answer at once. Handlers import what they need when they run.

Flag names mean one thing in every command: ``--timeout`` is seconds per question (Python API:
``time_limit``), ``--threads`` the CPU threads a command may use (solver and torch together),
``--bounds`` a bound algorithm of :mod:`robustmip.bounds`. Old spellings stay for one release as
deprecated aliases (:func:`add_deprecated_alias`), with a warning on stderr.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from robustmip.errors import InvalidInput, RobustMipError

Handler = Callable[[argparse.Namespace], int]
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


def _number(kind: type, minimum: float, strict: bool, maximum: float | None = None) -> Callable[[str], Any]:
    """argparse type: a finite ``kind`` number ``> minimum`` (``strict``) or ``>= minimum``, ``<= maximum``."""
    relation = ">" if strict else ">="

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind.__name__}") from None
        if kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
        if not (value > minimum if strict else value >= minimum):
            raise argparse.ArgumentTypeError(f"must be {relation} {minimum}, got {text}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be <= {maximum}, got {text}")
        return value

    parse.__name__ = f"{kind.__name__} {relation} {minimum}"
    return parse


nonneg_float = _number(float, 0, strict=False)
pos_float = _number(float, 0, strict=True)
pos_int = _number(int, 0, strict=True)
nonneg_int = _number(int, 0, strict=False)
unit_eps = _number(float, 0, strict=False, maximum=1.0)
"""An l-infinity radius in pixel units: a number in [0, 1]."""


def reports_errors(handler: Handler) -> Handler:
    """Turn robustmip errors and Ctrl-C into a one-line message on stderr and an exit code.

    A handler that keeps finished work on disk sets ``args.on_interrupt`` to say where; the message
    then tells the user that a rerun resumes.
    """

    @functools.wraps(handler)
    def wrapped(args: argparse.Namespace) -> int:
        name = getattr(args, "command", None) or handler.__name__.removeprefix("run_")
        try:
            return handler(args)
        except RobustMipError as exc:
            print(f"robustmip {name}: error: {exc}", file=sys.stderr)
            return EXIT_ERROR
        except KeyboardInterrupt:
            note = getattr(args, "on_interrupt", None)
            print(f"robustmip {name}: interrupted" + (f"; {note}" if note else ""), file=sys.stderr)
            return EXIT_INTERRUPTED

    return wrapped


class _DeprecatedAlias(argparse.Action):
    """Stores like the new flag and warns once on stderr that the old spelling is deprecated."""

    def __init__(self, option_strings, dest, new: str, inner: str = "store", **kwargs):
        self.new, self.inner = new, inner
        if inner == "store_true":
            kwargs["nargs"] = 0
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"robustmip: warning: {option_string} is deprecated and will be removed; use {self.new}",
              file=sys.stderr)
        setattr(namespace, self.dest, True if self.inner == "store_true" else values)


def add_deprecated_alias(parser: argparse.ArgumentParser, old: str, new: str, dest: str, **kwargs) -> None:
    """Accept ``old`` as a deprecated spelling of ``new`` (same ``dest``), hidden from ``--help``."""
    parser.add_argument(old, dest=dest, action=_DeprecatedAlias, new=new, help=argparse.SUPPRESS, **kwargs)


def add_threads_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--threads", type=pos_int,
                        help=f"CPU threads to use ({what}; default: every core of this machine)")


def default_threads() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="folder holding MNIST/raw (default: $ROBUSTMIP_DATA, "
                        "then ~/.cache/robustmip, then the embedded subset)")
    parser.add_argument("--embedded", action="store_true",
                        help="use the embedded MNIST subset (5000 train / 1000 test images)")


def add_runtime_options(parser: argparse.ArgumentParser) -> None:
    """``--seed``, ``--device`` and ``--threads`` (torch threads) of the torch commands."""
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    add_threads_option(parser, "torch")


def setup_runtime(args: argparse.Namespace):
    """Set torch's threads and return the torch device of ``args``."""
    import torch

    from robustmip.training.loops import default_device

    torch.set_num_threads(args.threads or default_threads())
    try:
        return torch.device(args.device) if args.device else default_device()
    except RuntimeError as exc:
        raise InvalidInput(f"unknown device {args.device!r}: {exc}") from exc


def load_split(args: argparse.Namespace, split: str):
    from robustmip.data import load_dataset

    return load_dataset(split, "embedded" if args.embedded else "auto", args.data_dir)


def chosen_images(args: argparse.Namespace):
    """``(indices, images, labels)`` chosen by ``--images`` (a .npz) or the MNIST test set, and
    ``--indices`` / ``--n`` (the first n); InvalidInput for an index out of range."""
    import numpy as np

    if getattr(args, "images", None) is not None:
        from robustmip.data import load_image_file

        images, labels = load_image_file(args.images)
        indices = list(range(len(labels))) if args.indices is None else args.indices
    else:
        from robustmip.data import load_dataset

        data = load_dataset("test", "embedded" if args.embedded else "auto", args.data_dir)
        images, labels = data.images, data.labels
        indices = list(range(min(args.n, len(data)))) if args.indices is None else args.indices
    bad = [i for i in indices if not 0 <= i < len(labels)]
    if bad:
        raise InvalidInput(f"image indices {bad[:5]} are out of range (there are {len(labels)} images)")
    return indices, np.asarray(images), np.asarray(labels)


def check_writable(path: Path) -> None:
    """InvalidInput unless ``path`` can be written (its folder is created if missing)."""
    path = Path(path)
    if path.is_dir():
        raise InvalidInput(f"cannot write {path}: it is a directory; give a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInput(f"cannot create the folder of {path}: {exc.strerror or exc}") from exc
    if not os.access(path.parent, os.W_OK):
        raise InvalidInput(f"cannot write {path}: its folder is not writable")


def print_json(value: Any) -> None:
    """``value`` as indented JSON on stdout (NaN and infinities as null, never invalid JSON)."""
    print(json.dumps(_finite(value), indent=2))


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def verdict_row(index: int, verdict) -> dict:
    """A :class:`~robustmip.milp.Verdict` as a row with the test image's index and its total seconds."""
    row = {"image": index, **verdict.to_dict()}
    row["time_s"] = sum(verdict.times.values())
    return row


def print_verdict_table(rows: list[dict], header: bool = True, stream=None) -> None:
    """A fixed-width table of verdict rows (``header=False`` appends rows to a table already printed)."""
    stream = stream or sys.stdout
    title = f"{'image':>5} {'label':>5} {'eps':>6} {'verdict':<11} {'proof':<6} {'adv':>4} {'margin':>9} {'time s':>7}  reason"
    if header:
        print(title, file=stream)
        print("-" * len(title), file=stream)
    for r in rows:
        margin = "" if r["counterexample_margin"] is None else f"{r['counterexample_margin']:.4f}"
        adv = "" if r["predicted"] is None else str(r["predicted"])
        print(
            f"{r['image']:>5} {r['label']:>5} {r['eps']:>6.3f} {r['status']:<11} {r['proof'] or '':<6} {adv:>4} "
            f"{margin:>9} {r['time_s']:>7.2f}  {r['reason']}",
            file=stream, flush=True,
        )


def attack_description(attack) -> str:
    """One line describing a :class:`~robustmip.attacks.gradient.PGDConfig`."""
    return (f"eps {attack.eps:g}, {attack.steps} steps of {attack.step_size:.4g}, "
            f"{attack.restarts} restart{'s' if attack.restarts > 1 else ''}")


def print_epoch(stats, epochs: int) -> None:
    """One line per finished training epoch (:class:`~robustmip.training.loops.EpochStats`)."""
    test = f"  test acc {stats.test_accuracy:.4f}" if stats.test_accuracy is not None else ""
    eps = f"  eps {stats.eps:.4f}" if stats.eps > 0 else ""
    metrics = "".join(f"  test {k.removeprefix('test_').replace('_', ' ')} {v:.4f}"
                      for k, v in stats.stats.items() if k.startswith("test_"))
    print(f"epoch {stats.epoch}/{epochs}  loss {stats.loss:.4f}  train acc "
          f"{stats.train_accuracy:.4f}{test}{eps}{metrics}  {stats.seconds:.1f} s", flush=True)
