"""Test isolation: no network, no wandb, no dataset directory outside the test's tmp dir, one
torch thread (CI machines are small and shared; OpenMP's busy-waiting threads slow them down)."""

import os

os.environ["WANDB_MODE"] = "disabled"
os.environ["HF_HUB_OFFLINE"] = "1"
import pytest  # noqa: E402

import sdw  # noqa: E402,F401  (sets OMP_WAIT_POLICY before torch loads)
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def isolated_data_dirs(tmp_path, monkeypatch):
    """Point D4RL's and Minari's dataset directories into the test's tmp dir."""
    d4rl_dir = tmp_path / "d4rl"
    minari_dir = tmp_path / "minari"
    d4rl_dir.mkdir()
    minari_dir.mkdir()
    monkeypatch.setenv("D4RL_DATASET_DIR", str(d4rl_dir))
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(minari_dir))
    return d4rl_dir, minari_dir
