"""Interval bounds over parameters and inputs in torch: batched and differentiable (APP's bounds).

The torch twin of :func:`robustmip.params.interval.param_interval_layer` for ``nn.Sequential`` MLPs
(``Flatten``, ``Linear``, ``ReLU``): each ``Linear`` has weights in ``[W - R, W + R]`` and biases in
``[b - rho, b + rho]`` with radii computed from the current parameters (so gradients flow through
both), the input lies in a box, and every entry is independent. For inputs ``>= 0`` (pixels, ReLU
outputs) a term's extremes are ``min(W_lo h_lo, W_lo h_up)`` and the like, which are matrix products
of the positive and negative parts of ``W_lo`` and ``W_up``; inputs of either sign use the four corner
products (memory ``batch x n_out x n_in``). Unlike the numpy bounds these are not widened against
rounding: they steer training, they prove nothing (claims use :mod:`robustmip.params`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from robustmip.errors import UnsupportedLayer
from robustmip.io.torch_model import leaf_modules

Radius = Callable[[torch.Tensor], torch.Tensor]
"""Parameter tensor -> its radius tensor (same shape, ``>= 0``)."""


def interval_linear(W: torch.Tensor, b: torch.Tensor, R: torch.Tensor, rho: torch.Tensor, h_lo: torch.Tensor,
                    h_up: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounds of ``W' h + b'`` over ``W'`` in ``W -+ R``, ``b'`` in ``b -+ rho``, ``h`` in ``[h_lo, h_up]`` (batched).

    Args:
        W, R: ``(n_out, n_in)``; b, rho: ``(n_out,)``; h_lo, h_up: ``(B, n_in)``.
    """
    W_lo, W_up = W - R, W + R
    if bool((h_lo >= 0).all()):
        lower = h_lo @ W_lo.clamp(min=0).T + h_up @ W_lo.clamp(max=0).T
        upper = h_up @ W_up.clamp(min=0).T + h_lo @ W_up.clamp(max=0).T
    else:
        corners = torch.stack([W_lo * h_lo[:, None, :], W_lo * h_up[:, None, :],
                               W_up * h_lo[:, None, :], W_up * h_up[:, None, :]])
        lower, upper = corners.min(dim=0).values.sum(-1), corners.max(dim=0).values.sum(-1)
    return lower + b - rho, upper + b + rho


def interval_bounds(model: nn.Module, x_lo: torch.Tensor, x_up: torch.Tensor,
                    radius: Radius | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounds of ``model``'s outputs ``(B, n_out)`` over the input box ``[x_lo, x_up]`` (``(B, ...)``)
    and, with ``radius``, every ``Linear``'s parameters in ``p -+ radius(p)`` (None: parameters fixed)."""
    lo, up = x_lo, x_up
    for name, module in leaf_modules(model):
        if isinstance(module, nn.Flatten):
            lo, up = module(lo), module(up)
        elif isinstance(module, nn.Linear):
            W, b = module.weight, module.bias if module.bias is not None else torch.zeros_like(module.weight[:, 0])
            R = radius(W) if radius is not None else torch.zeros_like(W)
            rho = radius(b) if radius is not None else torch.zeros_like(b)
            lo, up = interval_linear(W, b, R, rho, lo, up)
        elif isinstance(module, nn.ReLU):
            lo, up = lo.clamp(min=0), up.clamp(min=0)
        else:
            raise UnsupportedLayer(f"parameter interval bounds support Flatten, Linear and ReLU; {name} is "
                                   f"{type(module).__name__}")
    return lo, up
