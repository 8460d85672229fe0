"""Pictures of what was distilled (sdw/evaluate/pictures.py): poses from observations, the pose
grid, the side-by-side rollout, and sdw-eval's `capture_video`; headless, through EGL."""

import json

import imageio.v3 as iio
import numpy as np
import pytest

from sdw.app.eval_cli import main as sdw_eval
from sdw.data.dataset import StateNormaliser
from sdw.distill.synthetic import SyntheticSet
from sdw.envs import make_env
from sdw.evaluate.pictures import observed_positions, pose_grid, rollout_gif, set_pose, tile


@pytest.mark.parametrize("env_id, nq", [("Hopper-v4", 6), ("HalfCheetah-v4", 9),
                                        ("Walker2d-v4", 9)])
def test_a_pose_puts_the_observed_positions_back_with_x_zero(env_id, nq):
    env = make_env(env_id)
    obs, _ = env.reset(seed=1)
    for _ in range(20):  # a pose away from the initial one
        obs, *_ = env.step(env.action_space.sample())
    other = make_env(env_id)
    other.reset(seed=2)
    set_pose(other, obs)
    first, count = observed_positions(other)
    assert (first, count) == (1, nq - 1)
    qpos = other.unwrapped.data.qpos
    assert qpos[0] == 0.0
    np.testing.assert_allclose(qpos[1:], obs[:count], rtol=0, atol=1e-12)
    np.testing.assert_allclose(other.unwrapped._get_obs()[:count], obs[:count], atol=1e-12)


def hopper_set(states: np.ndarray) -> SyntheticSet:
    normaliser = StateNormaliser(np.full(11, 0.5, np.float32), np.full(11, 2.0, np.float32))
    return SyntheticSet(normaliser(states), np.zeros((len(states), 3)), normaliser, "Hopper-v4",
                        "hopper-tiny-v2", "somehash", "Av-PBC")


def test_the_pose_grid_has_one_tile_per_state_and_each_tile_shows_its_pose(tmp_path):
    upright = np.zeros(11, np.float32)
    upright[0] = 1.25  # torso height: standing
    bent = upright.copy()
    bent[2:5] = (-1.0, -1.0, 0.5)  # thigh, leg, foot joints bent
    states = np.stack([upright, bent, upright, bent, upright])
    path = pose_grid(hopper_set(states), tmp_path / "poses.png", columns=3, size=64)
    image = iio.imread(path)
    assert image.shape == (2 * 64, 3 * 64, 3)
    tiles = [image[r * 64:(r + 1) * 64, c * 64:(c + 1) * 64] for r in range(2) for c in range(3)]
    # the states are un-normalised: the same pose gives the same tile, another pose another one
    np.testing.assert_array_equal(tiles[0], tiles[2])
    np.testing.assert_array_equal(tiles[1], tiles[3])
    assert np.abs(tiles[0].astype(int) - tiles[1]).mean() > 1.0
    assert (tiles[5] == 255).all()  # the sixth cell has no state


def test_tile_fills_rows_left_to_right():
    frames = [np.full((2, 2, 3), i, np.uint8) for i in range(3)]
    grid = tile(frames, 2)
    assert grid.shape == (4, 4, 3)
    assert (grid[0, 2, 0], grid[2, 0, 0], grid[2, 2, 0]) == (1, 2, 255)


def test_a_rollout_gif_shows_the_policies_side_by_side_until_both_end(tmp_path):
    zeros = ("still", lambda obs: np.zeros((len(obs), 3)))
    push = ("pushing", lambda obs: np.ones((len(obs), 3)))
    path = rollout_gif([zeros, push], "Hopper-v4", tmp_path / "rollout.gif", max_steps=10,
                       every=2, size=48)
    frames = iio.imread(path)
    assert frames.shape == (6, 48, 96, 3)  # the reset frame and one every 2 of 10 steps
    assert np.abs(frames[-1, :, :48].astype(int) - frames[-1, :, 48:]).mean() > 0.5


def test_sdw_eval_capture_video_writes_the_pictures_beside_the_set(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    states = rng.normal(size=(6, 11)).astype(np.float32) * 0.1
    states[:, 0] += 1.25
    hopper_set(states).save(tmp_path / "set.npz")
    sdw_eval(["set.npz", "eval=quick", "student.hidden_sizes=[16,16]", "inner_optim.steps=5",
              "threads=1", "capture_video=true"])
    assert iio.imread(tmp_path / "set.poses.png").shape == (96, 6 * 96, 3)
    gif = iio.imread(tmp_path / "set.rollout.gif")
    assert gif.ndim == 4 and gif.shape[1:] == (240, 240, 3)  # the student alone: no teacher=
    assert json.loads((tmp_path / "set.eval.json").read_text())["method"] == "Av-PBC"
    assert "pictures: " in capsys.readouterr().out


def test_a_run_whose_pictures_fail_keeps_its_results(tmp_path, monkeypatch, caplog):
    from omegaconf import OmegaConf

    from sdw.app import run as run_module

    def fail(*args, **kwargs):
        raise RuntimeError("no OpenGL context")

    monkeypatch.setattr(run_module, "capture", fail)
    cfg = OmegaConf.create({"seed": 0, "device": "cpu"})
    run_module._capture(None, None, None, None, tmp_path, cfg)  # no exception
    assert "no pictures (RuntimeError: no OpenGL context)" in caplog.text
