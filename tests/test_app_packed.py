"""Packed sweeps (`hydra/launcher=packed`): a sweep cell's seeds in one process through the
batched engine, each with the run directory and table its own job gives."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from run_cli import TINY, cache_dir, data_file, sdw_run  # noqa: F401 (fixtures)

from sdw.app.launcher import groups
from sdw.distill import SyntheticSet


def test_groups_are_a_cells_seeds_in_sweep_order_up_to_the_size():
    jobs = [["objective=dbc", f"seed={s}"] for s in range(3)] + [["objective=pbc", "seed=0"]]
    assert groups(jobs, 5) == [[0, 1, 2], [3]]
    assert groups(jobs, 2) == [[0, 1], [2], [3]]


def _files(job):
    return sorted(p.name for p in job.iterdir() if p.name not in ("run.log",))


def test_a_packed_three_seed_sweep_gives_the_table_of_the_seeds_run_one_by_one(
        data_file, cache_dir, tmp_path):
    common = ["-m", f"dataset.path={data_file}", "outer_steps=3", *TINY, "weighting=none",
              "objective=avpbc", "seed=0,1,2"]
    one_by_one = sdw_run([*common, "name=seq"], tmp_path, cache_dir)
    assert one_by_one.returncode == 0, one_by_one.stdout
    packed = sdw_run([*common, "name=packed", "hydra/launcher=packed"], tmp_path, cache_dir)
    assert packed.returncode == 0, packed.stdout
    assert "packed into 1 processes" in packed.stdout
    seq, pac = tmp_path / "sweeps" / "seq", tmp_path / "sweeps" / "packed"
    names = sorted(p.name for p in seq.iterdir() if p.is_dir())
    assert names == sorted(p.name for p in pac.iterdir() if p.is_dir()) and len(names) == 3
    for name in names:
        a, b = seq / name, pac / name
        assert _files(a) == _files(b)
        assert json.loads((b / "status.json").read_text())["status"] == "done"
        x, y = SyntheticSet.load(a / "synthetic.npz"), SyntheticSet.load(b / "synthetic.npz")
        assert x.config == y.config
        # equal up to the rounding of batched products (bit for bit at these tiny sizes)
        assert np.abs(x.states - y.states).max() <= 1e-4 * np.abs(x.states).max()
        score = [json.loads((d / "eval.json").read_text())["last_k"]["normalised_mean"]
                 for d in (a, b)]
        assert score[1] == pytest.approx(score[0], abs=0.05)
        assert "outer step 3" in (b / "run.log").read_text()
    tables = []
    for root in (seq, pac):
        report = subprocess.run([sys.executable, "-m", "sdw.report.cli", str(root), "out=report"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                timeout=300, cwd=root)
        assert report.returncode == 0, report.stdout
        tables.append((root / "report" / "table.md").read_text())
    assert tables[0] == tables[1] and "Av-PBC" in tables[0]
    again = sdw_run([*common, "name=packed", "hydra/launcher=packed"], tmp_path, cache_dir)
    assert again.returncode == 0 and again.stdout.count("already done") == 3


def test_a_pack_runs_as_one_submitit_job_as_on_slurm(data_file, cache_dir, tmp_path):
    sweep = sdw_run(["-m", f"dataset.path={data_file}", "outer_steps=2", *TINY, "name=packjob",
                     "weighting=none", "objective=dbc", "seed=0,1", "hydra/launcher=packed",
                     "hydra.launcher.executor=local", "hydra.launcher.submitit.timeout_min=10",
                     "hydra.launcher.submitit.gpus_per_node=0"], tmp_path, cache_dir)
    assert sweep.returncode == 0, sweep.stdout
    root = tmp_path / "sweeps" / "packjob"
    jobs = sorted(p.parent.parent for p in root.glob("*/.hydra/config.yaml"))
    seeds = sorted(json.loads((j / "eval.json").read_text())["seed"] for j in jobs)
    assert seeds == [0, 1]
    pids = {json.loads((j / "status.json").read_text())["pid"] for j in jobs}
    assert len(pids) == 1  # one process ran both seeds
    assert all(json.loads((j / "status.json").read_text())["status"] == "done" for j in jobs)
    assert len(list((root / ".submitit").glob("*_result.pkl"))) == 1
