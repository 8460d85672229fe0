"""The misalignment figure: normalised return against BC training loss, a curve per dataset and
training-set size."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from sdw.atomic import atomic_write


def plot_misalignment(table: Mapping[str, Sequence[dict]], path: Path) -> Path:
    """Seed-mean score against seed-mean loss (log axis), one colour per dataset and one line
    style per training-set size, min-max band over seeds, each checkpoint's step written beside
    its point on the first curve."""
    fig = Figure(figsize=(7, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    styles = ["-", "--", ":", "-."]
    for i, (name, rows) in enumerate(table.items()):
        colour = f"C{i % 10}"
        sizes = list(dict.fromkeys(r.get("pairs") for r in rows))
        for j, pairs in enumerate(sizes):
            run = [r for r in rows if r.get("pairs") == pairs]
            loss = np.array([r["loss_mean"] for r in run])
            size = "" if len(sizes) == 1 else (", all pairs" if pairs is None
                                                else f", {pairs:,} pairs")
            ax.plot(loss, [r["score_mean"] for r in run], marker="o", color=colour,
                    linestyle=styles[j % len(styles)],
                    label=f"{name}{size} ({run[0]['seeds']} seeds)")
            ax.fill_between(loss, [r["score_min"] for r in run], [r["score_max"] for r in run],
                            color=colour, alpha=0.2, linewidth=0)
    first = next(iter(table.values()))
    for r in first:
        ax.annotate(f"{r['step']:,}", (r["loss_mean"], r["score_mean"]), fontsize=7,
                    textcoords="offset points", xytext=(3, 3), color="grey")
    ax.set_xscale("log")
    ax.invert_xaxis()
    ax.set_xlabel("BC loss on the whole dataset (MSE, log scale; training goes right)")
    ax.set_ylabel("normalised return")
    ax.set_title("BC: return against training loss (mean, min-max over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    return atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))
