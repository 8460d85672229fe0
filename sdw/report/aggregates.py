"""Aggregates across datasets as RL papers now report them (Agarwal et al. 2021, rliable): IQM,
mean and optimality gap with stratified bootstrap 95% intervals, the probability that one method
improves on another, and performance profiles. Scores are normalised returns / 100 (1 = expert)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sdw.report.collect import Run, label

METRICS = ("IQM", "Mean", "Optimality gap")


def score_matrices(runs: Sequence[Run], rows: str, cols: str,
                   value: str) -> tuple[dict[str, np.ndarray], list[str], list[str]]:
    """(method -> (seeds x datasets) scores / 100, the datasets, notes): the done runs of each
    row value on the seeds it has on every column; rows missing a column are left out."""
    done = [r for r in runs if r["status"] == "done" and r[value] is not None]
    datasets = sorted({label(r[cols]) for r in done})
    matrices, notes = {}, []
    for method in sorted({label(r[rows]) for r in done}):
        cells = {(label(r[cols]), label(r["seed"])): float(r[value]) / 100.0
                 for r in done if label(r[rows]) == method}
        seeds = sorted({s for _, s in cells}, key=str)
        common = [s for s in seeds if all((d, s) in cells for d in datasets)]
        if not common:
            notes.append(f"{method}: no seed has a score on every dataset, left out")
            continue
        if len(common) < len(seeds):
            notes.append(f"{method}: seeds {', '.join(s for s in seeds if s not in common)} "
                         "lack a dataset and are left out")
        matrices[method] = np.array([[cells[(d, s)] for d in datasets] for s in common])
    return matrices, datasets, notes


def interval_estimates(matrices: dict[str, np.ndarray], reps: int,
                       seed: int) -> dict[str, list[tuple[float, float, float]]]:
    """method -> [(point, low, high)] for METRICS, stratified bootstrap over seeds per dataset."""
    from rliable import library as rly
    from rliable import metrics

    def aggregate(scores: np.ndarray) -> np.ndarray:
        return np.array([metrics.aggregate_iqm(scores), metrics.aggregate_mean(scores),
                         metrics.aggregate_optimality_gap(scores)])

    np.random.seed(seed)  # rliable's bootstrap draws from numpy's global generator
    points, intervals = rly.get_interval_estimates(matrices, aggregate, reps=reps)
    return {m: [(float(points[m][i]), float(intervals[m][0][i]), float(intervals[m][1][i]))
                for i in range(len(METRICS))] for m in matrices}


def improvement(matrices: dict[str, np.ndarray], pairs: Sequence[Sequence[str]], reps: int,
                seed: int) -> dict[tuple[str, str], tuple[float, float, float]]:
    """(X, Y) -> P(X > Y) with its 95% interval, for each pair whose methods are both present."""
    from rliable import library as rly
    from rliable import metrics

    present = {(x, y): (matrices[x], matrices[y]) for x, y in pairs
               if x in matrices and y in matrices}
    if not present:
        return {}
    np.random.seed(seed)
    points, intervals = rly.get_interval_estimates(
        {f"{x},{y}": v for (x, y), v in present.items()}, metrics.probability_of_improvement,
        reps=reps)
    out = {}
    for x, y in present:
        low, high = np.ravel(intervals[f"{x},{y}"])
        out[(x, y)] = (float(np.ravel(points[f"{x},{y}"])[0]), float(low), float(high))
    return out


def plot_profiles(matrices: dict[str, np.ndarray], path: Path, reps: int, seed: int,
                  estimates: dict[str, list[tuple[float, float, float]]] | None = None) -> Path:
    """Performance profiles: the fraction of runs above each normalised score, with 95% bands;
    with `estimates`, beside them each method's METRICS as points with their intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from rliable import library as rly
    from rliable import plot_utils

    thresholds = np.linspace(0.0, 1.2, 61)
    np.random.seed(seed)
    profiles, cis = rly.create_performance_profile(matrices, thresholds, reps=reps)
    panels = 1 + (len(METRICS) if estimates else 0)
    fig, axes = plt.subplots(1, panels, figsize=(6 + 3 * (panels - 1), 4), squeeze=False)
    ax = axes[0][0]
    plot_utils.plot_performance_profiles(profiles, thresholds, performance_profile_cis=cis,
                                         xlabel="normalised score / 100 (tau)", ax=ax)
    ax.legend(ax.get_lines()[:len(profiles)], list(profiles), fontsize=8)
    colours = {m: line.get_color() for m, line in zip(profiles, ax.get_lines())}
    for i, metric in enumerate(METRICS if estimates else ()):
        ax = axes[0][i + 1]
        for row, (method, values) in enumerate(estimates.items()):
            point, low, high = (100 * v for v in values[i])
            ax.errorbar(point, row, xerr=[[point - low], [high - point]], fmt="o", capsize=4,
                        color=colours.get(method))
        ax.set_yticks(range(len(estimates)), list(estimates) if i == 0 else [])
        ax.set_title(metric)
        ax.set_xlabel("normalised score")
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def to_markdown(estimates: dict[str, list[tuple[float, float, float]]],
                improvements: dict[tuple[str, str], tuple[float, float, float]],
                datasets: Sequence[str], runs_per_method: dict[str, int], notes: Sequence[str],
                reps: int) -> str:
    """The aggregate table and the probabilities of improvement, in units of normalised score."""
    noun = "dataset" if len(datasets) == 1 else "datasets"
    lines = [f"Across {len(datasets)} {noun} ({', '.join(datasets)}), normalised score, "
             f"95% stratified bootstrap intervals ({reps} resamples, rliable):", "",
             "| method | runs | " + " | ".join(METRICS) + " |",
             "|---|---:|" + "---:|" * len(METRICS)]
    for method, values in estimates.items():
        cells = [f"{100 * p:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]" for p, lo, hi in values]
        lines.append(f"| {method} | {runs_per_method[method]} | " + " | ".join(cells) + " |")
    if improvements:
        lines += ["", "| probability of improvement | P(X > Y) [95% interval] |", "|---|---:|"]
        lines += [f"| {x} over {y} | {p:.2f} [{lo:.2f}, {hi:.2f}] |"
                  for (x, y), (p, lo, hi) in improvements.items()]
    lines += ["", *(f"- {note}" for note in notes)] if notes else []
    return "\n".join(lines) + "\n"
