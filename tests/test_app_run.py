"""`sdw-run` end to end on a tiny real Hopper-v4 dataset: run directory, skip and resume (also
after SIGKILL, bit for bit, shown as interrupted meanwhile), named errors, a joblib sweep read back by `sdw-report`."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from run_cli import (TINY, cache_dir, data_file, run_dir, sdw_run,  # noqa: F401 (fixtures)
                     start_run, wait_for_steps)

from sdw.distill import SyntheticSet
from sdw.report.collect import run_status


def test_a_run_writes_its_directory_and_a_rerun_skips_it(data_file, cache_dir, tmp_path):
    args = [f"dataset.path={data_file}", "outer_steps=4", *TINY]
    done = sdw_run(args, tmp_path, cache_dir)
    assert done.returncode == 0, done.stdout
    job = run_dir(tmp_path)
    assert "dataset.path=" in job.name and "/" not in job.name.split("dataset.path=")[1]
    status = json.loads((job / "status.json").read_text())
    assert status["status"] == "done" and status["method"] == "SDW-knn"
    assert status["dataset"]["name"] == "hopper-random-tiny"
    assert status["teacher"]["normalised"] is not None and 0 < status["weights"]["ess_fraction"] <= 1
    assert {"dataset", "teacher", "weights", "distill", "evaluate", "total"} <= set(status["timings"])
    rows = [json.loads(line) for line in (job / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["type"] == "step"] == [1, 2, 3, 4]
    assert [r["step"] for r in rows if r["type"] == "eval"] == [2, 4]
    evaluation = json.loads((job / "eval.json").read_text())
    assert evaluation["env_id"] == "Hopper-v4" and evaluation["last_k"]["steps"] == [2, 4]
    assert len(evaluation["standard"]["per_student"]) == 2
    assert set(evaluation["references"]) == {"random_subset", "whole_data_bc", "teacher"}
    synthetic = SyntheticSet.load(job / "synthetic.npz")
    assert len(synthetic) == 16 and synthetic.config["outer_optim"]["name"] == "adam"
    assert (job / "weights.png").stat().st_size > 0 and (job / "run.log").exists()

    finished = {name: (job / name).read_bytes() for name in ("run.log", "metrics.jsonl")}
    again = sdw_run(args, tmp_path, cache_dir)
    assert again.returncode == 0 and "already done" in again.stdout
    assert {name: (job / name).read_bytes() for name in finished} == finished


def test_references_go_to_their_own_folder_and_a_run_elsewhere_reads_them(data_file, tmp_path):
    refs = tmp_path / "kept-references"
    args = [f"dataset.path={data_file}", "outer_steps=2", *TINY, f"paths.references_dir={refs}"]
    first = sdw_run(args, tmp_path / "a", tmp_path / "cache-a")
    assert first.returncode == 0, first.stdout
    assert sorted(p.name.split("-")[0] for p in refs.glob("*.json")) == [
        "random_subset", "teacher", "whole_data_bc"]
    assert not (tmp_path / "cache-a" / "references").exists()
    other = sdw_run(args, tmp_path / "b", tmp_path / "cache-b")  # another machine's cache
    assert other.returncode == 0, other.stdout
    assert other.stdout.count("from cache") >= 3
    scores = [json.loads((run_dir(out) / "eval.json").read_text())["references"]
              for out in (tmp_path / "a", tmp_path / "b")]
    assert scores[0] == scores[1]


def test_a_run_killed_at_any_point_resumes_to_the_same_bits(data_file, cache_dir, tmp_path):
    args = [f"dataset.path={data_file}", "outer_steps=12", *TINY, "inner_optim.steps=60"]
    whole = sdw_run(args, tmp_path / "whole", cache_dir)
    assert whole.returncode == 0, whole.stdout
    process = start_run(args, tmp_path / "killed", cache_dir)
    killed_dir = wait_for_steps(process, tmp_path / "killed", 5)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    metrics = killed_dir / "metrics.jsonl"
    status = json.loads((killed_dir / "status.json").read_text())
    assert status["status"] == "running" and status["pid"] == process.pid
    assert run_status(killed_dir, status) == "interrupted"  # what sdw-report shows: no live holder
    assert not (killed_dir / "eval.json").exists()

    resumed = sdw_run(args, tmp_path / "killed", cache_dir)
    assert resumed.returncode == 0, resumed.stdout
    assert "resuming from" in resumed.stdout
    a = SyntheticSet.load(run_dir(tmp_path / "whole") / "synthetic.npz")
    b = SyntheticSet.load(killed_dir / "synthetic.npz")
    assert np.array_equal(a.states, b.states) and np.array_equal(a.actions, b.actions)
    steps = [json.loads(line)["step"] for line in metrics.read_text().splitlines()
             if '"type": "step"' in line]
    assert steps == list(range(1, 13))
    status = json.loads((killed_dir / "status.json").read_text())
    assert status["status"] == "done" and status["attempts"] == 2


@pytest.mark.parametrize("override, expected", [
    ("dataset=local-hoper-medium", "Did you mean local-hopper-medium"),
    ("outer_step=3", "Did you mean outer_steps"),
    ("outer_optim.lrr=0.1", "Did you mean outer_optim.lr"),
    ("seed=abc", "seed='abc' must be an integer"),
    ("outer_optim.name=rmsprop", "outer_optim.name='rmsprop' is not one of"),
])
def test_bad_input_is_one_named_paragraph_and_exit_2(override, expected, data_file, cache_dir,
                                                      tmp_path):
    result = sdw_run([f"dataset.path={data_file}", override, *TINY], tmp_path, cache_dir)
    assert result.returncode == 2, result.stdout
    assert expected in result.stdout and "Traceback" not in result.stdout


def test_a_joblib_sweep_keeps_going_past_a_failed_job_and_reports_it(data_file, cache_dir,
                                                                     tmp_path):
    sweep = sdw_run(["-m", f"dataset.path={data_file}", "outer_steps=2", *TINY, "name=mini",
                     "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "logger=wandb", "weighting=none",
                     "objective=dbc,avpbc", "synthetic.size=16,5000"], tmp_path, cache_dir)
    assert sweep.returncode == 0, sweep.stdout
    # side-by-side jobs draw no progress bars over each other (their log lines say how far they are)
    assert "step/s" not in sweep.stdout and "it/s" not in sweep.stdout
    jobs = sorted(p.parent.parent for p in (tmp_path / "sweeps" / "mini").glob("*/.hydra/config.yaml"))
    assert len(jobs) == 4
    states = {j.name: json.loads((j / "status.json").read_text())["status"] for j in jobs}
    assert sorted(states.values()) == ["done", "done", "failed", "failed"]
    wandb_ids = {p.name.rsplit("-", 1)[1] for j in jobs for p in (j / "wandb").glob("offline-run-*")}
    assert len(wandb_ids) == 4  # one wandb run per job, never mixed
    for job in jobs:  # a finished job's wandb run has its learning curve (with the references)
        curves = list(job.glob("wandb/offline-run-*/files/media/images/eval/curve_*.png"))
        assert len(curves) == (states[job.name] == "done"), job

    report = subprocess.run([sys.executable, "-m", "sdw.report.cli", str(tmp_path / "sweeps" / "mini")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            timeout=300, cwd=tmp_path)
    assert report.returncode == 0, report.stdout
    table = (tmp_path / "sweeps" / "mini" / "report" / "table.md").read_text()
    assert "DBC" in table and "Av-PBC" in table and "hopper-random-tiny" in table
    assert table.count("exceeds the 1999 real pairs") == 2  # both failed jobs, with the cause


def test_submitit_local_runs_a_sweep_job_like_slurm_would(data_file, cache_dir, tmp_path):
    sweep = sdw_run(["-m", f"dataset.path={data_file}", "outer_steps=2", *TINY, "name=slurmish",
                     "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10",
                     "weighting=none", "objective=dbc"], tmp_path, cache_dir)
    assert sweep.returncode == 0, sweep.stdout
    (job,) = [p.parent.parent for p in (tmp_path / "sweeps" / "slurmish").glob("*/.hydra/config.yaml")]
    assert json.loads((job / "status.json").read_text())["status"] == "done"
    assert json.loads((job / "eval.json").read_text())["method"] == "DBC"


def test_the_override_check_knows_mandatory_keys_and_names_typos():
    from sdw.errors import UserError
    from sdw.overrides import check_overrides

    assert check_overrides("run", ["teacher=corl", "teacher.path=x.pt"]).teacher.path == "x.pt"
    with pytest.raises(UserError, match="teacher.path must be set"):
        check_overrides("run", ["teacher=corl"])
    with pytest.raises(UserError, match="Did you mean teacher.path"):
        check_overrides("run", ["teacher=corl", "teacher.pth=x.pt"])
    with pytest.raises(UserError, match="teacher.steps='abc' is not a valid int for TD3BCConfig"):
        check_overrides("run", ["teacher.steps=abc"])
    with pytest.raises(UserError, match="density.k=3.5 is not a valid int for KNNDensity.k"):
        check_overrides("run", ["density.k=3.5"])
    assert check_overrides("run", ["teacher.max_action=null", "outer_optim.lr=1"]).outer_optim.lr == 1
    sweep = check_overrides("run", ["objective=dbc,pbc", "seed=range(3)"])
    assert (sweep.objective.name, sweep.seed) == ("dbc", 0)  # a sweep is checked by its first value


QUICK_EVAL = ["eval.every=2", "eval.students=1", "eval.episodes=1", "eval.last_k=1",
              "eval.bc_steps=20", "eval.bc_batch_size=64", "eval.max_episode_steps=20"]
"""conf/eval/quick.yaml's sizes on top of another protocol (TINY without `eval=quick`)."""


