"""Evaluation curves over seeds: the runs grouped into panels and lines, and their seed-mean."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sdw.report.collect import Curve, Run, label

CURVE_STATUSES = {"done": ("done",),
                  "all": ("done", "failed", "running", "interrupted", "stale", "incomplete")}


@dataclass
class MeanCurve:
    """Per evaluated step: seed-mean score, its spread, the seeds evaluated there, mean elapsed."""

    steps: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    low: np.ndarray
    high: np.ndarray
    n: np.ndarray
    elapsed: np.ndarray  # mean wall-clock seconds of distillation at the step (NaN if unknown)
    seeds: int  # runs with at least one score

    def complete(self) -> np.ndarray:
        """Mask of the steps every seed was evaluated at."""
        return self.n == self.seeds


def mean_curve(curves: Sequence[Curve]) -> MeanCurve:
    """Aggregate curves by step over the runs that have a score there."""
    scores: dict[int, list[float]] = defaultdict(list)
    elapsed: dict[int, list[float]] = defaultdict(list)
    seeds = 0
    for curve in curves:
        seeds += any(s is not None for s in curve.scores)
        for step, secs, score in zip(curve.steps, curve.elapsed, curve.scores):
            if score is None:
                continue
            scores[step].append(score)
            if secs is not None:
                elapsed[step].append(secs)
    steps = np.array(sorted(scores), dtype=int)
    values = [np.asarray(scores[s]) for s in steps]
    return MeanCurve(
        steps=steps,
        mean=np.array([v.mean() for v in values]),
        std=np.array([v.std() for v in values]),
        low=np.array([v.min() for v in values]),
        high=np.array([v.max() for v in values]),
        n=np.array([len(v) for v in values], dtype=int),
        elapsed=np.array([np.mean(elapsed[s]) if elapsed[s] else np.nan for s in steps]),
        seeds=seeds,
    )


def grouped_curves(runs: Sequence[Run], line: str, panel: str | None,
                   statuses: Sequence[str]) -> dict[str, dict[str, MeanCurve]]:
    """panel value -> line value -> seed-mean curve, from the runs with these statuses."""
    groups: dict[str, dict[str, list[Curve]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        if run["status"] in statuses and run.curve.steps:
            key = label(run[panel]) if panel else "all runs"
            groups[key][label(run[line])].append(run.curve)
    out = {}
    for p in sorted(groups):
        lines = {name: mean_curve(c) for name, c in sorted(groups[p].items())}
        lines = {name: m for name, m in lines.items() if len(m.steps)}
        if lines:
            out[p] = lines
    return out
