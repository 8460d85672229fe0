"""`sdw-data` end to end: example -> info (text and JSON) -> list; errors exit 2 with a message."""

import json
import subprocess
import sys

import numpy as np
import pytest
from data_files import known_arrays, write_hdf5

from sdw.data.cli import main
from sdw.data.scores import D4RL_REFERENCE_SCORES


def test_info_json_on_the_known_file(tmp_path, capsys):
    path = write_hdf5(tmp_path / "hopper_medium-v2.hdf5", known_arrays())
    assert main(["info", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["transitions"] == 10 and info["qlearning_transitions"] == 8
    assert info["episodes_complete"] == 3 and info["episodes_unfinished"] == 0
    assert (info["terminals"], info["timeouts"]) == (1, 2)
    assert info["return"]["mean"] == pytest.approx(15.0) and info["return"]["max"] == 24.0
    hopper = D4RL_REFERENCE_SCORES["hopper"]
    assert info["normalised_return"]["mean"] == pytest.approx(hopper.normalise(15.0))
    assert info["state_mean"][0] == pytest.approx(33 / 8, abs=1e-4)


def test_info_text_explains_missing_normalised_score(tmp_path, capsys):
    arrays = known_arrays()
    path = write_hdf5(tmp_path / "ant_medium-v2.hdf5", arrays)
    assert main(["info", str(path)]) == 2
    assert "does not start with one of" in capsys.readouterr().err


def test_list_marks_present_datasets(isolated_data_dirs, capsys):
    d4rl_dir, _ = isolated_data_dirs
    write_hdf5(d4rl_dir / "walker2d_medium-v2.hdf5", {
        **known_arrays(),
        "observations": np.zeros((10, 17), np.float32),
        "next_observations": np.zeros((10, 17), np.float32),
        "actions": np.zeros((10, 6), np.float32),
    })
    assert main(["list"]) == 0
    lines = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[1:]}
    assert lines["walker2d-medium-v2"][1:3] == ["d4rl", "yes"]
    assert lines["hopper-medium-v2"][1:3] == ["d4rl", "no"]
    assert lines["local-hopper-medium"][2] == "no"
    assert len(lines) == 39


def test_unknown_dataset_exits_2_with_suggestions(capsys):
    assert main(["info", "walker-medium-v2"]) == 2
    assert "Did you mean: walker2d-medium-v2" in capsys.readouterr().err


def test_console_script_example_then_info(tmp_path):
    out = tmp_path / "hopper_random-example.hdf5"
    run = [sys.executable, "-m", "sdw.data.cli"]
    subprocess.run(run + ["example", "--out", str(out), "--steps", "300"], check=True)
    info = json.loads(subprocess.run(run + ["info", str(out), "--json"], check=True,
                                     capture_output=True, text=True).stdout)
    assert info["transitions"] == 300 and info["env_id"] == "Hopper-v4"
    assert info["episodes_complete"] >= 1 and info["action_max"] <= 1.0
