"""sdw-analyze: diversity / quality metrics with known answers, the misalignment loop, the CLI."""

import json

import numpy as np
import pytest
import torch

from data_files import write_hdf5
from sdw.analyze.cli import main
from sdw.analyze.metrics import MetricsConfig, dataset_metrics, discounted_return_to_go
from sdw.analyze.misalignment import (MisalignmentConfig, curves, orderings, result_path,
                                      run_misalignment)
from sdw.data.dataset import DatasetMetadata, OfflineDataset
from sdw.data.registry import load_dataset
from sdw.data.scores import ReferenceScores
from sdw.distill.inner_optim import InnerOptimConfig
from sdw.distill.loop import real_pairs
from sdw.distill.student import train_student
from sdw.distill.synthetic import SyntheticSet
from sdw.networks.actor import ActorConfig
from sdw.testing.toy import random_dataset

SCORES = ReferenceScores(0.0, 100.0, "test")
TINY_STUDENT = ActorConfig(hidden_sizes=(16, 16))


def grid_dataset(spacing: float, rewards: np.ndarray | None = None,
                 episode_length: int = 100) -> OfflineDataset:
    """States on a 10 x 10 grid with the given spacing, in episodes of `episode_length` steps."""
    xs = np.arange(10, dtype=np.float32) * spacing
    states = np.stack(np.meshgrid(xs, xs), -1).reshape(-1, 2)
    n = len(states)
    timeouts = np.zeros(n, bool)
    timeouts[episode_length - 1::episode_length] = True
    return OfflineDataset(states, np.zeros((n, 1), np.float32),
                          np.ones(n, np.float32) if rewards is None else rewards, states,
                          np.zeros(n, bool), timeouts,
                          DatasetMetadata(f"grid{spacing}", "toy", "Toy-v0", SCORES))


def test_knn_distance_of_a_grid_is_its_spacing_in_normalised_units():
    row = dataset_metrics([grid_dataset(1.0)], MetricsConfig(knn_k=1, samples=100))[0]
    assert row["knn_distance"] == pytest.approx(1 / (np.arange(10).std() + 1e-3), rel=1e-5)


def test_datasets_of_one_env_share_one_normaliser_so_a_wider_grid_is_more_diverse():
    narrow, wide = dataset_metrics([grid_dataset(1.0), grid_dataset(2.0)],
                                   MetricsConfig(knn_k=1, samples=100, bins=10))
    assert wide["knn_distance"] == pytest.approx(2 * narrow["knn_distance"], rel=1e-5)
    assert wide["coverage"] > 2 * narrow["coverage"]
    assert wide["log_volume"] == pytest.approx(narrow["log_volume"] + 2 * np.log(2), rel=1e-4)


def test_discounted_return_to_go_restarts_at_every_episode():
    rtg = discounted_return_to_go(np.array([1, 1, 1, 2, 2.0]), np.array([3, 5]), gamma=0.5)
    np.testing.assert_allclose(rtg, [1.75, 1.5, 1.0, 3.0, 2.0])


def test_quality_columns_have_known_values():
    rewards = np.r_[np.ones(50), np.zeros(50)].astype(np.float32)  # episodes of 50: 50 and 0
    row = dataset_metrics([grid_dataset(1.0, rewards, episode_length=50)],
                          MetricsConfig(gamma=0.5, horizon=10, samples=100))[0]
    rtg = discounted_return_to_go(rewards, np.array([50, 100]), 0.5).mean()
    assert row["rtg_mean"] == pytest.approx(rtg)
    assert row["rtg_normalised"] == pytest.approx(100 * 0.5 * 10 * rtg / 100)
    assert row["return_mean"] == 25 and row["return_normalised"] == 25
    assert row["state_return_normalised"] == 25
    assert (row["transitions"], row["episodes"]) == (100, 2)


def test_orderings_report_a_crossover_at_matched_loss():
    def curve(name, points):
        return [{"dataset": name, "step": s, "seeds": 1, "loss_mean": loss, "score_mean": score}
                for s, (loss, score) in zip((10, 100, 1000), points)]
    table = {"diverse": curve("diverse", [(1.0, 30), (0.3, 40), (0.1, 45)]),
             "quality": curve("quality", [(0.8, 10), (0.2, 50), (0.05, 80)])}
    order = orderings(table)
    assert order["high_loss"]["loss"] == 0.8 and order["low_loss"]["loss"] == 0.1
    assert [n for n, *_ in order["high_loss"]["ranking"]] == ["diverse", "quality"]
    assert [n for n, *_ in order["low_loss"]["ranking"]] == ["quality", "diverse"]
    assert order["low_loss"]["ranking"][0][1] == pytest.approx(50 + 30 * np.log(2) / np.log(4))
    assert order["last_step"]["ranking"][0] == ["quality", 80, None, None]
    assert order["leader_changes"] == {"by_step": True, "by_loss": True}
    apart = {"a": curve("a", [(1.0, 1), (0.9, 2), (0.8, 3)]),
             "b": curve("b", [(0.1, 1), (0.09, 2), (0.08, 3)])}
    assert orderings(apart)["high_loss"] is None
    assert orderings(apart)["leader_changes"] == {"by_step": False, "by_loss": None}


