"""Which ReLU to split: BaBSR and filtered smart branching (KFSB), and the children of a split.

Scores come from the domain's last certified bound (:meth:`robustmip.bab.bound.DomainBounder.certify`):
BaBSR's estimate ``S`` of the bound's gain and the intercept score ``I`` (Bunel et al. 2020;
alpha-beta-CROWN's ``babsr_score``). When a domain is bounded its candidates are stored, best first:
the ``max(candidates, max_split_depth)`` best by ``S``, then the ``candidates`` best by ``I``.

* ``babsr`` splits on the first free candidates by ``S``.
* ``kfsb`` (alpha-beta-CROWN's mnist_fc default) bounds both children of the ``candidates`` best by
  ``S`` and by ``I`` with one CROWN pass each (the domain's slopes and multipliers, no optimisation)
  and splits on the candidate whose better child has the highest bound (reduce op ``max``), falling
  back to ``S`` for the rest.

With depth ``d`` a domain is split on its ``d`` best distinct candidates at once: ``2^d`` children
(alpha-beta-CROWN's multi-level split when few domains are open, to keep the batch full).
"""

from __future__ import annotations

import torch

from robustmip.bab.bound import Certified, DomainBounder, set_splits
from robustmip.bab.domains import Domains
from robustmip.bab.options import BabOptions


def _top(values: torch.Tensor, count: int, valid: torch.Tensor) -> torch.Tensor:
    """Indices of the ``count`` largest ``values`` per row, -1 where not ``valid``; ``(D, count)``."""
    D, n = values.shape
    if n == 0:
        return torch.full((D, count), -1, dtype=torch.long)
    k = min(count, n)
    order = torch.topk(values.masked_fill(~valid, -torch.inf), k, dim=1).indices
    order = torch.where(valid.gather(1, order), order, torch.full_like(order, -1))
    if k < count:
        order = torch.cat([order, torch.full((D, count - k), -1, dtype=torch.long)], dim=1)
    return order


def candidate_lists(certified: Certified, options: BabOptions) -> torch.Tensor:
    """Branching candidates per domain ``(D, n_S + n_I)`` (module docstring), -1 for none."""
    free = certified.scores >= 0
    by_score = _top(certified.scores, max(options.candidates, options.max_split_depth), free)
    if options.branching == "babsr":
        return by_score
    by_intercept = _top(-certified.intercepts, options.candidates, free)
    return torch.cat([by_score, by_intercept], dim=1)


def split_decisions(bounder: DomainBounder, parents: Domains, depth: int, options: BabOptions) -> torch.Tensor:
    """The ``depth`` distinct neurons (flat indices) each parent is split on, ``(P, depth)``.

    Every parent has at least ``depth`` free neurons (the caller caps ``depth``); candidates that are
    missing or already split are replaced by the free neurons of highest flat index order.
    """
    candidates = parents.candidates
    n_score = max(options.candidates, options.max_split_depth)
    if options.branching == "kfsb":
        judged = torch.cat([candidates[:, :options.candidates], candidates[:, n_score:]], dim=1)
        values = bounder.child_values(parents, judged).max(dim=2).values
        values = _first_occurrence(judged, values)
        order = torch.argsort(values, dim=1, descending=True, stable=True)
        ranked = judged.gather(1, order)
        ranked = torch.where(values.gather(1, order) > -torch.inf, ranked, torch.full_like(ranked, -1))
        candidates = torch.cat([ranked, candidates[:, :n_score]], dim=1)
    return _distinct_free(candidates, parents, depth, bounder)


def _first_occurrence(candidates: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``values`` with -inf at every repeat of an earlier candidate in the same row."""
    same = candidates.unsqueeze(2) == candidates.unsqueeze(1)
    earlier = torch.tril(same, diagonal=-1).any(dim=2)
    return values.masked_fill(earlier | (candidates < 0), -torch.inf)


def _distinct_free(candidates: torch.Tensor, parents: Domains, depth: int, bounder: DomainBounder) -> torch.Tensor:
    """The first ``depth`` distinct free neurons of each row of ``candidates`` (then any free ones)."""
    free = torch.cat([s == 0 for s in parents.splits], dim=1)
    P, n = free.shape
    decisions = torch.full((P, depth), -1, dtype=torch.long)
    for p in range(P):
        chosen: list[int] = []
        for c in candidates[p].tolist():
            if c >= 0 and c not in chosen and bool(free[p, c]):
                chosen.append(c)
                if len(chosen) == depth:
                    break
        if len(chosen) < depth:
            for c in torch.nonzero(free[p]).reshape(-1).tolist():
                if c not in chosen:
                    chosen.append(c)
                    if len(chosen) == depth:
                        break
        decisions[p, : len(chosen)] = torch.tensor(chosen, dtype=torch.long)
    return decisions


def children_of(parents: Domains, decisions: torch.Tensor, bounder: DomainBounder) -> Domains:
    """The ``2^d`` children of each parent for its ``d`` decisions: every sign combination, with the
    parent's slopes, multipliers (0 for the new splits) and bound, and depth ``+ d``."""
    P, d = decisions.shape
    n = 1 << d
    children = parents.select(torch.arange(P).repeat_interleave(n))
    combos = torch.arange(n).unsqueeze(1).bitwise_right_shift(torch.arange(d)).bitwise_and(1)
    signs = (combos * 2 - 1).to(torch.int8).repeat(P, 1)
    set_splits(children, decisions.repeat_interleave(n, dim=0), signs, bounder.layer_of, bounder.column_of)
    children.depth = children.depth + d
    return children
