"""Big-M MILP encoding of a :class:`~robustmip.network.Network` as a Pyomo block (Fischetti & Jo).

For a ReLU neuron with pre-activation ``a = W h_prev + b`` and sound bounds ``l <= a <= u``:

* ``l >= 0`` (stably active): ``z = a``, no binary;
* ``u <= 0`` (stably inactive): ``z`` is fixed to 0, no binary, and it is left out of the next layer;
* otherwise one binary ``v``, a variable ``a`` in ``[l, u]`` with ``a = W h_prev + b`` (the affine
  row appears once rather than in both big-M rows, which on a wide first layer cuts the LP's nonzeros
  substantially; benchmarks/README.md has the A/B), and the constraints of Bai et al. 2020,
  eqs. (2)-(5)::

      z >= a                  (2)
      z >= 0                  (3)  as the variable's lower bound
      z <= u * v              (4)
      a >= z + (1 - v) * l    (5)

Identity layers (the logits) get ``z = a``. Every variable also carries its bound interval.

Objective-fitted relaxation (:meth:`EncodedNetwork.relax_for_objective`): when the objective minimises
``c^T z_out``, a last-hidden-layer ReLU whose output the objective weighs positively is exact with its
convex lower side (2)-(3) alone, so its rows (4)-(5) and its binary are dropped for that objective
(about half of that layer's binaries for a targeted margin).

Pre-activation shifts (the one hook for callers that change what a ReLU sees, e.g. MIP pruning):
``encode(..., preactivation_shift={k: PreactivationShift(expr, lower, upper)})`` replaces, in ReLU layer
``k``, the pre-activation ``a_j`` by ``a_j + expr(j)``, where ``expr(j)`` is any Pyomo expression (it
may use variables outside the block) whose value always lies in ``[lower[j], upper[j]]``. Everything
above then applies to the shifted pre-activation with the bounds ``[l + lower, u + upper]``: stability,
the binaries, the big-M constants and the bounds of ``z``. A neuron whose shifted upper bound is
``<= 0`` stays fixed at 0. The caller must make the bounds of the *later* layers sound for the shifted
network. Without shifts (the default) the encoding is exactly the plain one above.

The returned :class:`EncodedNetwork` exposes the input variables, each layer's output variables and the
binaries, so callers add their own constraints and objectives (see :mod:`robustmip.milp.objectives`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, NamedTuple

import numpy as np
import pyomo.environ as pyo
from pyomo.core.expr.numeric_expr import LinearExpression

from robustmip.bounds import Bounds
from robustmip.errors import InvalidInput
from robustmip.network import Network


@dataclass
class EncodedNetwork:
    """Handles to the Pyomo components of an encoded network.

    Attributes:
        block: the Pyomo block holding everything below.
        inputs: input variables ``x[i]``, ``i < n_inputs`` (flattened C order), bounded by the box.
        outputs: per layer ``k`` the post-activation variables ``h_k[j]``; ``outputs[-1]`` are the logits.
        binaries: per layer the indicator variables of its unstable ReLUs (indexed by neuron), or ``None``.
        preactivations: per layer the pre-activation variables of its unstable ReLUs, or ``None``.
        bounds: the bounds the encoding was built from.
        build_seconds: time spent building the block.
    """

    block: pyo.Block
    inputs: pyo.Var
    outputs: list[pyo.Var]
    binaries: list[pyo.Var | None]
    preactivations: list[pyo.Var | None]
    bounds: Bounds
    net: Network
    build_seconds: float = 0.0
    _relaxed: set[int] = field(default_factory=set)

    @property
    def logits(self) -> pyo.Var:
        return self.outputs[-1]

    def input_values(self) -> np.ndarray:
        """Solution values of the input variables, float64 ``(n_inputs,)``.

        An input that no constraint references (all its weights lead to dead neurons) is not sent to
        the solver and has no value; any value in its box is then as good, and the box centre is used.
        """
        centre = 0.5 * (self.bounds.input_lower + self.bounds.input_upper)
        values = [self.inputs[i].value for i in range(self.net.n_inputs)]
        return np.array([centre[i] if v is None else v for i, v in enumerate(values)], dtype=np.float64)

    def set_point(self, x: np.ndarray) -> None:
        """Give every encoding variable its value at input ``x`` (float64 forward pass): a MIP start.

        ``x`` must lie in the input box; binaries take the sign of their (unshifted) pre-activation.
        """
        x = np.clip(np.asarray(x, dtype=np.float64).reshape(-1), self.bounds.input_lower, self.bounds.input_upper)
        for i in range(self.net.n_inputs):
            self.inputs[i].set_value(float(x[i]), skip_validation=True)
        _, pre = self.net.forward(x, return_preactivations=True)
        for k, (layer, a) in enumerate(zip(self.net.layers, pre)):
            h = np.maximum(a, 0.0) if layer.activation == "relu" else a
            for j in range(layer.n_out):
                if not self.outputs[k][j].fixed:
                    self.outputs[k][j].set_value(float(h[j]), skip_validation=True)
            if self.binaries[k] is not None:
                for j in self.binaries[k]:
                    if not self.binaries[k][j].fixed:  # fixed: dropped by relax_for_objective
                        self.binaries[k][j].set_value(1.0 if a[j] > 0 else 0.0, skip_validation=True)
                    self.preactivations[k][j].set_value(float(a[j]), skip_validation=True)

    def n_binaries(self) -> int:
        return sum(len(v) for v in self.binaries if v is not None)

    def relax_for_objective(self, output_coefficients: np.ndarray | None) -> None:
        """Fit the encoding to minimising ``c^T z_out`` (or to a constraint ``c^T z_out <= d``).

        The last hidden layer's outputs ``h_j`` feed only the logits, so ``c^T z_out`` weighs each with
        ``g_j = (c^T W_out)_j``. Where ``g_j > 0``, lowering ``h_j`` to ``max(0, a_j)`` lowers the
        objective and changes nothing else: the convex lower side (2)-(3) alone is exact for that
        neuron, and its upper rows (4)-(5) and its binary (fixed at 0) are dropped. Optima, bounds and
        feasibility stay those of the full encoding. ``None`` restores the full encoding (needed before
        any other objective, e.g. an untargeted margin).

        Args:
            output_coefficients: ``c``, float64 ``(n_outputs,)``, or None.
        """
        k = len(self.net.layers) - 2
        if k < 0 or self.binaries[k] is None or self.net.layers[-1].activation != "identity":
            return
        weights = (
            np.zeros(self.net.layers[k].n_out)
            if output_coefficients is None
            else np.asarray(output_coefficients, dtype=np.float64).reshape(-1) @ self.net.layers[-1].W
        )
        upper_rows = (self.block.component(f"relu_on{k}"), self.block.component(f"relu_off{k}"))
        wanted = {j for j in self.binaries[k] if weights[j] > 0.0}
        for j in wanted - self._relaxed:
            for rows in upper_rows:
                rows[j].deactivate()
            self.binaries[k][j].fix(0.0)
        for j in self._relaxed - wanted:
            for rows in upper_rows:
                rows[j].activate()
            self.binaries[k][j].unfix()
        self._relaxed = wanted


class PreactivationShift(NamedTuple):
    """A term added to the pre-activations of one ReLU layer (see the module docstring).

    Attributes:
        expr: ``j -> `` Pyomo expression (or number) added to neuron ``j``'s pre-activation.
        lower, upper: float64 ``(n_k,)`` sound bounds of ``expr(j)``'s value.
    """

    expr: Callable[[int], Any]
    lower: np.ndarray
    upper: np.ndarray


def _shifted_bounds(
    net: Network, k: int, shift: PreactivationShift, lower: np.ndarray, upper: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of layer ``k``'s shifted pre-activation; InvalidInput for a malformed shift."""
    layer = net.layers[k]
    if layer.activation != "relu":
        raise InvalidInput(f"preactivation_shift given for layer {k}, which has no ReLU")
    s_lo = np.asarray(shift.lower, dtype=np.float64).reshape(-1)
    s_up = np.asarray(shift.upper, dtype=np.float64).reshape(-1)
    if s_lo.shape != (layer.n_out,) or s_up.shape != (layer.n_out,):
        raise InvalidInput(f"preactivation_shift of layer {k} needs {layer.n_out} lower and upper bounds")
    if not (np.isfinite(s_lo).all() and np.isfinite(s_up).all()) or (s_lo > s_up).any():
        raise InvalidInput(f"preactivation_shift of layer {k} has non-finite bounds or lower > upper")
    return lower + s_lo, upper + s_up