def hopper_file(tmp_path, name: str, seed: int):
    data = random_dataset(300, obs_dim=11, act_dim=3, seed=seed, episode_length=50,
                          env_id="Hopper-v4")
    return write_hdf5(tmp_path / f"hopper_{name}-v2.hdf5", {
        k: getattr(data, k) for k in ("observations", "actions", "rewards",
                                      "next_observations", "terminals", "timeouts")})


FAST = MisalignmentConfig(seeds=(0, 1), checkpoints=(2, 5), loss_samples=1000, episodes=2,
                          max_episode_steps=10, batch_size=32)


def test_misalignment_checkpoints_match_separate_runs_and_a_rerun_skips(tmp_path, monkeypatch):
    dataset = load_dataset(str(hopper_file(tmp_path, "tiny", 0)))
    results = run_misalignment([dataset], TINY_STUDENT, FAST, tmp_path / "out")
    assert [r["seed"] for r in results] == [0, 1]
    assert [c["step"] for c in results[1]["checkpoints"]] == [2, 5]
    assert all(np.isfinite(c["normalised"]) for r in results for c in r["checkpoints"])

    # The checkpoint at step 2 of the 5-step run is the student trained for 2 steps.
    normaliser = dataset.state_normaliser()
    states, actions = real_pairs(dataset, normaliser, torch.device("cpu"))
    bc_set = SyntheticSet(states.numpy(), actions.numpy(), normaliser, "Hopper-v4", "x", "h", "bc")
    actor = train_student(bc_set, TINY_STUDENT, InnerOptimConfig("adam", 3e-4, 2), seed=1,
                          batch_size=32)
    with torch.no_grad():  # loss_samples exceeds the dataset: every pair counts
        loss = float(((actor(states, deterministic=True) - actions) ** 2).mean())
    assert results[1]["checkpoints"][0]["loss"] == pytest.approx(loss, rel=1e-6)

    path = result_path(tmp_path / "out", dataset.metadata.name, 1)
    assert json.loads(path.read_text())["checkpoints"] == results[1]["checkpoints"]
    monkeypatch.setattr("sdw.analyze.misalignment.bc_run",
                        lambda *a: pytest.fail("a finished run was recomputed"))
    assert run_misalignment([dataset], TINY_STUDENT, FAST, tmp_path / "out") == results


def test_a_subset_student_trains_on_its_pairs_and_is_scored_on_the_whole_data(tmp_path):
    dataset = load_dataset(str(hopper_file(tmp_path, "tiny", 0)))
    cfg = MisalignmentConfig(seeds=(1,), checkpoints=(3,), pairs=(40, None), loss_samples=1000,
                             episodes=2, max_episode_steps=10, batch_size=16)
    subset, whole = run_misalignment([dataset], TINY_STUDENT, cfg, tmp_path / "out")
    assert subset["settings"]["pairs"] == 40 and "pairs" not in whole["settings"]
    assert result_path(tmp_path / "out", dataset.metadata.name, 1, 40).name == "pairs40-seed1.json"
    assert result_path(tmp_path / "out", dataset.metadata.name, 1).name == "seed1.json"

    normaliser = dataset.state_normaliser()
    states, actions = real_pairs(dataset, normaliser, torch.device("cpu"))
    pick = torch.from_numpy(np.random.default_rng(1).choice(len(states), 40, replace=False))
    bc_set = SyntheticSet(states[pick].numpy(), actions[pick].numpy(), normaliser, "Hopper-v4",
                          "x", "h", "bc")
    actor = train_student(bc_set, TINY_STUDENT, InnerOptimConfig("adam", 3e-4, 3), seed=1,
                          batch_size=16)
    with torch.no_grad():  # the loss is over the whole dataset's pairs, not the 40 trained on
        loss = float(((actor(states, deterministic=True) - actions) ** 2).mean())
    assert subset["checkpoints"][0]["loss"] == pytest.approx(loss, rel=1e-6)
    assert subset["checkpoints"][0]["loss"] != whole["checkpoints"][0]["loss"]

    rows = curves([subset, whole])[dataset.metadata.name]
    assert [r["pairs"] for r in rows] == [40, None]  # the whole dataset last


