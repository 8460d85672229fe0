"""`sdw-report` on sweep directories the tests write by the run-directory contract
(docs/report.md): exact table cells, listed failed and missing jobs, runs.csv, PNGs, LaTeX,
and the steps-to-score table on known curves."""

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sdw.app.record import LOCK
from sdw.hydra_app import split_argv
from sdw.locks import exclusive
from sdw.report.cli import main
from sdw.testing import run_dirs
from sdw.testing.run_dirs import PNG_MAGIC

HOPPER, WALKER = "local-hopper-medium", "local-walker2d-medium"
METHODS = {"Av-PBC": ("avpbc", "none"), "SDW (knn)": ("avpbc", "tempered")}
# Table score (eval.json last_k.normalised_mean) of every done job; None: the job did not finish.
SCORES = {("Av-PBC", HOPPER, 0): 20.0, ("Av-PBC", HOPPER, 1): 30.0,
          ("Av-PBC", WALKER, 0): 40.0, ("Av-PBC", WALKER, 1): None,  # failed
          ("SDW (knn)", HOPPER, 0): 24.0, ("SDW (knn)", HOPPER, 1): 28.0,
          ("SDW (knn)", WALKER, 0): 50.0, ("SDW (knn)", WALKER, 1): None}  # running, no eval.json
RANDOM_SUBSET = {(HOPPER, 0): 10.0, (HOPPER, 1): 12.0, (WALKER, 0): 5.0, (WALKER, 1): 6.0}
WHOLE_DATA_BC = {HOPPER: 45.0, WALKER: 60.0}
TEACHER = {HOPPER: 52.5, WALKER: 70.0}
ESS = {(HOPPER, 0): 0.2, (HOPPER, 1): 0.4, (WALKER, 0): 0.3, (WALKER, 1): 0.35}
FAILED_ERROR = "RuntimeError: boom at outer step 60"


def write_job(job: Path, *, method: str, dataset: str, seed: int, **kwargs) -> Path:
    """One job of this file's sweeps, with its method's objective and weighting and the
    references above."""
    objective, weighting = METHODS.get(method, ("avpbc", "none"))
    references = {"random_subset": RANDOM_SUBSET.get((dataset, seed), 0.0),
                  "whole_data_bc": WHOLE_DATA_BC[dataset], "teacher": TEACHER[dataset]}
    return run_dirs.write_job(job, method=method, dataset=dataset, seed=seed, objective=objective,
                              weighting=weighting, references=references, **kwargs)


def job_name(method: str, dataset: str, seed: int) -> str:
    objective, weighting = METHODS[method]
    return f"dataset={dataset},objective={objective},seed={seed},weighting={weighting}"


def write_sweep(root: Path) -> Path:
    """2 datasets x 2 methods x 2 seeds: one job failed, one still running without eval.json."""
    for (method, dataset, seed), score in SCORES.items():
        sdw = method.startswith("SDW")
        if score is not None:
            curve = [(0, 0.0, 5.0), (50, 25.0 + seed, score - 2), (100, 50.0 + seed, score + 2)]
            status, error = "done", None
        elif method == "Av-PBC":
            curve, status, error = [(0, 0.0, 5.0), (50, 25.0, 7.0)], "failed", FAILED_ERROR
        else:
            curve, status, error = [(0, 0.0, 5.0)], "running", None
        write_job(root / job_name(method, dataset, seed), method=method, dataset=dataset,
                  seed=seed, status=status, error=error, curve=curve, score=score,
                  ess=ESS[(dataset, seed)] if sdw else None)
    (root / "multirun.yaml").write_text("hydra: {}\n")
    return root


@pytest.fixture
def sweep(tmp_path):
    return write_sweep(tmp_path / "sweeps" / "sdw-main")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """The CLI run once on the sweep from an empty working directory: (out dir, working dir)."""
    sweep = write_sweep(tmp_path_factory.mktemp("report") / "sweeps" / "sdw-main")
    cwd = tmp_path_factory.mktemp("cwd")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(cwd)
        main([str(sweep)])
    return sweep / "report", cwd


