"""Run directories that never return a stale or doubled result: the fingerprint (refusal, rerun,
extension), one writer per directory, Ctrl-C / SIGTERM as a clean stop, a damaged checkpoint,
and shared work (dataset build, reference) done once by parallel processes."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from run_cli import (TINY, cache_dir, data_file, run_dir, sdw_run,  # noqa: F401 (fixtures)
                     start_run, wait_for_steps)

from sdw.app.record import LOCK
from sdw.locks import exclusive


def metric_steps(job: Path, kind: str = "step") -> list[int]:
    return [json.loads(line)["step"] for line in (job / "metrics.jsonl").read_text().splitlines()
            if f'"type": "{kind}"' in line]


def test_a_config_edit_is_refused_before_any_work_then_rerun_on_request(data_file, cache_dir,
                                                                        tmp_path):
    # A fixed directory stands for an edited config file (conf/eval/quick.yaml, episodes: 2 -> 3):
    # the same directory, other settings.
    job = tmp_path / "job"
    args = [f"dataset.path={data_file}", "outer_steps=2", *TINY, f"hydra.run.dir={job}"]
    assert sdw_run(args, tmp_path, cache_dir).returncode == 0
    before = (job / "eval.json").read_bytes()
    assert json.loads(before)["standard"]["episodes"] == 2  # eval=quick: 2 episodes per student

    edited = [*args, "eval.episodes=3"]
    refused = sdw_run(edited, tmp_path, cache_dir)
    assert refused.returncode == 2, refused.stdout
    assert "eval.episodes: 2 -> 3" in refused.stdout and "rerun=true" in refused.stdout
    assert "Traceback" not in refused.stdout and "already done" not in refused.stdout
    assert (job / "eval.json").read_bytes() == before
    status = json.loads((job / "status.json").read_text())
    assert status["status"] == "done" and status["stale"]["keys"] == ["eval.episodes"]

    rerun = sdw_run([*edited, "rerun=true"], tmp_path, cache_dir)
    assert rerun.returncode == 0, rerun.stdout
    assert json.loads((job / "eval.json").read_text())["standard"]["episodes"] == 3
    assert metric_steps(job) == [1, 2]
    status = json.loads((job / "status.json").read_text())
    assert status["attempts"] == 1 and "stale" not in status
    assert status["config"]["eval.episodes"] == 3 and "threads" not in status["config"]

    # threads and progress do not change results: the finished run is found, not refused
    same = sdw_run([*edited, "threads=2", "progress=true"], tmp_path, cache_dir)
    assert same.returncode == 0 and "already done" in same.stdout


def test_a_longer_run_extends_the_finished_one_from_its_checkpoint(data_file, cache_dir,
                                                                   tmp_path):
    # A fixed directory stands for an experiment whose outer_steps is raised in its YAML file.
    whole, job = tmp_path / "whole", tmp_path / "grown"
    args = [f"dataset.path={data_file}", *TINY]
    assert sdw_run([*args, "outer_steps=6", f"hydra.run.dir={whole}"], tmp_path,
                   cache_dir).returncode == 0
    args.append(f"hydra.run.dir={job}")
    assert sdw_run([*args, "outer_steps=4"], tmp_path, cache_dir).returncode == 0
    grown = sdw_run([*args, "outer_steps=6"], tmp_path, cache_dir)
    assert grown.returncode == 0 and "extending the finished run" in grown.stdout
    assert metric_steps(job) == [1, 2, 3, 4, 5, 6] and metric_steps(job, "eval") == [2, 4, 6]
    assert (job / "synthetic.npz").read_bytes() != b""
    a, b = (json.loads((d / "eval.json").read_text()) for d in (whole, job))
    assert b["outer_steps"] == 6 and b["last_k"] == a["last_k"]

    shorter = sdw_run([*args, "outer_steps=3"], tmp_path, cache_dir)
    assert shorter.returncode == 2 and "finished 6 outer steps, not 3" in shorter.stdout


def test_a_second_launch_of_a_running_directory_is_refused_naming_the_holder(
        data_file, cache_dir, tmp_path):
    args = [f"dataset.path={data_file}", "outer_steps=2", *TINY]
    assert sdw_run(args, tmp_path, cache_dir).returncode == 0
    job = run_dir(tmp_path)
    metrics = (job / "metrics.jsonl").read_bytes()
    with exclusive(job / LOCK, wait=False):  # this test process is the live writer
        second = sdw_run([*args, "rerun=true"], tmp_path, cache_dir)
    assert second.returncode == 2, second.stdout
    assert f"process {os.getpid()} on host {socket.gethostname()}" in second.stdout
    assert (job / "metrics.jsonl").read_bytes() == metrics  # the second launch wrote nothing

    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from sdw.locks import exclusive\n"
        "with exclusive(sys.argv[1], wait=False):\n print('held', flush=True); time.sleep(600)"),
        str(job / LOCK)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    taken_over = sdw_run([*args, "rerun=true"], tmp_path, cache_dir)
    assert taken_over.returncode == 0, taken_over.stdout  # a killed holder's lock is free
    assert metric_steps(job) == [1, 2]


def test_two_launches_at_once_write_every_step_once(data_file, cache_dir, tmp_path):
    args = [f"dataset.path={data_file}", "outer_steps=1000", *TINY, "inner_optim.steps=60"]
    first = start_run(args, tmp_path, cache_dir)
    job = wait_for_steps(first, tmp_path, 1)
    second = sdw_run(args, tmp_path, cache_dir)
    assert second.returncode == 2 and f"is being run by process {first.pid}" in second.stdout
    first.send_signal(signal.SIGINT)
    assert first.wait(timeout=120) == 130
    steps = metric_steps(job)
    assert steps == list(range(1, len(steps) + 1))  # each step once, from the one writer


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_saves_a_checkpoint_and_exits_with_one_line(signum, code, data_file, cache_dir,
                                                             tmp_path):
    args = [f"dataset.path={data_file}", "outer_steps=40", *TINY, "checkpoint_every=1000",
            "inner_optim.steps=60"]
    process = start_run(args, tmp_path, cache_dir)
    job = wait_for_steps(process, tmp_path, 3)
    process.send_signal(signum)
    out, err = process.communicate(timeout=120)
    assert process.returncode == code, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    name = signal.Signals(signum).name
    (line,) = [x for x in err.splitlines() if x.startswith("interrupted by")]
    assert line.startswith(f"interrupted by {name} after outer step ") and "resume" in line
    stopped = int(line.split("after outer step ")[1].split(";")[0])
    status = json.loads((job / "status.json").read_text())
    assert status["status"] == "interrupted" and status["interrupted_at_step"] == stopped
    assert metric_steps(job) == list(range(1, stopped + 1))
    started = status["started"]

    time.sleep(1.1)  # `started` has whole seconds: a resumed attempt would show a later one
    resumed = sdw_run(args, tmp_path, cache_dir)
    assert resumed.returncode == 0, resumed.stdout
    assert f"resuming from {job / 'checkpoint.pt'} at outer step {stopped}" in resumed.stdout
    assert metric_steps(job) == list(range(1, 41))
    status = json.loads((job / "status.json").read_text())
    assert status["status"] == "done" and status["attempts"] == 2
    assert status["started"] == started and status["attempt_started"] > started


def test_a_damaged_checkpoint_is_set_aside_and_the_one_before_resumed(data_file, cache_dir,
                                                                      tmp_path):
    job = tmp_path / "job"
    args = [f"dataset.path={data_file}", *TINY, f"hydra.run.dir={job}"]
    assert sdw_run([*args, "outer_steps=4"], tmp_path, cache_dir).returncode == 0
    checkpoint = job / "checkpoint.pt"
    assert (job / "checkpoint.prev.pt").exists()  # the step-2 checkpoint, kept by the step-4 one
    checkpoint.write_bytes(checkpoint.read_bytes()[: checkpoint.stat().st_size // 2])
    grown = sdw_run([*args, "outer_steps=6"], tmp_path, cache_dir)
    assert grown.returncode == 0, grown.stdout
    assert "Traceback" not in grown.stdout
    assert f"checkpoint {checkpoint} cannot be read" in grown.stdout
    assert "resuming from the one before it (outer step 2)" in grown.stdout
    assert (job / "checkpoint.pt.damaged").exists()
    assert metric_steps(job) == [1, 2, 3, 4, 5, 6]

    for name in ("checkpoint.pt", "checkpoint.prev.pt"):
        (job / name).write_bytes(b"not a checkpoint")
    again = sdw_run([*args, "outer_steps=8"], tmp_path, cache_dir)
    assert again.returncode == 0, again.stdout
    assert "no earlier checkpoint reads: the distillation starts afresh" in again.stdout
    assert metric_steps(job) == list(range(1, 9))


def _cached_in_process(cache: str, counter: str, barrier) -> None:
    from sdw.evaluate.references import _cached

    def compute() -> dict:
        with open(counter, "a") as f:
            f.write("computed\n")
        time.sleep(1.0)
        return {"normalised_mean": 1.0}

    barrier.wait()
    assert _cached(cache, "whole_data_bc", {"dataset": "x"}, compute) == {"normalised_mean": 1.0}


def run_side_by_side(target, *args) -> list[int | None]:
    """`target(*args, barrier)` in two fresh processes released at once; their exit codes."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    workers = [context.Process(target=target, args=(*args, barrier)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    return [w.exitcode for w in workers]


