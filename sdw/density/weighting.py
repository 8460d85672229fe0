"""Weighting schemes: state weights w(s) from log densities, computed in log space."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from sdw.density.base import DensityError
from sdw.density.diagnostics import effective_sample_fraction

log = logging.getLogger(__name__)

NORMALISATIONS = ("dataset", "batch", "none")
COMPOSITIONS = ("multiply", "replace")
FLOAT32_MAX_LOG = math.log(float(np.finfo(np.float32).max))
"""Largest log weight a float32 holds (about 88.7): beyond it exp overflows to inf."""


@dataclass(frozen=True)
class WeightingScheme:
    """w(s) proportional to p(s)^-alpha, optionally clipped, then normalised.

    Steps, all on log w = -alpha log p over the states of D_off:
    1. clip at the `clip_quantile` quantile of w (a sample value, `inverted_cdf`) and/or at
       `clip_max_ratio` x the median w (the lower median, also a sample value);
    2. normalise: `dataset` shifts log w so the mean weight over D_off is exactly 1; `batch`
       does the same for the table and then renormalises each outer batch to mean 1
       (w_i = B softmax_i(log w)); `none` keeps p^-alpha literally and refuses weights that
       overflow float32.
    `compose` says how the engine combines w with Av-PBC's beta Q*: multiply or replace.
    With `target_ess`, the exponent is the largest one in [0, alpha] whose weights (after the
    clipping and normalisation) have that effective sample size over N (found by bisection:
    ESS/N falls as the exponent grows).
    """

    name: str = "none"
    alpha: float = 0.0
    normalise: str = "dataset"
    clip_quantile: float | None = None
    clip_max_ratio: float | None = None
    compose: str = "multiply"
    target_ess: float | None = None

    def __post_init__(self) -> None:
        where = f"weighting {self.name!r}"
        if not math.isfinite(self.alpha):
            raise DensityError(f"{where}: alpha must be finite, got {self.alpha}.")
        if self.alpha < 0:
            raise DensityError(
                f"{where}: alpha={self.alpha} is negative, so w = p^-alpha would grow with the "
                "density and favour dense states, the opposite of SDW. Use alpha > 0 (1 = inverse "
                "density, 0 < alpha < 1 tempered) or alpha = 0 for no weighting."
            )
        if self.normalise not in NORMALISATIONS:
            raise DensityError(f"{where}: normalise={self.normalise!r}; use one of {NORMALISATIONS}.")
        if self.compose not in COMPOSITIONS:
            raise DensityError(f"{where}: compose={self.compose!r}; use one of {COMPOSITIONS}.")
        if self.clip_quantile is not None and not 0 < self.clip_quantile <= 1:
            raise DensityError(f"{where}: clip_quantile must be in (0, 1], got {self.clip_quantile}.")
        if self.clip_max_ratio is not None and not self.clip_max_ratio >= 1:
            raise DensityError(f"{where}: clip_max_ratio must be at least 1, got {self.clip_max_ratio}.")
        if self.target_ess is not None and not 0 < self.target_ess <= 1:
            raise DensityError(f"{where}: target_ess must be in (0, 1], got {self.target_ess}.")

    @property
    def uses_density(self) -> bool:
        """False when every weight is 1 whatever the density (alpha = 0): no estimator is needed."""
        return self.alpha != 0

    @property
    def per_batch(self) -> bool:
        return self.normalise == "batch"

    def log_weights(self, log_density: np.ndarray) -> np.ndarray:
        """Log weight (float64) of every D_off state, from the log density of every D_off state."""
        log_density = np.asarray(log_density, dtype=np.float64)
        if log_density.ndim != 1 or len(log_density) == 0:
            raise DensityError(f"weighting {self.name!r}: expected a non-empty (N,) array of log densities, "
                               f"got shape {log_density.shape}.")
        bad = ~np.isfinite(log_density)
        if bad.any():
            raise DensityError(f"weighting {self.name!r}: {int(bad.sum())} log densities are not finite "
                               f"(first at state {int(np.flatnonzero(bad)[0])}); the density estimate is broken.")
        if self.target_ess is None:
            return self._log_weights(log_density, self.alpha)
        alpha = self.exponent_for_target(log_density)
        log.info("weighting %s: exponent %.4g for ESS/N %.3g (cap %g)", self.name, alpha,
                 self.target_ess, self.alpha)
        return self._log_weights(log_density, alpha)

    def exponent_for_target(self, log_density: np.ndarray, iterations: int = 50) -> float:
        """The largest exponent in [0, alpha] whose weights have ESS/N >= target_ess."""
        def ess(alpha: float) -> float:
            return effective_sample_fraction(self._log_weights(log_density, alpha))

        if ess(self.alpha) >= self.target_ess:
            return self.alpha
        low, high = 0.0, self.alpha
        for _ in range(iterations):
            mid = (low + high) / 2
            low, high = (mid, high) if ess(mid) >= self.target_ess else (low, mid)
        return low

    def _log_weights(self, log_density: np.ndarray, alpha: float) -> np.ndarray:
        log_w = -alpha * log_density if alpha != 0 else np.zeros_like(log_density)
        if self.clip_quantile is not None:
            log_w = np.minimum(log_w, np.quantile(log_w, self.clip_quantile, method="inverted_cdf"))
        if self.clip_max_ratio is not None:
            median = np.quantile(log_w, 0.5, method="inverted_cdf")
            log_w = np.minimum(log_w, median + math.log(self.clip_max_ratio))
        if self.normalise != "none":
            return log_w - (logsumexp(log_w) - math.log(len(log_w)))
        if log_w.max() > FLOAT32_MAX_LOG:
            raise DensityError(
                f"weighting {self.name!r}: p^-{alpha} reaches exp({log_w.max():.1f}), beyond float32 "
                f"(exp({FLOAT32_MAX_LOG:.1f})); use weighting=self-normalised (same ratios, mean 1) or clip."
            )
        return log_w

