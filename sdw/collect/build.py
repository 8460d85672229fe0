"""Building the five D4RL-style levels of one environment from a policy zoo, without training.

- random: uniform random actions.
- medium / expert: the zoo's medium / expert actor, actions sampled from its (tanh-Gaussian)
  policy as D4RL did.
- medium-replay: the training stream up to medium, replayed: the first `learning_starts` steps
  of training took uniform random actions, then each snapshot acted until the next one; the
  replay runs the same policies in the same order for the same shares of its transitions.
- medium-expert: the medium episodes followed by the expert episodes.
R_min / R_max (Minari's ref_min_score / ref_max_score) are the mean returns of the uniform
random policy and of the stochastic expert actor over `ref_episodes` episodes each.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sdw.collect.minari_writer import write_minari_dataset
from sdw.collect.published import check_against_published, environment
from sdw.collect.rollout import Episode, collect_episodes
from sdw.collect.snapshot import ActorSnapshot, Behaviour, UniformPolicy
from sdw.collect.zoo import Zoo
from sdw.envs import make_env

log = logging.getLogger(__name__)

LEVELS = ("random", "medium", "medium-replay", "expert", "medium-expert")
REF_SEED = 2_000_000
"""Reset seed of the first reference-score episode."""


def dataset_id(env_name: str, level: str) -> str:
    return f"sdw/{env_name}/{level}-v0"


@dataclass(frozen=True)
class BuildSettings:
    """What to build and how big (see sdw/collect/conf/collect.yaml, group `build`)."""

    levels: Sequence[str] = LEVELS
    sizes: dict | None = None
    ref_episodes: int = 20
    n_envs: int = 16

    def __post_init__(self) -> None:
        unknown = set(self.levels) - set(LEVELS)
        if unknown:
            raise ValueError(f"build.levels has unknown levels {sorted(unknown)}; known: {LEVELS}")
        if self.ref_episodes < 1:
            raise ValueError(f"build.ref_episodes must be positive, got {self.ref_episodes}")

    def size(self, key: str) -> int | None:
        return (self.sizes or {}).get(key)


@dataclass(frozen=True)
class LevelReport:
    """What one written dataset holds and how long collecting it took."""

    dataset_id: str
    transitions: int
    episodes: int
    mean_return: float
    seconds: float
    content_hash: str = ""
    matches_published: bool | None = None

    @property
    def steps_per_second(self) -> float:
        return self.transitions / self.seconds if self.seconds else float("nan")


@dataclass(frozen=True)
class ReplaySchedule:
    """The policy of the training stream at a point of the (rescaled) medium-replay stream."""

    zoo: Zoo
    n_transitions: int
    random: UniformPolicy
    _loaded: dict[int, ActorSnapshot] = field(default_factory=dict, repr=False, compare=False)

    def __call__(self, collected: int) -> Behaviour:
        train_step = collected * self.zoo.medium_step / self.n_transitions
        if train_step < self.zoo.learning_starts or not self.zoo.replay_steps:
            return self.random
        step = max(s for s in self.zoo.replay_steps if s <= train_step)
        if step not in self._loaded:
            self._loaded[step] = self.zoo.snapshot(step)
        return self._loaded[step]


def reference_scores(zoo: Zoo, n_episodes: int, seed: int) -> tuple[float, float]:
    """(R_min, R_max): mean returns of the uniform random policy and the stochastic expert."""
    from sdw.rollout import evaluate_policy

    expert, random = zoo.snapshot(zoo.expert_step), uniform_policy(zoo.env_id)
    results = []
    for policy, salt in ((random, 0), (expert, 1)):
        rng = np.random.default_rng([seed, salt])
        results.append(evaluate_policy(lambda obs, p=policy, r=rng: p.act(obs, r), zoo.env_id,
                                       n_episodes, seed=REF_SEED + seed).mean_return)
    return results[0], results[1]


def uniform_policy(env_id: str) -> UniformPolicy:
    """Uniform random actions over the action box of `env_id` (the random level and R_min)."""
    space = make_env(env_id).action_space
    return UniformPolicy(space.low.astype(np.float32), space.high.astype(np.float32))


def _collect(zoo: Zoo, level: str, settings: BuildSettings, seed: int) -> list[Episode]:
    salted = seed * 1000 + LEVELS.index(level)
    random = uniform_policy(zoo.env_id)
    if level == "random":
        schedule, n = (lambda _: random), settings.size("random")
    elif level in ("medium", "expert"):
        policy = zoo.snapshot(zoo.medium_step if level == "medium" else zoo.expert_step)
        schedule, n = (lambda _: policy), settings.size(level)
    else:
        n = settings.size("medium_replay") or zoo.medium_step
        schedule = ReplaySchedule(zoo, n, random)
    if not n:
        raise ValueError(f"build.sizes has no size for level {level!r}")
    return collect_episodes(zoo.env_id, schedule, n, salted, settings.n_envs, desc=level)


def _describe(zoo: Zoo, level: str, r_min: float, r_max: float) -> str:
    med, exp = zoo.record(zoo.medium_step), zoo.record(zoo.expert_step)
    what = {
        "random": "uniform random actions",
        "medium": f"SAC actor at training step {med.step} (deterministic eval return "
                  f"{med.eval_return:.1f}), sampled actions",
        "expert": f"best SAC actor of the training budget, step {exp.step} (deterministic eval "
                  f"return {exp.eval_return:.1f}), sampled actions",
        "medium-replay": f"the training stream up to step {zoo.medium_step} replayed from "
                         f"{len(zoo.replay_steps)} snapshots in training order",
        "medium-expert": "the medium dataset followed by the expert dataset",
    }[level]
    return (f"sdw local D4RL-style {level} dataset for {zoo.env_id}: {what}. "
            f"ref_min_score = uniform random policy ({r_min:.1f}), ref_max_score = stochastic "
            f"expert actor ({r_max:.1f}).")


def build_all(zoo_dir: Path, env_name: str, settings: BuildSettings, seed: int = 0
              ) -> list[LevelReport]:
    """Write every level of `settings.levels` for one environment; deterministic for `seed`."""
    zoo = Zoo.load(zoo_dir)
    provenance = {"seed": seed, "zoo_hash": zoo.content_hash(), "environment": environment(),
                  "build": {"sizes": dict(settings.sizes or {}), "n_envs": settings.n_envs,
                            "ref_episodes": settings.ref_episodes}}
    t0 = time.perf_counter()
    r_min, r_max = reference_scores(zoo, settings.ref_episodes, seed)
    log.info("%s reference scores: R_min %.1f, R_max %.1f (%d episodes each, %.0f s)",
             zoo.env_id, r_min, r_max, settings.ref_episodes, time.perf_counter() - t0)
    collected: dict[str, tuple[list[Episode], float]] = {}

    def episodes_of(level: str) -> tuple[list[Episode], float]:
        if level not in collected:
            t = time.perf_counter()
            eps = _collect(zoo, level, settings, seed)
            collected[level] = (eps, time.perf_counter() - t)
        return collected[level]

    reports = []
    for level in settings.levels:
        if level == "medium-expert":
            (med, t_med), (exp, t_exp) = episodes_of("medium"), episodes_of("expert")
            episodes, seconds = med + exp, t_med + t_exp
        else:
            episodes, seconds = episodes_of(level)
        did = dataset_id(env_name, level)
        record = write_minari_dataset(
            did, zoo.env_id, episodes, r_min, r_max, settings.ref_episodes,
            _describe(zoo, level, r_min, r_max),
            provenance | {"ref_min_score": r_min, "ref_max_score": r_max})
        report = LevelReport(did, record["transitions"], record["episodes"],
                             record["mean_return"], seconds, record["content_hash"],
                             check_against_published(record))
        reports.append(report)
        log.info("%s: %d transitions, %d episodes, mean return %.1f, content hash %s, %.0f "
                 "steps/s collecting", did, report.transitions, report.episodes,
                 report.mean_return, report.content_hash, report.steps_per_second)
    return reports