def _affine_expr(W_row: np.ndarray, b: float, prev: pyo.Var, keep: np.ndarray) -> LinearExpression:
    """``sum_i W_row[i] * prev[i] + b`` over the previous neurons in ``keep`` with nonzero weight."""
    idx = keep[W_row[keep] != 0.0]
    return LinearExpression(
        constant=float(b), linear_coefs=W_row[idx].tolist(), linear_vars=[prev[int(i)] for i in idx]
    )


def encode(
    net: Network,
    bounds: Bounds,
    block: pyo.Block | None = None,
    preactivation_shift: Mapping[int, PreactivationShift] | None = None,
) -> EncodedNetwork:
    """Build the big-M encoding of ``net`` over the box of ``bounds`` into ``block``.

    Args:
        net: the network.
        bounds: sound pre-activation bounds over the input box (from :func:`robustmip.bounds.compute_bounds`).
        block: an existing (empty) Pyomo block or model to build into; a new ``ConcreteModel`` if None.
        preactivation_shift: ReLU layer index -> :class:`PreactivationShift` added to that layer's
            pre-activations before the ReLU (see the module docstring); None for the plain network.
    """
    if len(bounds.lower) != len(net.layers):
        raise InvalidInput("bounds were computed for a different network (layer count differs)")
    shifts = dict(preactivation_shift or {})
    if any(not 0 <= k < len(net.layers) for k in shifts):
        raise InvalidInput(f"preactivation_shift names layers {sorted(shifts)}; the network has {len(net.layers)}")
    start = time.perf_counter()
    block = pyo.ConcreteModel() if block is None else block
    n0 = net.n_inputs
    block.x = pyo.Var(range(n0), bounds=lambda _, i: (float(bounds.input_lower[i]), float(bounds.input_upper[i])))
    prev: pyo.Var = block.x
    keep = np.arange(n0)
    outputs: list[pyo.Var] = []
    binaries: list[pyo.Var | None] = []
    preactivations: list[pyo.Var | None] = []
    for k, layer in enumerate(net.layers):
        lower, upper = bounds.lower[k], bounds.upper[k]
        h_lo, h_up = bounds.post_activation(k)
        shift = shifts.get(k)
        if shift is not None:
            lower, upper = _shifted_bounds(net, k, shift, lower, upper)
            h_lo, h_up = np.maximum(lower, 0.0), np.maximum(upper, 0.0)
        h = pyo.Var(range(layer.n_out), bounds=lambda _, j: (float(h_lo[j]), float(h_up[j])))
        block.add_component(f"h{k}", h)
        pre = {j: _affine_expr(layer.W[j], layer.b[j], prev, keep) for j in range(layer.n_out)}
        if shift is not None:
            pre = {j: pre[j] + shift.expr(j) for j in range(layer.n_out) if upper[j] > 0.0}
        if layer.activation == "identity":
            block.add_component(f"affine{k}", pyo.Constraint(range(layer.n_out), rule=lambda _, j: h[j] == pre[j]))
            binaries.append(None)
            preactivations.append(None)
            next_keep = np.arange(layer.n_out)
        else:
            active = np.flatnonzero(lower >= 0.0)
            inactive = np.flatnonzero(upper <= 0.0)
            unstable = np.flatnonzero((lower < 0.0) & (upper > 0.0))
            for j in inactive:
                h[int(j)].fix(0.0)
            block.add_component(
                f"active{k}", pyo.Constraint(active.tolist(), rule=lambda _, j: h[j] == pre[j])
            )
            v = pyo.Var(unstable.tolist(), domain=pyo.Binary)
            block.add_component(f"v{k}", v)
            u_idx = unstable.tolist()
            a = pyo.Var(u_idx, bounds=lambda _, j: (float(lower[j]), float(upper[j])))
            block.add_component(f"a{k}", a)
            block.add_component(f"pre{k}", pyo.Constraint(u_idx, rule=lambda _, j: a[j] == pre[j]))
            block.add_component(f"relu_ge{k}", pyo.Constraint(u_idx, rule=lambda _, j: h[j] >= a[j]))
            block.add_component(
                f"relu_on{k}", pyo.Constraint(u_idx, rule=lambda _, j: h[j] <= float(upper[j]) * v[j])
            )
            block.add_component(
                f"relu_off{k}",
                pyo.Constraint(u_idx, rule=lambda _, j: a[j] >= h[j] + float(lower[j]) * (1 - v[j])),
            )
            binaries.append(v)
            preactivations.append(a)
            next_keep = np.setdiff1d(np.arange(layer.n_out), inactive)
        outputs.append(h)
        prev, keep = h, next_keep
    return EncodedNetwork(
        block=block,
        inputs=block.x,
        outputs=outputs,
        binaries=binaries,
        preactivations=preactivations,
        bounds=bounds,
        net=net,
        build_seconds=time.perf_counter() - start,
    )
