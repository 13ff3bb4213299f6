"""``robustmip param-verify``, ``quant-verify`` and ``param-radius``: parameter robustness (:mod:`robustmip.params`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from robustmip.cli.common import (
    add_data_options,
    chosen_images,
    nonneg_float,
    nonneg_int,
    pos_float,
    pos_int,
    print_json,
    reports_errors,
    unit_eps,
)
from robustmip.cli.verify import SOLVER_CHOICES
from robustmip.errors import InvalidInput

PARAM_BOUNDS_CHOICES = ("interval", "lp")


def bits_type(text: str) -> int:
    """argparse type: an integer number of bits ``>= 2`` (a sign bit and a magnitude bit)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 2:
        raise argparse.ArgumentTypeError(f"bits must be >= 2 (a sign bit and at least one magnitude bit), got {text}")
    return value


def _add_solver_options(parser: argparse.ArgumentParser, default_timeout: float) -> None:
    parser.add_argument("--solver", choices=SOLVER_CHOICES, default="highs", help="MILP solver (default highs)")
    parser.add_argument("--timeout", type=pos_float, default=default_timeout,
                        help=f"seconds per question, every stage included (default {default_timeout:g})")
    parser.add_argument("--bounds", choices=PARAM_BOUNDS_CHOICES, default="lp",
                        help="parameter-aware bounds before the MILP (default lp)")
    parser.add_argument("--threads", type=pos_int, default=1, help="CPU threads (solver, LPs, torch; default 1)")
    parser.add_argument("--no-pgd", action="store_true", help="skip param_pgd, the search run before every MILP")


def _add_box_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--relative", action="store_true", help="radius delta * |p| instead of delta")
    parser.add_argument("--layers", type=nonneg_int, nargs="+",
                        help="indices of the layers whose weights and biases move (default: all)")


def _add_image_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=pos_int, default=10, help="first n test images (default 10)")
    parser.add_argument("--indices", type=nonneg_int, nargs="+", help="test image indices (instead of --n)")
    parser.add_argument("--images", type=Path,
                        help=".npz with arrays 'images' in [0,1] and 'labels' (instead of MNIST)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_data_options(parser)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("param-verify", help="can moving the weights by delta reach a VNN-LIB property?",
                       description="Decide a VNN-LIB property under parameter perturbation: every weight and "
                       "bias of the chosen layers moves by at most DELTA (or DELTA |p| with --relative). The "
                       "property's input box (zero width: a fixed input) and its output condition, which must "
                       "not become reachable. First line: robust (proved), flips (a realised, re-checked "
                       "parameter witness) or unknown.")
    p.add_argument("model", help="model: .onnx, .pt checkpoint or .npz network (ReLU layers only)")
    p.add_argument("--vnnlib", required=True, help="the property (.vnnlib): input box and unsafe output condition")
    p.add_argument("--delta", type=nonneg_float, required=True, help="parameter radius (>= 0)")
    _add_box_options(p)
    p.add_argument("--json", action="store_true", help="print a JSON object (status, margin, seconds, ...)")
    _add_solver_options(p, 60.0)
    p.set_defaults(func=run_param_verify)

    p = sub.add_parser("quant-verify", help="exact quantization robustness of test images, per bit width",
                       description="For each bit width, every test image: does the quantized net agree with the "
                       "float net, do interval bounds certify that no rounding to the grid changes the label, and "
                       "the exact verdict over every rounding (robust / flips / unknown). With --eps > 0 the "
                       "given quantized net is also compared with the float net on the input box.")
    p.add_argument("model", help="model: .onnx, .pt checkpoint or .npz network")
    p.add_argument("--bits", type=bits_type, nargs="+", required=True, help="bit widths (>= 2), e.g. 8 6 4")
    p.add_argument("--rounding", choices=("nearest", "floor"), default="nearest",
                   help="rounding of the quantized net and its box (default nearest; floor: radius s)")
    p.add_argument("--eps", type=unit_eps, default=0.0, help="l-inf input radius (default 0: the image itself)")
    _add_image_options(p)
    _add_solver_options(p, 60.0)
    p.set_defaults(func=run_quant_verify)

    p = sub.add_parser("param-radius", help="the largest parameter radius that keeps each test image's label",
                       description="Bracket the largest delta such that no parameter within delta (or delta |p| "
                       "with --relative) changes the label: proven robust below LOWER, a re-checked flip at "
                       "UPPER. One MILP when only layer 0 moves and the input is fixed; bisection otherwise.")
    p.add_argument("model", help="model: .onnx, .pt checkpoint or .npz network")
    _add_box_options(p)
    p.add_argument("--eps", type=unit_eps, default=0.0, help="l-inf input radius (default 0)")
    p.add_argument("--max-delta", type=pos_float, default=1.0, help="largest radius searched (default 1)")
    p.add_argument("--tol", type=pos_float, default=1e-3, help="relative width where bisection stops (default 1e-3)")
    p.add_argument("--method", choices=("milp", "bisection"), help="default: milp when it applies")
    _add_image_options(p)
    _add_solver_options(p, 120.0)
    p.set_defaults(func=run_param_radius)


