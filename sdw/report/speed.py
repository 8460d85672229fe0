"""Time to score (issue 11): how many outer steps (and seconds) each group of runs, say each
outer optimiser, needs to reach a reference group's seed-mean score at a reference step."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from sdw.report.curves import MeanCurve
from sdw.report.tables import MISSING


@dataclass
class StepsToScore:
    """One group's result in one panel (dataset); `step` None when it never reaches the target."""

    panel: str
    group: str
    seeds: int
    target: float | None
    step: int | None = None
    seconds: float | None = None
    step_ratio: float | None = None
    time_ratio: float | None = None
    best: float | None = None
    best_step: int | None = None
    note: str = ""


def steps_to_score(curves: Mapping[str, Mapping[str, MeanCurve]], reference: str,
                   reference_step: int) -> list[StepsToScore]:
    """For every panel: the target is `reference`'s seed-mean at `reference_step`; each group
    reaches it at its first evaluation whose seed-mean (over all its seeds) is at least that."""
    results = []
    for panel, groups in curves.items():
        target, ref_seconds, why = _target(groups.get(reference), reference, reference_step)
        ordered = sorted(groups.items(), key=lambda item: item[0] != reference)
        for group, curve in ordered:
            done = curve.complete()
            steps, means, elapsed = curve.steps[done], curve.mean[done], curve.elapsed[done]
            r = StepsToScore(panel, group, curve.seeds, target, note=why)
            if len(steps):
                best = int(np.argmax(means))
                r.best, r.best_step = float(means[best]), int(steps[best])
            if target is not None:
                reached = np.flatnonzero(means >= target)
                if len(reached):
                    i = reached[0]
                    r.step = int(steps[i])
                    r.step_ratio = r.step / reference_step
                    if np.isfinite(elapsed[i]):
                        r.seconds = float(elapsed[i])
                        if ref_seconds:
                            r.time_ratio = r.seconds / ref_seconds
                else:
                    r.note = "not reached"
            results.append(r)
    return results


def _target(curve: MeanCurve | None, reference: str,
            reference_step: int) -> tuple[float | None, float | None, str]:
    """The reference's seed-mean and mean seconds at the step, or why there is none."""
    if curve is None:
        return None, None, f"no runs of {reference}"
    at = np.flatnonzero((curve.steps == reference_step) & curve.complete())
    if not len(at):
        evaluated = ", ".join(map(str, curve.steps[curve.complete()])) or "none"
        return None, None, (f"{reference} has no evaluation of all its seeds at step "
                            f"{reference_step} (evaluated at: {evaluated})")
    i = at[0]
    seconds = float(curve.elapsed[i]) if np.isfinite(curve.elapsed[i]) else None
    return float(curve.mean[i]), seconds, ""


def to_markdown(results: list[StepsToScore], *, group_by: str, panel: str | None,
                reference: str, reference_step: int, decimals: int) -> str:
    """The steps-to-score table with its definition."""
    def num(v, fmt):
        return MISSING if v is None else format(v, fmt)

    lines = [f"## Steps to score: {group_by} against `{reference}` at outer step {reference_step}",
             "",
             f"Target: the seed-mean normalised score of `{group_by}={reference}` at outer step "
             f"{reference_step}{' (per ' + panel + ')' if panel else ''}. A group reaches it at "
             f"its first evaluation whose mean over all its seeds is at least the target. Step "
             f"ratio = steps / {reference_step}; time ratio = distillation seconds to the target "
             f"/ the reference's seconds at step {reference_step} (evaluations excluded).",
             "",
             f"| {panel or 'panel'} | {group_by} | seeds | target | steps to target | step ratio "
             f"| seconds to target | time ratio | best (step) | note |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    f = f".{decimals}f"
    for r in results:
        best = MISSING if r.best is None else f"{r.best:{f}} ({r.best_step})"
        lines.append(f"| {r.panel} | {r.group} | {r.seeds} | {num(r.target, f)} | "
                     f"{num(r.step, 'd')} | {num(r.step_ratio, '.2f')} | {num(r.seconds, '.1f')} | "
                     f"{num(r.time_ratio, '.2f')} | {best} | {r.note} |")
    return "\n".join(lines) + "\n"
