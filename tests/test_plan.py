"""`sdw-run --dry-run`: every value checked as the run checks it, nothing written, each job of a
sweep listed with its state and a cost from measured step times; evaluation settings that do not
fit `outer_steps` warned about."""

from __future__ import annotations

import json

import yaml

from run_cli import TINY, cache_dir, data_file, sdw_run  # noqa: F401 (fixtures)

from sdw.app.record import LOCK
from sdw.locks import exclusive


def tree(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def test_a_bad_value_fails_before_hydra_makes_a_directory(tmp_path, cache_dir):
    for flags in (["--cfg", "job"], ["--dry-run"], []):
        result = sdw_run([*flags, "eval=quick", "outer_steps=abc"], tmp_path, cache_dir)
        assert result.returncode == 2, result.stdout
        assert "outer_steps='abc' must be an integer" in result.stdout
    assert tree(tmp_path / "runs") == []


def test_the_plan_lists_each_job_with_its_state_and_cost(data_file, cache_dir, tmp_path):
    sweep = ["-m", f"dataset.path={data_file}", "outer_steps=2", *TINY, "name=plan",
             "weighting=none", "hydra/launcher=basic"]
    assert sdw_run([*sweep, "objective=dbc,avpbc,pbc", "seed=0,1"], tmp_path,
                   cache_dir).returncode == 0
    by = {}  # (objective, seed) -> job directory (long names are cut, so read each job's overrides)
    for job in (tmp_path / "sweeps" / "plan").iterdir():
        if (job / ".hydra").is_dir():
            overrides = dict(o.split("=", 1) for o in
                             yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text()))
            by[overrides["objective"], int(overrides["seed"])] = job
    assert len(by) == 6
    stale = json.loads((by["pbc", 0] / "status.json").read_text())
    stale["config"]["eval.episodes"] = 7  # as if run with another eval config file
    (by["pbc", 0] / "status.json").write_text(json.dumps(stale))
    partial = json.loads((by["pbc", 1] / "status.json").read_text())
    partial["status"] = "interrupted"
    (by["pbc", 1] / "status.json").write_text(json.dumps(partial))
    (by["pbc", 1] / "eval.json").unlink()
    rows = (by["pbc", 1] / "metrics.jsonl").read_text().splitlines()
    (by["pbc", 1] / "metrics.jsonl").write_text(rows[0] + "\n")  # the first step's row only
    before = tree(tmp_path)

    with exclusive(by["avpbc", 1] / LOCK, wait=False):
        running = json.loads((by["avpbc", 1] / "status.json").read_text())
        (by["avpbc", 1] / "status.json").write_text(json.dumps({**running, "status": "running"}))
        shown = sdw_run(["--dry-run", *sweep, "objective=dbc,avpbc,pbc", "seed=0,1,2"], tmp_path,
                        cache_dir)
    assert shown.returncode == 0, shown.stdout
    assert tree(tmp_path) == before  # nothing made, nothing changed
    lines = {line.split()[1]: line for line in shown.stdout.splitlines()
             if line.split() and line.split()[0] in ("new", "done", "partial", "stale", "running")}
    assert lines[str(by["dbc", 0])].startswith("done")
    assert lines[str(by["avpbc", 1])].startswith("running")
    assert lines[str(by["pbc", 0])].startswith("stale") and "eval.episodes" in lines[str(by["pbc", 0])]
    assert lines[str(by["pbc", 1])].startswith("partial") and "step 1 of 2" in lines[str(by["pbc", 1])]
    assert sum(line.startswith("new") for line in lines.values()) == 3  # the seed-2 jobs
    assert "9 job(s): 3 done, 3 new, 1 partial, 1 running, 1 stale" in shown.stdout
    assert "s per outer step" in shown.stdout and "job-hours" in shown.stdout


def test_evaluation_settings_that_do_not_fit_the_run_are_warned_about(tmp_path, cache_dir):
    shown = sdw_run(["--dry-run", "experiment=sdw-main-local", "outer_steps=10"], tmp_path,
                    cache_dir)
    assert shown.returncode == 0, shown.stdout
    assert "54 job(s): 54 new" in shown.stdout
    assert "warning: eval.every=50 is more than outer_steps=10" in shown.stdout
    assert "warning: eval.last_k=2 but outer_steps=10 gives 1 evaluation(s)" in shown.stdout
    assert tree(tmp_path / "sweeps") == []
