"""Interval bound propagation (IBP) and the interval bound of linear rows over a box.

Through one block, IBP keeps a centre ``c`` and a radius ``r`` and applies every operator:
``c <- M c + c_op``, ``r <- |M| r`` (Gowal et al. 2018). For a block with one Linear/Conv2d this is
the interval of the block's affine map, as :func:`robustmip.bounds.box.interval_layer` computes it;
a block with several is bounded operator by operator (sound, looser than the folded map).
Specification rows are instead folded into the last block (:func:`rows_lower_bound`), so the
last layer of IBP is the interval of ``C W h + C b`` (the margin form of Gowal et al.).
"""

from __future__ import annotations

import torch

from robustmip.bounds.lirpa.graph import Block

Box = tuple[torch.Tensor, torch.Tensor]


def box_minimum(A: torch.Tensor, box: Box) -> torch.Tensor:
    """``min_{lower <= x <= upper} A x`` per row, as ``A c - |A| r`` (centre ``c``, radius ``r``).

    ``A`` is ``(N, m, *shape)`` with ``N`` 1 or ``B``, the box ``(B, *shape)``; returns ``(B, m)``.
    """
    lower, upper = box
    centre = ((lower + upper) / 2).flatten(1).unsqueeze(-1)
    radius = ((upper - lower) / 2).flatten(1).unsqueeze(-1)
    flat = A.flatten(2)
    return (flat.matmul(centre) - flat.abs().matmul(radius)).squeeze(-1)


def ibp_block(block: Block, box: Box) -> Box:
    """Interval of the block's pre-activation ``(B, *out_shape)`` for its input in ``box`` ``(B, *in_shape)``."""
    lower, upper = box
    centre, radius = (lower + upper) / 2, (upper - lower) / 2
    for op in block.ops:
        centre, radius = op.forward(centre), op.radius(radius)
    return centre - radius, centre + radius


def rows_lower_bound(block: Block, rows: torch.Tensor, box: Box) -> torch.Tensor:
    """``min rows . a`` over the block's input box ``(B, *in_shape)``, the rows ``(N, m, *out_shape)``
    folded through the block; returns ``(B, m)``."""
    A, const = block.backward(rows)
    return const + box_minimum(A, box)