def table_lines(path: Path) -> dict[str, list[str]]:
    """Markdown table rows by their first cell (emphasis stripped)."""
    rows = {}
    for line in path.read_text().split("\n\n")[0].splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0].strip("*")] = cells[1:]
    return rows


def test_table_cells_are_mean_std_n_over_seeds(report):
    out, _ = report
    rows = table_lines(out / "table.md")
    header = (out / "table.md").read_text().splitlines()[0]
    assert header == f"| method | {HOPPER} | {WALKER} | Average | ESS/N |"
    assert rows["Av-PBC"] == ["25.0 ± 5.0 (2)", "40.0 ± 0.0 (1)", "32.5", ""]
    assert rows["SDW (knn)"] == ["26.0 ± 2.0 (2)", "50.0 ± 0.0 (1)", "38.0",
                                 "0.300 (0.200–0.400)"]
    # references: the students of each distinct result (3 each here), a result shared by seeds once
    assert rows["Random subset"] == ["11.0 ± 1.0 (6 students)", "5.0 ± 0.0 (3 students)", "8.0",
                                     ""]
    assert rows["BC (whole data)"] == ["45.0 ± 0.0 (3 students)", "60.0 ± 0.0 (3 students)",
                                       "52.5", ""]
    assert rows["Teacher"] == ["52.5 ± 0.0 (3 episodes)", "70.0 ± 0.0 (3 episodes)", "61.2", ""]
    assert list(rows) == ["Av-PBC", "SDW (knn)", "Random subset", "BC (whole data)", "Teacher"]


def test_failed_and_unfinished_jobs_are_listed_with_dirs_and_errors(report):
    out, _ = report
    sweep = out.parent
    text = (out / "table.md").read_text()
    assert "### Failed and missing jobs (2)" in text
    failed = sweep / job_name("Av-PBC", WALKER, 1)
    running = sweep / job_name("SDW (knn)", WALKER, 1)
    assert f"| Av-PBC | {WALKER} | 1 | failed | {failed} | {FAILED_ERROR} |" in text
    # status.json says running, but no process holds the job's lock: it is shown as interrupted
    assert (f"| SDW (knn) | {WALKER} | 1 | interrupted | {running} | process 4242 on node7 is "
            "gone (last heartbeat 2026-11-30T18:05:00+00:00) |") in text
    assert (out / "report.md").read_text().count(FAILED_ERROR) == 1


def test_a_running_job_is_running_only_while_its_process_holds_the_lock(sweep, tmp_path):
    running = sweep / job_name("SDW (knn)", WALKER, 1)
    with exclusive(running / LOCK, wait=False):
        main([str(sweep), f"out={tmp_path / 'out'}"])
    assert f"| SDW (knn) | {WALKER} | 1 | running | {running} |  |" in (
        tmp_path / "out" / "table.md").read_text()


def test_a_finished_job_found_stale_is_listed_as_stale(sweep, tmp_path):
    job = sweep / job_name("Av-PBC", HOPPER, 0)
    status = json.loads((job / "status.json").read_text())
    status["stale"] = {"keys": ["eval.episodes"], "checked": "2026-12-02T10:00:00+00:00"}
    (job / "status.json").write_text(json.dumps(status))
    main([str(sweep), f"out={tmp_path / 'out'}"])
    text = (tmp_path / "out" / "table.md").read_text()
    assert (f"| Av-PBC | {HOPPER} | 0 | stale | {job} | other settings were launched here: "
            "eval.episodes |") in text


def test_a_seed_without_any_job_directory_is_listed(sweep, tmp_path):
    shutil.rmtree(sweep / job_name("SDW (knn)", HOPPER, 1))
    main([str(sweep), f"out={tmp_path / 'out'}"])
    text = (tmp_path / "out" / "table.md").read_text()
    assert table_lines(tmp_path / "out" / "table.md")["SDW (knn)"][0] == "24.0 ± 0.0 (1)"
    assert f"| SDW (knn) | {HOPPER} | 1 | no job directory | — |" in text
    assert "### Failed and missing jobs (3)" in text


