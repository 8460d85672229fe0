"""Online SAC training of a behaviour policy, with actor snapshots and resumable checkpoints.

A run directory holds:
  checkpoint/         model.zip (SB3 SAC with optimisers), replay_buffer.pkl, state.json
  snapshots/          step_<N>.npz, the actor every `snapshot_every` env steps (float32)
  snapshots.json      the snapshot list: step, deterministic eval return (mean, std), wall time
  settings.json       the TrainSettings of the latest start
A killed run restarts from the last checkpoint: snapshots after it are taken again.
"""

from __future__ import annotations

import json
import logging
import shutil
import signal
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from sdw.collect.snapshot import ActorSnapshot

log = logging.getLogger(__name__)

EVAL_SEED = 1_000_000
"""Reset seed of the first evaluation episode (evaluation episodes never reuse training seeds)."""


@dataclass(frozen=True)
class TrainSettings:
    """SB3 SAC hyper-parameters and the snapshot / checkpoint schedule (see sdw/collect/conf)."""

    total_steps: int
    learning_starts: int = 5000
    batch_size: int = 256
    train_freq: int = 1
    gradient_steps: int = 1
    n_envs: int = 1
    net_arch: Sequence[int] = (128, 128)
    learning_rate: float = 3e-4
    buffer_size: int = 1_000_000
    snapshot_every: int = 5000
    eval_episodes: int = 5
    checkpoint_every: int = 25000

    def __post_init__(self) -> None:
        for name in ("total_steps", "snapshot_every", "checkpoint_every", "eval_episodes", "n_envs"):
            if getattr(self, name) <= 0:
                raise ValueError(f"train.{name} must be positive, got {getattr(self, name)}")
        if self.checkpoint_every % self.snapshot_every:
            raise ValueError(
                f"train.checkpoint_every ({self.checkpoint_every}) must be a multiple of "
                f"train.snapshot_every ({self.snapshot_every}) so a resumed run keeps its snapshots."
            )
        per_rollout = self.train_freq * self.n_envs
        if self.snapshot_every % per_rollout:
            raise ValueError(f"train.snapshot_every ({self.snapshot_every}) must be a multiple of "
                             f"train.train_freq * train.n_envs ({per_rollout}), the env steps "
                             "between two gradient phases")


@dataclass
class SnapshotRecord:
    """One actor snapshot: env step, deterministic evaluation return, wall-clock training time."""

    step: int
    eval_return: float
    eval_std: float
    train_seconds: float
    file: str


@dataclass
class RunState:
    """What a checkpoint remembers besides the SB3 model and buffer."""

    env_id: str
    seed: int
    steps: int = 0
    train_seconds: float = 0.0
    snapshots: list[SnapshotRecord] = field(default_factory=list)

    @classmethod
    def from_json(cls, d: dict) -> RunState:
        snaps = [SnapshotRecord(**s) for s in d.pop("snapshots")]
        return cls(**d, snapshots=snaps)


class TrainingRun:
    """The files of one training run (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @property
    def checkpoint(self) -> Path:
        return self.root / "checkpoint"

    @property
    def snapshot_dir(self) -> Path:
        return self.root / "snapshots"

    @property
    def index(self) -> Path:
        return self.root / "snapshots.json"

    def settings(self) -> dict:
        path = self.root / "settings.json"
        if not path.exists():
            raise FileNotFoundError(f"no {path}: train first (sdw-collect mode=train)")
        return json.loads(path.read_text())

    def write_settings(self, settings: TrainSettings) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        d = asdict(settings) | {"net_arch": list(settings.net_arch)}
        (self.root / "settings.json").write_text(json.dumps(d, indent=1))

    def snapshot_path(self, step: int) -> Path:
        return self.snapshot_dir / f"step_{step:08d}.npz"

    def latest_checkpoint(self) -> Path | None:
        """The checkpoint folder, or its previous copy if a crash hit between the two renames."""
        for path in (self.checkpoint, self.root / "checkpoint.old"):
            if (path / "state.json").exists():
                return path
        return None

    def read_state(self) -> RunState | None:
        ckpt = self.latest_checkpoint()
        if ckpt is None:
            return None
        return RunState.from_json(json.loads((ckpt / "state.json").read_text()))

    def snapshots(self) -> list[SnapshotRecord]:
        """The snapshot list as last written (may be ahead of the checkpoint while training)."""
        if not self.index.exists():
            raise FileNotFoundError(f"no {self.index}: train first (sdw-collect mode=train)")
        return [SnapshotRecord(**s) for s in json.loads(self.index.read_text())]

    def write_index(self, snaps: list[SnapshotRecord]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.index.with_suffix(".tmp")
        tmp.write_text(json.dumps([asdict(s) for s in snaps], indent=1))
        tmp.replace(self.index)

    def save_checkpoint(self, model, state: RunState) -> None:
        """Write model, replay buffer and state to a fresh folder, then swap it in."""
        tmp, old = self.root / "checkpoint.tmp", self.root / "checkpoint.old"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        model.save(tmp / "model.zip")
        model.save_replay_buffer(tmp / "replay_buffer.pkl")
        (tmp / "state.json").write_text(json.dumps(asdict(state), indent=1))
        shutil.rmtree(old, ignore_errors=True)
        if self.checkpoint.exists():
            self.checkpoint.rename(old)
        tmp.rename(self.checkpoint)
        shutil.rmtree(old, ignore_errors=True)


def _make_vec_env(env_id: str, n_envs: int, seed: int):
    from stable_baselines3.common.env_util import make_vec_env

    return make_vec_env(env_id, n_envs=n_envs, seed=seed)


def _new_model(env_id: str, s: TrainSettings, seed: int, device: str):
    from stable_baselines3 import SAC

    return SAC(
        "MlpPolicy", _make_vec_env(env_id, s.n_envs, seed), learning_rate=s.learning_rate,
        buffer_size=min(s.buffer_size, s.total_steps), learning_starts=s.learning_starts,
        batch_size=s.batch_size, train_freq=s.train_freq, gradient_steps=s.gradient_steps,
        policy_kwargs={"net_arch": list(s.net_arch)}, seed=seed, device=device, verbose=0,
    )


def _load_model(ckpt: Path, env_id: str, s: TrainSettings, seed: int, steps: int, device: str):
    from stable_baselines3 import SAC

    env = _make_vec_env(env_id, s.n_envs, seed + steps)
    model = SAC.load(ckpt / "model.zip", env=env, device=device)
    model.load_replay_buffer(ckpt / "replay_buffer.pkl")
    model.set_random_seed(seed + steps)
    return model


class _Stop:
    """Turns SIGTERM / SIGINT into a clean stop: checkpoint, then return."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> _Stop:
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: signals stay with the caller
                pass
        return self

    def _handle(self, signum, frame) -> None:
        log.warning("signal %d: checkpointing and stopping", signum)
        self.requested = True

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def evaluate_snapshot(snapshot: ActorSnapshot, env_id: str, n_episodes: int) -> np.ndarray:
    """Returns of the deterministic (mean-action) actor over `n_episodes` seeded episodes."""
    from sdw.rollout import evaluate_policy

    return evaluate_policy(snapshot.deterministic, env_id, n_episodes, seed=EVAL_SEED).returns


