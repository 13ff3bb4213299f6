"""Big-M MILP encoding of a :class:`~robustmip.network.Network` as a Pyomo block (Fischetti & Jo).

For a ReLU neuron with pre-activation ``a = W h_prev + b`` and sound bounds ``l <= a <= u``:

* ``l >= 0`` (stably active): ``z = a``, no binary;
* ``u <= 0`` (stably inactive): ``z`` is fixed to 0, no binary, and it is left out of the next layer;
* otherwise one binary ``v`` and the constraints of Bai et al. 2020, eqs. (2)-(5)::

      z >= a                  (2)
      z >= 0                  (3)  as the variable's lower bound
      z <= u * v              (4)
      a >= z + (1 - v) * l    (5)

Identity layers (the logits) get ``z = a``. Every variable also carries its bound interval.

The returned :class:`EncodedNetwork` exposes the input variables, each layer's output variables and the
binaries, so callers add their own constraints and objectives (see :mod:`robustmip.milp.objectives`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

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
        bounds: the bounds the encoding was built from.
        build_seconds: time spent building the block.
    """

    block: pyo.Block
    inputs: pyo.Var
    outputs: list[pyo.Var]
    binaries: list[pyo.Var | None]
    bounds: Bounds
    net: Network
    build_seconds: float = 0.0

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

    def n_binaries(self) -> int:
        return sum(len(v) for v in self.binaries if v is not None)


def _affine_expr(W_row: np.ndarray, b: float, prev: pyo.Var, keep: np.ndarray) -> LinearExpression:
    """``sum_i W_row[i] * prev[i] + b`` over the previous neurons in ``keep`` with nonzero weight."""
    idx = keep[W_row[keep] != 0.0]
    return LinearExpression(
        constant=float(b), linear_coefs=W_row[idx].tolist(), linear_vars=[prev[int(i)] for i in idx]
    )


def encode(net: Network, bounds: Bounds, block: pyo.Block | None = None) -> EncodedNetwork:
    """Build the big-M encoding of ``net`` over the box of ``bounds`` into ``block``.

    Args:
        net: the network.
        bounds: sound pre-activation bounds over the input box (from :func:`robustmip.bounds.compute_bounds`).
        block: an existing (empty) Pyomo block or model to build into; a new ``ConcreteModel`` if None.
    """
    if len(bounds.lower) != len(net.layers):
        raise InvalidInput("bounds were computed for a different network (layer count differs)")
    start = time.perf_counter()
    block = pyo.ConcreteModel() if block is None else block
    n0 = net.n_inputs
    block.x = pyo.Var(range(n0), bounds=lambda _, i: (float(bounds.input_lower[i]), float(bounds.input_upper[i])))
    prev: pyo.Var = block.x
    keep = np.arange(n0)
    outputs: list[pyo.Var] = []
    binaries: list[pyo.Var | None] = []
    for k, layer in enumerate(net.layers):
        lower, upper = bounds.lower[k], bounds.upper[k]
        h_lo, h_up = bounds.post_activation(k)
        h = pyo.Var(range(layer.n_out), bounds=lambda _, j: (float(h_lo[j]), float(h_up[j])))
        block.add_component(f"h{k}", h)
        pre = {j: _affine_expr(layer.W[j], layer.b[j], prev, keep) for j in range(layer.n_out)}
        if layer.activation == "identity":
            block.add_component(f"affine{k}", pyo.Constraint(range(layer.n_out), rule=lambda _, j: h[j] == pre[j]))
            binaries.append(None)
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
            block.add_component(f"relu_ge{k}", pyo.Constraint(u_idx, rule=lambda _, j: h[j] >= pre[j]))
            block.add_component(
                f"relu_on{k}", pyo.Constraint(u_idx, rule=lambda _, j: h[j] <= float(upper[j]) * v[j])
            )
            block.add_component(
                f"relu_off{k}",
                pyo.Constraint(u_idx, rule=lambda _, j: pre[j] >= h[j] + float(lower[j]) * (1 - v[j])),
            )
            binaries.append(v)
            next_keep = np.setdiff1d(np.arange(layer.n_out), inactive)
        outputs.append(h)
        prev, keep = h, next_keep
    return EncodedNetwork(
        block=block,
        inputs=block.x,
        outputs=outputs,
        binaries=binaries,
        bounds=bounds,
        net=net,
        build_seconds=time.perf_counter() - start,
    )