def test_orderings_pool_training_set_sizes_for_the_loss_views_only():
    def rows(name, pairs, points):
        return [{"dataset": name, "pairs": pairs, "step": s, "seeds": 1, "loss_mean": loss,
                 "score_mean": score} for s, (loss, score) in zip((10, 1000), points)]
    # By steps alone the ranges do not overlap; the quality dataset's 256-pair students
    # reach the diverse dataset's loss, where they score below it.
    table = {"diverse": rows("diverse", None, [(1.0, 30), (0.5, 40)]),
             "quality": rows("quality", 256, [(1.2, 5), (0.8, 20)])
             + rows("quality", None, [(0.3, 35), (0.05, 80)])}
    order = orderings(table)
    assert order["high_loss"]["loss"] == 1.0 and order["low_loss"]["loss"] == 0.5
    assert [n for n, *_ in order["high_loss"]["ranking"]] == ["diverse", "quality"]
    assert order["last_step"]["ranking"][0][:2] == ["quality", 80]  # its whole-data run
    assert order["first_step"]["ranking"][0][:2] == ["quality", 35]
    assert orderings({"diverse": table["diverse"],
                      "quality": table["quality"][2:]})["high_loss"] is None


def test_the_loss_views_interpolate_each_seed_so_their_leaders_can_be_tested():
    def rows(name, points):  # points: per step, [(loss, score) of seed 0, of seed 1]
        return [{"dataset": name, "step": s, "seeds": 2, "scores": [p[0][1], p[1][1]],
                 "losses": [p[0][0], p[1][0]],
                 "loss_mean": float(np.mean([p[0][0], p[1][0]])),
                 "score_mean": float(np.mean([p[0][1], p[1][1]]))}
                for s, p in zip((10, 100), points)]
    table = {"a": rows("a", [[(1.0, 10), (1.0, 20)], [(0.25, 30), (0.5, 40)]]),
             "b": rows("b", [[(0.8, 0), (0.8, 0)], [(0.5, 50), (0.5, 70)]])}
    order = orderings(table)
    assert order["low_loss"]["loss"] == 0.5 and order["high_loss"]["loss"] == pytest.approx(0.8)
    a = next(item for item in order["low_loss"]["ranking"] if item[0] == "a")
    assert a[3] == pytest.approx([20, 40])  # seed 0 halfway in log loss from 1.0 to 0.25
    assert a[1] == pytest.approx(30) and a[2] == pytest.approx(10)
    assert order["low_loss"]["ranking"][0][:2] == ["b", 60]
    high = {item[0]: item[3] for item in order["high_loss"]["ranking"]}
    assert high["b"] == [0, 0]
    assert high["a"][1] == pytest.approx(20 + 20 * np.log(0.8) / np.log(0.5))


CLI_FAST = ["student.hidden_sizes=[16,16]", "misalignment.seeds=[0]",
            "misalignment.checkpoints=[2,4]", "misalignment.episodes=2",
            "misalignment.max_episode_steps=10", "misalignment.loss_samples=64",
            "metrics.samples=100"]


def test_cli_writes_tables_plot_and_orderings(tmp_path, capsys):
    files = [str(hopper_file(tmp_path, "a", 0)), str(hopper_file(tmp_path, "b", 1))]
    main([*files, *CLI_FAST, f"out={tmp_path / 'out'}"])
    out = tmp_path / "out"
    assert {p.name for p in out.iterdir()} == {
        "metrics.md", "metrics.csv", "misalignment.md", "misalignment.csv", "misalignment.png",
        "orderings.json", "misalignment"}
    metrics = (out / "metrics.csv").read_text().splitlines()
    assert len(metrics) == 3 and metrics[0].startswith("dataset,transitions,episodes,knn")
    assert len((out / "misalignment.csv").read_text().splitlines()) == 1 + 2 * 2
    order = json.loads((out / "orderings.json").read_text())
    assert len(order["last_step"]["ranking"]) == 2
    assert "at the lowest loss every curve reaches" in (out / "misalignment.md").read_text()
    assert "kNN distance" in capsys.readouterr().out


def test_bad_input_is_one_paragraph_and_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["local-hopper-medium", "parts=[metric]"])
    assert exit_info.value.code == 2
    assert "parts=['metric']: choose one or more of metrics, misalignment" in \
        capsys.readouterr().err
    data = str(hopper_file(tmp_path, "tiny", 0))
    main([data, "parts=[misalignment]", *CLI_FAST, f"out={tmp_path}"])
    with pytest.raises(SystemExit) as exit_info:  # same out, other checkpoints
        main([data, "parts=[misalignment]", *CLI_FAST, "misalignment.checkpoints=[3]",
              f"out={tmp_path}"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "seed0.json was made with settings" in err and "checkpoints" in err
    assert "choose another out= or delete the file" in err


def test_every_field_of_the_config_is_documented():
    from sdw.config import config_dir

    text = (config_dir() / "analyze.yaml").read_text().split("template: |-")[0]
    fields = [line for line in text.splitlines()[1:] if line.strip() and ":" in line]
    assert fields and all("#" in line for line in fields), [l for l in fields if "#" not in l]
