"""Quantization of a network's weights to a symmetric k-bit grid.

Layer ``k``'s weights become ``q s_k`` with integers ``|q| <= 2^(bits-1) - 1`` (``bits`` with the sign)
and the per-layer scale ``s_k = max|W_k| / (2^(bits-1) - 1)``; biases stay in float (integer
inference keeps them at accumulator precision). ``nearest`` rounds ``W/s`` to the nearest integer
(ties to even: error ``<= s/2``), ``floor`` rounds down, ``stochastic`` rounds up with probability
``frac(W/s)`` (errors ``< s``). :meth:`robustmip.params.box.ParamBox.quantization` is the box of every
such rounding.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from robustmip.errors import InvalidInput
from robustmip.layers import AffineLayer
from robustmip.network import Network
from robustmip.params.box import (
    ROUNDINGS,
    Rounding,
    check_bits,
    check_layers,
    quantization_scale,
)


def quantize_weights(W: np.ndarray, bits: int, rounding: Rounding = "nearest",
                     rng: np.random.Generator | None = None) -> np.ndarray:
    """``W`` on its ``bits``-bit grid, float64 of the same shape."""
    step = quantization_scale(W, bits)
    if step == 0.0:
        return np.zeros_like(W)
    ratio = W / step
    if rounding == "nearest":
        q = np.round(ratio)
    elif rounding == "floor":
        q = np.floor(ratio)
    elif rounding == "stochastic":
        rng = rng or np.random.default_rng(0)
        q = np.floor(ratio) + (rng.random(W.shape) < ratio - np.floor(ratio))
    else:
        raise InvalidInput(f"rounding must be one of {ROUNDINGS}, got {rounding!r}")
    limit = 2 ** (bits - 1) - 1
    return np.clip(q, -limit - 1, limit) * step


def quantize_network(net: Network, bits: int, rounding: Rounding = "nearest",
                     layers: Sequence[int] | None = None, seed: int = 0) -> Network:
    """The network with the weights of ``layers`` (default all) on their ``bits``-bit grids.

    Args:
        bits: integer ``>= 2``; rounding: ``nearest``, ``floor`` or ``stochastic`` (seeded by ``seed``).
    """
    bits = check_bits(bits)
    if rounding not in ROUNDINGS:
        raise InvalidInput(f"rounding must be one of {ROUNDINGS}, got {rounding!r}")
    chosen = set(check_layers(net, layers))
    rng = np.random.default_rng(seed)
    out = [AffineLayer(quantize_weights(layer.W, bits, rounding, rng), layer.b, layer.activation)
           if k in chosen else layer for k, layer in enumerate(net.layers)]
    return Network(out, net.input_shape)