def _setup(args: argparse.Namespace):
    """``(options, attack)`` of the parsed solver options; torch gets ``--threads`` threads."""
    import torch

    from robustmip.milp import SolveOptions
    from robustmip.params import ParamAttack
    from robustmip.solvers import MilpSolver

    torch.set_num_threads(args.threads)
    options = SolveOptions(MilpSolver(args.solver, args.timeout, args.threads), bounds=args.bounds)
    return options, None if args.no_pgd else ParamAttack()


def _unit_box(net, args: argparse.Namespace, delta: float):
    from robustmip.params import ParamBox

    return (ParamBox.relative if args.relative else ParamBox.uniform)(net, delta, args.layers)


@reports_errors
def run_param_verify(args: argparse.Namespace) -> int:
    from robustmip.io import load_network
    from robustmip.io.vnnlib import load_vnnlib
    from robustmip.params import decide_parameter_property

    options, attack = _setup(args)
    net = load_network(args.model)
    prop = load_vnnlib(args.vnnlib)
    if (prop.n_inputs, prop.n_outputs) != (net.n_inputs, net.n_outputs):
        raise InvalidInput(f"the property has {prop.n_inputs} inputs and {prop.n_outputs} outputs, the network "
                           f"{net.n_inputs} and {net.n_outputs}")
    options.domain = (None, None)
    verdict = decide_parameter_property(net, _unit_box(net, args, args.delta), prop, options, attack=attack)
    if args.json:
        print_json(verdict.to_dict(with_witness=True))
        return 0
    print(verdict.status)
    margin = "" if verdict.margin is None else f"margin {verdict.margin:.6g}, "
    reason = f": {verdict.reason}" if verdict.reason else ""
    print(f"{margin}proof {verdict.proof or '-'}, {verdict.seconds:.2f} s{reason}")
    if verdict.outputs is not None:
        print("re-checked outputs of the realised parameters: " + " ".join(f"{v:.6g}" for v in verdict.outputs))
    return 0


def _print_quant_summary(rows: list[dict]) -> None:
    import numpy as np

    title = (f"{'bits':>4} {'images':>6} {'agree %':>8} {'interval':>8} {'milp':>5} {'flips':>5} {'unknown':>7} "
             f"{'median s':>8}")
    print(title)
    print("-" * len(title))
    for bits in dict.fromkeys(r["bits"] for r in rows):
        sub = [r for r in rows if r["bits"] == bits]
        agree = 100.0 * sum(r["agree"] for r in sub) / len(sub)
        counts = {s: sum(r["status"] == s for r in sub) for s in ("robust", "flips", "unknown")}
        interval = sum(r["interval_certified"] for r in sub)
        median = float(np.median([r["seconds"] for r in sub]))
        print(f"{bits:>4} {len(sub):>6} {agree:>8.1f} {interval:>8} {counts['robust']:>5} {counts['flips']:>5} "
              f"{counts['unknown']:>7} {median:>8.2f}", flush=True)


@reports_errors
def run_quant_verify(args: argparse.Namespace) -> int:
    from robustmip.io import load_network
    from robustmip.params.quantization import quantization_row

    options, _ = _setup(args)
    net = load_network(args.model)
    indices, images, _labels = chosen_images(args)
    rows = []
    for bits in args.bits:
        for i in indices:
            rows.append({"image": i, **quantization_row(net, images[i], bits, args.rounding, args.eps, options)})
    if args.json:
        print_json({"rows": rows})
    else:
        _print_quant_summary(rows)
    return 0


@reports_errors
def run_param_radius(args: argparse.Namespace) -> int:
    from robustmip.io import load_network
    from robustmip.params import parameter_radius

    options, _ = _setup(args)
    net = load_network(args.model)
    unit = _unit_box(net, args, 1.0)
    indices, images, labels = chosen_images(args)
    rows = []
    for i in indices:
        result = parameter_radius(net, images[i], int(labels[i]), unit, args.eps, options, max_delta=args.max_delta,
                                  tol=args.tol, method=args.method)
        rows.append({"image": i, "label": int(labels[i]), **result.to_dict()})
        if not args.json:
            upper = "" if result.upper is None else f"{result.upper:.6g}"
            print(f"{i:>5} {int(labels[i]):>5} {result.status:<8} {result.lower:>12.6g} {upper:>12} {result.method:<9} "
                  f"{result.reason}", flush=True)
    if args.json:
        print_json(rows)
    return 0
