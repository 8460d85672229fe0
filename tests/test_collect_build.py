"""Tiny end-to-end collection through the sdw-collect app, and deterministic rebuilds."""

import json
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from sdw.collect.build import LEVELS, BuildSettings, ReplaySchedule, build_all, uniform_policy
from sdw.collect.cli import COLLECT_CONF, run
from sdw.collect.rollout import collect_episodes
from sdw.collect.train import SnapshotRecord
from sdw.collect.zoo import Zoo, choose_levels
from sdw.data.registry import load_dataset

SIZE = 300
TINY_TRAIN = [
    "train.total_steps=300", "train.learning_starts=100", "train.batch_size=32",
    "train.net_arch=[16,16]", "train.snapshot_every=100", "train.checkpoint_every=100",
    "train.eval_episodes=1",
]
TINY_BUILD = [
    f"build.sizes.random={SIZE}", f"build.sizes.medium={SIZE}", f"build.sizes.expert={SIZE}",
    f"build.sizes.medium_replay={SIZE}", "build.ref_episodes=2", "build.n_envs=4",
    "build.expert_candidates=2", "build.expert_episodes=2",
]


def app(tmp: Path, *overrides: str):
    with initialize_config_dir(config_dir=str(COLLECT_CONF), version_base=None):
        cfg = compose("collect", overrides=[f"run_dir={tmp / 'run'}", f"zoo_dir={tmp / 'zoo'}",
                                            *TINY_TRAIN, *TINY_BUILD, *overrides])
    run(cfg)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 300-step hopper run exported as a zoo (shared by the tests of this module)."""
    import torch

    tmp = tmp_path_factory.mktemp("collect")
    threads = torch.get_num_threads()
    app(tmp, "mode=train")
    app(tmp, "mode=export")
    torch.set_num_threads(threads)
    return tmp


def test_tiny_collection_writes_all_levels_readable_by_the_data_layer(trained):
    app(trained, "mode=rebuild")
    zoo = Zoo.load(trained / "zoo")
    data = {level: load_dataset(f"local-hopper-{level}") for level in LEVELS}
    for level, ds in data.items():
        assert ds.metadata.source == "local"
        assert ds.metadata.env_id == "Hopper-v4"
        assert len(ds) >= SIZE, level
        assert ds.metadata.reference_scores is not None
        np.testing.assert_array_equal(ds.observations[1:][~(ds.terminals | ds.timeouts)[:-1]],
                                      ds.next_observations[:-1][~(ds.terminals | ds.timeouts)[:-1]])
    assert len(data["medium-expert"]) == len(data["medium"]) + len(data["expert"])
    scores = {ds.metadata.reference_scores for ds in data.values()}
    assert len(scores) == 1
    assert np.all(np.abs(data["random"].actions) <= 1.0)
    report = json.loads((trained / "run" / "build_report.json").read_text())
    assert [lv["dataset_id"] for lv in report["levels"]] == [f"sdw/hopper/{lv}-v0" for lv in LEVELS]
    assert all(lv["steps_per_second"] > 0 for lv in report["levels"])
    assert zoo.medium_step <= zoo.expert_step


def test_rebuild_is_deterministic_for_a_seed(trained, tmp_path, monkeypatch):
    settings = BuildSettings(levels=("medium", "medium-replay"),
                             sizes={"medium": 200, "medium_replay": 200}, ref_episodes=2, n_envs=3)
    hashes = []
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / name))
        build_all(trained / "zoo", "hopper", settings, seed=seed)
        hashes.append([load_dataset(f"local-hopper-{lv}").content_hash for lv in settings.levels])
    assert hashes[0] == hashes[1]
    assert hashes[0][0] != hashes[2][0] and hashes[0][1] != hashes[2][1]


def test_replay_schedule_follows_training_order(trained):
    zoo = Zoo(root=trained / "run" / "snapshots", env_id="Hopper-v4", medium_step=300,
              expert_step=300, replay_steps=(100, 200), learning_starts=100,
              medium_fraction=0.333, curve=(), train_settings={})
    schedule = ReplaySchedule(zoo, n_transitions=600, random=uniform_policy(zoo.env_id))
    mu_bias = {step: zoo.snapshot(step).mu[1] for step in (100, 200)}
    assert schedule(0) is schedule.random and schedule(199) is schedule.random
    for collected, step in ((200, 100), (399, 100), (400, 200), (599, 200)):
        np.testing.assert_array_equal(schedule(collected).mu[1], mu_bias[step])


def test_levels_expert_is_best_and_medium_first_to_reach_a_third():
    recs = [SnapshotRecord(step, ret, 0.0, 0.0, "") for step, ret in
            ((0, 0.0), (100, 200.0), (200, 400.0), (300, 1200.0), (400, 900.0))]
    assert choose_levels(recs, 0.333) == (200, 300)
    assert choose_levels(recs, 1.0) == (300, 300)
    negative = [SnapshotRecord(step, ret, 0.0, 0.0, "") for step, ret in
                ((0, -300.0), (100, 600.0), (200, 800.0), (300, 2700.0))]
    assert choose_levels(negative, 1 / 3) == (200, 300)


def test_collection_completes_episodes_and_stops_starting_new_ones():
    policy = uniform_policy("Hopper-v4")
    episodes = collect_episodes("Hopper-v4", lambda _: policy, 150, seed=0, n_envs=4)
    assert sum(len(e) for e in episodes) >= 150
    assert all(e.terminated or e.truncated for e in episodes)
    assert all(len(e.observations) == len(e) + 1 for e in episodes)
    assert len({e.seed for e in episodes}) == len(episodes)


def test_unknown_level_is_rejected():
    with pytest.raises(ValueError, match="unknown levels"):
        BuildSettings(levels=("medium", "super-expert"))


def test_shipped_zoos_are_complete_and_small():
    from sdw.collect.cli import ZOO_ROOT

    manifests = sorted(ZOO_ROOT.glob("*/manifest.json"))
    if not manifests:
        pytest.skip(f"no policy zoo shipped in {ZOO_ROOT} yet")
    total = sum(f.stat().st_size for f in ZOO_ROOT.rglob("*") if f.is_file())
    assert total <= 20 * 2**20, f"policy zoo is {total / 2**20:.1f} MB > 20 MB"
    for manifest in manifests:
        zoo = Zoo.load(manifest.parent)
        assert zoo.medium_step <= zoo.expert_step
        for step in (*zoo.replay_steps, zoo.medium_step, zoo.expert_step):
            snap = zoo.snapshot(step)
            assert snap.deterministic(np.zeros((1, snap.obs_dim), np.float32)).shape == (1, snap.act_dim)


def test_rebuilding_another_env_from_a_zoo_is_refused(trained):
    with pytest.raises(ValueError, match="holds Hopper-v4 policies"):
        app(trained, "mode=rebuild", "env=walker2d")
