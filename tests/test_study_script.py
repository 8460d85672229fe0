"""scripts/study.sh commit: finished job directories are committed, a running one is not."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

STUDY = Path(__file__).resolve().parents[1] / "scripts" / "study.sh"
GIT = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
       "GIT_COMMITTER_EMAIL": "t@t"}


def test_commit_stage_commits_finished_jobs_only(tmp_path):
    (tmp_path / "scripts").mkdir()
    shutil.copy(STUDY, tmp_path / "scripts" / "study.sh")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    sweep = tmp_path / "results" / "sweeps" / "demo"
    for name, status in (("seed=0", "done"), ("seed=1", "failed"), ("seed=2", "running")):
        (sweep / name).mkdir(parents=True)
        (sweep / name / "status.json").write_text(json.dumps({"status": status}))
        (sweep / name / "run.log").write_text("log\n")
    (sweep / "multirun.yaml").write_text("hydra: {}\n")
    env = {**os.environ, **GIT}
    env.pop("SDW_OUTPUT_DIR", None)

    def commit() -> str:
        done = subprocess.run(["bash", "scripts/study.sh", "commit"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, check=True)
        return done.stdout

    assert "Study: finished job directories" in commit()
    tracked = subprocess.run(["git", "ls-files"], cwd=tmp_path, capture_output=True, text=True,
                             check=True).stdout.split()
    assert sorted(tracked) == ["results/sweeps/demo/multirun.yaml",
                               "results/sweeps/demo/seed=0/run.log",
                               "results/sweeps/demo/seed=0/status.json",
                               "results/sweeps/demo/seed=1/run.log",
                               "results/sweeps/demo/seed=1/status.json"]
    assert commit().strip() == "no newly finished job"
