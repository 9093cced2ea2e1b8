"""Data-card charts (matplotlib, Agg): PNG bytes, embedded in the HTML and saved beside it."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def distribution_chart(langs: list[str], before: list[int], kept: list[int], after: list[int] | None,
                       unit: str = "tokens") -> bytes:
    """Tokens per language (log scale): as read, after curation, after balancing."""
    x = np.arange(len(langs))
    fig, ax = plt.subplots(figsize=(max(8, 0.28 * len(langs) + 2), 4.2))
    series = [("in (read)", before, "#b0b7c3"), ("kept (curated)", kept, "#4c78a8")]
    if after is not None:
        series.append(("after balancing", after, "#f58518"))
    w = 0.8 / len(series)
    for i, (label, values, color) in enumerate(series):
        ax.bar(x + (i - (len(series) - 1) / 2) * w, np.maximum(values, 0.8), w, label=label, color=color)
    ax.set_yscale("log")
    ax.set_xticks(x, langs, rotation=90, fontsize=8)
    ax.set_ylabel(f"{unit} (log scale)")
    ax.set_title(f"{unit.capitalize()} per language before and after balancing")
    ax.legend(fontsize=8, ncols=len(series))
    ax.grid(axis="y", which="major", alpha=0.3)
    return _png(fig)


def drops_chart(langs: list[str], reasons: list[str], counts: dict[str, dict[str, int]]) -> bytes:
    """Dropped documents per language, stacked by stage:reason."""
    fig, ax = plt.subplots(figsize=(8, max(3, 0.22 * len(langs) + 1.5)))
    y = np.arange(len(langs))
    left = np.zeros(len(langs))
    cmap = plt.get_cmap("tab20")
    for i, r in enumerate(reasons):
        v = np.array([counts.get(lang, {}).get(r, 0) for lang in langs], dtype=float)
        ax.barh(y, v, left=left, label=r, color=cmap(i % 20))
        left += v
    ax.set_yticks(y, langs, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("documents dropped")
    ax.set_title("Why documents were dropped, per language")
    if reasons:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def score_histograms(title: str, xlabel: str, langs: list[str], counts: list[list[int]], edges: list[float],
                     log_x: bool = False, ncols: int = 7) -> bytes:
    """Small multiples: one histogram of a model score per language, shared bins."""
    n = max(1, len(langs))
    ncols = min(ncols, n)
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.9 * ncols + 0.5, 1.35 * nrows + 0.8), squeeze=False,
                             sharex=True)
    e = np.asarray(edges, dtype=float)
    for k, ax in enumerate(axes.flat):
        if k >= len(langs):
            ax.set_visible(False)
            continue
        ax.bar(e[:-1], counts[k], width=np.diff(e), align="edge", color="#4c78a8", edgecolor="white", linewidth=0.3)
        ax.set_title(f"{langs[k]} (n={sum(counts[k])})", fontsize=7, pad=2)
        ax.tick_params(labelsize=6)
        if log_x:
            ax.set_xscale("log")
    fig.suptitle(title, fontsize=9)
    fig.supxlabel(xlabel, fontsize=8)
    fig.supylabel("documents", fontsize=8)
    fig.tight_layout()
    return _png(fig)
