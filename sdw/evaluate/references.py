"""The references every evaluation is read against, computed once per dataset and cached.

- random_subset: `students` random real subsets of the synthetic set's size (qlearning view,
  states normalised with the dataset's statistics; DD-Ranking's fair baseline), each scored by
  one fresh student trained on it with the inner-loop recipe, exactly like a synthetic set.
  Subset i is the distillation's `real` initialisation for seed `seed + i`.
- whole_data_bc: `bc_students` students of the student architecture, each trained by minibatch
  BC (Adam, `bc_lr`) on the whole qlearning view for `bc_steps` steps of `bc_batch_size` pairs
  (a CPU budget: CORL's BC runs 1M steps; see docs/distillation.md).
- teacher: the teacher's deterministic policy, `students x episodes` episodes (its own
  evaluation is reused when it has at least that many full-length episodes); `per_episode`
  holds each episode's normalised score, the spread of the teacher's score.

Each is cached as JSON under `cache_dir`, keyed by the dataset's content hash and every setting
that changes the number, so a sweep computes each once per dataset.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import torch

from sdw.atomic import atomic_write
from sdw.data.dataset import OfflineDataset, StateNormaliser
from sdw.distill.inner_optim import InnerOptimConfig
from sdw.distill.loop import real_pairs
from sdw.distill.student import student_policy, train_student
from sdw.distill.synthetic import SyntheticConfig, SyntheticSet, initial_pairs
from sdw.evaluate.summary import summarise
from sdw.locks import exclusive, lock_for
from sdw.networks.actor import ActorConfig
from sdw.rollout import evaluate_policy
from sdw.teacher.base import Teacher

logger = logging.getLogger(__name__)

CACHE_VERSION = 1
"""Bump when the way a reference is computed changes: older cache entries are then ignored."""

KINDS = ("random_subset", "whole_data_bc", "teacher")


def reference_evaluations(dataset: OfflineDataset, teacher: Teacher | None,
                          protocol: EvalProtocol, student: ActorConfig, inner: InnerOptimConfig,
                          size: int, cache_dir: str | Path | None,
                          device: str | torch.device = "cpu") -> dict:
    """{"random_subset", "whole_data_bc", "teacher"}: each the "standard" fields or None.

    None: `protocol.references` is false, there is no teacher, the subset size exceeds the
    dataset, or `bc_steps` is 0.
    """
    result: dict = dict.fromkeys(KINDS)
    if not protocol.references:
        return result
    common = {"version": CACHE_VERSION, "dataset": dataset.content_hash,
              "env_id": dataset.metadata.env_id, "students": protocol.students,
              "episodes": protocol.episodes, "seed": protocol.seed,
              "max_episode_steps": protocol.max_episode_steps}
    learner = {**common, "student": student.to_dict()}
    real = _RealPairs(dataset)
    result["random_subset"] = _cached(
        cache_dir, "random_subset", {**learner, "size": size, "inner": inner.to_dict()},
        lambda: _random_subset(real, protocol, student, inner, size, device))
    if protocol.bc_steps:
        bc = {"students": protocol.bc_students, "steps": protocol.bc_steps,
              "batch_size": protocol.bc_batch_size, "lr": protocol.bc_lr}
        result["whole_data_bc"] = _cached(
            cache_dir, "whole_data_bc", {**learner, "bc": bc},
            lambda: _whole_data_bc(real, protocol, student, device))
    if teacher is not None:
        identity = _teacher_identity(teacher)
        compute = lambda: _teacher(dataset, teacher, protocol, device)  # noqa: E731
        result["teacher"] = (_cached(cache_dir, "teacher", {**common, "teacher": identity},
                                     compute) if identity is not None else compute())
    return result


def _cached(cache_dir: str | Path | None, kind: str, key: dict, compute) -> dict | None:
    """The cached result for `key`, else `compute()`, written atomically to the cache; jobs
    asking for the same uncached reference at once compute it once (the others wait)."""
    if cache_dir is None:
        return compute()
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    path = Path(cache_dir) / f"{kind}-{digest}.json"
    found = _read_cached(path, kind, key)
    if found is not None:
        return found["result"]
    with exclusive(lock_for(path), what=f"the {kind} reference"):
        found = _read_cached(path, kind, key)  # another job computed it while this one waited
        if found is not None:
            return found["result"]
        result = compute()
        atomic_write(path, lambda f: json.dump({"key": key, "result": result}, f, indent=1),
                     mode="w")
    return result


def _read_cached(path: Path, kind: str, key: dict) -> dict | None:
    """The cache entry at `path` when it holds `key` ({"result": ...}), else None."""
    if not path.exists():
        return None
    try:
        entry = json.loads(path.read_text())
        if entry["key"] == json.loads(json.dumps(key)):
            logger.info("reference %s from cache %s", kind, path)
            return entry
    except (ValueError, KeyError) as e:
        logger.warning("ignoring unreadable reference cache %s (%s)", path, e)
    return None


class _RealPairs:
    """The dataset's normalised qlearning pairs, built on first use (a cache hit needs none)."""

    def __init__(self, dataset: OfflineDataset):
        self.dataset = dataset
        self._pairs: tuple[torch.Tensor, torch.Tensor, StateNormaliser] | None = None

    @property
    def normaliser(self) -> StateNormaliser:
        return self.pairs()[2]

    def pairs(self) -> tuple[torch.Tensor, torch.Tensor, StateNormaliser]:
        """(states, actions, normaliser): the qlearning view's pairs on the CPU, states normalised."""
        if self._pairs is None:
            normaliser = self.dataset.state_normaliser()
            self._pairs = (*real_pairs(self.dataset, normaliser, torch.device("cpu")), normaliser)
        return self._pairs

    def as_set(self, states: torch.Tensor, actions: torch.Tensor, method: str) -> SyntheticSet:
        meta = self.dataset.metadata
        return SyntheticSet(states.numpy(), actions.numpy(), self.normaliser, meta.env_id,
                            meta.name, self.dataset.content_hash, method)