@pytest.mark.parametrize("protocol, extra, table, rows", [
    ("ensemble", ["eval.ensemble=2"], "ensemble_table.md",
     ["Av-PBC: one student", "Av-PBC: ensemble of 2"]),
    ("cross_arch", ["eval.cross_steps=3"], "cross_table.md",
     ["Av-PBC: as distilled", "Av-PBC: official_mlp2", "Av-PBC: official_resmlp",
      "Av-PBC: sgdm optimiser"]),
])
def test_a_tiny_protocol_sweep_gives_its_papers_table_from_one_report(
        protocol, extra, table, rows, data_file, cache_dir, tmp_path):
    tiny = [arg for arg in TINY if arg != "eval=quick"]
    sweep = sdw_run(["-m", f"dataset.path={data_file}", "outer_steps=2", *tiny, f"name={protocol}",
                     f"eval={protocol}", *QUICK_EVAL, *extra, "objective=avpbc",
                     "weighting=none", "seed=0,1"], tmp_path, cache_dir)
    assert sweep.returncode == 0, sweep.stdout
    root = tmp_path / "sweeps" / protocol
    report = subprocess.run([sys.executable, "-m", "sdw.report.cli", str(root)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            timeout=300, cwd=tmp_path)
    assert report.returncode == 0, report.stdout
    lines = (root / "report" / table).read_text().split("\n\n")[0].splitlines()[2:]
    cells = {line.strip("|").split("|")[0].strip(): line.strip("|").split("|")[1].strip()
             for line in lines}
    assert set(rows) <= set(cells), cells
    for row in rows:  # both seeds in every protocol's cell
        assert cells[row].endswith("(2)"), (row, cells[row])
    results = [json.loads(p.read_text()) for p in root.glob("*/eval.json")]
    expected = (sum(r["ensemble"]["normalised_mean"] for r in results) / 2 if protocol == "ensemble"
                else sum(r["cross_architecture"]["official_mlp2"]["normalised_mean"]
                         for r in results) / 2)
    assert cells[rows[1]].startswith(f"{expected:.1f} ± ")


def test_capture_video_puts_the_pictures_in_the_run_dir_and_the_report(data_file, cache_dir,
                                                                      tmp_path):
    import imageio.v3 as iio

    result = sdw_run([f"dataset.path={data_file}", "outer_steps=2", *TINY, "name=pictures",
                      "capture_video=true"], tmp_path, cache_dir)
    assert result.returncode == 0, result.stdout
    job = run_dir(tmp_path, "pictures")
    assert iio.imread(job / "poses.png").shape == (96, 16 * 96, 3)  # 16 synthetic states
    assert iio.imread(job / "rollout.gif").shape[1:] == (240, 480, 3)  # student | teacher
    assert "pictures" in json.loads((job / "status.json").read_text())["timings"]
    report = subprocess.run([sys.executable, "-m", "sdw.report.cli", str(job), "out=report"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            timeout=300, cwd=tmp_path)
    assert report.returncode == 0, report.stdout
    page = (tmp_path / "report" / "report.md").read_text()
    assert "## Pictures" in page
    assert f"![poses](<{Path('..') / job.relative_to(tmp_path) / 'poses.png'}>)" in page
