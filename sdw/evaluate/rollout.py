"""Policy rollouts in gymnasium: raw return and normalised score x 100 of every evaluation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
    returns, lengths = rollout_policies([act], env_id, n_episodes, seed, normaliser,
                                        max_episode_steps)
    return result_of(returns[0], lengths[0], reference_scores)


def result_of(returns: np.ndarray, lengths: np.ndarray,
              reference_scores: ReferenceScores | None) -> EvalResult:
    """The `EvalResult` of one policy's episode returns."""
    if reference_scores is None:
        return EvalResult(returns, lengths, None, "no reference scores for this dataset")
    return EvalResult(returns, lengths, float(reference_scores.normalise(returns.mean())))


def rollout_policies(acts: Sequence[ActFn], env_id: str, n_episodes: int, seed: int,
                     normaliser: StateNormaliser | None = None,
                     max_episode_steps: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Returns and lengths, shape (len(acts), n_episodes), of every policy's episodes, all
    stepped side by side in one loop (one batched call per policy per step).

    Episode i of every policy is reset with seed `seed + i`, so all policies meet the same
    start states.
    """
    n = len(acts) * n_episodes
    envs = [make_env(env_id, max_episode_steps=max_episode_steps) for _ in range(n)]
    try:
        obs = np.stack([env.reset(seed=seed + k % n_episodes)[0] for k, env in enumerate(envs)])
        returns = np.zeros(n)
        lengths = np.zeros(n, dtype=np.int64)
        active = np.ones(n, dtype=bool)
        while active.any():
            for p, act in enumerate(acts):
                idx = p * n_episodes + np.flatnonzero(active[p * n_episodes:(p + 1) * n_episodes])
                if not len(idx):
                    continue
                batch = obs[idx].astype(np.float32)
                actions = np.asarray(act(normaliser(batch) if normaliser else batch))
                for row, k in enumerate(idx):
                    obs[k], reward, terminated, truncated, _ = envs[k].step(actions[row])
                    returns[k] += reward
                    lengths[k] += 1
                    active[k] = not (terminated or truncated)
    finally:
        for env in envs:
            env.close()
    shape = (len(acts), n_episodes)
    return returns.reshape(shape), lengths.reshape(shape)
