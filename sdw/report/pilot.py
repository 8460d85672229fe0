"""The outer-step pilot: how much each evaluation curve still rises over its last 100 outer steps
at every length the pilot evaluated, and the shortest length the sizing rule accepts."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sdw.report.curves import MeanCurve, grouped_curves
from sdw.report.plots import plot_curves

WINDOW = 100
"""Outer steps over which the rise is measured (issue 19: the slope of the last 100 steps)."""


def rise(curve: MeanCurve, length: int, window: int = WINDOW) -> float | None:
    """Least-squares slope of the seed-mean score over the evaluations in [length - window,
    length], in points per `window` steps; None unless both ends and 3 points were evaluated."""
    keep = (curve.steps >= length - window) & (curve.steps <= length)
    steps = curve.steps[keep]
    if len(steps) < 3 or steps[0] != length - window or steps[-1] != length:
        return None
    slope = np.polyfit(steps.astype(float), curve.mean[keep], 1)[0]
    return float(slope * window)


@dataclass
class Sizing:
    """Every curve's rise at every candidate length, the mean rise per length, and the choice."""

    lengths: list[int]
    rises: dict[tuple[str, str], dict[int, float | None]]  # (dataset, method) -> length -> rise
    scores: dict[tuple[str, str], dict[int, float]]        # (dataset, method) -> length -> score
    mean_rise: dict[int, float | None]
    chosen: int | None


def size(curves: Mapping[str, Mapping[str, MeanCurve]], lengths: Sequence[int],
         limit: float, expected: int | None = None) -> Sizing:
    """The shortest of `lengths` where every curve has a rise and their mean is at most `limit`
    points per WINDOW steps (None: no length qualifies, the pilot has to run longer, or fewer
    than `expected` curves are in)."""
    rises, scores = {}, {}
    for dataset, lines in curves.items():
        for method, curve in lines.items():
            rises[(dataset, method)] = {n: rise(curve, n) for n in lengths}
            scores[(dataset, method)] = {int(s): float(m) for s, m in zip(curve.steps, curve.mean)}
    mean_rise: dict[int, float | None] = {}
    for n in lengths:
        values = [r[n] for r in rises.values()]
        mean_rise[n] = (float(np.mean(values)) if values and None not in values else None)
    chosen = next((n for n in lengths if mean_rise[n] is not None and mean_rise[n] <= limit), None)
    if expected is not None and len(rises) < expected:
        chosen = None
    return Sizing(list(lengths), rises, scores, mean_rise, chosen)


def section(runs: Sequence, lengths: Sequence[int], limit: float, figure: Path, d: int,
            command: str, expected: int | None = None) -> list[str]:
    """The page's pilot section: the rule, the table of scores and rises, the choice, the curves."""
    curves = grouped_curves(runs, line="method", panel="dataset", statuses=("done",))
    lines = ["## Outer-step pilot", "",
             f"Made by `{command}` (one seed per cell, no references). The rule, written before "
             f"the pilot ran (2026-12-03): the study's outer_steps is the shortest length L of "
             f"{', '.join(map(str, lengths))} at which the mean, over every pilot curve, of the "
             f"least-squares slope of the score over steps L - {WINDOW} to L is at most "
             f"{limit:g} normalised points per {WINDOW} steps; where no length qualifies, the "
             "pilot is extended (its jobs resume to a longer outer_steps).", ""]
    if not curves:
        return lines + ["The pilot has not run yet.", ""]
    sizing = size(curves, lengths, limit, expected)
    head = " | ".join(f"score {n}" for n in lengths) + " | " + " | ".join(
        f"rise to {n}" for n in lengths)
    lines += [f"| dataset | method | {head} |", "|---|---|" + "---:|" * (2 * len(lengths))]
    for (dataset, method), by_length in sizing.rises.items():
        score = sizing.scores[(dataset, method)]
        cells = [_number(score.get(n), d) for n in lengths] + [
            _number(by_length[n], d, signed=True) for n in lengths]
        lines.append(f"| {dataset} | {method} | " + " | ".join(cells) + " |")
    means = [_number(sizing.mean_rise[n], d, signed=True) for n in lengths]
    lines.append("| " + " | ".join(["mean rise", "", *[""] * len(lengths), *means]) + " |")
    done = len(sizing.rises)
    if expected is not None and done < expected:
        verdict = (f"{done} of the pilot's {expected} curves are in; the rule chooses once all "
                   "are (the mean rises above are provisional).")
    elif sizing.chosen:
        verdict = f"{done} curves. The rule chooses **{sizing.chosen} outer steps**."
    else:
        verdict = f"{done} curves. No length qualifies: the pilot has to run longer."
    lines += ["", verdict, ""]
    if plot_curves(curves, figure, x="step", band="minmax", legend_title="method"):
        lines += [f"![Pilot curves]({figure.name})", ""]
    return lines


def study_section(runs: Sequence, limit: float, figure: Path, d: int,
                  name: Callable[[str], str] = str) -> list[str]:
    """The main study's own curves: each (dataset, method) seed-mean curve's rise over its last
    WINDOW steps, the mean rise per method beside the pilot's limit, and the curves; `name`
    gives a dataset's column heading."""
    curves = grouped_curves(runs, line="method", panel="dataset", statuses=("done",))
    lines = ["## Have the study's runs levelled off?", "",
             f"The rise of each seed-mean curve of the methods table over its last {WINDOW} "
             f"outer steps (least-squares slope, normalised points per {WINDOW} steps), the "
             f"check the pilot's rule applied, here on the study's own runs; the pilot's limit "
             f"was a mean of {limit:g}.", ""]
    if not curves:
        return lines + ["No study job has finished yet.", ""]
    rises: dict[str, dict[str, float | None]] = {}
    for dataset, by_method in curves.items():
        for method, curve in by_method.items():
            end = int(curve.steps[-1])
            rises.setdefault(method, {})[dataset] = rise(curve, end)
    datasets = list(curves)
    lines += ["| method | " + " | ".join(map(name, datasets)) + " | mean |", "|---|" + "---:|" * (
        len(datasets) + 1)]
    for method, by_dataset in rises.items():
        values = [v for v in by_dataset.values() if v is not None]
        cells = [_number(by_dataset.get(x), d, signed=True) for x in datasets]
        mean = float(np.mean(values)) if values else None
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {_number(mean, d, True)} |")
    lines += ["", "`-`: no finished curve, or none evaluated over a whole window.", ""]
    every = [v for by_dataset in rises.values() for v in by_dataset.values() if v is not None]
    if every:
        mean = float(np.mean(every))
        verdict = ("within the pilot's limit: by its own rule these runs have levelled off"
                   if mean <= limit else
                   "above the pilot's limit: by its own rule these runs are still rising")
        lines += [f"Mean rise over all {len(every)} curves: {mean:+.{d}f}, {verdict}.", ""]
    if plot_curves(curves, figure, x="step", band="minmax", legend_title="method"):
        lines += [f"![Study curves]({figure.name})", ""]
    return lines


def _number(value: float | None, d: int, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.{d}f}" if signed else f"{value:.{d}f}"
