"""The one in-memory type every dataset source produces: `OfflineDataset`."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from sdw.data.scores import ReferenceScores

NORMALISATION_EPS = 1e-3
"""Added to the state standard deviation (CORL convention, used by OBD)."""


@dataclass(frozen=True)
class DatasetMetadata:
    """Where a dataset came from and how its policies are evaluated."""

    name: str
    source: str
    env_id: str
    reference_scores: ReferenceScores | None
    missing_scores_reason: str = ""
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class StateNormaliser:
    """State normalisation statistics: (s - mean) / std, where std already includes the eps."""

    mean: np.ndarray
    std: np.ndarray

    def __call__(self, states: np.ndarray) -> np.ndarray:
        return ((states - self.mean) / self.std).astype(np.float32)

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> StateNormaliser:
        return cls(np.asarray(d["mean"], np.float32), np.asarray(d["std"], np.float32))

    @classmethod
    def fit(cls, states: np.ndarray, eps: float = NORMALISATION_EPS) -> StateNormaliser:
        mean = states.mean(0, dtype=np.float64)
        std = states.std(0, dtype=np.float64) + eps
        return cls(mean.astype(np.float32), std.astype(np.float32))


@dataclass(frozen=True)
class OfflineDataset:
    """A flat table of transitions in D4RL layout (row i is the step s_i, a_i -> r_i, s'_i).

    `terminals[i]` marks an environment termination after step i, `timeouts[i]` a time-limit
    truncation; every row where either is set ends an episode. Rows after the last boundary form
    an unfinished episode (as at the end of D4RL files).
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_observations: np.ndarray
    terminals: np.ndarray
    timeouts: np.ndarray
    metadata: DatasetMetadata

    def __len__(self) -> int:
        return len(self.rewards)

    @property
    def obs_dim(self) -> int:
        return self.observations.shape[1]

    @property
    def act_dim(self) -> int:
        return self.actions.shape[1]

    @property
    def episode_ends(self) -> np.ndarray:
        """Exclusive end index of every episode, including a trailing unfinished one."""
        ends = np.flatnonzero(self.terminals | self.timeouts) + 1
        if len(ends) == 0 or ends[-1] != len(self):
            ends = np.append(ends, len(self))
        return ends

    @property
    def episode_starts(self) -> np.ndarray:
        return np.concatenate([[0], self.episode_ends[:-1]])

    def episode_returns(self, complete_only: bool = False) -> np.ndarray:
        """Undiscounted return of each episode (the trailing unfinished one unless excluded)."""
        ends = self.episode_ends
        sums = np.add.reduceat(self.rewards.astype(np.float64), self.episode_starts)
        if complete_only and not (self.terminals[ends[-1] - 1] or self.timeouts[ends[-1] - 1]):
            sums = sums[:-1]
        return sums

    @cached_property
    def content_hash(self) -> str:
        """Hash of the arrays (not the metadata): keys caches of teachers, densities, artefacts."""
        h = hashlib.sha256()
        for arr in (self.observations, self.actions, self.rewards, self.next_observations,
                    self.terminals, self.timeouts):
            a = np.ascontiguousarray(arr)
            h.update(f"{a.dtype}{a.shape}".encode())
            h.update(a.data)
        return h.hexdigest()[:16]

    def qlearning_view(self) -> OfflineDataset:
        """d4rl.qlearning_dataset semantics, exactly.

        Row i of the file is kept for i < N - 1 unless `timeouts[i]` (the last step of a
        timeout-ended trajectory is dropped, as is the file's last row), and its next observation
        is `observations[i + 1]`. Rows that are both terminal and timeout count as timeouts, as in
        d4rl. `timeouts` of the view are all False.
        """
        n = len(self)
        keep = np.zeros(n, dtype=bool)
        keep[: n - 1] = ~self.timeouts[: n - 1]
        idx = np.flatnonzero(keep)
        return OfflineDataset(
            observations=self.observations[idx],
            actions=self.actions[idx],
            rewards=self.rewards[idx],
            next_observations=self.observations[idx + 1],
            terminals=self.terminals[idx],
            timeouts=np.zeros(len(idx), dtype=bool),
            metadata=self.metadata,
        )

    def state_normaliser(self) -> StateNormaliser:
        """Mean and std + 1e-3 of the states of the qlearning view (the CORL/OBD statistics)."""
        return StateNormaliser.fit(self.qlearning_view().observations)

    def normalised_score(self, raw_return: float | np.ndarray) -> float | np.ndarray | None:
        """100 * (R - R_min) / (R_max - R_min), or None when the dataset has no reference scores."""
        scores = self.metadata.reference_scores
        return None if scores is None else scores.normalise(raw_return)
