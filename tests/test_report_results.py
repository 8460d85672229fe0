"""The study page (`sdw-report --config-name results`) built end to end from sweeps the test
writes by the run-directory contract (the test and verdict rules: tests/test_report_claims.py)."""

import json
from pathlib import Path

import numpy as np
import pytest

from sdw.report.cli import main
from sdw.report.collect import Run
from sdw.report.results import Sweep, _progress
from sdw.testing.run_dirs import write_job

DATASETS = {"medium": "sdw/hopper/medium-v0", "medium-replay": "sdw/hopper/medium-replay-v0",
            "medium-expert": "sdw/hopper/medium-expert-v0"}
# Seed scores per (method, level): on medium the chain holds, on medium-replay PBC < DBC.
SCORES = {
    ("DBC", "medium"): [20, 21, 22], ("PBC", "medium"): [30, 31, 32],
    ("Av-PBC", "medium"): [40, 41, 42], ("SDW-knn", "medium"): [50, 51, 52],
    ("DBC", "medium-replay"): [30, 31, 32], ("PBC", "medium-replay"): [20, 21, 22],
    ("Av-PBC", "medium-replay"): [44, 45, 46], ("SDW-knn", "medium-replay"): [44, 46, 45],
    ("DBC", "medium-expert"): [20, 21, 22], ("PBC", "medium-expert"): [30, 31, 32],
    ("Av-PBC", "medium-expert"): [35, 36, 37], ("SDW-knn", "medium-expert"): [30, 31, 32],
    ("SDW-flow", "medium"): [60],  # one seed: a difference without an interval
}
# random subset and whole-data BC (3 students each), the teacher's episodes: on medium-expert
# the teacher (51) is below whole-data BC (60), so that dataset fails the premise
REFERENCES = {"medium": ([6.0, 10.0, 14.0], [49.0, 50.0, 51.0], [54.0, 55.0, 56.0]),
              "medium-replay": ([11.0, 12.0, 13.0], [29.0, 30.0, 31.0], [39.0, 40.0, 41.0]),
              "medium-expert": ([9.0, 11.0, 13.0], [59.0, 60.0, 61.0], [50.0, 51.0, 52.0])}
OBJECTIVE = {"DBC": "dbc", "PBC": "pbc", "Av-PBC": "avpbc", "SDW-knn": "avpbc",
             "SDW-flow": "avpbc"}


def write_study(root: Path) -> dict[str, Path]:
    """Two sweeps of hopper jobs (OBD methods; SDW-knn) with the scores above."""
    sweeps = {"table1": root / "obd-table1-local", "sdw": root / "sdw-study-local"}
    for (method, level), values in SCORES.items():
        sweep = sweeps["sdw" if method.startswith("SDW") else "table1"]
        rnd, bc, teacher = REFERENCES[level]
        for seed, score in enumerate(values):
            sdw = method.startswith("SDW")
            write_job(sweep / f"{method},{level},seed={seed}", method=method,
                      dataset=DATASETS[level], seed=seed, status="done",
                      curve=[(50, 10.0, score - 1.0), (100, 20.0, float(score))],
                      references={"random_subset": rnd, "whole_data_bc": bc,
                                  "teacher": [float(np.mean(teacher))]},
                      teacher_episodes=teacher, objective=OBJECTIVE[method],
                      weighting="sdw" if sdw else "none", score=float(score),
                      ess=0.25 if sdw else None)
    return sweeps


