"""Behaviour policy training: snapshots, checkpoints, resume after an interruption or a signal."""

import hashlib
import json
import os
import signal

import numpy as np
import pytest
from stable_baselines3.common.callbacks import BaseCallback

from sdw.collect.snapshot import ActorSnapshot
from sdw.collect.train import TrainingRun, TrainSettings, train

ENV = "Hopper-v4"



def tiny(total_steps: int) -> TrainSettings:
    return TrainSettings(total_steps=total_steps, learning_starts=100, batch_size=32,
                         net_arch=(16, 16), snapshot_every=100, checkpoint_every=200,
                         eval_episodes=1)


class Crash(BaseCallback):
    """Dies like a killed process at `at` env steps: no checkpoint is written."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at = at

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.at:
            raise RuntimeError("simulated crash")
        return True


class SendSigterm(BaseCallback):
    def __init__(self, at: int) -> None:
        super().__init__()
        self.at = at

    def _on_step(self) -> bool:
        if self.num_timesteps == self.at:
            os.kill(os.getpid(), signal.SIGTERM)
        return True


def file_hash(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def buffer_size(run: TrainingRun) -> int:
    from stable_baselines3 import SAC

    model = SAC.load(run.checkpoint / "model.zip", device="cpu")
    model.load_replay_buffer(run.checkpoint / "replay_buffer.pkl")
    return model.replay_buffer.size()


def test_resume_after_crash_continues_from_last_checkpoint(tmp_path):
    run = TrainingRun(tmp_path / "run")
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(ENV, tiny(600), run.root, seed=3, callbacks=[Crash(at=500)])
    state = run.read_state()
    assert state.steps == 400
    assert [s.step for s in state.snapshots] == [0, 100, 200, 300, 400]
    before = {s: file_hash(run.snapshot_path(s)) for s in (100, 400)}

    state = train(ENV, tiny(600), run.root, seed=3)

    assert state.steps == 600
    steps = [s.step for s in run.snapshots()]
    assert steps == [0, 100, 200, 300, 400, 500, 600]
    assert {s: file_hash(run.snapshot_path(s)) for s in (100, 400)} == before
    assert run.read_state().steps == 600
    assert buffer_size(run) == 600
    assert all(np.isfinite(s.eval_return) for s in run.snapshots())


def test_sigterm_checkpoints_then_a_larger_budget_continues(tmp_path):
    run = TrainingRun(tmp_path / "run")
    state = train(ENV, tiny(1000), run.root, callbacks=[SendSigterm(at=250)])
    assert state.steps == 250
    assert run.read_state().steps == 250
    state = train(ENV, tiny(400), run.root)
    assert state.steps == 400
    assert [s.step for s in state.snapshots] == [0, 100, 200, 300, 400]
    assert json.loads((run.root / "settings.json").read_text())["total_steps"] == 400


def test_snapshot_matches_sb3_actor(tmp_path):
    from stable_baselines3 import SAC

    run = TrainingRun(tmp_path / "run")
    train(ENV, tiny(200), run.root)
    model = SAC.load(run.checkpoint / "model.zip", device="cpu")
    obs = np.random.default_rng(0).normal(size=(8, 11)).astype(np.float32)
    expected, _ = model.predict(obs, deterministic=True)
    snap = ActorSnapshot.load(run.snapshot_path(200))
    np.testing.assert_allclose(snap.deterministic(obs), expected, atol=1e-5)
    half = tmp_path / "half.npz"
    snap.save(half, dtype="float16")
    np.testing.assert_allclose(ActorSnapshot.load(half).deterministic(obs), expected, atol=2e-2)


def test_bad_schedule_is_rejected():
    with pytest.raises(ValueError, match="checkpoint_every"):
        TrainSettings(total_steps=10, snapshot_every=300, checkpoint_every=400)


def test_resuming_another_env_is_refused(tmp_path):
    train(ENV, tiny(100), tmp_path / "run")
    with pytest.raises(ValueError, match="holds a Hopper-v4 run"):
        train("HalfCheetah-v4", tiny(100), tmp_path / "run")
