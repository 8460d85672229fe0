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


def assert_one_paragraph_error(capsys, *fragments: str) -> str:
    """The CLI printed one error paragraph, no traceback, and it holds every fragment."""
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.startswith("sdw-data: error: ")
    assert err.strip().count("\n") == 0, err
    for fragment in fragments:
        assert fragment in err, err
    return err


def test_directory_given_as_the_hdf5_file(tmp_path, capsys):
    folder = tmp_path / "hopper_medium-v2.hdf5"
    folder.mkdir()
    write_hdf5(folder / "hopper_medium-v2.hdf5", known_arrays())
    assert main(["info", str(folder)]) == 2
    assert_one_paragraph_error(capsys, f"{folder} is a directory, not an HDF5 file",
                               "holds hopper_medium-v2.hdf5")


def test_debug_or_hydra_full_error_shows_the_traceback(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "hopper_medium-v2.hdf5"
    folder.mkdir()
    for argv in (["--debug", "info", str(folder)], ["info", str(folder), "--debug"], None):
        if argv is None:
            monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
            argv = ["info", str(folder)]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "Traceback" in err and "DatasetError" in err and "is a directory" in err


def test_example_with_zero_steps_is_refused_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "hopper_random-x.hdf5"
    with pytest.raises(SystemExit) as e:
        main(["example", "--out", str(out), "--steps", "0"])
    assert e.value.code == 2 and not out.exists()
    assert "--steps: must be at least 1, got 0" in capsys.readouterr().err


def test_example_name_without_env_asks_for_the_env_option(tmp_path, capsys, monkeypatch):
    out = tmp_path / "mydata.hdf5"
    assert main(["example", "--out", str(out), "--steps", "50"]) == 2
    assert_one_paragraph_error(capsys, "'mydata'", "--env Hopper-v4")
    assert not out.exists()
    assert main(["example", "--out", str(out), "--steps", "50", "--env", "Hopper-v4"]) == 0
    assert f"sdw-data info {out} --env Hopper-v4" in capsys.readouterr().out
    assert main(["info", str(out), "--env", "Hopper-v4", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["transitions"] == 50 and info["env_id"] == "Hopper-v4"


def test_example_unknown_env_is_named(tmp_path, capsys):
    assert main(["example", "--out", str(tmp_path / "x.hdf5"), "--env", "Hoppr-v4"]) == 2
    assert_one_paragraph_error(capsys, "'Hoppr-v4' cannot be created")


@pytest.mark.parametrize("where", ["under-a-file", "a-directory"])
def test_example_unwritable_out_fails_before_collecting(tmp_path, capsys, monkeypatch, where):
    def no_collection(*args, **kwargs):
        raise AssertionError("collected although the output cannot be written")

    monkeypatch.setattr("sdw.data.cli.collect_random_transitions", no_collection)
    blocker = tmp_path / "blocker"
    if where == "under-a-file":
        blocker.write_text("a file")
        out = blocker / "hopper_random-x.hdf5"
        expected = f"{blocker} is a file, not a directory"
    else:
        out = tmp_path / "hopper_random-x.hdf5"
        out.mkdir()
        expected = "it is a directory"
    assert main(["example", "--out", str(out)]) == 2
    assert_one_paragraph_error(capsys, f"cannot write the example dataset {out}", expected)


def test_info_on_an_absent_local_dataset_names_the_one_level_to_rebuild(isolated_data_dirs, capsys):
    assert main(["info", "local-walker2d-medium-replay"]) == 2
    assert "sdw-collect mode=rebuild env=walker2d build.levels=[medium-replay]" in capsys.readouterr().err
