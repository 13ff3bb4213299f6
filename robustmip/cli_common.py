"""Pieces shared by the ``robustmip`` subcommands: argument types, data/runtime options, error handling."""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from robustmip.data import Dataset, load_dataset
from robustmip.errors import InvalidInput, RobustMipError
from robustmip.training.loops import default_device

Handler = Callable[[argparse.Namespace], int]


EXIT_ERROR = 2


EXIT_INTERRUPTED = 130


def _number(kind: type, minimum: float, strict: bool) -> Callable[[str], Any]:
    """argparse type: a ``kind`` number ``> minimum`` (``strict``) or ``>= minimum``."""
    relation = ">" if strict else ">="

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind.__name__}") from None
        if not (value > minimum if strict else value >= minimum):
            raise argparse.ArgumentTypeError(f"must be {relation} {minimum}, got {text}")
        return value

    parse.__name__ = f"{kind.__name__} {relation} {minimum}"
    return parse


nonneg_float = _number(float, 0, strict=False)


pos_float = _number(float, 0, strict=True)


pos_int = _number(int, 0, strict=True)


nonneg_int = _number(int, 0, strict=False)


def reports_errors(handler: Handler) -> Handler:
    """Turn robustmip errors and Ctrl-C into a one-line message on stderr and an exit code."""

    @functools.wraps(handler)
    def wrapped(args: argparse.Namespace) -> int:
        name = getattr(args, "command", None) or handler.__name__.removeprefix("run_")
        try:
            return handler(args)
        except RobustMipError as exc:
            print(f"robustmip {name}: error: {exc}", file=sys.stderr)
            return EXIT_ERROR
        except KeyboardInterrupt:
            print(f"robustmip {name}: interrupted; no output file was written", file=sys.stderr)
            return EXIT_INTERRUPTED

    return wrapped


def add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="folder holding MNIST/raw (default: $ROBUSTMIP_DATA, "
                        "then ~/.cache/robustmip, then the embedded subset)")
    parser.add_argument("--embedded", action="store_true",
                        help="use the embedded MNIST subset (5000 train / 1000 test images)")


def add_runtime_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--threads", type=pos_int, help="CPU threads for torch (default: torch's)")


def setup_runtime(args: argparse.Namespace) -> torch.device:
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        return torch.device(args.device) if args.device else default_device()
    except RuntimeError as exc:
        raise InvalidInput(f"unknown device {args.device!r}: {exc}") from exc


def load_split(args: argparse.Namespace, split: str) -> Dataset:
    return load_dataset(split, "embedded" if args.embedded else "auto", args.data_dir)


def check_writable(path: Path) -> None:
    """InvalidInput unless ``path`` can be written (its folder is created if missing)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInput(f"cannot create the folder of {path}: {exc.strerror or exc}") from exc
    if path.is_dir() or not os.access(path.parent, os.W_OK):
        raise InvalidInput(f"cannot write {path}: not a writable file location")
