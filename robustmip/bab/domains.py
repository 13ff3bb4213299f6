"""Branch-and-bound domains as batched tensors, and the frontier of open domains.

A domain is the input box restricted by split constraints on ReLUs that are unstable at the root
(``z >= 0`` active, ``z <= 0`` inactive); a root-stable ReLU stays stable in every domain, so every
per-neuron tensor is *compressed* to the root-unstable neurons ``U_k`` of each ReLU layer ``k``
(``m_k = |U_k|`` columns). Per domain (``D`` of them):

========================  =====================  =====================================================
``conjunction``           ``(D,)`` int64         which conjunction ``i`` of the question it bounds
``splits[k]``             ``(D, m_k)`` int8      0 free, +1 active, -1 inactive
``alphas[k]``             ``(D, M, m_k)`` f32    lower slopes of the final rows (warm start)
``betas[k]``              ``(D, M, m_k)`` f32    split multipliers of the final rows (warm start)
``lower``                 ``(D,)`` float64       sound lower bound of ``g_i`` on the domain
``depth``                 ``(D,)`` int32         number of splits
``stalled``               ``(D,)`` int32         splits since the bound last improved (by ``STALL_GAIN``)
``candidates``            ``(D, c)`` int64       branching candidates, flat index over ``U_0, U_1, ...``
                                                 in order of preference (-1: none)
========================  =====================  =====================================================
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch


@dataclass
class Domains:
    """A batch of domains (see the module docstring); every tensor has the domains on its first axis."""

    conjunction: torch.Tensor
    splits: list[torch.Tensor]
    alphas: list[torch.Tensor]
    betas: list[torch.Tensor]
    lower: torch.Tensor
    depth: torch.Tensor
    stalled: torch.Tensor
    candidates: torch.Tensor

    def __len__(self) -> int:
        return int(self.lower.shape[0])

    def select(self, index: torch.Tensor) -> Domains:
        """The domains ``index`` (a bool mask or int64 indices), as a new batch."""
        return Domains(**{f.name: _map(getattr(self, f.name), lambda t: t[index]) for f in fields(self)})

    @staticmethod
    def cat(parts: list[Domains]) -> Domains:
        """One batch holding every domain of ``parts`` (in order)."""
        first = parts[0]
        merged = {}
        for f in fields(Domains):
            value = getattr(first, f.name)
            if isinstance(value, list):
                merged[f.name] = [torch.cat([getattr(p, f.name)[k] for p in parts]) for k in range(len(value))]
            else:
                merged[f.name] = torch.cat([getattr(p, f.name) for p in parts])
        return Domains(**merged)

    def free_neurons(self) -> torch.Tensor:
        """Unsplit root-unstable ReLUs per domain, ``(D,)`` int64."""
        return sum((split == 0).sum(dim=1) for split in self.splits)


def _map(value, fn):
    return [fn(t) for t in value] if isinstance(value, list) else fn(value)


MAX_CHUNKS = 64
"""Pushed batches kept apart before they are merged into one."""


class Frontier:
    """The open domains, popped worst (lowest lower bound) first.

    Kept as the batches that were pushed: popping copies only the batches that hold popped domains.
    """

    def __init__(self) -> None:
        self._chunks: list[Domains] = []

    def __len__(self) -> int:
        return sum(len(chunk) for chunk in self._chunks)

    def push(self, domains: Domains) -> None:
        if len(domains):
            self._chunks.append(domains)
        if len(self._chunks) > MAX_CHUNKS:
            self._chunks = [Domains.cat(self._chunks)]

    def pop_worst(self, count: int) -> Domains | None:
        """Remove and return the ``count`` domains with the lowest lower bounds (None when empty)."""
        if not self._chunks:
            return None
        lowers = torch.cat([chunk.lower for chunk in self._chunks])
        if count >= lowers.shape[0]:
            popped = Domains.cat(self._chunks)
            self._chunks = []
            return popped
        chosen = torch.zeros(lowers.shape[0], dtype=torch.bool)
        chosen[torch.topk(lowers, count, largest=False, sorted=False).indices] = True
        taken, kept, start = [], [], 0
        for chunk in self._chunks:
            mask = chosen[start:start + len(chunk)]
            start += len(chunk)
            if not bool(mask.any()):
                kept.append(chunk)
                continue
            taken.append(chunk.select(mask))
            if not bool(mask.all()):
                kept.append(chunk.select(~mask))
        self._chunks = kept
        return Domains.cat(taken)

    def min_lower(self) -> float:
        """Lowest lower bound among the open domains (+inf when none)."""
        return min((float(chunk.lower.min()) for chunk in self._chunks), default=float("inf"))
