"""Tables (CSV / markdown) and figures (PNG) from MILP attack rows.

A row is a dict as written by :class:`robustmip.attacks.milp_attack.AttackRow` plus a ``net`` name:
``net, image, label, target, eps, status, ofv, bound, time_s, ...``. Everything here is pure
presentation: counting, statistics and plotting of rows that other modules computed.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

STAT_COLUMNS = ("count", "mean", "std", "min", "25%", "50%", "75%", "max")


def describe(values: Sequence[float]) -> dict:
    """count, mean, std (sample), min, quartiles and max of ``values`` (NaN when empty)."""
    v = np.asarray([x for x in values if x is not None], dtype=np.float64)
    if v.size == 0:
        return {"count": 0, **{k: float("nan") for k in STAT_COLUMNS[1:]}}
    q = np.percentile(v, [25, 50, 75])
    return {
        "count": int(v.size), "mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else 0.0,
        "min": float(v.min()), "25%": float(q[0]), "50%": float(q[1]), "75%": float(q[2]), "max": float(v.max()),
    }


def markdown_table(header: Sequence[str], rows: Iterable[Sequence]) -> str:
    """A GitHub-markdown table; floats get 4 significant digits."""

    def cell(v) -> str:
        if isinstance(v, float):
            return "nan" if np.isnan(v) else f"{v:.4g}"
        return str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_csv(path: str | Path, header: Sequence[str], rows: Iterable[Sequence]) -> None:
    with Path(path).open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def count_by(rows: Sequence[dict], field: str, classes: int = 10) -> dict[int, dict]:
    """Per value of ``field`` (``label`` or ``target``): images, MILPs, adversarial and success rate."""
    out = {}
    for c in range(classes):
        sub = [r for r in rows if r[field] == c]
        adversarial = sum(r["status"] == "adversarial" for r in sub)
        out[c] = {
            "images": len({r["image"] for r in sub}),
            "milps": len(sub),
            "adversarial": adversarial,
            "success_rate": adversarial / len(sub) if sub else float("nan"),
        }
    return out


def confusion(rows: Sequence[dict], classes: int = 10) -> np.ndarray:
    """``M[label, target]`` = number of adversarial examples found for that pair."""
    m = np.zeros((classes, classes), dtype=int)
    for r in rows:
        if r["status"] == "adversarial":
            m[r["label"], r["target"]] += 1
    return m


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _finish(plt, fig, ax, xlabel: str, ylabel: str, title: str, path: str | Path, legend: bool = True) -> None:
    """Label the axes, title, legend; save ``fig`` to ``path`` and close it."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    if legend:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_image_grid(pairs: Sequence[tuple[np.ndarray, np.ndarray, str]], title: str, path: str | Path) -> None:
    """Originals (top) above their adversarial examples (bottom), each captioned (Fig. 2a)."""
    plt = _pyplot()
    n = max(len(pairs), 1)
    fig, axes = plt.subplots(2, n, figsize=(max(1.3 * n + 0.4, 6.0), 3.2), squeeze=False)
    for j in range(n):
        for i in range(2):
            axes[i, j].axis("off")
        if j < len(pairs):
            original, adversarial, caption = pairs[j]
            axes[0, j].imshow(original.reshape(28, 28), cmap="gray", vmin=0, vmax=1)
            axes[1, j].imshow(adversarial.reshape(28, 28), cmap="gray", vmin=0, vmax=1)
            axes[1, j].set_title(caption, fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_histograms(groups: dict[str, Sequence[float]], xlabel: str, title: str, path: str | Path,
                    log: bool = False) -> None:
    """Overlaid histograms of several named groups of values on shared bins (Fig. 4)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    values = {name: np.asarray([x for x in v if x is not None], dtype=np.float64) for name, v in groups.items()}
    pooled = np.concatenate([v for v in values.values()] or [np.zeros(0)])
    edges = np.histogram_bin_edges(pooled, bins=30) if pooled.size else 30
    for name, v in values.items():
        if v.size:
            ax.hist(v, bins=edges, histtype="step", linewidth=1.4, label=f"{name} (n={v.size})", log=log)
    _finish(plt, fig, ax, xlabel, "count", title, path, legend=bool(pooled.size))


def plot_confusions(matrices: dict[str, np.ndarray], title: str, path: str | Path) -> None:
    """Adversarial counts (original label rows, target columns), one panel per net, one colour scale (Fig. 2b)."""
    plt = _pyplot()
    n = max(len(matrices), 1)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n + 0.8, 4.2), squeeze=False)
    vmax = max([int(m.max()) for m in matrices.values()] + [1])
    im = None
    for ax, (name, matrix) in zip(axes[0], matrices.items()):
        im = ax.imshow(matrix, cmap="Reds", vmin=0, vmax=vmax)
        for (i, j), v in np.ndenumerate(matrix):
            if v:
                ax.text(j, i, str(v), ha="center", va="center", fontsize=7)
        ax.set_xlabel("target label")
        ax.set_ylabel("original label")
        ax.set_xticks(range(matrix.shape[1]))
        ax.set_yticks(range(matrix.shape[0]))
        ax.set_title(f"{name} ({int(matrix.sum())})", fontsize=9)
    if im is not None:
        fig.colorbar(im, ax=list(axes[0]), fraction=0.03)
    fig.suptitle(title, fontsize=9)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def plot_bars(categories: Sequence, series: dict[str, Sequence[float]], xlabel: str, ylabel: str, title: str,
              path: str | Path) -> None:
    """Grouped bars: one group per category, one bar per named series (e.g. published beside ours)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    width = 0.8 / max(len(series), 1)
    positions = np.arange(len(categories))
    for k, (name, values) in enumerate(series.items()):
        ax.bar(positions + (k - (len(series) - 1) / 2) * width, values, width, label=name)
    ax.set_xticks(positions)
    ax.set_xticklabels([str(c) for c in categories])
    _finish(plt, fig, ax, xlabel, ylabel, title, path)


def plot_curves(panels: dict[str, tuple[Sequence[tuple], Sequence[tuple]]], xlabel: str, ylabel: str,
                path: str | Path, references: Sequence[tuple[str, float, str]] = ()) -> None:
    """Line plots side by side, one panel per key (e.g. Fig. 3 of a certified-training paper).

    Each panel is ``(series, markers)``: series ``(label, x, y, linestyle)``, markers ``(label, x, y)``
    (e.g. published values). A label's first word picks its colour, the same in every panel.
    ``references``: ``("h" or "v", value, label)`` grey reference lines drawn on every panel. The y axis
    runs from 0 to 100 (percentages).
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, max(len(panels), 1), figsize=(5.2 * max(len(panels), 1), 3.8), squeeze=False)
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    groups: dict[str, str] = {}

    def colour(label: str) -> str:
        return groups.setdefault(label.split()[0], palette[len(groups) % len(palette)])

    for ax, (title, (series, markers)) in zip(axes[0], panels.items()):
        for label, x, y, style in series:
            ax.plot(x, y, linestyle=style, color=colour(label), label=label)
        for label, x, y in markers:
            ax.plot(x, y, marker="o", linestyle="none", color=colour(label), label=label)
        for kind, value, label in references:
            line = ax.axhline if kind == "h" else ax.axvline
            line(value, color="grey", linestyle="--" if kind == "h" else ":", linewidth=0.8, label=label)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=9)
        ax.set_ylim(0, 100)
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles))
        ax.legend(unique.values(), unique.keys(), fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def ranks(values: Sequence[float]) -> np.ndarray:
    """Ranks 1..n of ``values``, ties sharing their average rank."""
    v = np.asarray(values, dtype=np.float64)
    order = np.argsort(v, kind="mergesort")
    r = np.empty(v.size)
    r[order] = np.arange(1, v.size + 1)
    for value in np.unique(v):
        tied = v == value
        r[tied] = r[tied].mean()
    return r


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation of ``x`` and ``y`` (Pearson's of their ranks); NaN below 3 pairs or
    when one side is constant."""
    if len(x) != len(y):
        raise ValueError(f"spearman needs pairs: {len(x)} and {len(y)} values")
    if len(x) < 3:
        return float("nan")
    rx, ry = ranks(x), ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def plot_scatter(groups: dict[str, tuple[Sequence[float], Sequence[float]]], xlabel: str, ylabel: str, title: str,
                 path: str | Path, logy: bool = False) -> None:
    """Scatter plot of several named ``(x, y)`` groups (e.g. energy against sensitivity, seed 001 Fig. 5)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for name, (x, y) in groups.items():
        ax.scatter(x, y, s=14, alpha=0.75, label=name)
    if logy:
        ax.set_yscale("log")
    _finish(plt, fig, ax, xlabel, ylabel, title, path)
