"""Published dataset hashes: a rebuilt slice gives the recorded bytes; builds are checked."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys


from sdw.collect.build import LEVELS, dataset_id
from sdw.collect.published import check_against_published, load_published

SLICE = ["mode=rebuild", "env=hopper", "build.levels=[medium-replay]",
         "build.sizes.medium_replay=1500", "build.n_envs=4", "build.ref_episodes=1"]
SLICE_HASH = "901791e948911075"
"""Content hash of that slice (uniform random actions, then 3 replayed SAC snapshots), measured
with numpy 2.4.6, mujoco 4.0.0, gymnasium 1.4.0, glibc 2.36; identical with
OPENBLAS_CORETYPE=Prescott and NPY_DISABLE_CPU_FEATURES (docs/datasets.md)."""


def test_a_rebuilt_slice_has_the_recorded_content_hash(tmp_path):
    env = {**os.environ, "MINARI_DATASETS_PATH": str(tmp_path / "datasets")}
    env.pop("GLIBC_TUNABLES", None)
    subprocess.run([sys.executable, "-m", "sdw.collect.cli", *SLICE, f"run_dir={tmp_path}",
                    f"hydra.run.dir={tmp_path / 'hydra'}"], env=env, check=True,
                   capture_output=True)
    report = json.loads((tmp_path / "build_report.json").read_text())
    assert [level["content_hash"] for level in report["levels"]] == [SLICE_HASH]


def record(**changes) -> dict:
    base = {"dataset_id": "sdw/hopper/medium-v0", "content_hash": "aaaa", "transitions": 10,
            "episodes": 2, "mean_return": 5.0, "seed": 0, "zoo_hash": "zzzz",
            "build": {"sizes": {"medium": 10}, "n_envs": 16, "ref_episodes": 20},
            "environment": {"numpy": "2.4.6", "mujoco": "4.0.0"}}
    return {**base, **changes}


def test_a_build_is_checked_against_its_published_entry(caplog):
    published = {"datasets": {"sdw/hopper/medium-v0": record()}}
    with caplog.at_level(logging.INFO, logger="sdw.collect.published"):
        assert check_against_published(record(), published) is True
        assert "matches the published" in caplog.text
        caplog.clear()
        other = record(content_hash="bbbb", environment={"numpy": "2.5.0", "mujoco": "4.0.0"})
        assert check_against_published(other, published) is False
    warning = [r for r in caplog.records if r.levelno == logging.WARNING][0].getMessage()
    assert "differs from the published aaaa" in warning and "'numpy': ('2.5.0', '2.4.6')" in warning
    assert check_against_published(record(seed=1, content_hash="cccc"), published) is None
    assert check_against_published(record(zoo_hash="yyyy", content_hash="cccc"), published) is None
    assert check_against_published(record(dataset_id="sdw/hopper/x-v0"), published) is None


def test_published_file_lists_every_local_dataset():
    published = load_published()
    ids = {dataset_id(env, level) for env in ("hopper", "halfcheetah", "walker2d")
           for level in LEVELS}
    assert set(published["datasets"]) == ids
    for did, entry in published["datasets"].items():
        assert len(entry["content_hash"]) == 16, did
        assert entry["transitions"] > 0 and entry["episodes"] > 0, did
        assert entry["seed"] == 0 and entry["build"]["n_envs"] == 16, did
