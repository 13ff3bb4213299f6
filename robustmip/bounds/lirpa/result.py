"""What a LiRPA bound computation returns, and the relaxation parameters it may take and give back.

Row convention: bounds are always *lower* bounds of rows ``S a`` of a block's pre-activation. The
final block's rows are ``C`` (``m`` rows; the identity when ``C`` is None), followed by ``-C`` when
upper bounds are asked (``upper = -lower(-C)``): ``2 m`` rows. An intermediate ReLU layer ``k`` with
``n_k`` neurons has ``2 n_k`` rows: ``e_i`` (its lower bounds) then ``-e_i`` (minus its upper bounds).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class BoundParams:
    """Parameters of the linear relaxation: every value gives a sound bound.

    Attributes:
        alphas: ``(target block k, ReLU layer j) -> (B, rows_k, *shape_j)``: lower slopes of layer ``j``
            used when bounding the rows of block ``k`` (``k = n_relu_layers`` is the final block).
            Clamped into ``[0, 1]`` where used; only unstable neurons read them.
        betas: ``ReLU layer j -> (B, rows_final, *shape_j)``: beta-CROWN multipliers of the split
            constraints of layer ``j`` in the final bound; clamped to ``>= 0`` where used; only split
            neurons read them.
    """

    alphas: dict[tuple[int, int], torch.Tensor] = field(default_factory=dict)
    betas: dict[int, torch.Tensor] = field(default_factory=dict)

    def map(self, fn) -> "BoundParams":
        """A copy with ``fn`` applied to every tensor (``detach``, ``clone``, a cast, an index)."""
        return BoundParams({k: fn(v) for k, v in self.alphas.items()}, {k: fn(v) for k, v in self.betas.items()})

    def select(self, index: torch.Tensor) -> "BoundParams":
        """Parameters of the domains ``index`` (e.g. children inherit their parent's: ``index = parent_of_child``)."""
        return self.map(lambda t: t[index])

    def to(self, dtype: torch.dtype) -> "BoundParams":
        return self.map(lambda t: t.to(dtype))

    def tensors(self) -> list[torch.Tensor]:
        return [*self.alphas.values(), *self.betas.values()]


@dataclass
class LirpaBounds:
    """Bounds of ``C y`` over a batch of input boxes.

    Attributes:
        lower: ``(B, m)`` lower bounds of ``C y``.
        upper: ``(B, m)`` upper bounds, or None when not asked for.
        intermediate: per ReLU layer ``k``, ``(lower, upper)`` of the pre-activation, ``(B, *shape_k)``
            each, after the split clamps (what the final bound used).
        params: the relaxation parameters behind the bound (optimised methods), else None.
        input_coefficients: with ``keep_coefficients``, ``(B, rows, *input_shape)``: the final linear lower
            bound ``lam . x + const`` of each row; its minimiser over the box is
            ``where(lam > 0, lower, upper)`` (the candidate counterexample of the row).
        relu_coefficients: with ``keep_coefficients``, per ReLU layer ``j``, ``(B or 1, rows, *shape_j)``:
            the coefficients on ``h_j`` when the back-substitution reached it (branching scores).
    """

    lower: torch.Tensor
    upper: torch.Tensor | None
    intermediate: list[tuple[torch.Tensor, torch.Tensor]]
    params: BoundParams | None = None
    input_coefficients: torch.Tensor | None = None
    relu_coefficients: list[torch.Tensor] | None = None
