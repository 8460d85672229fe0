"""One evaluation's numbers in the shape of eval.json's "standard" entry."""

from __future__ import annotations

import numpy as np

from sdw.data.scores import ReferenceScores


def summarise(returns: np.ndarray, reference_scores: ReferenceScores | None) -> dict:
    """Mean and std over policies (rows) of each policy's mean episode return (columns).

    {"normalised_mean", "normalised_std", "return_mean", "return_std", "students", "episodes",
    "per_student": [{"normalised", "return"}, ...]}; the normalised fields are None without
    reference scores. With a single policy the std is over its episodes instead.
    """
    returns = np.asarray(returns, dtype=np.float64)
    per_policy = returns.mean(axis=1)
    spread = per_policy if len(per_policy) > 1 else returns[0]
    normalise = reference_scores.normalise if reference_scores is not None else None
    return {
        "normalised_mean": float(normalise(per_policy.mean())) if normalise else None,
        "normalised_std": float(np.std(normalise(spread))) if normalise else None,
        "return_mean": float(per_policy.mean()),
        "return_std": float(np.std(spread)),
        "students": int(returns.shape[0]),
        "episodes": int(returns.shape[1]),
        "per_student": [{"normalised": float(normalise(r)) if normalise else None,
                         "return": float(r)} for r in per_policy],
    }


def describe(result: dict) -> str:
    """One line for logs: normalised score (or raw return) mean +- std and its sample."""
    sample = f"{result['students']} x {result['episodes']} episodes"
    raw = f"return {result['return_mean']:.1f} +- {result['return_std']:.1f}"
    if result["normalised_mean"] is None:
        return f"{raw} ({sample}; normalised n/a)"
    return (f"normalised {result['normalised_mean']:.1f} +- {result['normalised_std']:.1f}, "
            f"{raw} ({sample})")
