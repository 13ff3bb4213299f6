"""Objectives and side constraints over an :class:`~robustmip.milp.encode.EncodedNetwork`.

All margins follow Bai et al. 2020 eq. (1): ``(e_y - e_t)^T z_out``, the label's logit minus the
target's. A negative optimum (the "OFV") means the MILP found an input the net assigns to ``t``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pyomo.environ as pyo

from robustmip.bounds import Bounds
from robustmip.errors import InvalidInput
from robustmip.milp.encode import EncodedNetwork
from robustmip.spec import OutputConjunction, check_conjunctions, robustness_conjunctions


def _check_class(enc: EncodedNetwork, c: int, what: str) -> int:
    if not 0 <= int(c) < enc.net.n_outputs:
        raise InvalidInput(f"{what} {c} is not a class of a network with {enc.net.n_outputs} outputs")
    return int(c)


def targeted_margin(enc: EncodedNetwork, label: int, target: int):
    """Expression ``z_label - z_target`` (logit units)."""
    label, target = _check_class(enc, label, "label"), _check_class(enc, target, "target")
    if label == target:
        raise InvalidInput("target must differ from the label")
    return enc.logits[label] - enc.logits[target]


def candidate_targets(bounds: Bounds, label: int) -> list[int]:
    """Classes that may reach ``label``'s logit somewhere in the box: upper bound >= the label's lower bound."""
    lower, upper = bounds.lower[-1], bounds.upper[-1]
    return [t for t in range(lower.shape[0]) if t != label and upper[t] >= lower[label]]


def _slack_interval(enc: EncodedNetwork, a: np.ndarray, c: float) -> tuple[float, float]:
    """Interval of ``c - a . z_out`` over the logit bounds."""
    lower, upper = enc.bounds.lower[-1], enc.bounds.upper[-1]
    lo = c - float(np.maximum(a, 0) @ upper + np.minimum(a, 0) @ lower)
    hi = c - float(np.maximum(a, 0) @ lower + np.minimum(a, 0) @ upper)
    return lo, hi


def add_disjunction(enc: EncodedNetwork, conjunctions: Sequence[OutputConjunction], name: str = "disjunction") -> pyo.Var:
    """Add ``s <= max_i min_j (c_ij - A_ij . z_out)`` (with equality at the maximum of ``s``); return ``s``.

    ``s >= 0`` is feasible iff some conjunction ``A_i z_out <= c_i`` holds entirely. One selector binary
    per conjunction picks which one bounds ``s``; with a single conjunction none is needed. The big-M of
    each row is ``max(s) - min(slack)``, from interval bounds over the logit bounds.
    """
    rows = []
    for A, c in check_conjunctions(conjunctions, enc.net.n_outputs):
        rows.append([(A[j], float(c[j]), *_slack_interval(enc, A[j], float(c[j]))) for j in range(A.shape[0])])
    s_upper = max(min(r[3] for r in conj) for conj in rows)
    s_lower = max(min(r[2] for r in conj) for conj in rows)
    block = pyo.Block()
    enc.block.add_component(name, block)
    block.s = pyo.Var(bounds=(s_lower, s_upper))
    single = len(rows) == 1
    if not single:
        block.pick = pyo.Var(range(len(rows)), domain=pyo.Binary)
        block.one = pyo.Constraint(expr=sum(block.pick[i] for i in range(len(rows))) == 1)
    index = [(i, j) for i, conj in enumerate(rows) for j in range(len(conj))]

    def row_rule(b, i, j):
        a, c, slack_lo, _ = rows[i][j]
        slack = c - sum(float(a[k]) * enc.logits[k] for k in np.flatnonzero(a))
        if single:
            return b.s <= slack
        return b.s <= slack + (1 - b.pick[i]) * (s_upper - slack_lo)

    block.rows = pyo.Constraint(index, rule=row_rule)
    return block.s


def untargeted_margin(enc: EncodedNetwork, label: int, targets: Sequence[int] | None = None, name: str = "untargeted"):
    """Expression ``z_label - max_t z_t`` over ``targets`` (default: :func:`candidate_targets`).

    Minimising it gives the untargeted OFV; it is negative somewhere iff some class beats the label.
    """
    label = _check_class(enc, label, "label")
    targets = candidate_targets(enc.bounds, label) if targets is None else [_check_class(enc, t, "target") for t in targets]
    if not targets or label in targets:
        raise InvalidInput("targets must be non-empty and must not contain the label")
    return -add_disjunction(enc, robustness_conjunctions(enc.net.n_outputs, label, targets), name)


def add_linf_distortion(enc: EncodedNetwork, center: np.ndarray, name: str = "distortion") -> pyo.Var:
    """Add ``d >= |x_i - center_i|`` for every input; return ``d`` (input units, l-infinity)."""
    center = np.asarray(center, dtype=np.float64).reshape(-1)
    if center.shape != (enc.net.n_inputs,):
        raise InvalidInput(f"center must have {enc.net.n_inputs} values, got {center.size}")
    block = pyo.Block()
    enc.block.add_component(name, block)
    block.d = pyo.Var(bounds=(0.0, None))
    idx = list(range(enc.net.n_inputs))
    block.up = pyo.Constraint(idx, rule=lambda b, i: enc.inputs[i] - float(center[i]) <= b.d)
    block.down = pyo.Constraint(idx, rule=lambda b, i: float(center[i]) - enc.inputs[i] <= b.d)
    return block.d


def output_expression(enc: EncodedNetwork, coefficients: Sequence[float] | np.ndarray | int):
    """``c^T z_out`` for a coefficient vector, or the single logit ``z_k`` for an integer ``k``."""
    if isinstance(coefficients, (int, np.integer)):
        return enc.logits[_check_class(enc, int(coefficients), "output")]
    c = np.asarray(coefficients, dtype=np.float64).reshape(-1)
    if c.shape != (enc.net.n_outputs,):
        raise InvalidInput(f"need {enc.net.n_outputs} output coefficients, got {c.size}")
    return sum(float(c[j]) * enc.logits[j] for j in range(c.shape[0]) if c[j] != 0.0)