def test_runs_csv_has_one_row_per_job(report):
    out, _ = report
    with open(out / "runs.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8
    by_dir = {Path(r["run_dir"]).name: r for r in rows}
    done = by_dir[job_name("SDW (knn)", HOPPER, 1)]
    assert (done["status"], done["method"], done["dataset"], done["seed"]) == (
        "done", "SDW (knn)", HOPPER, "1")
    assert float(done["score"]) == 28.0 and float(done["score_final"]) == 29.0
    assert float(done["ref_random_subset"]) == 12.0 and float(done["ref_teacher"]) == 52.5
    assert float(done["ess_fraction"]) == 0.4 and float(done["time_distill"]) == 50.0
    assert (done["weighting"], done["outer_optim"], done["dataset_choice"]) == (
        "tempered", "paper", HOPPER)
    assert done["overrides"] == f"dataset={HOPPER} weighting=tempered seed=1"
    assert (done["last_step"], done["last_eval_step"]) == ("100", "100")
    assert "hydra/launcher" not in done
    failed = by_dir[job_name("Av-PBC", WALKER, 1)]
    assert (failed["status"], failed["error"], failed["score"]) == ("failed", FAILED_ERROR, "")
    assert failed["last_eval_step"] == "50"
    running = by_dir[job_name("SDW (knn)", WALKER, 1)]
    assert (running["status"], running["score"], running["ref_teacher"]) == (
        "interrupted", "", "70.0")  # no live process holds its lock
    assert sorted(r["status"] for r in rows) == ["done"] * 6 + ["failed", "interrupted"]


def test_a_job_without_status_is_incomplete(tmp_path):
    root = tmp_path / "runs"
    job = write_job(root / "a", method="Av-PBC", dataset=HOPPER, seed=0, status="done",
                    curve=[(0, 0.0, None)])
    (job / "status.json").unlink()
    (job / "metrics.jsonl").write_text((job / "metrics.jsonl").read_text() + '{"type": "ev')
    main([str(root), f"out={tmp_path / 'out'}"])
    with open(tmp_path / "out" / "runs.csv") as f:
        (row,) = csv.DictReader(f)
    assert row["status"] == "incomplete" and row["method"] == "Av-PBC"
    assert row["dataset"] == HOPPER and row["score"] == ""
    assert "1 unreadable line(s) skipped" in row["error"]
    assert "| Av-PBC | local-hopper-medium | 0 | incomplete |" in (
        tmp_path / "out" / "table.md").read_text()


def test_other_hydra_apps_jobs_are_skipped(sweep, tmp_path):
    collect_job = sweep / "collect" / "hydra" / "2026-11-30_18-00-00" / ".hydra"
    collect_job.mkdir(parents=True)
    (collect_job / "config.yaml").write_text("mode: train\nseed: 0\n")
    killed = write_job(sweep / "killed", method="Av-PBC", dataset=HOPPER, seed=0,
                       status="running", curve=[])
    (killed / "status.json").unlink()
    main([str(sweep), f"out={tmp_path / 'out'}", "plots.enabled=false"])
    with open(tmp_path / "out" / "runs.csv") as f:
        statuses = {Path(r["run_dir"]).name: r["status"] for r in csv.DictReader(f)}
    assert len(statuses) == 9 and statuses["killed"] == "incomplete"


def test_csv_table_holds_the_numbers(report):
    out, _ = report
    with open(out / "table.csv") as f:
        rows = {r["method"]: r for r in csv.DictReader(f)}
    sdw = rows["SDW (knn)"]
    assert (float(sdw[f"{HOPPER} mean"]), float(sdw[f"{HOPPER} std"]), sdw[f"{HOPPER} n"]) == (
        26.0, 2.0, "2")
    assert float(sdw["average"]) == 38.0 and float(sdw["ess_fraction"]) == pytest.approx(0.3)
    assert rows["Av-PBC"]["ess_fraction"] == ""
    assert float(rows["Teacher"][f"{WALKER} mean"]) == 70.0


def test_an_interval_beside_mean_and_std_in_every_format(sweep, tmp_path):
    out = tmp_path / "out"
    main([str(sweep), f"out={out}", "table.interval=0.95", "plots.enabled=false"])
    rows = table_lines(out / "table.md")
    # Av-PBC on hopper: 20 and 30, std (ddof 1) 7.07, t(0.975, 1 dof) 12.706 x 5.0 = 63.5
    assert rows["Av-PBC"][:2] == ["25.0 ± 5.0 [-38.5, 88.5] (2)", "40.0 ± 0.0 (1)"]
    assert rows["BC (whole data)"][0] == "45.0 ± 0.0 [45.0, 45.0] (3 students)"
    assert "95% t interval of the mean" in (out / "table.md").read_text()
    with open(out / "table.csv") as f:
        avpbc = next(r for r in csv.DictReader(f) if r["method"] == "Av-PBC")
    assert float(avpbc[f"{HOPPER} ci_low"]) == pytest.approx(25 - 12.7062 * 5, abs=1e-3)
    assert avpbc[f"{WALKER} ci_low"] == avpbc[f"{WALKER} ci_high"] == ""
    assert "[-38.5, 88.5]" in (out / "table.tex").read_text()


def test_score_curves_carry_the_references_as_lines(sweep, tmp_path, monkeypatch):
    from sdw.report import plots

    drawn = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: drawn.append(fig) or path)
    main([str(sweep), f"out={tmp_path / 'out'}", "aggregate.enabled=false"])
    lines = {ax.get_title(): {line.get_label(): line.get_ydata()[0] for line in ax.get_lines()}
             for ax in drawn[0].axes if ax.get_visible()}
    assert lines[HOPPER]["BC (whole data) 45.0"] == 45.0
    assert lines[WALKER]["Teacher 70.0"] == 70.0 and lines[WALKER]["Random subset 5.0"] == 5.0


