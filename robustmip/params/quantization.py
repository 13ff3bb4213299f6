"""Exact quantization checks of one input (or input box) for a k-bit grid.

Two questions, both with checked verdicts:

(a) :func:`quantized_disagreement`: the *given* quantized net (:func:`quantize_network`) against the
    float net on an input box: can they give different labels? (a :class:`PairProblem`, both nets
    plain, one shared input);
(b) :func:`every_rounding`: can *any* rounding of the weights to the grid (the quantization box,
    :meth:`ParamBox.quantization`) change the float net's label of ``x`` (or of an input within ``eps``)?

:func:`quantization_row` answers both for one image and one bit width, with the agreement of the
plain quantized net, whether interval bounds alone certify (b), and the time: a row of the bits table
of ``robustmip quant-verify`` and :mod:`robustmip.studies.quant_certify`.
"""

from __future__ import annotations

import time

import numpy as np

from robustmip.milp.options import SolveOptions
from robustmip.network import Network
from robustmip.params.attack import ParamAttack
from robustmip.params.bounds import compute_param_bounds
from robustmip.params.box import ParamBox, Rounding
from robustmip.params.differential import PairProblem
from robustmip.params.problem import ParamVerdict, is_flip, slack_upper_bound
from robustmip.params.quantize import quantize_network
from robustmip.params.verify import verify_parameter_robustness
from robustmip.spec import input_box, robustness_conjunctions


def quantized_disagreement(net: Network, quantized: Network, lower: np.ndarray, upper: np.ndarray,
                           options: SolveOptions | None = None) -> ParamVerdict:
    """Can ``quantized`` and ``net`` give different labels in ``[lower, upper]``? (``flips`` with a witness.)"""
    return PairProblem(net, lower, upper, other=quantized, options=options).disagreement()


def every_rounding(net: Network, bits: int, rounding: Rounding, x: np.ndarray, label: int, eps: float = 0.0,
                   options: SolveOptions | None = None, attack: ParamAttack | None = ParamAttack()) -> ParamVerdict:
    """Can some rounding of every layer's weights to its ``bits``-bit grid change ``label`` near ``x``?"""
    return verify_parameter_robustness(net, ParamBox.quantization(net, bits, rounding), x, label, eps, options,
                                       attack=attack)


def interval_certified(net: Network, box: ParamBox, lower: np.ndarray, upper: np.ndarray, label: int) -> bool:
    """Whether interval bounds over both boxes alone prove that no class reaches ``label``'s logit."""
    bounds = compute_param_bounds(net, box, lower, upper, "interval")
    targets = [t for t in range(net.n_outputs) if t != label]
    return all(not is_flip(slack_upper_bound(bounds, conjunction), strict=True)
               for conjunction in robustness_conjunctions(net.n_outputs, label, targets))


def quantization_row(net: Network, x: np.ndarray, bits: int, rounding: Rounding = "nearest", eps: float = 0.0,
                     options: SolveOptions | None = None) -> dict:
    """One image at one bit width: agreement, interval certificate, exact verdicts, seconds.

    The label is the float net's prediction on ``x``. Keys: ``bits``, ``label``, ``quantized_label``,
    ``agree`` (the plain quantized net predicts the label on ``x``), ``interval_certified``,
    ``status`` (every rounding: robust / flips / unknown), ``proof``, ``margin``, ``seconds``, and with
    ``eps > 0`` ``differential`` (the given quantized net against the float net on the input box).
    """
    options = options or SolveOptions()
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    label = int(np.argmax(net.forward(x)))
    quantized = quantize_network(net, bits, rounding)
    box = ParamBox.quantization(net, bits, rounding)
    lower, upper = input_box(x, eps, *options.domain)
    start = time.perf_counter()
    certified = interval_certified(net, box, lower, upper, label)
    interval_seconds = time.perf_counter() - start
    verdict = every_rounding(net, bits, rounding, x, label, eps, options)
    row = {"bits": int(bits), "rounding": rounding, "eps": float(eps), "label": label,
           "quantized_label": int(np.argmax(quantized.forward(x))),
           "agree": bool(np.argmax(quantized.forward(x)) == label), "interval_certified": certified,
           "interval_seconds": interval_seconds, "status": verdict.status, "proof": verdict.proof,
           "margin": verdict.margin, "reason": verdict.reason, "seconds": verdict.seconds,
           "milp_seconds": verdict.times.get("solve", 0.0) + verdict.times.get("build", 0.0)}
    if eps > 0:
        row["differential"] = quantized_disagreement(net, quantized, lower, upper, options).status
    return row
