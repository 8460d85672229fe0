"""The report's PNG figures (matplotlib's Agg canvas, no pyplot state): score curves over outer
steps or wall-clock seconds, and the SDW weights' ESS fraction."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from sdw.atomic import atomic_write
from sdw.report.collect import Run, label
from sdw.report.curves import MeanCurve

X_AXES = {"step": "outer step", "elapsed": "distillation wall clock (s)"}
BANDS = ("minmax", "std")
REFERENCE_STYLES = (":", "-.", "--")


def plot_curves(curves: Mapping[str, Mapping[str, MeanCurve]], path: Path, *, x: str,
                band: str, legend_title: str, targets: Mapping[str, float] | None = None,
                references: Mapping[str, Mapping[str, float]] | None = None) -> Path | None:
    """One panel per key of `curves`, one line per inner key: seed-mean score with a band
    (min-max or +- std over seeds) against outer step or elapsed seconds, and each panel's
    `references` (name -> score: random subset, whole-data BC, teacher) as horizontal lines;
    None without curves."""
    if x not in X_AXES:
        raise ValueError(f"x={x!r}: one of {', '.join(X_AXES)}")
    if band not in BANDS:
        raise ValueError(f"band={band!r}: one of {', '.join(BANDS)}")
    if not curves:
        return None
    fig, axes = _panels(len(curves))
    for ax, (panel, lines) in zip(axes, curves.items()):
        for name, c in lines.items():
            xs = c.steps if x == "step" else c.elapsed
            keep = np.isfinite(xs.astype(float))
            low, high = (c.low, c.high) if band == "minmax" else (c.mean - c.std, c.mean + c.std)
            (drawn,) = ax.plot(xs[keep], c.mean[keep], marker=".",
                               label=f"{name} ({c.seeds} seed{'s' * (c.seeds != 1)})")
            ax.fill_between(xs[keep], low[keep], high[keep], alpha=0.2,
                            color=drawn.get_color(), linewidth=0)
        for (name, value), style in zip((references or {}).get(panel, {}).items(),
                                        REFERENCE_STYLES):
            ax.axhline(value, color="black", linestyle=style, linewidth=1,
                       label=f"{name} {value:.1f}")
        if targets and panel in targets:
            ax.axhline(targets[panel], color="grey", linestyle="--", linewidth=1,
                       label=f"target {targets[panel]:.1f}")
        ax.set_title(panel)
        ax.set_xlabel(X_AXES[x])
        ax.set_ylabel("normalised score")
        ax.grid(alpha=0.3)
        ax.legend(title=legend_title, fontsize="small")
    spread = "min-max" if band == "minmax" else "± std"
    fig.suptitle(f"normalised score: mean over seeds, band {spread}")
    return _save(fig, path)


def plot_ess(runs: Sequence[Run], rows: str, cols: str, path: Path) -> Path | None:
    """Bars of the mean ESS fraction per column (dataset) and row (method), min-max whiskers;
    None when no run reports one."""
    values: dict[str, dict[str, list[float]]] = {}
    for run in runs:
        if run["status"] == "done" and run["ess_fraction"] is not None:
            values.setdefault(label(run[cols]), {}).setdefault(label(run[rows]), []).append(
                run["ess_fraction"])
    if not values:
        return None
    panels = sorted(values)
    names = sorted({n for v in values.values() for n in v})
    width = 0.8 / len(names)
    fig = Figure(figsize=(max(5.0, 1.6 * len(panels) * max(1, len(names) / 2)), 4),
                 layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for i, name in enumerate(names):
        xs, means, errs = [], [], [[], []]
        for j, panel in enumerate(panels):
            v = values[panel].get(name)
            if v:
                xs.append(j + (i - (len(names) - 1) / 2) * width)
                means.append(np.mean(v))
                errs[0].append(np.mean(v) - min(v))
                errs[1].append(max(v) - np.mean(v))
        bars = ax.bar(xs, means, width, yerr=errs, capsize=3, label=name)
        ax.bar_label(bars, fmt="%.3f", fontsize="small", padding=2)
    ax.set_xticks(range(len(panels)), panels)
    ax.set_ylabel("ESS / N of the state weights")
    ax.set_ylim(0, 1.05)
    ax.legend(title=rows, fontsize="small")
    ax.set_title("weight diagnostics: ESS / N\n(mean over seeds, whiskers min-max)")
    return _save(fig, path)


def _panels(n: int):
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(5 * cols, 4 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def _save(fig: Figure, path: Path) -> Path:
    return atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))
