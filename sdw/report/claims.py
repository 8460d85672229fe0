"""Differences between methods, with a bootstrap confidence interval and a verdict.

A difference counts only when its interval excludes zero; otherwise it is a tie. With 3 seeds a
side the percentile bootstrap is coarse (it can only resample 10 distinct means per side), so
the interval is a lower bound on the true uncertainty: ties are said to be ties, and a
"higher" with an interval that barely excludes zero is weak evidence. A side with fewer than
MIN_VALUES resampled values gives no interval at all rather than a zero-width one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from sdw.report.tables import Cell

HIGHER, LOWER, TIE, MISSING, TOO_FEW = "higher", "lower", "tie", "missing", "too few seeds"
MIN_VALUES = 2


@dataclass(frozen=True)
class Bootstrap:
    """Percentile bootstrap of a difference of means: `samples` resamples, `level` coverage."""

    samples: int = 10_000
    level: float = 0.95
    seed: int = 0


@dataclass
class Sample(Cell):
    """One side of a comparison: `values` the bootstrap resamples (a method's seed scores, the
    random subset's one student per subset), or, when `fixed`, one number taken as exact (a
    reference of one student or policy, whose spread was not measured)."""

    fixed: bool = False

    @classmethod
    def of(cls, values: Iterable[float], fixed: bool = False) -> Sample:
        return cls([float(v) for v in values], fixed=fixed)


@dataclass(frozen=True)
class Difference:
    """mean(left) - mean(right), its bootstrap interval and what it says."""

    left: str
    right: str
    n_left: int
    n_right: int
    diff: float | None
    low: float | None
    high: float | None

    @property
    def verdict(self) -> str:
        if self.diff is None:
            return MISSING
        if self.low is None:
            return TOO_FEW
        if self.low > 0:
            return HIGHER
        if self.high < 0:
            return LOWER
        return TIE

    def text(self, decimals: int = 1) -> str:
        """`+3.2 [0.4, 6.1]`, or why there is no number or no interval."""
        if self.diff is None:
            return f"— (seeds: {self.n_left} vs {self.n_right})"
        if self.low is None:
            return (f"{self.diff:+.{decimals}f} (seeds: {self.n_left} vs {self.n_right}, "
                    f"no interval)")
        return f"{self.diff:+.{decimals}f} [{self.low:+.{decimals}f}, {self.high:+.{decimals}f}]"


def difference(left: str, right: str, a: Sample, b: Sample, bootstrap: Bootstrap) -> Difference:
    """The difference of the means of `a` and `b`, each side resampled independently; no
    interval when a resampled side has fewer than MIN_VALUES values."""
    if not a.n or not b.n:
        return Difference(left, right, a.n, b.n, None, None, None)
    diff = a.mean - b.mean
    if any(not s.fixed and s.n < MIN_VALUES for s in (a, b)):
        return Difference(left, right, a.n, b.n, diff, None, None)
    rng = np.random.default_rng(bootstrap.seed)
    diffs = _resampled_means(a, bootstrap.samples, rng) - _resampled_means(b, bootstrap.samples, rng)
    tail = (1 - bootstrap.level) / 2 * 100
    low, high = np.percentile(diffs, [tail, 100 - tail])
    return Difference(left, right, a.n, b.n, diff, float(low), float(high))


def _resampled_means(side: Sample, samples: int, rng: np.random.Generator) -> np.ndarray:
    values = np.asarray(side.values)
    if side.fixed:
        return np.full(samples, values.mean())
    return values[rng.integers(0, len(values), size=(samples, len(values)))].mean(axis=1)


def chain_verdict(differences: Sequence[Difference]) -> str:
    """`holds` when every link of an ordering is higher, `broken` when one is lower, else `tie`
    (some link is a tie and none is reversed), `missing` or `too few seeds`."""
    verdicts = [d.verdict for d in differences]
    for gap in (MISSING, TOO_FEW):
        if gap in verdicts:
            return gap
    if LOWER in verdicts:
        return "broken"
    return "holds" if all(v == HIGHER for v in verdicts) else TIE
