"""``param_pgd``: a cheap search over parameters (and inputs) before any MILP.

The searched point is one vector ``z = (x, Delta_W^k, Delta_b^k for every layer k of the box)`` with
``x`` in the input box and every ``Delta`` in ``[-1, 1]``; the net it stands for has
``W_k = W0_k + Delta_W^k * R_k`` and ``b_k = b0_k + Delta_b^k * rho_k``. Signed gradient ascent
(:func:`robustmip.attacks.gradient.projected_gradient_ascent`, one random start per restart, run as
one batch in float64) maximises the unsafe condition's slack ``max_i min_j (c_ij - A_ij . y)``, as
the input falsifier does. Its best point is returned whether or not it reaches a flip: the caller
realises it (:meth:`robustmip.params.box.ParamBox.realise`) and re-checks it with the float64 forward
pass before it claims anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from robustmip.errors import InvalidInput
from robustmip.network import Network
from robustmip.params.box import Deltas, ParamBox
from robustmip.spec import OutputConjunction


@dataclass(frozen=True)
class ParamAttack:
    """Settings of :func:`param_pgd`: ``steps`` per restart, ``restarts`` run as one batch, ``seed``."""

    steps: int = 30
    restarts: int = 8
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.restarts < 1:
            raise InvalidInput(f"param_pgd needs steps and restarts >= 1, got {self.steps}, {self.restarts}")


def param_pgd(net: Network, box: ParamBox, lower: np.ndarray, upper: np.ndarray,
              conjunctions: Sequence[OutputConjunction], attack: ParamAttack = ParamAttack()
              ) -> tuple[np.ndarray, Deltas, float]:
    """The best ``(x, Deltas)`` found for "some conjunction ``A y <= c`` holds", and its slack (torch's).

    Args:
        lower, upper: the input box, float64 ``(n_inputs,)`` (equal for a fixed input).
        conjunctions: the unsafe condition on the outputs.
    """
    import torch

    from robustmip.attacks.gradient import projected_gradient_ascent

    box.check(net)
    lower = np.asarray(lower, dtype=np.float64).reshape(-1)
    upper = np.asarray(upper, dtype=np.float64).reshape(-1)
    segments, offset = {}, net.n_inputs
    for k, (R, rho) in box.radii.items():
        segments[k] = (offset, offset + R.size, offset + R.size + rho.size)
        offset += R.size + rho.size
    n = offset
    lo = torch.cat([torch.as_tensor(lower), -torch.ones(n - net.n_inputs, dtype=torch.float64)])
    hi = torch.cat([torch.as_tensor(upper), torch.ones(n - net.n_inputs, dtype=torch.float64)])
    B = attack.restarts
    lo, hi = lo.expand(B, n).contiguous(), hi.expand(B, n).contiguous()
    tensors = [(torch.as_tensor(layer.W), torch.as_tensor(layer.b)) for layer in net.layers]
    radii = {k: (torch.as_tensor(R), torch.as_tensor(rho)) for k, (R, rho) in box.radii.items()}
    rows = [(torch.as_tensor(np.atleast_2d(A), dtype=torch.float64),
             torch.as_tensor(np.atleast_1d(c), dtype=torch.float64)) for A, c in conjunctions]

    def outputs(z: torch.Tensor) -> torch.Tensor:
        h = z[:, :net.n_inputs]
        for k, (layer, (W0, b0)) in enumerate(zip(net.layers, tensors)):
            if k in segments:
                start, mid, end = segments[k]
                R, rho = radii[k]
                W = W0 + z[:, start:mid].reshape(-1, *W0.shape) * R
                a = torch.einsum("boi,bi->bo", W, h) + b0 + z[:, mid:end] * rho
            else:
                a = h @ W0.T + b0
            h = torch.relu(a) if layer.activation == "relu" else a
        return h

    def objective(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = outputs(z)
        slack = torch.stack([(c[None, :] - y @ A.T).min(dim=1).values for A, c in rows], dim=1).max(dim=1).values
        return slack, slack >= 0

    centre, radius = (lo + hi) / 2, (hi - lo) / 2
    generator = torch.Generator().manual_seed(attack.seed)
    points = projected_gradient_ascent(objective, centre, lo, hi, steps=attack.steps,
                                       step_size=2.5 * radius / attack.steps, restarts=1, random_start=True,
                                       radius=radius, generator=generator)
    with torch.no_grad():
        slack, _ = objective(points)
    best = int(torch.argmax(slack))
    z = points[best].numpy().astype(np.float64)
    deltas = {k: (z[start:mid].reshape(box.radii[k][0].shape), z[mid:end].copy())
              for k, (start, mid, end) in segments.items()}
    return z[:net.n_inputs].copy(), deltas, float(slack[best])
