"""Evaluation protocols: how a synthetic set is scored (conf/eval/).

Every evaluation trains fresh students on the set with the inner-loop recipe (`train_student`)
and rolls each one out for `episodes` episodes, side by side, with deterministic actions
tanh(mean) (`evaluate_policy`). Student i has seed `seed + i`; episode j of every student starts
from reset seed `seed + j`. docs/distillation.md, "Evaluation protocols", has the details.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from sdw.data.dataset import StateNormaliser
from sdw.data.scores import ReferenceScores
from sdw.distill.inner_optim import InnerOptimConfig
from sdw.distill.student import student_policy, train_student
from sdw.distill.synthetic import SyntheticSet
from sdw.rollout import ActFn, evaluate_policy
from sdw.evaluate.summary import summarise
from sdw.networks.actor import ActorConfig

__all__ = ["EvalProtocol", "last_k_mean"]
log = logging.getLogger(__name__)

ENSEMBLE_SEED_OFFSET = 10_000
"""Ensemble members draw seeds from seed + 10,000 on, apart from the standard students'."""

_GROUPS = {"architectures": "student", "optimisers": "inner_optim"}
"""The config group each name -> config field of the protocol draws from."""


def _configs(mapping: Mapping | None, cls: type, what: str) -> dict:
    """name -> `cls` instance, from instances or plain mappings of their fields."""
    built = {}
    for name, value in dict(mapping or {}).items():
        if isinstance(value, Mapping):
            value = cls(**{k: v for k, v in value.items() if k != "_target_"})
        if not isinstance(value, cls):
            raise TypeError(f"eval.{what}.{name} is a {type(value).__name__}, not a "
                            f"{cls.__name__}; pull it in from conf/{_GROUPS[what]}/ in the "
                            f"protocol's defaults list.")
        built[str(name)] = value
    return built


