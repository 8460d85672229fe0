"""Differences between methods, with Welch's t interval and a verdict.

A difference counts only when its interval excludes zero; otherwise it is a tie, which the page
reports as inconclusive. The interval is Welch's: the difference of the means plus or minus the
t quantile (Welch-Satterthwaite degrees of freedom) times the standard error of the difference.
It holds its level at the seed counts of the study: under the null (two samples of one normal
distribution) it calls a difference in at most about 5% of draws at 3 vs 3, 3 vs 5 and 5 vs 5
seeds (tests/test_report_claims.py simulates it), where the percentile bootstrap this replaced
called one in 12-20%.

A side is either a sample (a method's seed scores, a reference's students or episodes: at
least MIN_VALUES values) or `fixed`, one number taken as exact (a paper's published mean). A
sample of one value has no spread and gives no interval rather than a zero-width one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from sdw.report.tables import Cell

HIGHER, LOWER, TIE, MISSING, TOO_FEW = "higher", "lower", "tie", "missing", "too few seeds"
MIN_VALUES = 2


@dataclass(frozen=True)
class Welch:
    """Welch's t interval of a difference of means at coverage `level`."""

    level: float = 0.95


@dataclass
class Sample(Cell):
    """One side of a comparison: `values` a sample (seed scores, a reference's students), or,
    when `fixed`, exact numbers whose mean has no uncertainty (a paper's published table)."""

    fixed: bool = False

    @classmethod
    def of(cls, values: Iterable[float], fixed: bool = False) -> Sample:
        return cls([float(v) for v in values], fixed=fixed)

    @property
    def testable(self) -> bool:
        return self.n > 0 and (self.fixed or self.n >= MIN_VALUES)

    @property
    def mean_variance(self) -> float:
        """The squared standard error of the mean; 0 for fixed numbers."""
        return 0.0 if self.fixed else float(np.var(self.values, ddof=1)) / self.n


@dataclass(frozen=True)
class Difference:
    """mean(left) - mean(right) (or an average of such differences), its interval and what it
    says."""

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


def welch_interval(diff: np.ndarray, variances: np.ndarray, dofs: np.ndarray,
                   level: float) -> tuple[np.ndarray, np.ndarray]:
    """The interval of `diff`, a sum of independent means' contributions whose squared standard
    errors are `variances` (..., k) with `dofs` (..., k) degrees of freedom each (Welch-
    Satterthwaite); a sum with no variance is exact. Vectorised over leading dimensions."""
    variances = np.asarray(variances, dtype=np.float64)
    dofs = np.asarray(dofs, dtype=np.float64)
    total = variances.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        df = total ** 2 / np.where(variances > 0, variances ** 2 / dofs, 0.0).sum(axis=-1)
    quantile = np.where(total > 0, stats.t.ppf(0.5 + level / 2, np.where(total > 0, df, 1.0)), 0)
    half = quantile * np.sqrt(total)
    return diff - half, diff + half


def difference(left: str, right: str, a: Sample, b: Sample, test: Welch) -> Difference:
    """mean(a) - mean(b) with Welch's interval; no interval when a side that is not fixed has
    fewer than MIN_VALUES values."""
    return contrast(left, right, [(1.0, a), (-1.0, b)], test)


def averaged_difference(left: str, right: str, pairs: Sequence[tuple[Sample, Sample]],
                        test: Welch) -> Difference:
    """The mean over units (datasets, envs) of mean(a) - mean(b): a claim at the papers' averaged
    level, its interval from every side's seed variance (the units' samples independent)."""
    if not pairs:
        return Difference(left, right, 0, 0, None, None, None)
    units = len(pairs)
    return contrast(left, right, [term for a, b in pairs
                                  for term in ((1 / units, a), (-1 / units, b))], test)


def contrast(left: str, right: str, terms: Sequence[tuple[float, Sample]],
             test: Welch) -> Difference:
    """sum(weight * mean(sample)) with Welch's interval over the independent samples; positive
    weights count as `left`, negative as `right` in the seed counts."""
    n_left = sum(s.n for w, s in terms if w > 0)
    n_right = sum(s.n for w, s in terms if w < 0)
    if not terms or any(not s.n for _, s in terms):
        return Difference(left, right, n_left, n_right, None, None, None)
    diff = float(sum(w * s.mean for w, s in terms))
    if not all(s.testable for _, s in terms):
        return Difference(left, right, n_left, n_right, diff, None, None)
    variances = np.array([w ** 2 * s.mean_variance for w, s in terms])
    dofs = np.array([np.inf if s.fixed else s.n - 1 for _, s in terms], dtype=np.float64)
    low, high = welch_interval(np.float64(diff), variances, dofs, test.level)
    return Difference(left, right, n_left, n_right, diff, float(low), float(high))


def chain_verdict(differences: Sequence[Difference]) -> str:
    """`holds` when every link of an ordering is higher, `broken` when one is lower, else `tie`
    (some link is a tie and none is reversed: inconclusive), `missing` or `too few seeds`."""
    verdicts = [d.verdict for d in differences]
    for gap in (MISSING, TOO_FEW):
        if gap in verdicts:
            return gap
    if LOWER in verdicts:
        return "broken"
    return "holds" if all(v == HIGHER for v in verdicts) else TIE
