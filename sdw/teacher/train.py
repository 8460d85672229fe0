"""Train an offline-RL teacher on a dataset, or fetch it from the cache: `train_teacher`.

Its command line is `sdw-teacher` (sdw/app/teacher_cli.py).
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from sdw.atomic import unwritable_reason
from sdw.data.dataset import OfflineDataset
from sdw.data.scores import ReferenceScores
from sdw.envs import make_env
from sdw.locks import exclusive, lock_for
from sdw.rollout import evaluate_policy
from sdw.teacher.cache import (RECORD_FORMAT, RECORD_FORMAT_VERSION, SHIPPED_ROOT, TeacherCache,
                               atomic_torch_save, read_record)
from sdw.teacher.iql import IQLTrainer
from sdw.teacher.offline_rl import (OfflineRLConfig, OfflineTeacher, OfflineTrainer,
                                    TeacherDivergedError)
from sdw.teacher.td3bc import TD3BCTrainer

logger = logging.getLogger("sdw.teacher.train")  # also when run as __main__

TRAINERS: dict[str, type[OfflineTrainer]] = {t.TEACHER.CONFIG.ALGORITHM: t
                                             for t in (TD3BCTrainer, IQLTrainer)}
"""Algorithm name -> trainer; each trainer names its teacher class and that its config class."""


def _config_class(cfg: Mapping) -> type[OfflineRLConfig]:
    """The config class a mapping's `_target_` names; TD3+BC's when it names none."""
    classes = {f"{c.__module__}.{c.__qualname__}": c
               for c in (trainer.TEACHER.CONFIG for trainer in TRAINERS.values())}
    target = cfg.get("_target_")
    if target is None:
        return TRAINERS["td3bc"].TEACHER.CONFIG
    if target not in classes:
        raise ValueError(f"teacher config `_target_: {target}` is not one of the teacher config "
                         f"classes {sorted(classes)}.")
    return classes[target]


def as_config(cfg: OfflineRLConfig | Mapping | DictConfig) -> OfflineRLConfig:
    """A teacher config from itself, or from a mapping / OmegaConf node whose `_target_` names the
    config class (`sdw.teacher.td3bc.TD3BCConfig`, `sdw.teacher.iql.IQLConfig`; TD3+BC without)."""
    if isinstance(cfg, OfflineRLConfig):
        return cfg
    if isinstance(cfg, DictConfig):
        cfg = OmegaConf.to_container(cfg, resolve=True)
    if not isinstance(cfg, Mapping):
        raise TypeError(f"teacher config must be a TD3BCConfig, IQLConfig or a mapping, got "
                        f"{type(cfg).__name__}.")
    return _config_class(cfg).from_mapping(dict(cfg))


def load_teacher(path: Path | str, device: torch.device | str = "cpu") -> OfflineTeacher:
    """A saved teacher (`teacher.save(path)` or a cache entry) of any algorithm, frozen."""
    record = read_record(path)
    algorithm = record.get("algorithm")
    if algorithm not in TRAINERS:
        raise ValueError(f"{path}: unknown teacher algorithm {algorithm!r}; known: "
                         f"{sorted(TRAINERS)}.")
    return TRAINERS[algorithm].TEACHER.from_record(record, device)


def resolve_max_action(cfg: OfflineRLConfig, env_id: str) -> float:
    """`cfg.max_action`, or the bound of the env's symmetric, uniform action box when null."""
    if cfg.max_action is not None:
        return float(cfg.max_action)
    try:
        env = make_env(env_id)
        space = env.action_space
        env.close()
    except Exception as e:
        raise ValueError(f"cannot read max_action from env {env_id!r} ({e}); set the teacher "
                         "config's max_action explicitly.") from e
    high = np.asarray(space.high, dtype=np.float64)
    if not (np.allclose(space.low, -high) and np.allclose(high, high.flat[0])):
        raise ValueError(f"env {env_id!r} has action bounds low={space.low}, high={space.high}; "
                         "the teachers need a symmetric box with one bound: set max_action "
                         "explicitly.")
    return float(high.flat[0])