@dataclass(frozen=True)
class EvalProtocol:
    """Which evaluations a run gets, and how many students and episodes each uses."""

    every: int = 50
    students: int = 5
    episodes: int = 10
    last_k: int = 5
    ensemble: int = 0
    architectures: dict = field(default_factory=dict)
    optimisers: dict = field(default_factory=dict)
    cross_steps: int = 0
    references: bool = True
    bc_students: int = 1
    bc_steps: int = 10_000
    bc_batch_size: int = 256
    bc_lr: float = 3e-4
    max_episode_steps: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "architectures",
                           _configs(self.architectures, ActorConfig, "architectures"))
        object.__setattr__(self, "optimisers",
                           _configs(self.optimisers, InnerOptimConfig, "optimisers"))
        for name in ("students", "episodes", "last_k", "bc_students"):
            if getattr(self, name) < 1:
                raise ValueError(f"eval.{name} must be >= 1, got {getattr(self, name)}.")
        for name in ("every", "ensemble", "cross_steps", "bc_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"eval.{name} must be >= 0, got {getattr(self, name)}.")
        if self.bc_batch_size < 1 or self.bc_lr <= 0:
            raise ValueError(f"eval.bc_batch_size must be >= 1 and eval.bc_lr > 0, got "
                             f"{self.bc_batch_size} and {self.bc_lr}.")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["architectures"] = {k: v.to_dict() for k, v in self.architectures.items()}
        d["optimisers"] = {k: v.to_dict() for k, v in self.optimisers.items()}
        return d

    # ------------------------------------------------------------------ evaluations

    def periodic(self, synthetic: SyntheticSet, student: ActorConfig, inner: InnerOptimConfig,
                 reference_scores: ReferenceScores | None,
                 device: str | torch.device = "cpu") -> dict:
        """The standard evaluation (eval.json's "standard" fields), as run every `every` steps."""
        return self.evaluate_set(synthetic, student, inner, reference_scores, device)

    def final(self, synthetic: SyntheticSet, student: ActorConfig, inner: InnerOptimConfig,
              reference_scores: ReferenceScores | None,
              device: str | torch.device = "cpu") -> dict:
        """{"standard", "ensemble", "cross_architecture", "cross_optimiser"} as in eval.json."""
        cross_inner = self._cross_recipe(inner)
        return {
            "standard": self.evaluate_set(synthetic, student, inner, reference_scores, device),
            "ensemble": (self.evaluate_ensemble(synthetic, student, inner, reference_scores,
                                                device) if self.ensemble else None),
            "cross_architecture": {
                name: self.evaluate_set(synthetic, arch, cross_inner, reference_scores, device)
                for name, arch in self.architectures.items()},
            "cross_optimiser": {
                name: self.evaluate_set(synthetic, student, self._cross_recipe(optim),
                                        reference_scores, device)
                for name, optim in self.optimisers.items()},
        }

    def evaluate_set(self, synthetic: SyntheticSet, student: ActorConfig,
                     inner: InnerOptimConfig, reference_scores: ReferenceScores | None,
                     device: str | torch.device = "cpu", batch_size: int | None = None,
                     progress: str | None = None) -> dict:
        """`students` fresh students trained on `synthetic`, `episodes` episodes each; with
        `progress`, a bar of that name over all their training steps and a log line per student."""
        quiet = {"disable": True} if progress is None else {}  # else tqdm's own default, TQDM_DISABLE
        with tqdm(total=inner.steps * self.students, desc=progress, unit="step", mininterval=2.0,
                  **quiet) as bar:
            actors = []
            for i, seed in enumerate(self.student_seeds()):
                started = time.perf_counter()
                actors.append(train_student(synthetic, student, inner, seed=seed, device=device,
                                            batch_size=batch_size,
                                            callback=lambda step, actor: bar.update(1)))
                if progress is not None:
                    log.info("%s: student %d of %d trained (%d steps, %.0f s)", progress, i + 1,
                             self.students, inner.steps, time.perf_counter() - started)
        return self.score([student_policy(a, device) for a in actors], synthetic.env_id,
                          synthetic.normaliser, reference_scores)

    def evaluate_ensemble(self, synthetic: SyntheticSet, student: ActorConfig,
                          inner: InnerOptimConfig, reference_scores: ReferenceScores | None,
                          device: str | torch.device = "cpu") -> dict:
        """`students` ensembles of `ensemble` fresh members each, acting on their mean action."""
        policies = []
        for members in self.ensemble_seeds():
            actors = [train_student(synthetic, student, inner, seed=seed, device=device)
                      for seed in members]
            policies.append(student_policy(actors, device))
        return {**self.score(policies, synthetic.env_id, synthetic.normaliser, reference_scores),
                "members": self.ensemble}

    def student_seeds(self) -> list[int]:
        return [self.seed + i for i in range(self.students)]

    def ensemble_seeds(self) -> list[list[int]]:
        """Member seeds of each ensemble, disjoint from `student_seeds`."""
        start = self.seed + ENSEMBLE_SEED_OFFSET
        return [[start + k * self.ensemble + j for j in range(self.ensemble)]
                for k in range(self.students)]

    def _cross_recipe(self, inner: InnerOptimConfig) -> InnerOptimConfig:
        return dataclasses.replace(inner, steps=self.cross_steps) if self.cross_steps else inner

    def score(self, policies: Iterable[ActFn], env_id: str, normaliser: StateNormaliser | None,
              reference_scores: ReferenceScores | None) -> dict:
        """Roll every policy out for `episodes` episodes (side by side); the summary of them.

        One rollout loop per policy: measured no slower than stepping all policies' episodes
        in one loop (scripts/bench_eval.py), and fewer envs are alive at a time.
        """
        returns = np.stack([
            evaluate_policy(act, env_id, self.episodes, self.seed, normaliser,
                            max_episode_steps=self.max_episode_steps).returns
            for act in policies])
        return summarise(returns, reference_scores)


def last_k_mean(evaluations: list[tuple[int, dict]], k: int) -> dict:
    """eval.json's "last_k": the mean normalised score of the last `k` (step, standard) pairs."""
    tail = evaluations[-k:]
    scores = [e["normalised_mean"] for _, e in tail]
    mean = float(np.mean(scores)) if tail and None not in scores else None
    return {"k": k, "steps": [step for step, _ in tail], "normalised_mean": mean}
