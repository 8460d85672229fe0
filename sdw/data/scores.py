"""Reference returns for normalised scores: 100 * (R - R_min) / (R_max - R_min)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ReferenceScores:
    """R_min (random policy) and R_max (expert policy) of one environment, and who set them."""

    min: float
    max: float
    source: str

    def normalise(self, raw_return: float | np.ndarray) -> float | np.ndarray:
        return 100.0 * (raw_return - self.min) / (self.max - self.min)


D4RL_REFERENCE_SCORES: dict[str, ReferenceScores] = {
    "hopper": ReferenceScores(-20.272305, 3234.3, "d4rl"),
    "halfcheetah": ReferenceScores(-280.178953, 12135.0, "d4rl"),
    "walker2d": ReferenceScores(1.629008, 4592.3, "d4rl"),
}
"""D4RL's REF_MIN_SCORE / REF_MAX_SCORE, identical for every version of the locomotion files."""


def d4rl_scores_for_env(env_id: str) -> ReferenceScores | None:
    """D4RL's reference returns for the env a dataset is evaluated on (`Hopper-v4` -> hopper's),
    whatever the file is called; None for an env D4RL has no scores for."""
    return D4RL_REFERENCE_SCORES.get(env_id.split("-", 1)[0].lower())
