"""Datasets are written atomically and sdw-collect checks where it writes before the work.

A SIGKILL at any moment of `sdw-collect mode=rebuild` leaves, for every level, the previous
complete dataset or the new one; an incomplete local dataset reads as absent, with the command
that rebuilds it; an unwritable location fails at once with exit code 2 and no traceback.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sdw.collect.minari_writer import STAGING, _minari_root, swap_in
from sdw.data.cli import main as sdw_data
from sdw.data.errors import DatasetError
from sdw.data.minari_source import BUILD_RECORD, MinariSource, minari_root

LEVELS = ("random", "medium")
TINY = ["mode=rebuild", "env=hopper", f"build.levels=[{','.join(LEVELS)}]",
        "build.sizes.random=400", "build.sizes.medium=400", "build.n_envs=2",
        "build.ref_episodes=1"]


def start(root: Path, seed: int, runs: Path | None = None, **overrides: str) -> subprocess.Popen:
    """`sdw-collect` on the tiny settings, writing into `root` (its run dir in `runs`, by default
    beside `root`)."""
    env = {**os.environ, "MINARI_DATASETS_PATH": str(root)}
    run = (runs or root.parent) / f"run-{root.name}-{time.monotonic_ns()}"
    args = dict(a.split("=", 1) for a in TINY) | {"seed": str(seed), "run_dir": str(run),
                                                  "hydra.run.dir": str(run / "hydra")} | overrides
    return subprocess.Popen([sys.executable, "-m", "sdw.collect.cli",
                             *(f"{k}={v}" for k, v in args.items())],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def state(root: Path) -> dict[str, str | None]:
    """Level -> content hash of the dataset `root` holds, None where the level is absent."""
    out = {}
    with _minari_root(root):
        for level in LEVELS:
            source = MinariSource(f"sdw/hopper/{level}-v0", source="local")
            out[level] = source.load().content_hash if source.is_present() else None
    return out


@pytest.fixture(scope="module")
def builds(tmp_path_factory) -> tuple[Path, dict, dict]:
    """A complete old build (seed 1) and the hashes a complete new build (seed 0) gives."""
    tmp = tmp_path_factory.mktemp("atomic")
    for name, seed in (("old", 1), ("new", 0)):
        proc = start(tmp / name, seed)
        assert proc.wait(timeout=300) == 0, proc.stderr.read().decode()
    old, new = state(tmp / "old"), state(tmp / "new")
    assert None not in old.values() and None not in new.values()
    assert all(old[lv] != new[lv] for lv in LEVELS)
    return tmp / "old", old, new


def first(pattern: str, root: Path, proc: subprocess.Popen, timeout: float = 300) -> Path | None:
    """The first path matching `pattern` under `root`, polled every 2 ms while `proc` runs."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        found = next(root.glob(pattern), None)
        if found is not None:
            return found
        time.sleep(0.002)
    return None


MOMENTS = {
    "start": lambda root, proc: time.sleep(0.3) or True,
    "staged data being written": lambda root, proc: first(
        f"{STAGING}/*/sdw/hopper/*/data/main_data.hdf5", root, proc),
    "staged record written": lambda root, proc: first(
        f"{STAGING}/*/sdw/hopper/*/{BUILD_RECORD}", root, proc),
    "second level being written": lambda root, proc: first(
        f"{STAGING}/*/sdw/hopper/medium-v0/data/main_data.hdf5", root, proc),
}


@pytest.mark.slow
@pytest.mark.parametrize("moment", MOMENTS)
def test_a_killed_rebuild_leaves_the_old_or_the_new_dataset(builds, tmp_path, moment,
                                                            monkeypatch, capsys):
    old_root, old, new = builds
    root = tmp_path / "datasets"
    shutil.copytree(old_root, root)
    proc = start(root, 0)
    assert MOMENTS[moment](root, proc), f"the rebuild ended before the moment {moment!r}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    after = state(root)
    for level in LEVELS:
        assert after[level] in (old[level], new[level]), (moment, level)
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    assert sdw_data(["list"]) == 0
    assert "partial" not in capsys.readouterr().out
    for level in LEVELS:
        assert sdw_data(["info", f"sdw/hopper/{level}-v0"]) == 0
    # the next rebuild completes and removes the killed run's staging folder
    proc = start(root, 0)
    assert proc.wait(timeout=300) == 0
    assert state(root) == new
    assert list((root / STAGING).iterdir()) == []


def test_an_incomplete_local_dataset_reads_as_absent_with_the_rebuild_command(capsys):
    """What an interrupted older sdw-collect left: Minari files without the completion record."""
    import minari
    from minari.data_collector import EpisodeBuffer

    import numpy as np

    buffer = EpisodeBuffer(id=0, observations=np.zeros((3, 11)), actions=np.zeros((2, 3), np.float32),
                           rewards=[0.0, 1.0], terminations=[False, True],
                           truncations=[False, False], infos={})
    minari.create_dataset_from_buffers("sdw/hopper/medium-v0", [buffer], env="Hopper-v4",
                                       algorithm_name="test", data_format="hdf5")
    source = MinariSource("sdw/hopper/medium-v0", source="local")
    assert source.is_incomplete() and not source.is_present()
    with pytest.raises(DatasetError, match="incomplete.*sdw-collect mode=rebuild env=hopper"):
        source.load()
    assert sdw_data(["list"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("local-hopper-medium "))
    assert row.split()[2] == "partial" and "sdw-collect mode=rebuild" in out
    assert sdw_data(["info", "local-hopper-medium"]) == 2
    assert "incomplete" in capsys.readouterr().err
    (minari_root() / "sdw/hopper/medium-v0" / BUILD_RECORD).write_text("{}")
    assert source.is_present()


def test_swap_in_replaces_a_folder_and_removes_the_old_one(tmp_path):
    target, staged = tmp_path / "data" / "ds", tmp_path / "staging" / "ds"
    for folder, text in ((target, "old"), (staged, "new")):
        folder.mkdir(parents=True)
        (folder / "file").write_text(text)
    swap_in(staged, target)
    assert (target / "file").read_text() == "new" and not staged.exists()
    fresh = tmp_path / "staging" / "fresh"
    fresh.mkdir()
    swap_in(fresh, tmp_path / "data" / "other")
    assert (tmp_path / "data" / "other").is_dir() and not fresh.exists()


@pytest.mark.parametrize("where", ["datasets", "run_dir", "zoo_dir"])
def test_an_unwritable_location_fails_before_any_work_with_exit_2(tmp_path, where):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    root = blocker / "datasets" if where == "datasets" else tmp_path / "datasets"
    overrides = {"datasets": {}, "run_dir": {"run_dir": str(blocker / "run")},
                 "zoo_dir": {"mode": "build", "zoo_dir": str(blocker / "zoo")}}[where]
    t0 = time.monotonic()
    proc = start(root, 0, tmp_path, **overrides)
    assert proc.wait(timeout=120) == 2
    err = proc.stderr.read().decode()
    assert "Traceback" not in err and str(blocker) in err and "cannot write" in err, err
    assert time.monotonic() - t0 < 60
    assert not root.exists() or not any(root.rglob("*.hdf5"))