def write_orderings(path: Path, first: dict[str, list[float]], last: dict[str, list[float]],
                    by_loss: bool = True) -> Path:
    """An sdw-analyze orderings.json with these seed scores at the first and last checkpoint;
    by loss, a leader change of interpolated means (no seed scores), or non-overlapping ranges."""

    def ranking(scores: dict[str, list[float]]) -> list:
        return sorted(([n, float(np.mean(v)), float(np.std(v)), v] for n, v in scores.items()),
                      key=lambda item: -item[1])

    high = {"loss": 0.5, "ranking": [["medium-replay", 30.0], ["medium", 20.0]]}
    low = {"loss": 0.01, "ranking": [["medium", 50.0], ["medium-replay", 25.0]]}
    path.write_text(json.dumps({
        "first_step": {"step": 30, "ranking": ranking(first)},
        "last_step": {"step": 3000, "ranking": ranking(last)},
        "high_loss": high if by_loss else None, "low_loss": low if by_loss else None}))
    return path


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("study")
    sweeps = write_study(root)
    mr, m = "medium-replay", "medium"
    crossover = write_orderings(root / "crossover.json", {mr: [30, 31, 32], m: [20, 21, 22]},
                                {mr: [50, 51, 52], m: [60, 61, 62]})
    within_spread = write_orderings(root / "within.json", {mr: [30, 10, 20], m: [19, 21, 17]},
                                    {mr: [50, 51, 52], m: [60, 40, 70]}, by_loss=False)
    same_leader = write_orderings(root / "same.json", {mr: [30, 31, 32], m: [20, 21, 22]},
                                  {mr: [60, 61, 62], m: [50, 51, 52]}, by_loss=False)
    out = root / "results.md"
    # the study's own declared premise failure is about its teacher, not this fixture's
    main(["-cn", "results", f"out={out}", "premise_fails=null",
          f"sweeps.table1.dir={sweeps['table1']}", f"sweeps.sdw.dir={sweeps['sdw']}",
          f"sweeps.budget.dir={root / 'absent'}",
          f"sweeps.calibration.dir={root / 'absent-too'}", f"sweeps.pilot.dir={root / 'no-pilot'}",
          f"misalignment=[{root / 'none.json'},"
          f"{crossover},{within_spread},{same_leader}]"])
    assert (root / "results-aggregates.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return out.read_text()


def section(page: str, heading: str) -> str:
    start = page.index(heading)
    end = page.find("\n## ", start + 1)
    return page[start:end if end > 0 else None]


def row(text: str, first_cell: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(f"| {first_cell} |"))


def test_page_has_the_methods_table_and_the_setup(page):
    table = section(page, "## Methods")
    assert "| Av-PBC | " in table and "41.0 ± 0.8 (3)" in row(table, "Av-PBC")
    assert "0.250" in row(table, "SDW-knn")  # ESS/N beside the SDW score
    ess = table[table.index("### ESS/N of the SDW weights per dataset"):]
    assert row(ess, "SDW-knn") == "| SDW-knn | " + " | ".join(["0.250 (0.250–0.250)"] * 3) + " |"
    assert row(ess, "SDW-kde") == "| SDW-kde | — | — | — |"
    setup = section(page, "## Setup")
    assert "6 (6 done)" not in setup and "27 of 135 (27 done)" in row(setup, "table1")
    assert "100 sgd" in row(setup, "table1") and "paper lr 0.1" in row(setup, "table1")
    assert "0 of 15: not run yet" in row(setup, "budget")


def test_page_warns_while_the_grid_has_jobs_left(page):
    top = page[:page.index("## Verdicts")]
    assert ("**In progress: 37 of 225 jobs of the study's grid have finished** (table1 27 of "
            "135, sdw 10 of 75, budget 0 of 15)") in top


def test_the_warning_counts_finished_jobs_and_goes_once_the_grid_is_in():
    def sweep(statuses, planned):
        return Sweep("s", Path("."), "cmd", [Run({"status": s}, None, Path(".")) for s in statuses],
                     planned)

    assert "1 of 2 jobs" in _progress([sweep(["done", "interrupted"], 2)])[0]
    assert _progress([sweep(["done", "failed"], 2), sweep(["done"], None)]) == []


def test_claim_a_is_judged_per_dataset_and_on_average(page):
    claim = section(page, "## Claim (a)")
    assert row(claim, "sdw/hopper/medium-v0").endswith("| holds |")
    assert row(claim, "sdw/hopper/medium-replay-v0").endswith("| broken |")
    assert row(claim, "sdw/hopper/medium-expert-v0").endswith(
        "| premise fails (teacher 51.0 not above whole-data BC 60.0) |")
    # PBC - DBC averages +10 and -10 over the two judged datasets: a tie, so inconclusive
    average = row(claim, "**average of the judged datasets**")
    assert "| +0.0 [" in average and average.endswith("| **inconclusive** |")
    assert "Per dataset: holds on 1 of 2 judged datasets (1 broken); 1 fails the premise." in claim


def test_claim_b_needs_both_levels_to_pass_the_premise(page):
    claim = section(page, "## Claim (b)")
    assert "premise fails (M-E: teacher 51.0 not above whole-data BC 60.0)" in row(claim, "hopper")
    assert "Per env: holds on 0 of 0 judged envs; 1 fails the premise." in claim


def test_claim_c_has_a_gain_and_a_symmetric_contrast(page):
    claim = section(page, "## Claim (c)")
    gain = claim[claim.index("### (c) SDW-knn > Av-PBC"):]
    assert row(gain, "sdw/hopper/medium-v0").endswith("| holds |")  # +10
    assert row(gain, "**average of the judged datasets**").endswith("| **reproduced** |")
    kde = claim[claim.index("### (c) SDW-kde > Av-PBC"):]
    assert row(kde, "sdw/hopper/medium-v0").endswith("| missing |")
    flow = claim[claim.index("### (c) SDW-flow > Av-PBC"):]
    assert "+19.0 (seeds: 1 vs 3, no interval)" in row(flow, "sdw/hopper/medium-v0")
    assert row(flow, "sdw/hopper/medium-v0").endswith("| too few seeds |")
    contrast = claim[claim.index("### (c) SDW-knn gains more"):]
    assert "premise fails (M-E: teacher 51.0" in row(contrast, "hopper")


def test_paper_numbers_sit_beside_ours_in_d4rl_units_and_the_premise_is_shown(page):
    beside = section(page, "## Beside the papers")
    # the test's returns are 10 x the local score: 410 raw -> D4RL hopper (410 + 20.3) / 32.5
    d4rl = 100 * (410 + 20.272305) / (3234.3 + 20.272305)
    assert f"{d4rl:.1f} / 32.5" in row(beside, "Av-PBC")
    premise = section(page, "## Premise and headroom")
    medium = row(premise, "sdw/hopper/medium-v0")
    assert "| 55.0 ± 0.8 (3 episodes) |" in medium and medium.endswith("| +45.0 | +5.0 | holds |")
    assert "fails: teacher 51.0 not above whole-data BC 60.0" in row(premise,
                                                                    "sdw/hopper/medium-expert-v0")


def test_the_page_shows_the_rules_on_the_papers_own_tables(page):
    check = section(page, "## The rules on the papers' own tables")
    assert row(check, "(a) Av-PBC > PBC > DBC > Random subset").startswith(
        "| (a) Av-PBC > PBC > DBC > Random subset | reproduced |")
    assert "halfcheetah/medium-expert (teacher 50.8 not above whole-data BC 59.8)" in check


def test_missing_parts_are_named_not_filled(page):
    assert "none.json` | | not run yet |" in section(page, "## Claim (d)")
    assert "Not run yet." in section(page, "## Synthetic budget")
    compute = section(page, "## Compute")
    assert row(compute, "table1").startswith("| table1 | 27 | 0.49 | 66 |")  # 27 jobs x 66 s
    assert row(compute, "budget").startswith("| budget | 0 | 0.00 | — | — |")


def test_cells_outside_the_grid_are_a_note_not_missing_jobs(page):
    methods = section(page, "## Methods on the nine local datasets")
    # conf/results.yaml's grid runs SDW-flow on medium only: its other cells are by design
    assert "| SDW-flow | sdw/hopper/medium-replay-v0 |" not in methods
    assert ("SDW-flow: no job on sdw/hopper/medium-replay-v0, sdw/hopper/medium-expert-v0, "
            "outside the study's grid (it runs on the medium datasets only)") in methods
    # its medium cell has one seed where the sweep has three: those are still missing
    assert "| SDW-flow | sdw/hopper/medium-v0 | 1 | no job directory |" in methods


def test_a_crossover_needs_both_leaders_ahead_beyond_the_seed_spread(page):
    claim = section(page, "## Claim (d)")
    lines = claim.splitlines()

    def row_of(name: str, view: str) -> str:
        return next(line for line in lines if f"{name}` | {view} |" in line)

    def cell(name: str, view: str) -> str:
        return row_of(name, view).split(" | ")[-1]

    assert cell("crossover.json", "by step").startswith(
        "yes: medium-replay - medium **+10.0 [")  # 31 vs 21 at step 30, 61 vs 51 at step 3000
    assert cell("within.json", "by step").startswith(
        "no, a tie: the leader changes within the seed spread (medium-replay - medium +1.0 [")
    assert cell("same.json", "by step") == "no: the same leader |"
    assert cell("crossover.json", "by loss") == "the leader changes (no seed scores to test it) |"
    assert row_of("same.json", "by loss").endswith("| n/a |")


def test_references_show_their_students(page):
    table = section(page, "## Methods")
    assert "| 10.0 ± 3.3 (3 students) |" in row(table, "*Random subset*")  # 6, 10, 14
    assert "| 50.0 ± 0.8 (3 students) |" in row(table, "*BC (whole data)*")
    dbc_random = row(section(page, "## Claim (a)"), "sdw/hopper/medium-v0").split(" | ")[3]
    low, high = map(float, dbc_random.strip("*").split("[")[1].rstrip("]").split(", "))
    assert dbc_random.startswith("**+11.0 [") and high - low > 5  # DBC 20..22 - random 6..14


def test_verdicts_are_the_averaged_claims(page):
    verdicts = section(page, "## Verdicts")
    assert ("**(a) Av-PBC > PBC > DBC > Random subset: inconclusive** (averaged: Av-PBC > PBC "
            "**+") not in verdicts  # the verdict line has no bold inside
    assert "**(a) Av-PBC > PBC > DBC > Random subset: inconclusive** (averaged: " in verdicts
    assert "Per dataset: holds on 1 of 2 judged datasets (1 broken); 1 fails the premise." in verdicts
    assert "**(c) SDW-knn > Av-PBC on medium and medium-expert: reproduced**" in verdicts
    assert "**(c) SDW-flow > Av-PBC on medium and medium-expert: no verdict**" in verdicts
    assert ("training loss: no verdict** (judged by training loss, the claim's own terms; "
            "the by-step view is shown, not judged). by step: crossover in 1, tie in 1, same "
            "leader in 1 of 3 orderings; by loss: untested leader change in 1, n/a in 2 of 3 "
            "orderings") in verdicts
    assert page.index("## Verdicts") < page.index("## Setup")


def test_in_short_groups_the_verdicts_and_names_the_datasets_left_out(page):
    short = section(page, "## In short")
    assert ("Held at the averaged level the papers state: (c) SDW-knn > Av-PBC on medium and "
            "medium-expert. Did not hold: none. Inconclusive (a tie at the average): (a) Av-PBC "
            "> PBC > DBC > Random subset. Without a verdict") in short
    assert "; (d) the ordering of datasets flips between high and low training loss." in short
    assert ("leave out 1 of 3 datasets, whose teacher fails the premise: "
            "sdw/hopper/medium-expert-v0.") in short
    assert "What this setup can and cannot say." in short
    assert page.index("## Verdicts") < page.index("## In short") < page.index("## Setup")


def test_budget_rows_sit_beside_a_random_subset_of_their_own_size(tmp_path):
    sweep = tmp_path / "budget"
    for size, values, subset in ((16, [20, 22], [5.0, 7.0]), (128, [40, 44], [12.0, 14.0])):
        for seed, score in enumerate(values):
            overrides = [f"synthetic.size={size}", f"seed={seed}"]
            write_job(sweep / ",".join(overrides), method="Av-PBC", seed=seed, status="done",
                      dataset=DATASETS["medium-replay"], curve=[(100, 20.0, float(score))],
                      score=float(score), overrides=overrides,
                      references={"random_subset": subset, "whole_data_bc": [30.0],
                                  "teacher": [40.0]})
    out = tmp_path / "results.md"
    main(["-cn", "results", f"out={out}", f"sweeps.budget.dir={sweep}",
          f"sweeps.table1.dir={tmp_path / 'none'}", "misalignment=[]"])
    assert "| 16; 128 |" in row(section(out.read_text(), "## Setup"), "budget")  # by value
    budget = section(out.read_text(), "## Synthetic budget")
    small = row(budget, "sdw/hopper/medium-replay-v0 | 16")
    assert "| 21.0 ± 1.0 (2) | 6.0 ± 1.0 (2 students) | **+15.0 [" in small
    assert small.endswith("| 27.3 |")  # OBD Table 5, hopper, 16 pairs
    large = row(budget, "sdw/hopper/medium-replay-v0 | 128")
    assert "| 42.0 ± 2.0 (2) | 13.0 ± 1.0 (2 students) | **+29.0 [" in large
    assert "*Random subset*" not in budget  # one reference row would pool the sizes


def test_a_mistyped_results_key_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--config-name", "results", "test.levle=0.9"])
    assert exit_info.value.code == 2
    assert "test.level" in capsys.readouterr().err


def test_the_calibration_rule_compares_every_estimator_and_setting(tmp_path):
    sweep = tmp_path / "calibration"
    settings = {("knn", "0.25", None): [40, 41, 42], ("knn", "0.1", "0.99"): [39, 47, 43],
                ("kde", "0.5", None): [60, 61, 62], ("flow", "0.5", None): [57, 63, 60]}
    for (density, ess, clip), values in settings.items():
        for seed, score in enumerate(values):
            overrides = [f"density={density}", f"weighting.target_ess={ess}", f"seed={seed}"]
            overrides += [f"weighting.clip_quantile={clip}"] if clip else []
            write_job(sweep / ",".join(overrides), method=f"SDW-{density}",
                      dataset=DATASETS["medium"], seed=seed, status="done", density=density,
                      weighting="sdw", curve=[(100, 20.0, float(score))], score=float(score),
                      references={"random_subset": 10.0, "whole_data_bc": 50.0, "teacher": 55.0},
                      overrides=overrides, ess=float(ess))
    table1 = tmp_path / "table1"
    for seed, score in enumerate([30.0, 31.0, 32.0]):  # unweighted Av-PBC on the same dataset
        write_job(table1 / f"objective=avpbc,seed={seed}", method="Av-PBC",
                  dataset=DATASETS["medium"], seed=seed, status="done",
                  curve=[(100, 20.0, score)], score=score,
                  references={"random_subset": 10.0, "whole_data_bc": 50.0, "teacher": 55.0})
    earlier = ["teacher.steps=50000", "seed=3"]  # another teacher's Av-PBC: not comparable
    write_job(table1 / ",".join(earlier), method="Av-PBC", dataset=DATASETS["medium"], seed=3,
              status="done", curve=[(100, 20.0, 90.0)], score=90.0, overrides=earlier,
              references={"random_subset": 10.0, "whole_data_bc": 50.0, "teacher": 55.0})
    out = tmp_path / "results.md"
    main(["-cn", "results", f"out={out}", f"sweeps.calibration.dir={sweep}",
          f"sweeps.table1.dir={table1}", f"sweeps.sdw.dir={tmp_path / 'none'}",
          "misalignment=[]"])
    calibration = section(out.read_text(), "## SDW calibration")
    assert "41.0 ± 0.8 (3)" in row(calibration, "knn, ESS/N 0.25, clip none")
    differences = calibration[calibration.index("Differences to the best"):]
    assert "same dataset with the same teacher: 31.0 over 3 seeds" in differences
    knn = row(differences, "knn, ESS/N 0.25, clip none").split(" | ")
    assert knn[2].startswith("**-20.0 [") and knn[3].startswith("**+10.0 [")  # - kde, - Av-PBC
    assert row(differences, "kde, ESS/N 0.5, clip none").split(" | ")[2] == "(the best)"
    assert ("By the rule: kde, ESS/N 0.5, clip none has the highest seed mean of the 4 settings "
            "and becomes the frozen weighting; within its interval (a tie): flow, ESS/N 0.5, "
            "clip none.") in calibration


def test_page_has_the_aggregates_across_datasets_and_their_figure(page):
    text, shared = section(page, "## Aggregates across the datasets").split(
        "### On the datasets every method ran")
    av_pbc = row(text, "Av-PBC").split(" | ")
    expected = np.mean([SCORES[("Av-PBC", level)] for level in DATASETS])
    assert av_pbc[1] == "3" and av_pbc[3].startswith(f"{expected:.1f} [")  # the mean, exactly
    assert not any(line.startswith("| SDW-flow |") for line in text.splitlines())
    assert "SDW-flow: no seed has a score on every dataset, left out" in text
    assert row(text, "SDW-knn over Av-PBC").startswith("| SDW-knn over Av-PBC | 0.")
    assert "![Performance profiles and aggregate scores](results-aggregates.png)" in text
    # SDW-flow ran on medium only: the aggregates again on the one dataset every method has
    assert "Across 1 dataset (sdw/hopper/medium-v0)" in shared
    flow = row(shared, "SDW-flow").split(" | ")
    assert flow[1] == "1" and flow[3].startswith(f"{SCORES[('SDW-flow', 'medium')][0]:.1f} [")
    assert row(shared, "Av-PBC").split(" | ")[1] == "3"


def test_the_pilot_section_states_its_rule_before_any_pilot_job(page):
    pilot = section(page, "## Outer-step pilot")
    assert "at most 1 normalised points per 100 steps" in pilot
    assert "The pilot has not run yet." in pilot