def _random_subset(real: _RealPairs, protocol: EvalProtocol, student: ActorConfig,
                   inner: InnerOptimConfig, size: int, device) -> dict | None:
    """One student per random subset: subset i and student i both use seed `seed + i`."""
    states, actions, normaliser = real.pairs()
    meta = real.dataset.metadata
    if size > len(states):
        logger.warning("no random-subset reference: size %d exceeds the %d pairs of %s", size,
                       len(states), meta.name)
        return None
    policies = []
    for seed in protocol.student_seeds():
        generator = torch.Generator().manual_seed(seed)
        s, a = initial_pairs(SyntheticConfig(size=size, init="real"), states, actions, generator)
        actor = train_student(real.as_set(s, a, "random-subset"), student, inner, seed=seed,
                              device=device)
        policies.append(student_policy(actor, device))
    return protocol.score(policies, meta.env_id, normaliser, meta.reference_scores)


def _whole_data_bc(real: _RealPairs, protocol: EvalProtocol, student: ActorConfig,
                   device) -> dict:
    states, actions, _ = real.pairs()
    adam = InnerOptimConfig(name="adam", lr=protocol.bc_lr, steps=protocol.bc_steps)
    bc = dataclasses.replace(protocol, students=protocol.bc_students)
    return bc.evaluate_set(real.as_set(states, actions, "whole-data-bc"), student, adam,
                           real.dataset.metadata.reference_scores, device,
                           batch_size=protocol.bc_batch_size,
                           progress=f"whole-data BC reference ({real.dataset.metadata.name})")


def teacher_policy(teacher: Teacher, device: str | torch.device = "cpu"):
    """The teacher's deterministic actions for states normalised with `teacher.normaliser`, on
    the device its weights are on (`device` for a teacher without weights)."""
    params = next(iter(getattr(teacher, "parameters", lambda: iter(()))()), None)
    teacher_device = params.device if params is not None else torch.device(device)

    @torch.no_grad()
    def act(states: np.ndarray) -> np.ndarray:
        s = torch.as_tensor(states, device=teacher_device)
        return teacher.act(s, deterministic=True).cpu().numpy()

    return act


def _teacher(dataset: OfflineDataset, teacher: Teacher, protocol: EvalProtocol, device) -> dict:
    needed = protocol.students * protocol.episodes
    scores = dataset.metadata.reference_scores
    own = getattr(teacher, "evaluation", None)
    if (own and protocol.max_episode_steps is None and len(own.get("returns") or []) >= needed):
        return {**_per_episode(np.asarray(own["returns"]), scores),
                "source": f"the teacher's own evaluation (seed {own.get('seed')})"}
    result = evaluate_policy(teacher_policy(teacher, device), dataset.metadata.env_id, needed,
                             protocol.seed,
                             normaliser=teacher.normaliser,
                             max_episode_steps=protocol.max_episode_steps)
    return {**_per_episode(result.returns, scores), "source": "rollout"}


def _per_episode(returns: np.ndarray, scores) -> dict:
    """One policy's summary with each episode's normalised score (None without reference scores)."""
    return {**summarise(returns[None], scores),
            "per_episode": [float(scores.normalise(r)) if scores is not None else None
                            for r in returns]}


def _teacher_identity(teacher: Teacher) -> dict | None:
    """What identifies a trained teacher for the cache, or None: its summary without scores and
    a digest of its weights (a shipped float16 copy and its float32 original share the summary)."""
    summary, weights = getattr(teacher, "summary", None), getattr(teacher, "state_dict", None)
    if summary is None or weights is None:
        return None
    digest = hashlib.sha256()
    for name, tensor in sorted(weights().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return {**{k: v for k, v in summary().items() if k not in ("evaluation", "history")},
            "weights_sha256": digest.hexdigest()}
