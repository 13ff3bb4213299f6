"""Parameter boxes: how far each weight and bias of a network may move.

A :class:`ParamBox` holds, for each chosen layer ``k`` of a :class:`~robustmip.network.Network`, the
radii ``R_k >= 0`` (float64, the shape of ``W_k``) and ``rho_k >= 0`` (the shape of ``b_k``): every
``W_k`` in ``[W0_k - R_k, W0_k + R_k]`` and ``b_k`` in ``[b0_k - rho_k, b0_k + rho_k]`` is allowed,
each entry independently; the other layers are fixed. Constructors:

* :meth:`ParamBox.uniform`: ``|p - p0| <= delta`` for every parameter (Murthy et al., seed 000);
* :meth:`ParamBox.relative`: ``|p - p0| <= delta |p0|``;
* :meth:`ParamBox.app`: APP's radius (Szász, seed 003): ``lam tanh(s p0^2) / m`` (``"tanh"``) or
  ``lam |p0|`` (``"abs"``, without the narrowing);
* :meth:`ParamBox.quantization`: every rounding of the weights to a symmetric k-bit grid with the
  per-layer scale ``s = max|W0| / (2^(k-1) - 1)``: radius ``s/2`` for round-to-nearest, ``s`` for
  floor or stochastic rounding (biases stay in float: rho = 0), see :mod:`robustmip.params.quantize`.

:meth:`ParamBox.realise` builds the network of given relative offsets ``Delta`` in ``[-1, 1]``
(``W = W0 + Delta_W * R``, ``b = b0 + Delta_b * rho``); :meth:`ParamBox.contains` checks a network
against the box in float64.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Mapping, Sequence

import numpy as np

from robustmip.errors import InvalidInput
from robustmip.layers import AffineLayer
from robustmip.milp.encode import ParameterBand
from robustmip.network import Network

Rounding = Literal["nearest", "floor", "stochastic"]
ROUNDINGS: tuple[str, ...] = ("nearest", "floor", "stochastic")
AppRadius = Literal["tanh", "abs"]
Deltas = dict[int, tuple[np.ndarray, np.ndarray]]
"""layer -> ``(Delta_W, Delta_b)``, relative offsets in ``[-1, 1]`` of the shapes of ``(W, b)``."""


def check_delta(delta: float, what: str = "delta") -> float:
    """``delta`` as a float; InvalidInput unless finite and ``>= 0``."""
    try:
        value = float(delta)
    except (TypeError, ValueError):
        raise InvalidInput(f"{what} must be a number, got {delta!r}") from None
    if not np.isfinite(value) or value < 0:
        raise InvalidInput(f"{what} must be a finite number >= 0, got {delta}")
    return value


def check_bits(bits: int) -> int:
    """``bits`` as an int; InvalidInput unless an integer ``>= 2`` (a sign and one magnitude bit)."""
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or bits < 2:
        raise InvalidInput(f"bits must be an integer >= 2 (a sign bit and at least one magnitude bit), got {bits!r}")
    return int(bits)


def check_layers(net: Network, layers: Sequence[int] | None) -> list[int]:
    """The chosen layer indices, sorted, every one a layer of ``net`` (all layers when None)."""
    if layers is None:
        return list(range(len(net.layers)))
    chosen = sorted({int(k) for k in layers})
    missing = [k for k in chosen if not 0 <= k < len(net.layers)]
    if missing:
        raise InvalidInput(f"layer(s) {missing} do not exist: the network has layers 0..{len(net.layers) - 1}")
    if not chosen:
        raise InvalidInput("choose at least one layer to perturb")
    return chosen


def quantization_scale(W: np.ndarray, bits: int) -> float:
    """Step of the symmetric ``bits``-bit grid of ``W``: ``max|W| / (2^(bits-1) - 1)`` (0 for ``W = 0``)."""
    return float(np.max(np.abs(W), initial=0.0)) / (2 ** (check_bits(bits) - 1) - 1)


_ULP_SLACK = 4 * np.finfo(np.float64).eps
"""Relative widening of a quantization radius: ``round(W/s) s`` is computed with two roundings."""


@dataclass(frozen=True)
class ParamBox:
    """Radii of the weights and biases of some layers of one network.

    Attributes:
        radii: layer index -> ``(R, rho)``, float64 arrays of the shapes of ``(W, b)``, ``>= 0``.
        description: how the box was made (for reports), e.g. ``"uniform delta=0.01"``.
    """

    radii: Mapping[int, tuple[np.ndarray, np.ndarray]]
    description: str = ""

    def __post_init__(self) -> None:
        clean = {}
        for k, (R, rho) in self.radii.items():
            R, rho = np.asarray(R, dtype=np.float64), np.asarray(rho, dtype=np.float64)
            if not (np.isfinite(R).all() and np.isfinite(rho).all()) or (R < 0).any() or (rho < 0).any():
                raise InvalidInput(f"the radii of layer {k} must be finite and >= 0")
            clean[int(k)] = (R, rho)
        object.__setattr__(self, "radii", dict(sorted(clean.items())))

    @property
    def layers(self) -> list[int]:
        return list(self.radii)

    def check(self, net: Network) -> None:
        """InvalidInput unless every layer of the box exists in ``net`` with matching shapes."""
        for k, (R, rho) in self.radii.items():
            if not 0 <= k < len(net.layers):
                raise InvalidInput(f"the parameter box perturbs layer {k}, but the network has layers "
                                   f"0..{len(net.layers) - 1}")
            layer = net.layers[k]
            if R.shape != layer.W.shape or rho.shape != layer.b.shape:
                raise InvalidInput(f"the radii of layer {k} have shapes {R.shape}, {rho.shape}; the layer has "
                                   f"{layer.W.shape}, {layer.b.shape}")

    def bands(self) -> dict[int, ParameterBand]:
        """The encoding's :class:`~robustmip.milp.encode.ParameterBand` per layer."""
        return {k: ParameterBand(R, rho) for k, (R, rho) in self.radii.items()}

    def scaled(self, factor: float) -> ParamBox:
        """The box with every radius multiplied by ``factor >= 0``."""
        factor = check_delta(factor, "scale factor")
        return ParamBox({k: (factor * R, factor * rho) for k, (R, rho) in self.radii.items()},
                        f"{self.description} x {factor:g}")

    def n_parameters(self) -> int:
        """How many parameters can move (radius > 0)."""
        return int(sum((R > 0).sum() + (rho > 0).sum() for R, rho in self.radii.values()))

    def realise(self, net: Network, deltas: Deltas) -> Network:
        """The network with ``W = W0 + Delta_W R``, ``b = b0 + Delta_b rho`` (Deltas clipped to [-1, 1]).

        Args:
            deltas: layer -> ``(Delta_W, Delta_b)`` of the shapes of ``(W, b)``; layers left out stay at
                their nominal values. Each realised entry is moved back into the box if float64
                rounding put it outside (see :meth:`contains`).
        """
        self.check(net)
        layers = list(net.layers)
        for k, (dW, db) in deltas.items():
            if k not in self.radii:
                raise InvalidInput(f"layer {k} is not in the parameter box")
            R, rho = self.radii[k]
            layer = net.layers[k]
            W = _inside(layer.W, layer.W + np.clip(dW, -1.0, 1.0) * R, R)
            b = _inside(layer.b, layer.b + np.clip(db, -1.0, 1.0) * rho, rho)
            layers[k] = AffineLayer(W, b, layer.activation)
        return Network(layers, net.input_shape)

    def contains(self, net: Network, other: Network) -> bool:
        """Whether ``other`` has ``net``'s architecture and every parameter in the box (float64 check)."""
        if len(other.layers) != len(net.layers):
            return False
        for k, (layer, moved) in enumerate(zip(net.layers, other.layers)):
            if moved.W.shape != layer.W.shape or moved.activation != layer.activation:
                return False
            R, rho = self.radii.get(k, (np.zeros_like(layer.W), np.zeros_like(layer.b)))
            if (np.abs(moved.W - layer.W) > R).any() or (np.abs(moved.b - layer.b) > rho).any():
                return False
        return True

    @classmethod
    def uniform(cls, net: Network, delta: float, layers: Sequence[int] | None = None, biases: bool = True) -> ParamBox:
        """``|p - p0| <= delta`` for every weight (and, with ``biases``, bias) of the chosen layers."""
        delta = check_delta(delta)
        chosen = check_layers(net, layers)
        radii = {k: (np.full_like(net.layers[k].W, delta), np.full_like(net.layers[k].b, delta if biases else 0.0))
                 for k in chosen}
        return cls(radii, f"uniform delta={delta:g} on layers {chosen}")

    @classmethod
    def relative(cls, net: Network, delta: float, layers: Sequence[int] | None = None) -> ParamBox:
        """``|p - p0| <= delta |p0|`` for every weight and bias of the chosen layers."""
        delta = check_delta(delta)
        chosen = check_layers(net, layers)
        radii = {k: (delta * np.abs(net.layers[k].W), delta * np.abs(net.layers[k].b)) for k in chosen}
        return cls(radii, f"relative delta={delta:g} on layers {chosen}")

    @classmethod
    def app(cls, net: Network, lam: float, radius: AppRadius = "tanh", s: float = 10.0, m: float = 1.0,
            layers: Sequence[int] | None = None) -> ParamBox:
        """APP's box: radius ``lam tanh(s p0^2) / m`` (``"tanh"``) or ``lam |p0|`` (``"abs"``) per parameter."""
        lam = check_delta(lam, "lambda")
        if radius not in ("tanh", "abs"):
            raise InvalidInput(f"APP radius must be 'tanh' or 'abs', got {radius!r}")
        if not (np.isfinite(s) and s > 0 and np.isfinite(m) and m > 0):
            raise InvalidInput(f"APP's s and m must be finite and > 0, got s={s}, m={m}")
        chosen = check_layers(net, layers)

        def r(p: np.ndarray) -> np.ndarray:
            return lam * np.tanh(s * p * p) / m if radius == "tanh" else lam * np.abs(p)

        radii = {k: (r(net.layers[k].W), r(net.layers[k].b)) for k in chosen}
        return cls(radii, f"APP ({radius}) lambda={lam:g} on layers {chosen}")

    @classmethod
    def quantization(cls, net: Network, bits: int, rounding: Rounding = "nearest",
                     layers: Sequence[int] | None = None) -> ParamBox:
        """Every rounding of the chosen layers' weights to their ``bits``-bit grid (biases fixed).

        Radius ``s/2`` (``nearest``) or ``s`` (``floor``, ``stochastic``) with the per-layer scale
        :func:`quantization_scale`, widened by 4 ulp against the two roundings of ``round(W/s) s``.
        """
        bits = check_bits(bits)
        if rounding not in ROUNDINGS:
            raise InvalidInput(f"rounding must be one of {ROUNDINGS}, got {rounding!r}")
        chosen = check_layers(net, layers)
        radii = {}
        for k in chosen:
            W = net.layers[k].W
            step = quantization_scale(W, bits)
            R = (0.5 * step if rounding == "nearest" else step) + _ULP_SLACK * (np.abs(W) + step)
            radii[k] = (np.where(step > 0, R, 0.0), np.zeros_like(net.layers[k].b))
        return cls(radii, f"{bits}-bit {rounding} quantization of layers {chosen}")


def _inside(nominal: np.ndarray, moved: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """``moved`` with every entry that float64 puts outside ``[nominal - radius, nominal + radius]``
    stepped back towards ``nominal`` (one ulp at a time, at most a few steps)."""
    moved = np.clip(moved, nominal - radius, nominal + radius)
    for _ in range(4):
        outside = np.abs(moved - nominal) > radius
        if not outside.any():
            break
        moved = np.where(outside, np.nextafter(moved, nominal), moved)
    return moved
