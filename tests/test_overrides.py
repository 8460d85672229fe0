"""The up-front override check knows what Hydra knows: its own groups and plugins' options, the
user's config folders (`-cd`, `hydra.searchpath`), every sweep syntax, and still names typos."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from sdw.errors import UserError
from sdw.overrides import check_overrides


@pytest.fixture
def user_conf(tmp_path):
    """A user's own config folder with an experiment and a dataset option of their own."""
    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "mine.yaml").write_text(
        "# @package _global_\nouter_steps: 7\nseed: 3\n")
    (tmp_path / "dataset").mkdir()
    (tmp_path / "dataset" / "my-data.yaml").write_text(
        "_target_: sdw.data.source.DatasetConfig\npath: /data/mine.hdf5\nenv_id: Hopper-v4\n")
    return tmp_path


def test_hydra_groups_and_plugin_options_are_known():
    assert check_overrides("run", ["hydra/job_logging=disabled"]).outer_steps == 300
    assert check_overrides("run", ["hydra/sweeper=optuna", "hydra/launcher=submitit_local"])
    with pytest.raises(UserError) as e:
        check_overrides("run", ["hydra/launcher=jobib"])
    assert "Did you mean joblib?" in str(e.value)
    assert "Valid options: basic, joblib, packed, slurm, submitit_local, submitit_slurm." in str(e.value)
    assert check_overrides("run", ["hydra/launcher=packed", "hydra.launcher.size=3"])


def test_every_sweep_syntax_is_passed_and_checked_by_one_value():
    cfg = check_overrides("run", ["objective.beta=interval(0.01,0.1)", "seed=range(3)",
                                  "outer_optim.lr=tag(log, interval(0.001, 0.1))",
                                  "eval=glob(q*)", "synthetic.size=16,32"])
    assert (cfg.objective.beta, cfg.seed, cfg.eval.episodes, cfg.synthetic.size) == (0.01, 0, 2, 16)
    with pytest.raises(UserError, match="Did you mean objective.beta"):
        check_overrides("run", ["objective.bta=interval(0.01,0.1)"])


@pytest.mark.parametrize("how", ["config-dir", "searchpath"])
def test_a_users_own_config_folder_is_on_the_search_path(user_conf, how):
    overrides = ["experiment=mine", "dataset=my-data"]
    if how == "config-dir":
        cfg = check_overrides("run", overrides, config_dirs=[str(user_conf)])
    else:
        cfg = check_overrides("run", [f"hydra.searchpath=[file://{user_conf}]", *overrides])
    assert (cfg.outer_steps, cfg.seed, cfg.dataset.path) == (7, 3, "/data/mine.hdf5")
    with pytest.raises(UserError) as e:  # without the folder, the option is unknown, by name
        check_overrides("run", ["experiment=mine"])
    assert "experiment=mine: no such option in the config group experiment" in str(e.value)


def test_sdw_run_with_a_config_dir_composes_the_users_experiment(user_conf, tmp_path):
    env = {**os.environ, "SDW_OUTPUT_DIR": str(tmp_path / "out")}
    shown = subprocess.run([sys.executable, "-m", "sdw", "-cd", str(user_conf), "experiment=mine",
                            "--cfg", "job"], env=env, capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert "outer_steps: 7" in shown.stdout and "seed: 3" in shown.stdout
    typo = subprocess.run([sys.executable, "-m", "sdw", "-cd", str(user_conf), "experiment=mien",
                           "--cfg", "job"], env=env, capture_output=True, text=True, timeout=120)
    assert typo.returncode == 2 and "Did you mean mine or sdw-main?" in typo.stderr


def test_shell_completion_and_help_show_the_runs_own_groups():
    script = subprocess.run([sys.executable, "-m", "sdw", "-sc", "install=bash"],
                            capture_output=True, text=True, timeout=120)
    assert script.returncode == 0 and "hydra_bash_completion" in script.stdout
    helped = subprocess.run([sys.executable, "-m", "sdw", "--help"], capture_output=True,
                            text=True, timeout=120)
    groups = [line.split(":")[0] for line in helped.stdout.split("== Configuration groups ==")[1]
              .split("== Config ==")[0].splitlines() if ": " in line]
    assert "dataset" in groups and "hparams_search" in groups
    assert not any(g.startswith("collect") for g in groups)