def train(env_id: str, settings: TrainSettings, run_dir: Path, seed: int = 0,
          device: str = "cpu", callbacks: Sequence = ()) -> RunState:
    """Train (or resume) SAC on `env_id` up to `settings.total_steps` env steps.

    `callbacks` are extra SB3 callbacks (tests use one to interrupt a run).
    """
    from stable_baselines3.common.callbacks import BaseCallback, CallbackList

    run = TrainingRun(run_dir)
    state = run.read_state()
    if state is None:
        state = RunState(env_id=env_id, seed=seed)
        model = _new_model(env_id, settings, seed, device)
        log.info("new run in %s", run.root)
    else:
        if state.env_id != env_id:
            raise ValueError(f"{run.root} holds a {state.env_id} run, not {env_id}: "
                             "choose another run_dir or delete it")
        model = _load_model(run.latest_checkpoint(), env_id, settings, state.seed, state.steps,
                            device)
        log.info("resuming %s at step %d (%d snapshots)", run.root, state.steps,
                 len(state.snapshots))
    run.write_index(state.snapshots)
    run.write_settings(settings)

    def take_snapshot(step: int) -> None:
        snap = ActorSnapshot.from_sb3(model)
        path = run.snapshot_path(step)
        snap.save(path)
        returns = evaluate_snapshot(snap, env_id, settings.eval_episodes)
        state.snapshots.append(SnapshotRecord(step, float(returns.mean()), float(returns.std()),
                                              round(state.train_seconds, 1),
                                              str(path.relative_to(run.root))))
        run.write_index(state.snapshots)
        log.info("step %d: eval return %.1f +- %.1f (%d episodes), %.0f s of training", step,
                 returns.mean(), returns.std(), len(returns), state.train_seconds)

    if not state.snapshots:
        take_snapshot(0)
    if state.steps >= settings.total_steps:
        log.info("run already at %d >= %d steps", state.steps, settings.total_steps)
        return state

    class Schedule(BaseCallback):
        """Snapshots and checkpoints after a rollout's transitions are in the replay buffer."""

        def __init__(self, stop: _Stop) -> None:
            super().__init__()
            self.stop = stop
            self.stopped = False
            self.bar = tqdm(total=settings.total_steps, initial=state.steps, unit="step",
                            desc=f"SAC {env_id}", mininterval=15, smoothing=0.05)
            self.clock = time.perf_counter()

        def _on_step(self) -> bool:
            return not self.stopped

        def _on_rollout_end(self) -> None:
            now = time.perf_counter()
            state.train_seconds += now - self.clock
            step = self.num_timesteps
            self.bar.update(step - state.steps)
            state.steps = step
            if step % settings.snapshot_every == 0:
                take_snapshot(step)
            if step % settings.checkpoint_every == 0 or step >= settings.total_steps \
                    or self.stop.requested:
                run.save_checkpoint(model, state)
            self.stopped = self.stop.requested
            self.clock = time.perf_counter()

        def _on_training_end(self) -> None:
            self.bar.close()

    with _Stop() as stop:
        model.learn(settings.total_steps - state.steps,
                    callback=CallbackList([Schedule(stop), *callbacks]),
                    reset_num_timesteps=False)
    return state