def test_latex_table_is_a_booktabs_tabular_with_the_right_columns(report):
    out, _ = report
    tex = (out / "table.tex").read_text()
    assert "\\begin{tabular}{lrrrr}" in tex and tex.rstrip().endswith("\\end{tabular}")
    assert tex.count("\\toprule") == tex.count("\\bottomrule") == 1
    body = [line for line in tex.splitlines() if line.endswith("\\\\")]
    assert len(body) == 1 + 2 + 3  # header, methods, references
    assert all(line.count(" & ") == 4 for line in body)
    assert "Av-PBC & 25.0 $\\pm$ 5.0 (2) & 40.0 $\\pm$ 0.0 (1) & 32.5 &  \\\\" in tex
    assert "local-hopper-medium" in tex and "0.300 (0.200--0.400)" in tex


def test_plots_are_valid_pngs(report):
    from matplotlib.image import imread

    out, _ = report
    for name in ("score_vs_step.png", "score_vs_time.png", "ess.png"):
        data = (out / name).read_bytes()
        assert data.startswith(PNG_MAGIC), name
        image = imread(out / name)
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
        assert f"![{name[:-4]}]({name})" in (out / "report.md").read_text()


def test_hydra_makes_no_outputs_or_log_files_in_the_working_directory(report):
    _, cwd = report
    assert list(cwd.iterdir()) == []


def test_where_selects_runs_and_dirs_override_works(sweep, tmp_path):
    other = tmp_path / "sweeps" / "adam"
    write_job(other / "j0", method="Av-PBC", dataset=HOPPER, seed=0, status="done",
              outer_optim="adam", curve=[(100, 10.0, 90.0)], score=90.0)
    out = tmp_path / "out"
    main([f"dirs=[{sweep},{other},{other / 'j0'}]", f"out={out}", "where={outer_optim:adam}"])
    rows = table_lines(out / "table.md")
    assert rows["Av-PBC"] == ["90.0 ± 0.0 (1)", "90.0"]
    assert "### Failed and missing jobs (0)" in (out / "table.md").read_text()
    with open(out / "runs.csv") as f:
        assert len(list(csv.DictReader(f))) == 9  # runs.csv keeps every job


def test_swept_values_become_columns_ordered_by_number(tmp_path):
    root = tmp_path / "budget"
    for size in (256, 16, 64):
        for seed in (0, 1):
            write_job(root / f"size={size},seed={seed}", method="Av-PBC", dataset=HOPPER,
                      seed=seed, status="done", curve=[(100, 10.0, size / 8 + seed)],
                      score=size / 8 + seed, overrides=[f"synthetic.size={size}", f"seed={seed}"])
    out = tmp_path / "out"
    main([str(root), f"out={out}", "table.cols=synthetic.size", "plots.enabled=false"])
    header = (out / "table.md").read_text().splitlines()[0]
    assert header == "| method | 16 | 64 | 256 | Average |"
    assert table_lines(out / "table.md")["Av-PBC"] == [
        "2.5 ± 0.5 (2)", "8.5 ± 0.5 (2)", "32.5 ± 0.5 (2)", "14.5"]