def evaluate_teacher(teacher: OfflineTeacher, env_id: str, reference_scores: ReferenceScores | None,
                     episodes: int, seed: int) -> dict:
    """Deterministic-policy rollouts of `teacher`: returns and normalised score x 100."""
    device = next(teacher.parameters()).device

    def act(states: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return teacher.act(torch.as_tensor(states, device=device)).cpu().numpy()

    result = evaluate_policy(act, env_id, episodes, seed, normaliser=teacher.normaliser,
                             reference_scores=reference_scores)
    return {"episodes": episodes, "seed": seed, "returns": result.returns.tolist(),
            "mean_return": result.mean_return, "std_return": result.std_return,
            "normalised_mean": result.normalised_mean, "missing_reason": result.missing_reason,
            "summary": result.summary()}


def _needs_evaluation(evaluation: dict | None, cfg: OfflineRLConfig) -> bool:
    if cfg.eval_episodes == 0:
        return False
    return evaluation is None or (evaluation["episodes"], evaluation["seed"]) != (
        cfg.eval_episodes, cfg.eval_seed)


def _from_cache(cache: TeacherCache, entry: Path, header: dict, cfg: OfflineRLConfig,
                dataset: OfflineDataset, shipped: bool = False) -> OfflineTeacher | None:
    """The teacher at `entry` if it matches `header`; a `shipped` one is never written to."""
    record = cache.load(entry, header)
    if record is None:
        return None
    try:
        teacher = TRAINERS[cfg.ALGORITHM].TEACHER.from_record(record, cfg.device)
    except Exception as e:  # shapes or keys that do not fit: retrain rather than trust
        warnings.warn(f"ignoring cached teacher {entry} ({type(e).__name__}: {e}); retraining.",
                      stacklevel=3)
        return None
    teacher.cfg = cfg  # same training fields (the key says so); run fields of this call
    teacher.origin = f"{'shipped' if shipped else 'cache'} {entry}"
    logger.info("teacher %s on %s %s %s", cfg.ALGORITHM, dataset.metadata.name,
                "is shipped with sdw (nothing to train):" if shipped else "loaded from cache",
                entry)
    if _needs_evaluation(teacher.evaluation, cfg):
        teacher.evaluation = {**evaluate_teacher(teacher, dataset.metadata.env_id,
                                                 dataset.metadata.reference_scores,
                                                 cfg.eval_episodes, cfg.eval_seed),
                              "step": cfg.steps}
        if not shipped:
            _write_cache(entry, lambda: cache.save(entry, teacher.record(), teacher.summary()))
    return teacher


def _resume(cache: TeacherCache, entry: Path, header: dict, trainer: OfflineTrainer) -> None:
    partial = cache.partial(entry)
    record = cache.load(partial, header)
    if record is None:
        return
    try:
        trainer.load_state_dict(record["trainer"])
    except Exception as e:
        warnings.warn(f"ignoring unfinished run {partial} ({type(e).__name__}: {e}); "
                      "starting from step 0.", stacklevel=3)
        return
    logger.info("resuming teacher training from %s at step %d", partial, trainer.step_count)


def _write_cache(path: Path, write: Callable[[], None]) -> bool:
    """Run one cache write; if it fails, warn and go on: the cache is optional, the teacher is kept."""
    try:
        write()
    except OSError as e:
        warnings.warn(f"could not write the teacher cache file {path} ({e}); the run goes on and "
                      "returns its teacher, which is not cached. Point cache_dir at a writable "
                      "directory to cache teachers.", stacklevel=3)
        return False
    return True


def _writable(cache: TeacherCache, entry: Path) -> TeacherCache | None:
    """`cache` if its entry can be written, else None after a warning (checked before training)."""
    reason = unwritable_reason(entry)
    if reason is None:
        return cache
    warnings.warn(f"the teacher cache {cache.root} cannot be written ({reason}): the teacher is "
                  "trained but not cached. Set cache_dir to a writable directory (or null).",
                  stacklevel=3)
    return None


def _stop_if_diverged(trainer: OfflineTrainer, cache: TeacherCache | None, entry: Path | None,
                      stats: Mapping[str, float] | None = None) -> None:
    """Raise `TeacherDivergedError` on a non-finite loss or weight, removing the run's checkpoint."""
    try:
        trainer.check_finite(stats)
    except TeacherDivergedError:
        if cache is not None:
            cache.partial(entry).unlink(missing_ok=True)
        raise


def train_teacher(dataset: OfflineDataset, cfg: OfflineRLConfig | Mapping | DictConfig,
                  cache_dir: Path | str | None = None) -> OfflineTeacher:
    """A teacher for `dataset` (TD3+BC or IQL, by the config's type): from `cache_dir` when
    trained before, else shipped with sdw (sdw/teacher/shipped/), else trained now.

    The cache key is the dataset's content hash and the hash of the config's training fields (with
    max_action resolved); with `cache_dir` None nothing is read or written. An unfinished run in
    the cache resumes where its last checkpoint left off. The returned teacher is frozen
    (eval mode, no gradients), on `cfg.device`, with `evaluation` holding its normalised score.
    A cache that cannot be written is reported before training and the teacher returned
    uncached; a run whose losses or weights go non-finite raises `TeacherDivergedError` and
    leaves nothing in the cache. Jobs asking for the same uncached teacher at once train it once:
    the others wait for the first one's lock and load its result.
    """
    cfg = as_config(cfg)
    meta = dataset.metadata
    cfg = replace(cfg, max_action=resolve_max_action(cfg, meta.env_id))
    header = cfg.cache_header(dataset.content_hash)
    cache = TeacherCache(cache_dir) if cache_dir is not None else None
    entry = None
    if cache is not None:
        entry = cache.entry(cfg.ALGORITHM, header["dataset_hash"], header["config_hash"])
        teacher = _from_cache(cache, entry, header, cfg, dataset)
        if teacher is not None:
            return teacher
    shipped = TeacherCache(SHIPPED_ROOT)
    teacher = _from_cache(shipped, shipped.entry(cfg.ALGORITHM, header["dataset_hash"],
                                                 header["config_hash"]),
                          header, cfg, dataset, shipped=True)
    if teacher is not None:
        return teacher
    if cache is None:
        return _train(dataset, cfg, header, None, None)
    with exclusive(lock_for(entry),
                   what=f"the {cfg.ALGORITHM} teacher of {meta.name}"):
        teacher = _from_cache(cache, entry, header, cfg, dataset)  # another job trained it meanwhile
        return teacher if teacher is not None else _train(dataset, cfg, header, cache, entry)


ESTIMATE_AFTER = 500
"""Training steps after which the remaining time is estimated from the measured rate."""


def _train(dataset: OfflineDataset, cfg: OfflineRLConfig, header: dict,
           cache: TeacherCache | None, entry: Path | None) -> OfflineTeacher:
    """Train (or resume from the cache's checkpoint) and cache the teacher of `train_teacher`."""
    meta = dataset.metadata
    trainer = TRAINERS[cfg.ALGORITHM](dataset, cfg)
    if cache is not None:
        _resume(cache, entry, header, trainer)
        cache = _writable(cache, entry)
    teacher, history = trainer.teacher, trainer.teacher.history
    first = trainer.step_count
    logger.warning(
        "no shipped or cached %s teacher for %s: training one now for %d steps%s (teacher.steps= "
        "to change; a checkpoint every %s steps, so an interrupted run resumes from the last)",
        cfg.ALGORITHM, meta.name, cfg.steps,
        f", resuming at step {first}" if first else "", cfg.checkpoint_every or "no")
    started = time.perf_counter()
    with tqdm(total=cfg.steps, initial=trainer.step_count, unit="step", mininterval=2.0,
              desc=f"{cfg.ALGORITHM} {meta.name}") as bar:
        while trainer.step_count < cfg.steps:
            trainer.step()
            step = trainer.step_count
            bar.update(1)
            if step - first == ESTIMATE_AFTER and step < cfg.steps:
                rate = ESTIMATE_AFTER / (time.perf_counter() - started)
                logger.warning("teacher %s on %s: %.0f steps/s here, about %.0f min to go",
                               cfg.ALGORITHM, meta.name, rate, (cfg.steps - step) / rate / 60)
            if step % cfg.log_every == 0:
                stats = trainer.pop_stats()
                _stop_if_diverged(trainer, cache, entry, stats)
                history.append({"step": step, **stats})
                bar.set_postfix({k: f"{v:.3g}" for k, v in stats.items()})
                logger.info("step %d: %s", step, " ".join(f"{k} {v:.4g}" for k, v in stats.items()))
            if cfg.eval_every and cfg.eval_episodes and step % cfg.eval_every == 0 \
                    and step < cfg.steps:
                evaluation = evaluate_teacher(teacher, meta.env_id, meta.reference_scores,
                                              cfg.eval_episodes, cfg.eval_seed)
                history.append({"step": step, "eval_return": evaluation["mean_return"],
                                "eval_normalised": evaluation["normalised_mean"]})
                logger.info("step %d: evaluation %s", step, evaluation["summary"])
            if cache is not None and cfg.checkpoint_every and step % cfg.checkpoint_every == 0 \
                    and step < cfg.steps:
                _stop_if_diverged(trainer, cache, entry)
                _write_cache(cache.partial(entry), lambda: atomic_torch_save(
                    {**header, "format": RECORD_FORMAT, "format_version": RECORD_FORMAT_VERSION,
                     "trainer": trainer.state_dict()}, cache.partial(entry)))

    _stop_if_diverged(trainer, cache, entry)
    teacher.eval().requires_grad_(False)
    teacher.origin = "trained"
    if cfg.eval_episodes:
        teacher.evaluation = {**evaluate_teacher(teacher, meta.env_id, meta.reference_scores,
                                                 cfg.eval_episodes, cfg.eval_seed),
                              "step": trainer.step_count}
        logger.info("teacher %s on %s after %d steps: %s", cfg.ALGORITHM, meta.name,
                    trainer.step_count, teacher.evaluation["summary"])
    if cache is not None and _write_cache(entry, lambda: cache.save(entry, teacher.record(),
                                                                     teacher.summary())):
        cache.partial(entry).unlink(missing_ok=True)
        logger.info("teacher saved to %s", entry)
    return teacher
