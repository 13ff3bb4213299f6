"""Bounding a batch of domains: beta-CROWN search in float32, sound bounds by a float64 re-evaluation.

The intermediate bounds are the root's (float64, sound on the whole box), clamped by each domain's
splits; only the final rows' slopes ``alpha`` and split multipliers ``beta`` are optimised per domain
(alpha-beta-CROWN's ``fix_interm_bounds``), by :func:`robustmip.bounds.lirpa.lirpa_bounds` on a
float32 copy of the network. Every slope in ``[0, 1]`` and multiplier ``>= 0`` gives a valid bound, so
the parameters found are evaluated again in float64 (:func:`robustmip.bounds.lirpa.reevaluate_float64`,
bounds widened outward): only that value is a domain's bound. The same float64 pass gives the
coefficients behind the bound: on each ReLU output (branching scores) and on the input, whose
minimiser over the box is the domain's candidate counterexample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from robustmip.bab.domains import Domains
from robustmip.bab.options import BabOptions
from robustmip.bab.question import Question
from robustmip.bounds.lirpa import BoundParams, LirpaGraph, OptimizeOptions, lirpa_bounds, reevaluate_float64
from robustmip.bounds.result import Bounds
from robustmip.network import Network


@dataclass
class Certified:
    """Sound bounds of a batch and what they yield.

    Attributes:
        lower: ``(D,)`` float64 sound lower bound of each domain's ``g_i`` (before the parent's is kept).
        points: ``(D, n_inputs)`` float64 candidate counterexamples (minimisers of the bound's linear form).
        scores: ``(D, sum m_k)`` BaBSR scores over the flat root-unstable index (-1 at split neurons).
        intercepts: ``(D, sum m_k)`` intercept scores (<= 0, lower is better; +1 at split neurons).
    """

    lower: torch.Tensor
    points: np.ndarray
    scores: torch.Tensor
    intercepts: torch.Tensor


class DomainBounder:
    """Bounds of domains of one question over fixed root intermediate bounds.

    Args:
        net: the network (every hidden layer ReLU, identity output).
        question: rows and offsets of the conjunctions.
        root: sound float64 bounds over the question's box; their hidden layers are the fixed
            intermediate bounds and their unstable ReLUs the splittable ones.
    """

    def __init__(self, net: Network, question: Question, root: Bounds):
        self.net, self.question = net, question
        hidden = range(len(net.layers) - 1)
        self.graph32 = LirpaGraph(net.to_torch(torch.float32).requires_grad_(False), net.input_shape)
        self.graph64 = LirpaGraph(net)
        self.box64 = (torch.as_tensor(question.lower).reshape(1, -1), torch.as_tensor(question.upper).reshape(1, -1))
        self.box32 = (self.box64[0].float(), self.box64[1].float())
        self.root64 = [(torch.as_tensor(root.lower[k]).reshape(1, -1), torch.as_tensor(root.upper[k]).reshape(1, -1))
                       for k in hidden]
        self.root32 = [(lo.float(), up.float()) for lo, up in self.root64]
        self.unstable = [torch.nonzero((lo[0] < 0) & (up[0] > 0)).reshape(-1) for lo, up in self.root64]
        self.widths = [int(u.shape[0]) for u in self.unstable]
        self.layer_of = torch.cat([torch.full((m,), k, dtype=torch.long) for k, m in enumerate(self.widths)])
        self.column_of = torch.cat([torch.arange(m) for m in self.widths])
        self.bias = [torch.as_tensor(net.layers[k].b)[u] for k, u in zip(hidden, self.unstable)]
        self.rows64 = torch.as_tensor(question.rows)
        self.rows32 = self.rows64.float()
        self.offsets = torch.as_tensor(question.offsets)

    @property
    def n_layers(self) -> int:
        return len(self.unstable)

    @property
    def n_unstable(self) -> int:
        return sum(self.widths)

    def root_domains(self, params: BoundParams | None, row_of_conjunction: np.ndarray | None,
                     conjunctions: np.ndarray) -> Domains:
        """Unsplit domains for ``conjunctions``, their slopes from the root alpha-CROWN when given.

        ``params`` hold final-row slopes ``(1, R, n_k)`` for the question's flattened rows and
        ``row_of_conjunction`` ``(K, M)`` maps each padded row to its flat row.
        """
        D, M = len(conjunctions), self.question.rows.shape[1]
        conj = torch.as_tensor(conjunctions, dtype=torch.long)
        alphas = []
        for k, u in enumerate(self.unstable):
            key = (self.n_layers, k)
            if params is not None and row_of_conjunction is not None and key in params.alphas:
                flat = torch.as_tensor(row_of_conjunction)[conj]
                alphas.append(params.alphas[key][0][flat][:, :, u].float().clone())
            else:
                lo, up = self.root32[k][0][0, u], self.root32[k][1][0, u]
                alphas.append((up > -lo).float().expand(D, M, -1).clone())
        return Domains(
            conjunction=conj,
            splits=[torch.zeros(D, m, dtype=torch.int8) for m in self.widths],
            alphas=alphas,
            betas=[torch.zeros(D, M, m) for m in self.widths],
            lower=torch.full((D,), -torch.inf, dtype=torch.float64),
            depth=torch.zeros(D, dtype=torch.int32),
            stalled=torch.zeros(D, dtype=torch.int32),
            candidates=torch.full((D, 1), -1, dtype=torch.long),
        )

    def _full(self, compressed: list[torch.Tensor], k_width: list[int], dtype: torch.dtype) -> list[torch.Tensor]:
        out = []
        for t, u, n in zip(compressed, self.unstable, k_width):
            full = torch.zeros(*t.shape[:-1], n, dtype=dtype)
            full[..., u] = t.to(dtype)
            out.append(full)
        return out

    def _full_splits(self, domains: Domains) -> list[torch.Tensor]:
        return self._full(domains.splits, [lo.shape[1] for lo, _ in self.root64], torch.int8)

    def _params(self, domains: Domains, dtype: torch.dtype) -> BoundParams:
        widths = [lo.shape[1] for lo, _ in self.root64]
        alphas = self._full(domains.alphas, widths, dtype)
        betas = self._full(domains.betas, widths, dtype)
        last = self.n_layers
        return BoundParams({(last, k): a for k, a in enumerate(alphas)},
                           {k: b for k, b in enumerate(betas) if bool((domains.splits[k] != 0).any())})

    def _intermediate(self, root: list, batch: int) -> list:
        return [(lo.expand(batch, -1), up.expand(batch, -1)) for lo, up in root]

    def optimise(self, domains: Domains, options: BabOptions, stop_above: float | None,
                 time_limit: float | None) -> None:
        """Optimise the domains' slopes and multipliers in float32 (in place)."""
        D = len(domains)
        if D == 0 or options.iterations == 0:
            return
        splits = self._full_splits(domains)
        with torch.no_grad():
            result = lirpa_bounds(
                self.graph32, self.box32[0].expand(D, -1), self.box32[1].expand(D, -1),
                self.rows32[domains.conjunction], "beta-crown", intermediate=self._intermediate(self.root32, D),
                splits=splits, params=self._params(domains, torch.float32),
                optimize=OptimizeOptions(iterations=options.iterations, lr_alpha=options.lr_alpha,
                                         lr_beta=options.lr_beta, lr_decay=options.lr_decay,
                                         stop_above=stop_above, time_limit=time_limit),
            )
        last = self.n_layers
        for k, u in enumerate(self.unstable):
            domains.alphas[k] = result.params.alphas[(last, k)][:, :, u].float()
            if k in result.params.betas:
                domains.betas[k] = result.params.betas[k][:, :, u].float()

    def certify(self, domains: Domains) -> Certified:
        """Sound float64 bounds of the domains with their current parameters, and what they yield."""
        D = len(domains)
        splits = self._full_splits(domains)
        result = reevaluate_float64(
            self.graph64, self.box64[0].expand(D, -1), self.box64[1].expand(D, -1), self.rows64[domains.conjunction],
            method="beta-crown", params=self._params(domains, torch.float64), splits=splits,
            intermediate=self._intermediate(self.root64, D), keep_coefficients=True,
        )
        values = result.lower - self.offsets[domains.conjunction]
        lower, row = values.max(dim=1)
        pick = row.reshape(D, 1, 1)
        lam = result.input_coefficients.flatten(2)
        lam = lam.expand(D, *lam.shape[1:]).gather(1, pick.expand(D, 1, lam.shape[2]))[:, 0]
        points = torch.where(lam > 0, self.box64[0], self.box64[1]).numpy()
        scores, intercepts = self._scores(domains, result.relu_coefficients, pick)
        return Certified(lower, points, scores, intercepts)

    def _scores(self, domains: Domains, coefficients: list[torch.Tensor], pick: torch.Tensor):
        """BaBSR and intercept scores (Bunel et al. 2020; alpha-beta-CROWN's ``babsr_score``).

        For a free unstable neuron with coefficient ``a`` on its ReLU output in the bound of the
        domain's deciding row, its clamped bounds ``[l, u]``, chord slope ``s = u / (u - l)``, intercept
        ``t = -l s`` and bias ``b``: intercept score ``I = min(a, 0) t`` (the bound's loss to the
        triangle's intercept), BaBSR score ``S = |max(a b (s - 1), a b s) + I|``.
        """
        D = len(domains)
        scores, intercepts = [], []
        for k, u in enumerate(self.unstable):
            if u.shape[0] == 0:
                continue
            a = coefficients[k].to(torch.float64)
            a = a.expand(D, *a.shape[1:]).gather(1, pick.expand(D, 1, a.shape[2]))[:, 0][:, u]
            lo, up = self.root64[k][0][0, u], self.root64[k][1][0, u]
            free = domains.splits[k] == 0
            s = up / (up - lo)
            t = -lo * s
            intercept = a.clamp(max=0.0) * t
            ab = a * self.bias[k]
            score = (torch.maximum(ab * (s - 1), ab * s) + intercept).abs()
            scores.append(torch.where(free, score, torch.full_like(score, -1.0)))
            intercepts.append(torch.where(free, intercept, torch.full_like(intercept, 1.0)))
        if not scores:
            empty = torch.zeros(D, 0, dtype=torch.float64)
            return empty, empty
        return torch.cat(scores, dim=1), torch.cat(intercepts, dim=1)

    def child_values(self, domains: Domains, decisions: torch.Tensor) -> torch.Tensor:
        """Float32 bounds (no optimisation) of both children of each candidate split, ``(D, c, 2)``.

        ``decisions`` ``(D, c)`` flat neuron indices (-1: none, value -inf); child 0 inactive, 1 active.
        """
        D, c = decisions.shape
        valid = decisions >= 0
        flat = decisions.clamp(min=0)
        parents = torch.arange(D).repeat_interleave(2 * c)
        children = domains.select(parents)
        signs = torch.tensor([-1, 1], dtype=torch.int8).repeat(D * c)
        set_splits(children, flat.repeat_interleave(2, dim=1).reshape(-1, 1), signs.reshape(-1, 1),
                   self.layer_of, self.column_of)
        n = len(children)
        with torch.no_grad():
            result = lirpa_bounds(
                self.graph32, self.box32[0].expand(n, -1), self.box32[1].expand(n, -1),
                self.rows32[children.conjunction], "crown", intermediate=self._intermediate(self.root32, n),
                splits=self._full_splits(children), params=self._params(children, torch.float32),
            )
        values = (result.lower - self.offsets[children.conjunction].float()).max(dim=1).values.reshape(D, c, 2)
        none = torch.full_like(values, -torch.inf, dtype=torch.float64)
        return torch.where(valid.unsqueeze(-1), values.double(), none)


def set_splits(domains: Domains, flat: torch.Tensor, signs: torch.Tensor, layer_of: torch.Tensor,
               column_of: torch.Tensor) -> None:
    """Set ``splits`` of domain ``d`` at flat neuron ``flat[d, i]`` to ``signs[d, i]`` (in place)."""
    rows = torch.arange(len(domains)).unsqueeze(1).expand_as(flat)
    layers, columns = layer_of[flat], column_of[flat]
    for k in range(len(domains.splits)):
        mask = layers == k
        if bool(mask.any()):
            domains.splits[k][rows[mask], columns[mask]] = signs[mask]