def test_a_cell_pooling_different_configs_gets_a_note(sweep, tmp_path):
    job = sweep / "extra"
    write_job(job, method="Av-PBC", dataset=HOPPER, seed=2, status="done", outer_optim="adam",
              curve=[(100, 10.0, 90.0)], score=31.0,
              overrides=[f"dataset={HOPPER}", "weighting=none", "outer_optim=adam", "seed=2"])
    main([str(sweep), f"out={tmp_path / 'out'}"])
    text = (tmp_path / "out" / "table.md").read_text()
    assert f"Av-PBC / {HOPPER} pools runs whose overrides differ beyond the seed " \
           f"(outer_optim: None, adam)" in text
    # seed 2 now exists in the sweep, so every other cell misses it
    assert text.count("| 2 | no job directory |") == 3


def test_bad_input_exits_2_with_the_reason(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main([str(tmp_path / "nowhere")])
    assert e.value.code == 2
    assert "nowhere: no such directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit):
        main([str(tmp_path / "empty")])
    assert "no job directory" in capsys.readouterr().err


def test_unknown_table_column_names_the_columns(sweep, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main([str(sweep), f"out={tmp_path / 'out'}", "table.cols=datset"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "table.cols: no runs.csv column 'datset'. Did you mean table.cols=dataset" in err
    assert "dataset_choice" in err
    with pytest.raises(SystemExit):
        main([str(sweep), f"out={tmp_path / 'out'}", "speed.enabled=true", "speed.group_by=optim"])
    assert "speed.group_by: no runs.csv column 'optim'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(sweep), f"out={tmp_path / 'out'}", "table.value=weighting"])
    assert "table.value=weighting: 'none' of " in capsys.readouterr().err


def test_bare_paths_become_a_dirs_override(tmp_path):
    job = tmp_path / "x=1,seed=0"
    job.mkdir()
    assert split_argv(["a/b", str(job), "out=o", "--cfg", "job", "-m"], "dirs") == (
        [f"dirs=['a/b','{job}']", "out=o"], ["--cfg", "job", "-m"])
    assert split_argv(["out=o", "--help"], "dirs") == (["out=o"], ["--help"])
    assert split_argv(["it's"], "dirs") == (["dirs=['it\\'s']"], [])
    assert split_argv(["set.npz", "eval=quick"], "artefact!") == (["artefact='set.npz'", "eval=quick"], [])
    assert split_argv(["seed=1", "--cfg", "job"]) == (["seed=1"], ["--cfg", "job"])


def test_a_mistyped_key_names_the_valid_ones(sweep, capsys):
    with pytest.raises(SystemExit) as e:
        main([str(sweep), "tabel.rows=outer_optim"])
    assert e.value.code == 2
    assert "Did you mean table?" in capsys.readouterr().err
    assert not (sweep / "report").exists()


def test_console_script_help_explains_usage(tmp_path):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    result = subprocess.run([sys.executable, "-m", "sdw.report.cli", "--help"], cwd=cwd,
                            capture_output=True, text=True, check=True)
    assert "sdw-report DIR [DIR ...] [key=value ...]" in result.stdout
    assert "speed:" in result.stdout and "rows: method" in result.stdout
    assert list(cwd.iterdir()) == []


def write_speed_sweep(root: Path) -> Path:
    """Known curves, 2 seeds each, evaluated every 100 steps to 600 on one dataset:
    paper = step/20 (30 at step 600, elapsed 1 s/step); adam = step/10 +- 2 over seeds
    (mean reaches 30 at step 300, elapsed 1.2 s/step); slow = step/40 (never reaches 30)."""
    slopes = {"paper": (20, 1.0, 0.0), "adam": (10, 1.2, 2.0), "slow": (40, 1.0, 0.0)}
    for optim, (divisor, secs, spread) in slopes.items():
        for seed, sign in ((0, -1), (1, 1)):
            curve = [(s, s * secs, s / divisor + sign * spread) for s in range(0, 601, 100)]
            write_job(root / f"outer_optim={optim},seed={seed}", method="Av-PBC",
                      dataset=HOPPER, seed=seed, status="done", outer_optim=optim, curve=curve,
                      score=curve[-1][2], overrides=[f"outer_optim={optim}", f"seed={seed}"])
    return root


def test_steps_to_score_on_known_curves(tmp_path):
    root = write_speed_sweep(tmp_path / "tts")
    out = tmp_path / "out"
    main([str(root), f"out={out}", "speed.enabled=true", "table.rows=outer_optim"])
    with open(out / "steps_to_score.csv") as f:
        rows = {r["group"]: r for r in csv.DictReader(f)}
    assert set(rows) == {"paper", "adam", "slow"}
    paper, adam, slow = rows["paper"], rows["adam"], rows["slow"]
    assert float(paper["target"]) == 30.0 and paper["panel"] == HOPPER
    assert (int(paper["step"]), float(paper["step_ratio"]), float(paper["time_ratio"])) == (
        600, 1.0, 1.0)
    assert (int(adam["step"]), float(adam["step_ratio"])) == (300, 0.5)
    assert float(adam["seconds"]) == pytest.approx(360.0)
    assert float(adam["time_ratio"]) == pytest.approx(0.6)
    assert (slow["step"], slow["note"], float(slow["best"])) == ("", "not reached", 15.0)
    md = (out / "steps_to_score.md").read_text()
    assert f"| {HOPPER} | adam | 2 | 30.0 | 300 | 0.50 | 360.0 | 0.60 | 60.0 (600) |  |" in md
    for name in ("speed_vs_step.png", "speed_vs_time.png"):
        assert (out / name).read_bytes().startswith(PNG_MAGIC)
    assert "## Steps to score" in (out / "report.md").read_text()


def test_steps_to_score_says_why_there_is_no_target(tmp_path):
    root = write_speed_sweep(tmp_path / "tts")
    out = tmp_path / "out"
    main([str(root), f"out={out}", "speed.enabled=true", "speed.reference_step=650"])
    md = (out / "steps_to_score.md").read_text()
    assert "paper has no evaluation of all its seeds at step 650 (evaluated at: 0, 100" in md
    main([str(root), f"out={out}", "speed.enabled=true", "speed.reference=sgd"])
    assert "no runs of sgd" in (out / "steps_to_score.md").read_text()


def test_steps_to_score_over_all_runs_with_a_std_band(tmp_path):
    root = write_speed_sweep(tmp_path / "tts")
    out = tmp_path / "out"
    main([str(root), f"out={out}", "speed.enabled=true", "speed.per=null", "plots.band=std",
          "plots.curves_from=all"])
    md = (out / "steps_to_score.md").read_text()
    assert "| all runs | adam | 2 | 30.0 | 300 | 0.50 |" in md
    assert (out / "speed_vs_step.png").read_bytes().startswith(PNG_MAGIC)
    main([str(root), f"out={out}"])  # a report without the speed section leaves none behind
    assert not (out / "steps_to_score.md").exists() and not (out / "speed_vs_step.png").exists()


def test_an_unknown_band_is_named(sweep, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main([str(sweep), f"out={tmp_path / 'out'}", "plots.band=iqr"])
    assert e.value.code == 2
    assert "plots.band='iqr': use one of minmax, std" in capsys.readouterr().err


def test_a_job_that_failed_before_loading_its_dataset_joins_its_datasets_column(tmp_path):
    from sdw.report.collect import collect_runs

    refs = {"random_subset": 10.0, "whole_data_bc": 40.0, "teacher": 50.0}
    for seed, status in ((0, "done"), (1, "failed")):
        job = run_dirs.write_job(tmp_path / f"seed={seed}", method="DBC", dataset=HOPPER, seed=seed,
                                 status=status, curve=[(0, 0.0, 5.0)], references=refs,
                                 score=20.0 if status == "done" else None)
        doc = json.loads((job / "status.json").read_text())
        if status == "done":
            doc["dataset"]["name"] = "sdw/hopper/medium-v0"  # the name the loaded dataset has
        else:
            del doc["dataset"]  # stopped before the dataset loaded: only the option is known
        (job / "status.json").write_text(json.dumps(doc))
    runs = collect_runs([tmp_path])
    assert sorted(r["dataset"] for r in runs) == ["sdw/hopper/medium-v0"] * 2


def test_a_cell_pooling_two_evaluation_protocols_is_warned_about(sweep, tmp_path, capsys):
    job = sweep / job_name("SDW (knn)", HOPPER, 1)
    config = yaml.safe_load((job / ".hydra" / "config.yaml").read_text())
    config["eval"]["episodes"] = 10  # as if its eval config file had been edited in between
    (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    main([str(sweep), f"out={tmp_path / 'out'}"])
    printed = capsys.readouterr()
    expected = (f"SDW (knn) / {HOPPER} pools runs of different evaluation protocols "
                "(students=3 episodes=10 every=50 last_k=2 | students=3 episodes=5 every=50 "
                "last_k=2)")
    assert expected in printed.out + printed.err
    assert expected in (tmp_path / "out" / "table.md").read_text()


def add_protocols(sweep: Path) -> None:
    """Every done job's eval.json gets an ensemble of 10 (score + 3), a 4-layer student
    (score - 1) and Adam as inner optimiser (score - 2); its standard score is score + 1."""
    for job in sweep.iterdir():
        if (job / "eval.json").exists():
            result = json.loads((job / "eval.json").read_text())
            score = result["last_k"]["normalised_mean"]
            result["ensemble"] = {"normalised_mean": score + 3.0, "members": 10}
            result["cross_architecture"] = {"official_mlp4": {"normalised_mean": score - 1.0}}
            result["cross_optimiser"] = {"adam": {"normalised_mean": score - 2.0}}
            (job / "eval.json").write_text(json.dumps(result))


def test_every_protocols_scores_are_runs_csv_columns_and_tabulate(sweep, tmp_path):
    add_protocols(sweep)
    main([str(sweep), f"out={tmp_path / 'out'}", "table.value=score_ensemble"])
    with open(tmp_path / "out" / "runs.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["status"] == "done"]
    for row in rows:
        score = float(row["score"])
        assert float(row["score_ensemble"]) == score + 3.0
        assert float(row["ensemble_members"]) == 10
        assert float(row["score_arch_official_mlp4"]) == score - 1.0
        assert float(row["score_optim_adam"]) == score - 2.0
    table = table_lines(tmp_path / "out" / "table.md")
    assert table["SDW (knn)"][1] == "53.0 ± 0.0 (1)"  # the walker2d seed-0 run's 50.0, plus three


def test_ensemble_and_cross_tables_in_the_papers_layout(sweep, tmp_path):
    add_protocols(sweep)
    main([str(sweep), f"out={tmp_path / 'out'}"])
    out = tmp_path / "out"
    ensemble = table_lines(out / "ensemble_table.md")
    # Av-PBC on hopper: scores 20 and 30, so one student 21 and 31, the ensembles 23 and 33
    assert ensemble["Av-PBC: one student"][:2] == ["26.0 ± 5.0 (2)", "41.0 ± 0.0 (1)"]
    assert ensemble["Av-PBC: ensemble of 10"][:2] == ["28.0 ± 5.0 (2)", "43.0 ± 0.0 (1)"]
    assert ensemble["SDW (knn): ensemble of 10"][:2] == ["29.0 ± 2.0 (2)", "53.0 ± 0.0 (1)"]
    assert list(ensemble)[:4] == ["Av-PBC: one student", "Av-PBC: ensemble of 10",
                                  "SDW (knn): one student", "SDW (knn): ensemble of 10"]
    text = (out / "ensemble_table.md").read_text()
    assert "| OBD Table 3: Av-PBC, ensemble of 10 | 27.6 | 58.6 |" in text  # hopper, walker2d M
    assert FAILED_ERROR in text  # the failed job is listed under this table too
    cross = table_lines(out / "cross_table.md")
    assert cross["Av-PBC: as distilled"][0] == "26.0 ± 5.0 (2)"
    assert cross["Av-PBC: official_mlp4"][0] == "24.0 ± 5.0 (2)"
    assert cross["Av-PBC: adam optimiser"][0] == "23.0 ± 5.0 (2)"
    assert "not in this project's reference notes" in (out / "cross_table.md").read_text()
    report_md = (out / "report.md").read_text()
    assert "## OBD Table 3 layout" in report_md and "## OBD Table 2 layout" in report_md
    header = (out / "ensemble_table.csv").read_text().splitlines()[0]
    assert header.startswith("method: evaluation,local-hopper-medium mean")
    assert "\\toprule" in (out / "cross_table.tex").read_text()


def test_a_sweep_without_other_protocols_has_no_protocol_tables(report):
    out, _ = report
    assert not (out / "ensemble_table.md").exists() and not (out / "cross_table.md").exists()


def test_sdw_eval_outputs_are_read_beside_and_outside_job_dirs(sweep, tmp_path):
    job = sweep / job_name("Av-PBC", HOPPER, 0)
    (job / "synthetic.eval.json").write_text(json.dumps(  # sdw-eval eval=ensemble RUN_DIR
        {"method": "Av-PBC", "standard": {"normalised_mean": 99.0},
         "ensemble": {"normalised_mean": 7.0, "members": 5}}))
    alone = tmp_path / "sets" / "mine"
    alone.mkdir(parents=True)
    (alone / "set.eval.json").write_text(json.dumps(
        {"method": "DBC", "dataset": HOPPER, "seed": 3, "standard": {"normalised_mean": 12.0},
         "last_k": None, "ensemble": {"normalised_mean": 14.0, "members": 5},
         "cross_architecture": {}, "cross_optimiser": {},
         "references": {"whole_data_bc": {"normalised_mean": 45.0}},
         "protocol": {"students": 2, "episodes": 3}}))
    main([str(sweep), str(tmp_path / "sets"), f"out={tmp_path / 'out'}"])
    with open(tmp_path / "out" / "runs.csv") as f:
        rows = {r["run_dir"]: r for r in csv.DictReader(f)}
    merged = rows[str(job)]
    assert float(merged["score_ensemble"]) == 7.0  # from synthetic.eval.json
    assert float(merged["score_final"]) == 21.0  # eval.json's own standard score stays
    standalone = rows[str(alone / "set.eval.json")]
    assert (standalone["status"], standalone["method"], standalone["seed"]) == ("done", "DBC", "3")
    assert (float(standalone["score_final"]), float(standalone["score_ensemble"])) == (12.0, 14.0)
    assert standalone["eval_protocol"] == "students=2 episodes=3" and standalone["score"] == ""
    ensemble = table_lines(tmp_path / "out" / "ensemble_table.md")
    assert ensemble["DBC: ensemble of 5"][0] == "14.0 ± 0.0 (1)"
    assert ensemble["Av-PBC: ensemble of 5"][0] == "7.0 ± 0.0 (1)"  # only the merged job's


def test_aggregates_across_datasets_as_rliable_computes_them(report):
    out, _ = report
    text = (out / "aggregates.md").read_text()
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ") for line in text.splitlines()
            if line.startswith("| Av-PBC") or line.startswith("| SDW (knn)")}
    # Av-PBC has seed 0 on both datasets (seed 1 failed on walker2d): one run of two scores,
    # hopper 20.0 and walker2d 40.0, whose mean is the point estimate (one run: no spread)
    assert rows["Av-PBC"][1] == "1"
    assert rows["Av-PBC"][3] == "30.0 [30.0, 30.0]"
    assert "SDW (knn): seeds 1 lack a dataset and are left out" in text
    assert (out / "performance_profiles.png").read_bytes().startswith(PNG_MAGIC)
    assert "## Aggregates across datasets" in (out / "report.md").read_text()


if __name__ == "__main__":
    # `python tests/test_report.py DIR [--speed | --protocols]`: write the synthetic test sweep
    # (docs/report.md); --protocols adds ensemble and cross-architecture scores to it
    target = Path(sys.argv[1])
    (write_speed_sweep if "--speed" in sys.argv[2:] else write_sweep)(target)
    if "--protocols" in sys.argv[2:]:
        add_protocols(target)
    print(f"wrote the synthetic test sweep {target}")