def test_parallel_jobs_compute_a_shared_reference_once(tmp_path):
    counter = tmp_path / "computed.txt"
    assert run_side_by_side(_cached_in_process, str(tmp_path / "refs"), str(counter)) == [0, 0]
    assert counter.read_text() == "computed\n"


def _build_in_process(minari: str, counter: str, barrier) -> None:
    os.environ["MINARI_DATASETS_PATH"] = minari
    from sdw.collect import rebuild
    from sdw.data.minari_source import BUILD_RECORD, minari_data_path, minari_root
    from sdw.data.source import DatasetConfig

    def fake_rebuild(dataset_id: str) -> None:
        """What `is_present` looks for: Minari's metadata and sdw's build record."""
        with open(counter, "a") as f:
            f.write(f"built {dataset_id}\n")
        time.sleep(1.0)
        minari_data_path(dataset_id).mkdir(parents=True)
        (minari_data_path(dataset_id) / "metadata.json").write_text("{}")
        (minari_root() / dataset_id / BUILD_RECORD).write_text("{}")

    rebuild.rebuild_local = fake_rebuild
    barrier.wait()
    try:
        rebuild.load_or_build(DatasetConfig(name="sdw/hopper/medium-v0"))
    except Exception:  # the fake build writes no episodes: loading them fails, after the build
        pass


def test_parallel_jobs_wait_for_one_dataset_build(tmp_path):
    counter = tmp_path / "built.txt"
    assert run_side_by_side(_build_in_process, str(tmp_path / "minari"), str(counter)) == [0, 0]
    assert counter.read_text() == "built sdw/hopper/medium-v0\n"  # the second one waited
