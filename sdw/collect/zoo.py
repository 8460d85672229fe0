"""The policy zoo: the few actor snapshots (and the training curve) every dataset is rebuilt from.

`<zoo>/manifest.json` names the medium and expert snapshots, the snapshots replayed for
medium-replay (every snapshot from the one acting when gradient steps began up to medium, in
training order) and the whole training curve;
`<zoo>/step_<N>.npz` are the actors (float16 by default).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from sdw.collect.snapshot import ActorSnapshot
from sdw.collect.train import SnapshotRecord, TrainingRun

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
EXPERT_SEARCH_SEED = 3_000_000
"""Reset seed of the first episode when comparing expert candidates."""


@dataclass(frozen=True)
class Zoo:
    """A loaded zoo manifest; snapshots are read on demand."""

    root: Path
    env_id: str
    medium_step: int
    expert_step: int
    replay_steps: tuple[int, ...]
    learning_starts: int
    medium_fraction: float
    curve: tuple[SnapshotRecord, ...]
    train_settings: dict

    def content_hash(self) -> str:
        """Hash of the manifest and every snapshot file: the zoo version a dataset is built from."""
        h = hashlib.sha256()
        for path in sorted(self.root.iterdir()):
            if path.name == MANIFEST or path.suffix == ".npz":
                h.update(path.name.encode())
                h.update(path.read_bytes())
        return h.hexdigest()[:16]

    def snapshot(self, step: int) -> ActorSnapshot:
        return ActorSnapshot.load(self.root / snapshot_name(step))

    def record(self, step: int) -> SnapshotRecord:
        return next(r for r in self.curve if r.step == step)

    @classmethod
    def load(cls, root: Path) -> Zoo:
        path = Path(root) / MANIFEST
        if not path.exists():
            raise FileNotFoundError(
                f"no policy zoo at {root} ({MANIFEST} missing): export one from a training run "
                "with `sdw-collect mode=export env=<env>` or point zoo_dir at one."
            )
        m = json.loads(path.read_text())
        return cls(root=Path(root), env_id=m["env_id"], medium_step=m["medium_step"],
                   expert_step=m["expert_step"], replay_steps=tuple(m["replay_steps"]),
                   learning_starts=m["learning_starts"], medium_fraction=m["medium_fraction"],
                   curve=tuple(SnapshotRecord(**r) for r in m["curve"]),
                   train_settings=m["train_settings"])


def snapshot_name(step: int) -> str:
    return f"step_{step:08d}.npz"


def choose_levels(snaps: list[SnapshotRecord], medium_fraction: float,
                  expert_step: int | None = None) -> tuple[int, int]:
    """(medium step, expert step): expert = `expert_step`, else the best eval return (earliest
    on ties); medium = the first snapshot that covers `medium_fraction` of the way from the
    first snapshot's (the untrained actor's) eval return to the expert's: 1/3 of the expert
    return when the untrained return is about 0, as in D4RL, and still defined when returns are
    negative."""
    if not snaps:
        raise ValueError("no snapshots to choose levels from")
    if not 0.0 < medium_fraction <= 1.0:
        raise ValueError(f"build.medium_fraction must be in (0, 1], got {medium_fraction}")
    if expert_step is None:
        expert = max(snaps, key=lambda s: (s.eval_return, -s.step))
    else:
        expert = next(s for s in snaps if s.step == expert_step)
    start = snaps[0].eval_return
    target = start + medium_fraction * (expert.eval_return - start)
    medium = next(s for s in snaps if s.eval_return >= target and s.step <= expert.step)
    return medium.step, expert.step


def best_sampling_snapshot(run: TrainingRun, snaps: list[SnapshotRecord], env_id: str,
                           n_candidates: int, n_episodes: int) -> dict[int, float]:
    """Mean returns, with sampled actions (as the datasets act), of the `n_candidates` snapshots
    with the best deterministic eval returns: a snapshot that is good with its mean action can
    still fall often when its actions are sampled."""
    from sdw.rollout import evaluate_policy

    top = sorted(snaps, key=lambda s: (-s.eval_return, s.step))[:n_candidates]
    sampled = {}
    for rec in top:
        snap = ActorSnapshot.load(run.snapshot_path(rec.step))
        rng = np.random.default_rng(rec.step)
        sampled[rec.step] = evaluate_policy(lambda obs, a=snap, r=rng: a.act(obs, r), env_id,
                                            n_episodes, seed=EXPERT_SEARCH_SEED).mean_return
    return sampled


def export_zoo(run_dir: Path, zoo_dir: Path, env_id: str, medium_fraction: float,
               dtype: str = "float16", expert_candidates: int = 5,
               expert_episodes: int = 10) -> Zoo:
    """Copy the snapshots the datasets need from a training run into `zoo_dir` (replaced).

    The expert is the best of the `expert_candidates` best-evaluated snapshots when acting with
    sampled actions over `expert_episodes` episodes.
    """
    run = TrainingRun(run_dir)
    snaps = run.snapshots()
    settings = run.settings()
    sampled = best_sampling_snapshot(run, snaps, env_id, expert_candidates, expert_episodes)
    expert_step = max(sampled, key=lambda step: (sampled[step], -step))
    log.info("expert candidates (step: mean sampled-action return over %d episodes): %s",
             expert_episodes, ", ".join(f"{k}: {v:.1f}" for k, v in sampled.items()))
    medium, expert = choose_levels(snaps, medium_fraction, expert_step)
    first = max(s.step for s in snaps if s.step <= settings["learning_starts"])
    replay = [s.step for s in snaps if first <= s.step < medium]
    keep = sorted(set(replay) | {medium, expert})
    tmp = zoo_dir.with_name(zoo_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for step in keep:
        ActorSnapshot.load(run.snapshot_path(step)).save(tmp / snapshot_name(step), dtype=dtype)
    manifest = {
        "env_id": env_id, "algorithm": "stable-baselines3 SAC", "medium_step": medium,
        "expert_step": expert, "replay_steps": replay,
        "learning_starts": settings["learning_starts"], "medium_fraction": medium_fraction,
        "snapshot_dtype": dtype, "train_settings": settings,
        "expert_candidates_sampled_return": {str(k): v for k, v in sampled.items()},
        "curve": [asdict(s) for s in snaps],
    }
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
    shutil.rmtree(zoo_dir, ignore_errors=True)
    tmp.rename(zoo_dir)
    return Zoo.load(zoo_dir)
