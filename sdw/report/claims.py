"""Differences between methods over seeds, with a bootstrap confidence interval and a verdict.

A difference counts only when its interval excludes zero; otherwise it is a tie. With 3 seeds a
side the percentile bootstrap is coarse (it can only resample 10 distinct means per side), so
the interval is a lower bound on the true uncertainty: ties are said to be ties, and a
"higher" with an interval that barely excludes zero is weak evidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

HIGHER, LOWER, TIE, MISSING = "higher", "lower", "tie", "missing"


@dataclass(frozen=True)
class Bootstrap:
    """Percentile bootstrap of a difference of means: `samples` resamples, `level` coverage."""

    samples: int = 10_000
    level: float = 0.95
    seed: int = 0


@dataclass(frozen=True)
class Difference:
    """mean(left) - mean(right) over seeds, its bootstrap interval and what it says."""

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
        if self.low > 0:
            return HIGHER
        if self.high < 0:
            return LOWER
        return TIE

    def text(self, decimals: int = 1) -> str:
        """`+3.2 [0.4, 6.1]`, or why there is no number."""
        if self.diff is None:
            return f"— (seeds: {self.n_left} vs {self.n_right})"
        return f"{self.diff:+.{decimals}f} [{self.low:+.{decimals}f}, {self.high:+.{decimals}f}]"


def difference(left: str, right: str, a: Sequence[float], b: Sequence[float],
               bootstrap: Bootstrap) -> Difference:
    """The difference of the seed means of `a` and `b`, each side resampled independently.

    A side with one value (a reference computed once per dataset) is a constant, not resampled.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if not len(a) or not len(b):
        return Difference(left, right, len(a), len(b), None, None, None)
    rng = np.random.default_rng(bootstrap.seed)
    diffs = _resampled_means(a, bootstrap.samples, rng) - _resampled_means(b, bootstrap.samples, rng)
    tail = (1 - bootstrap.level) / 2 * 100
    low, high = np.percentile(diffs, [tail, 100 - tail])
    return Difference(left, right, len(a), len(b), float(a.mean() - b.mean()), float(low),
                      float(high))


def _resampled_means(values: np.ndarray, samples: int, rng: np.random.Generator) -> np.ndarray:
    if len(values) == 1:
        return np.full(samples, values[0])
    return values[rng.integers(0, len(values), size=(samples, len(values)))].mean(axis=1)


def chain_verdict(differences: Sequence[Difference]) -> str:
    """`holds` when every link of an ordering is higher, `broken` when one is lower, else `tie`
    (some link is a tie and none is reversed) or `missing`."""
    verdicts = [d.verdict for d in differences]
    if MISSING in verdicts:
        return MISSING
    if LOWER in verdicts:
        return "broken"
    return "holds" if all(v == HIGHER for v in verdicts) else TIE
