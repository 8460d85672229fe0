"""What the end-to-end `sdw-run` tests share: a tiny configuration, a tiny real Hopper-v4 D4RL
file, a shared cache, and `sdw-run` as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sdw.data.example import collect_random_transitions, write_d4rl_hdf5

TINY = ["eval=quick", "checkpoint_every=2", "teacher.steps=40", "teacher.eval_episodes=1",
        "teacher.hidden_dims=[16,16]", "objective.batch_size=128", "synthetic.size=16",
        "inner_optim.steps=5", "student.hidden_sizes=[16,16]", "progress=false", "threads=1"]


@pytest.fixture(scope="module")
def data_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "hopper_random-tiny.hdf5"
    write_d4rl_hdf5(path, collect_random_transitions("Hopper-v4", 2000, seed=0))
    return path


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


def sdw_run(args: list[str], out: Path, cache: Path, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "SDW_OUTPUT_DIR": str(out), "SDW_CACHE_DIR": str(cache)}
    return subprocess.run([sys.executable, "-m", "sdw", *args], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=600, **kwargs)


def run_dir(out: Path, name: str = "default") -> Path:
    (found,) = [p.parent.parent for p in (out / "runs" / name).glob("*/.hydra/config.yaml")]
    return found


def start_run(args: list[str], out: Path, cache: Path) -> subprocess.Popen:
    """`sdw-run` in the background (stdout and stderr as text pipes)."""
    env = {**os.environ, "SDW_OUTPUT_DIR": str(out), "SDW_CACHE_DIR": str(cache)}
    return subprocess.Popen([sys.executable, "-m", "sdw", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for_steps(process: subprocess.Popen, out: Path, steps: int,
                   timeout: float = 300) -> Path:
    """The run directory, once its metrics.jsonl holds `steps` outer-step rows."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        found = list(out.glob("runs/*/*/metrics.jsonl"))
        if found and found[0].read_text().count('"type": "step"') >= steps:
            return found[0].parent
        time.sleep(0.02)
    raise AssertionError(f"the run ended or stalled before outer step {steps}: "
                         f"{process.communicate()[0] if process.poll() is not None else ''}")
