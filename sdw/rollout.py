"""Policy rollouts in gymnasium: raw return and normalised score x 100 of every evaluation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sdw.data.dataset import StateNormaliser
from sdw.data.scores import ReferenceScores
from sdw.envs import make_env

ActFn = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class EvalResult:
    """Returns of `n_episodes` rollouts; `normalised_mean` is None (see `missing_reason`) without scores."""

    returns: np.ndarray
    lengths: np.ndarray
    normalised_mean: float | None
    missing_reason: str = ""

    @property
    def mean_return(self) -> float:
        return float(self.returns.mean())

    @property
    def std_return(self) -> float:
        return float(self.returns.std())

    def summary(self) -> str:
        norm = (f"normalised {self.normalised_mean:.1f}" if self.normalised_mean is not None
                else f"normalised n/a ({self.missing_reason})")
        return (f"return {self.mean_return:.1f} +- {self.std_return:.1f} over "
                f"{len(self.returns)} episodes, {norm}")


def evaluate_policy(act: ActFn, env_id: str, n_episodes: int, seed: int,
                    normaliser: StateNormaliser | None = None,
                    reference_scores: ReferenceScores | None = None,
                    max_episode_steps: int | None = None) -> EvalResult:
    """Roll out `act` for `n_episodes` episodes side by side, one batched `act` call per step.

    Episode i is reset with seed `seed + i`. `act` receives raw observations of the active
    episodes (normalised first when `normaliser` is given) and returns their actions.
    """
    envs = [make_env(env_id, max_episode_steps=max_episode_steps) for _ in range(n_episodes)]
    try:
        obs = np.stack([env.reset(seed=seed + i)[0] for i, env in enumerate(envs)])
        returns = np.zeros(n_episodes)
        lengths = np.zeros(n_episodes, dtype=np.int64)
        active = np.ones(n_episodes, dtype=bool)
        while active.any():
            idx = np.flatnonzero(active)
            batch = obs[idx].astype(np.float32)
            actions = np.asarray(act(normaliser(batch) if normaliser else batch))
            for row, i in enumerate(idx):
                obs[i], reward, terminated, truncated, _ = envs[i].step(actions[row])
                returns[i] += reward
                lengths[i] += 1
                active[i] = not (terminated or truncated)
    finally:
        for env in envs:
            env.close()
    if reference_scores is None:
        return EvalResult(returns, lengths, None, "no reference scores for this dataset")
    return EvalResult(returns, lengths, float(reference_scores.normalise(returns.mean())))
