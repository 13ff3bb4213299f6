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

Parameter bands (the hook for parameter robustness, :mod:`robustmip.params`):
``encode(..., parameter_band={k: ParameterBand(R, rho)})`` lets layer ``k``'s weights and biases move
independently within ``W0 - R <= W <= W0 + R`` and ``b0 - rho <= b <= b0 + rho`` (``R >= 0``
float64 ``(n_k, n_{k-1})``, ``rho >= 0`` ``(n_k,)``). For a fixed input ``h`` the set of reachable
``a = W h + b`` is, row by row, exactly ``|a - W0 h - b0| <= R |h| + rho``, so each equality
``a_j = W0_j h + b0_j`` above becomes the two rows::

    a_j - sum_i (W0_ji + R_ji s_i) h_i - sum_{i mixed} R_ji t_i <= b0_j + rho_j
    a_j - sum_i (W0_ji - R_ji s_i) h_i + sum_{i mixed} R_ji t_i >= b0_j - rho_j

where ``s_i = +1`` when the bounds give ``h_i >= 0`` (pixels, ReLU outputs), ``-1`` when ``h_i <= 0``,
and for an entry of either sign ("mixed": an identity layer before, normalised inputs) the exact sign
split ``t_i = |h_i|`` with one binary ``g_i`` (``h_i >= l_i (1 - g_i)``, ``h_i <= u_i g_i``,
``t_i >= +-h_i``, ``t_i <= h_i - 2 l_i (1 - g_i)``, ``t_i <= -h_i + 2 u_i g_i``). Stable neurons are
decided by the bounds as above, so the bounds must be sound for the whole parameter box (see
:mod:`robustmip.params.bounds`). With ``ParameterBand(R, rho, scale=v)`` for a Pyomo variable (or
expression) ``v >= 0`` the radii become ``v R`` and ``v rho``: linear only when the layer's input is
fixed, so it is accepted for layer 0 with a zero-width input box (the largest-radius MILP). A band
on the output layer turns :meth:`EncodedNetwork.relax_for_objective` off (its argument needs fixed
output weights). Without bands the encoding is exactly the plain one.

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
        bands: the parameter bands it was built with (layer -> :class:`ParameterBand`).
    """

    block: pyo.Block
    inputs: pyo.Var
    outputs: list[pyo.Var]
    binaries: list[pyo.Var | None]
    preactivations: list[pyo.Var | None]
    bounds: Bounds
    net: Network
    build_seconds: float = 0.0
    bands: dict[int, ParameterBand] = field(default_factory=dict)
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

    def set_point(self, x: np.ndarray, net: Network | None = None) -> None:
        """Give every encoding variable its value at input ``x`` (float64 forward pass): a MIP start.

        ``x`` must lie in the input box; binaries take the sign of their (unshifted) pre-activation.
        ``net`` (default: the encoded one) is the network whose forward pass gives the values: with
        parameter bands, any network whose parameters lie in the bands (e.g. a falsifier's).
        """
        x = np.clip(np.asarray(x, dtype=np.float64).reshape(-1), self.bounds.input_lower, self.bounds.input_upper)
        for i in range(self.net.n_inputs):
            self.inputs[i].set_value(float(x[i]), skip_validation=True)
        signs = self.block.component("sign0")
        if signs is not None:
            for i in signs:
                signs[i].set_value(1.0 if x[i] >= 0 else 0.0, skip_validation=True)
                self.block.component("mag0")[i].set_value(abs(float(x[i])), skip_validation=True)
        _, pre = (net or self.net).forward(x, return_preactivations=True)
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
            signs = self.block.component(f"sign{k + 1}")
            if signs is not None:  # the sign split of h_k, input of a banded layer k + 1
                for i in signs:
                    signs[i].set_value(1.0 if h[i] >= 0 else 0.0, skip_validation=True)
                    self.block.component(f"mag{k + 1}")[i].set_value(abs(float(h[i])), skip_validation=True)

    def n_binaries(self) -> int:
        return sum(len(v) for v in self.binaries if v is not None)

    def layer_input_values(self, k: int) -> np.ndarray:
        """Solution values of layer ``k``'s input ``h_{k-1}`` (the input vector for ``k = 0``), float64."""
        if k == 0:
            return self.input_values()
        return np.array([_value(self.outputs[k - 1][j]) for j in range(self.net.layers[k - 1].n_out)])

    def preactivation_values(self, k: int) -> np.ndarray:
        """Solution values of layer ``k``'s pre-activation ``a_k``, float64 ``(n_k,)``.

        ``a_j`` is the variable of an unstable ReLU, the output itself for an identity layer or a
        stably active ReLU; a stably inactive ReLU has none (any value ``<= 0`` fits): NaN.
        """
        values = np.full(self.net.layers[k].n_out, np.nan)
        unstable = self.preactivations[k]
        for j in range(values.shape[0]):
            if unstable is not None and j in unstable:
                values[j] = _value(unstable[j])
            elif not self.outputs[k][j].fixed:
                values[j] = _value(self.outputs[k][j])
        return values

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
        if len(self.net.layers) - 1 in self.bands:  # the output weights move: no monotone argument
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


class ParameterBand(NamedTuple):
    """Independent weight and bias radii of one layer (see the module docstring).

    Attributes:
        R: float64 ``(n_k, n_{k-1})``, ``>= 0``: ``W`` lies in ``[W0 - R, W0 + R]``.
        rho: float64 ``(n_k,)``, ``>= 0``: ``b`` lies in ``[b0 - rho, b0 + rho]``.
        scale: None, or a Pyomo variable/expression ``v >= 0`` multiplying both radii (layer 0 with a
            fixed input only).
    """

    R: np.ndarray
    rho: np.ndarray
    scale: Any = None


def _value(var) -> float:
    return float(var.value) if var.value is not None else 0.0


def _check_band(net: Network, k: int, band: ParameterBand, input_lower: np.ndarray, input_upper: np.ndarray) -> None:
    layer = net.layers[k]
    R, rho = np.asarray(band.R, dtype=np.float64), np.asarray(band.rho, dtype=np.float64)
    if R.shape != layer.W.shape or rho.shape != layer.b.shape:
        raise InvalidInput(f"parameter_band of layer {k} needs R of shape {layer.W.shape} and rho of shape "
                           f"{layer.b.shape}, got {R.shape} and {rho.shape}")
    if not (np.isfinite(R).all() and np.isfinite(rho).all()) or (R < 0).any() or (rho < 0).any():
        raise InvalidInput(f"parameter_band of layer {k} needs finite radii >= 0")
    if band.scale is not None and (k != 0 or not np.array_equal(input_lower, input_upper)):
        raise InvalidInput("a scaled parameter band is linear only on layer 0 with a fixed input "
                           "(zero-width input box)")


def _sign_split(block: pyo.Block, k: int, prev: pyo.Var, idx: np.ndarray, lower: np.ndarray,
                upper: np.ndarray) -> pyo.Var:
    """``t_i = |h_i|`` for the entries ``idx`` of ``h`` (= ``prev``) whose sign the bounds leave open.

    One binary ``g_i`` (1: ``h_i >= 0``) and five rows each (see the module docstring); returns ``t``.
    """
    ids = idx.tolist()
    t = pyo.Var(ids, bounds=lambda _, i: (0.0, float(max(-lower[i], upper[i]))))
    g = pyo.Var(ids, domain=pyo.Binary)
    block.add_component(f"mag{k}", t)
    block.add_component(f"sign{k}", g)
    lo, up = {i: float(lower[i]) for i in ids}, {i: float(upper[i]) for i in ids}
    rows = {
        "neg": lambda _, i: prev[i] >= lo[i] * (1 - g[i]),
        "pos": lambda _, i: prev[i] <= up[i] * g[i],
        "ge_pos": lambda _, i: t[i] >= prev[i],
        "ge_neg": lambda _, i: t[i] >= -prev[i],
        "le_pos": lambda _, i: t[i] <= prev[i] - 2.0 * lo[i] * (1 - g[i]),
        "le_neg": lambda _, i: t[i] <= -prev[i] + 2.0 * up[i] * g[i],
    }
    for name, rule in rows.items():
        block.add_component(f"mag{k}_{name}", pyo.Constraint(ids, rule=rule))
    return t


def _band_exprs(
    block: pyo.Block, k: int, layer, band: ParameterBand, prev: pyo.Var, keep: np.ndarray,
    h_lower: np.ndarray, h_upper: np.ndarray,
) -> tuple[dict[int, Any], dict[int, Any]]:
    """``(low, high)``: per neuron the two sides of ``W0 h + b0 -+ (R |h| + rho)`` as expressions."""
    R, rho = np.asarray(band.R, dtype=np.float64), np.asarray(band.rho, dtype=np.float64)
    if band.scale is not None:  # fixed input: the band is scale * (R |x| + rho), a constant per row
        x = h_lower
        width = R @ np.abs(x) + rho
        centre = layer.W @ x + layer.b
        low = {j: float(centre[j]) - float(width[j]) * band.scale for j in range(layer.n_out)}
        high = {j: float(centre[j]) + float(width[j]) * band.scale for j in range(layer.n_out)}
        return low, high
    sign = np.where(h_lower >= 0.0, 1.0, np.where(h_upper <= 0.0, -1.0, 0.0))
    mixed = keep[sign[keep] == 0.0]
    t = _sign_split(block, k, prev, mixed, h_lower, h_upper) if mixed.size else None
    low, high = {}, {}
    for j in range(layer.n_out):
        r_row = R[j] * sign
        low[j] = _affine_expr(layer.W[j] - r_row, layer.b[j] - rho[j], prev, keep)
        high[j] = _affine_expr(layer.W[j] + r_row, layer.b[j] + rho[j], prev, keep)
        if t is not None:
            used = mixed[R[j, mixed] != 0.0]
            if used.size:
                low[j] = low[j] - sum(float(R[j, i]) * t[int(i)] for i in used)
                high[j] = high[j] + sum(float(R[j, i]) * t[int(i)] for i in used)
    return low, high


def _link(block: pyo.Block, name: str, index: list[int], var, low: Mapping[int, Any], high: Mapping[int, Any]) -> None:
    """``var[j] == low[j]`` when ``low is high`` (no band), else ``low[j] <= var[j] <= high[j]`` as two rows."""
    if low is high:
        block.add_component(name, pyo.Constraint(index, rule=lambda _, j: var[j] == low[j]))
        return
    block.add_component(f"{name}_lo", pyo.Constraint(index, rule=lambda _, j: var[j] >= low[j]))
    block.add_component(f"{name}_hi", pyo.Constraint(index, rule=lambda _, j: var[j] <= high[j]))


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
    parameter_band: Mapping[int, ParameterBand] | None = None,
) -> EncodedNetwork:
    """Build the big-M encoding of ``net`` over the box of ``bounds`` into ``block``.

    Args:
        net: the network.
        bounds: sound pre-activation bounds over the input box (from :func:`robustmip.bounds.compute_bounds`).
        block: an existing (empty) Pyomo block or model to build into; a new ``ConcreteModel`` if None.
        preactivation_shift: ReLU layer index -> :class:`PreactivationShift` added to that layer's
            pre-activations before the ReLU (see the module docstring); None for the plain network.
        parameter_band: layer index -> :class:`ParameterBand`: that layer's weights and biases move
            within the band (see the module docstring); ``bounds`` must be sound for it.
    """
    if len(bounds.lower) != len(net.layers):
        raise InvalidInput("bounds were computed for a different network (layer count differs)")
    shifts = dict(preactivation_shift or {})
    if any(not 0 <= k < len(net.layers) for k in shifts):
        raise InvalidInput(f"preactivation_shift names layers {sorted(shifts)}; the network has {len(net.layers)}")
    bands = dict(parameter_band or {})
    if any(not 0 <= k < len(net.layers) for k in bands):
        raise InvalidInput(f"parameter_band names layers {sorted(bands)}; the network has {len(net.layers)}")
    for k, band in bands.items():
        _check_band(net, k, band, bounds.input_lower, bounds.input_upper)
    start = time.perf_counter()
    block = pyo.ConcreteModel() if block is None else block
    n0 = net.n_inputs
    block.x = pyo.Var(range(n0), bounds=lambda _, i: (float(bounds.input_lower[i]), float(bounds.input_upper[i])))
    prev: pyo.Var = block.x
    prev_bounds = (bounds.input_lower, bounds.input_upper)
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
        if k in bands:
            low, high = _band_exprs(block, k, layer, bands[k], prev, keep, *prev_bounds)
        else:
            low = high = {j: _affine_expr(layer.W[j], layer.b[j], prev, keep) for j in range(layer.n_out)}
        if shift is not None:
            shifted = {j: low[j] + shift.expr(j) for j in range(layer.n_out) if upper[j] > 0.0}
            high = shifted if high is low else {j: high[j] + shift.expr(j) for j in shifted}
            low = shifted
        if layer.activation == "identity":
            _link(block, f"affine{k}", list(range(layer.n_out)), h, low, high)
            binaries.append(None)
            preactivations.append(None)
            next_keep = np.arange(layer.n_out)
        else:
            active = np.flatnonzero(lower >= 0.0)
            inactive = np.flatnonzero(upper <= 0.0)
            unstable = np.flatnonzero((lower < 0.0) & (upper > 0.0))
            for j in inactive:
                h[int(j)].fix(0.0)
            _link(block, f"active{k}", active.tolist(), h, low, high)
            v = pyo.Var(unstable.tolist(), domain=pyo.Binary)
            block.add_component(f"v{k}", v)
            u_idx = unstable.tolist()
            a = pyo.Var(u_idx, bounds=lambda _, j: (float(lower[j]), float(upper[j])))
            block.add_component(f"a{k}", a)
            _link(block, f"pre{k}", u_idx, a, low, high)
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
        prev, keep, prev_bounds = h, next_keep, (h_lo, h_up)
    return EncodedNetwork(
        block=block,
        inputs=block.x,
        outputs=outputs,
        binaries=binaries,
        preactivations=preactivations,
        bounds=bounds,
        net=net,
        build_seconds=time.perf_counter() - start,
        bands=bands,
    )
