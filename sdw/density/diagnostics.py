"""What a set of state weights looks like: range, effective sample size, link to Q*, a histogram."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy.special import logsumexp
from scipy.stats import spearmanr

from sdw.density.base import DensityError


@dataclass(frozen=True)
class WeightDiagnostics:
    """Summary of the weights of all N states of D_off (global weights for per-batch schemes)."""

    n_states: int
    weighting: str
    estimator: str | None
    weight_min: float
    weight_median: float
    weight_max: float
    ess_fraction: float
    """Effective sample size over N: (sum w)^2 / (N sum w^2), 1 for equal weights."""
    log_density_min: float | None
    log_density_median: float | None
    log_density_max: float | None
    q_spearman: float | None
    """Spearman correlation of weight with Q*(s, a*) over the states Q* was given for."""
    histogram: str | None

    def to_dict(self, prefix: str = "density/") -> dict[str, float | int | str | None]:
        """Flat dict for loggers (wandb, json)."""
        return {prefix + k: v for k, v in asdict(self).items()}

    def summary(self) -> str:
        q = "n/a (no Q* given)" if self.q_spearman is None else f"{self.q_spearman:+.3f}"
        return (f"weights ({self.weighting}, density {self.estimator or 'not estimated'}) over "
                f"{self.n_states} states: min {self.weight_min:.3g}, median {self.weight_median:.3g}, "
                f"max {self.weight_max:.3g}, ESS/N {self.ess_fraction:.3f}, Spearman(w, Q*) {q}")


def effective_sample_fraction(log_weights: np.ndarray) -> float:
    """(sum w)^2 / (N sum w^2), computed from log weights without overflow."""
    log_weights = np.asarray(log_weights, dtype=np.float64)
    return float(math.exp(2 * logsumexp(log_weights) - logsumexp(2 * log_weights)) / len(log_weights))


def weight_q_correlation(weights: np.ndarray, q_values: np.ndarray, q_indices: np.ndarray | None) -> float | None:
    """Spearman correlation of w(s_i) with Q*_i; None when either side is constant."""
    q_values = np.asarray(q_values, dtype=np.float64).reshape(-1)
    chosen = weights if q_indices is None else weights[np.asarray(q_indices)]
    if len(chosen) != len(q_values):
        raise DensityError(f"diagnostics: got {len(q_values)} Q* values for {len(chosen)} states; pass "
                           "q_indices (qlearning-view indices) when Q* covers only some states.")
    if np.ptp(chosen) == 0 or np.ptp(q_values) == 0:
        return None
    return float(spearmanr(chosen, q_values).statistic)


def save_weight_histogram(log_weights: np.ndarray, log_density: np.ndarray | None, path: str | Path,
                          title: str) -> Path:
    """PNG with the histogram of log10 w and, when estimated, of log p."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    panels = 1 if log_density is None else 2
    fig = Figure(figsize=(5 * panels, 3.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, panels, squeeze=False)[0]
    log10_w = np.asarray(log_weights) / math.log(10)
    axes[0].hist(log10_w, bins=100, color="tab:blue")
    axes[0].axvline(np.median(log10_w), color="k", ls="--", lw=1, label="median")
    axes[0].set(xlabel="log10 weight", ylabel="states", yscale="log",
                title=f"ESS/N = {effective_sample_fraction(log_weights):.3f}")
    axes[0].legend()
    if log_density is not None:
        axes[1].hist(log_density, bins=100, color="tab:orange")
        axes[1].set(xlabel="log density (nats, normalised states)", ylabel="states", yscale="log")
    fig.suptitle(title)
    fig.savefig(path, dpi=100)
    return path


def weight_diagnostics(
    log_weights: np.ndarray,
    weighting: str,
    estimator: str | None = None,
    log_density: np.ndarray | None = None,
    q_values: np.ndarray | None = None,
    q_indices: np.ndarray | None = None,
    histogram_path: str | Path | None = None,
) -> WeightDiagnostics:
    """Diagnostics of the weights of all D_off states; writes the histogram when given a path."""
    log_weights = np.asarray(log_weights, dtype=np.float64)
    weights = np.exp(log_weights)
    density_stats = (None, None, None) if log_density is None else (
        float(np.min(log_density)), float(np.median(log_density)), float(np.max(log_density)))
    histogram = None
    if histogram_path is not None:
        title = f"{weighting} weights" + (f" from {estimator} density" if estimator else "")
        histogram = str(save_weight_histogram(log_weights, log_density, histogram_path, title))
    return WeightDiagnostics(
        n_states=len(weights),
        weighting=weighting,
        estimator=estimator,
        weight_min=float(weights.min()),
        weight_median=float(np.median(weights)),
        weight_max=float(weights.max()),
        ess_fraction=effective_sample_fraction(log_weights),
        log_density_min=density_stats[0],
        log_density_median=density_stats[1],
        log_density_max=density_stats[2],
        q_spearman=None if q_values is None else weight_q_correlation(weights, q_values, q_indices),
        histogram=histogram,
    )
