"""The study page (`sdw-report --config-name results`): bootstrap differences with known answers,
and the page built end to end from sweeps the test writes by the run-directory contract."""

import json
from pathlib import Path

import numpy as np
import pytest

from sdw.report.claims import (HIGHER, LOWER, MISSING, TIE, TOO_FEW, Bootstrap, Sample,
                               chain_verdict, difference)
from sdw.report.cli import main
from sdw.testing.run_dirs import write_job

BOOT = Bootstrap(samples=4000, level=0.95, seed=0)
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
# random subset (one student per subset), whole-data BC (one student) and the teacher (one policy)
REFERENCES = {"medium": ([6.0, 10.0, 14.0], [50.0], [55.0]),
              "medium-replay": ([11.0, 12.0, 13.0], [30.0], [40.0]),
              "medium-expert": ([9.0, 11.0, 13.0], [60.0], [70.0])}
OBJECTIVE = {"DBC": "dbc", "PBC": "pbc", "Av-PBC": "avpbc", "SDW-knn": "avpbc",
             "SDW-flow": "avpbc"}


def diff(a, b, fixed_b=False):
    return difference("a", "b", Sample.of(a), Sample.of(b, fixed=fixed_b), BOOT)


def test_separated_groups_give_the_exact_difference_and_a_verdict():
    d = diff([10, 10, 10], [5, 5, 5])
    assert (d.diff, d.low, d.high, d.verdict) == (5.0, 5.0, 5.0, HIGHER)
    assert diff([1, 2, 3], [11, 12, 13]).verdict == LOWER


def test_overlapping_groups_are_a_tie_with_an_interval_around_the_difference():
    d = diff([10, 20, 30], [12, 22, 29])
    assert d.diff == pytest.approx(20 - 21)
    assert d.low < 0 < d.high and d.verdict == TIE
    # the interval is the percentile interval of independently resampled means
    rng = np.random.default_rng(0)
    a, b = np.array([10, 20, 30.0]), np.array([12, 22, 29.0])
    diffs = (a[rng.integers(0, 3, (4000, 3))].mean(1) - b[rng.integers(0, 3, (4000, 3))].mean(1))
    assert (d.low, d.high) == pytest.approx(tuple(np.percentile(diffs, [2.5, 97.5])))


def test_a_fixed_reference_is_a_constant_and_one_seed_gives_no_interval():
    d = diff([20, 21, 22], [10.0], fixed_b=True)
    assert d.diff == 11.0 and 10.0 <= d.low <= d.high <= 12.0 and d.verdict == HIGHER
    one_seed = diff([20.0], [10.0], fixed_b=True)  # a zero-width interval would call it "higher"
    assert (one_seed.diff, one_seed.low, one_seed.verdict) == (10.0, None, TOO_FEW)
    assert one_seed.text() == "+10.0 (seeds: 1 vs 1, no interval)"
    assert diff([], [1.0]).verdict == MISSING
    assert diff([], [1.0]).text() == "— (seeds: 0 vs 1)"


def test_chain_verdicts():
    up, tie = diff([3, 3], [1, 1]), diff([1, 3], [2, 2])
    down, gone, few = diff([1, 1], [3, 3]), diff([], [1]), diff([3], [1, 1])
    assert chain_verdict([up, up]) == "holds"
    assert chain_verdict([up, tie]) == TIE
    assert chain_verdict([up, tie, down]) == "broken"
    assert chain_verdict([up, gone]) == MISSING
    assert chain_verdict([up, few, down]) == TOO_FEW


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
                      references={"random_subset": rnd, "whole_data_bc": bc, "teacher": teacher},
                      objective=OBJECTIVE[method], weighting="sdw" if sdw else "none",
                      score=float(score), ess=0.25 if sdw else None)
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
    main(["-cn", "results", f"out={out}", f"sweeps.table1.dir={sweeps['table1']}",
          f"sweeps.sdw.dir={sweeps['sdw']}", f"sweeps.budget.dir={root / 'absent'}",
          f"sweeps.calibration.dir={root / 'absent-too'}", f"misalignment=[{root / 'none.json'},"
          f"{crossover},{within_spread},{same_leader}]", "bootstrap.samples=2000"])
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
    assert "6 (6 done)" not in setup and "27 (27 done)" in row(setup, "table1")
    assert "100 sgd" in row(setup, "table1") and "paper lr 0.1" in row(setup, "table1")
    assert "not run yet" in row(setup, "budget")


def test_claim_a_holds_on_medium_and_is_broken_on_medium_replay(page):
    claim = section(page, "## Claim (a)")
    assert row(claim, "sdw/hopper/medium-v0").endswith("| holds |")
    assert "**+10.0 [+10.0, +10.0]**" not in claim  # the intervals come from the resampling
    assert row(claim, "sdw/hopper/medium-replay-v0").endswith("| broken |")
    assert "1 broken, 2 holds" in claim


def test_claim_b_compares_medium_replay_with_medium_expert(page):
    claim = section(page, "## Claim (b)")
    hopper = row(claim, "hopper")
    assert "+9.0" in hopper  # Av-PBC M-R 45 - M-E 36
    assert "+30.0 [+30.0, +30.0]" in hopper  # whole-data BC 60 - 30: one value each, no spread
    assert hopper.endswith("| holds |")
    assert row(claim, "walker2d").endswith("| missing |")


def test_claim_c_says_where_sdw_behaves_as_claimed(page):
    claim = section(page, "## Claim (c)")
    assert "SDW-knn: as claimed" in row(claim, "sdw/hopper/medium-v0")  # +10, limited diversity
    assert "SDW-knn: as claimed" in row(claim, "sdw/hopper/medium-replay-v0")  # a tie there
    assert "SDW-knn: not as claimed" in row(claim, "sdw/hopper/medium-expert-v0")  # -5
    assert "SDW-kde: missing" in row(claim, "sdw/hopper/medium-v0")
    assert "SDW-knn: as claimed on 2 of 3 datasets" in claim


def test_paper_numbers_sit_beside_ours_and_headroom_is_teacher_minus_random(page):
    beside = section(page, "## Beside the papers")
    assert "41.0 / 32.5" in row(beside, "Av-PBC")  # ours on hopper medium / OBD Table 1
    assert "51.0 / 38.4" in row(beside, "SDW-knn")  # SDW's headline hopper-medium
    headroom = section(page, "## Headroom")
    assert row(headroom, "sdw/hopper/medium-v0").endswith("| +45.0 | +40.0 |")


def test_missing_parts_are_named_not_filled(page):
    assert "none.json` | | not run yet |" in section(page, "## Claim (d)")
    assert "Not run yet." in section(page, "## Synthetic budget")
    compute = section(page, "## Compute")
    assert row(compute, "table1").startswith("| table1 | 27 | 0.49 | 66 |")  # 27 jobs x 66 s
    assert row(compute, "budget").startswith("| budget | 0 | 0.00 | — | — |")


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


def test_references_show_their_students_and_the_random_subset_is_resampled(page):
    table = section(page, "## Methods")
    assert "| 10.0 ± 3.3 (3 students) |" in row(table, "*Random subset*")  # 6, 10, 14
    assert "| 50.0 (1 student) |" in row(table, "*BC (whole data)*")
    assert "| 55.0 (1 policy) |" in row(table, "*Teacher*")
    dbc_random = row(section(page, "## Claim (a)"), "sdw/hopper/medium-v0").split(" | ")[3]
    low, high = map(float, dbc_random.strip("*").split("[")[1].rstrip("]").split(", "))
    assert dbc_random.startswith("**+11.0 [") and high - low > 5  # DBC 20..22 - random 6..14


def test_a_single_seed_gives_no_verdict(page):
    medium = row(section(page, "## Claim (c)"), "sdw/hopper/medium-v0")
    assert "+19.0 (seeds: 1 vs 3, no interval)" in medium and "SDW-flow: too few seeds" in medium


def test_verdicts_count_the_claim_sections(page):
    verdicts = section(page, "## Verdicts")
    assert ("**(a) Av-PBC > PBC > DBC > Random subset: partly reproduced**. Holds on 2 of 3 "
            "datasets (1 broken). By link: Av-PBC > PBC: higher on 3 of 3 datasets; PBC > DBC: "
            "higher on 2, lower on 1 of 3 datasets;") in verdicts
    assert "first: reproduced**. Holds on 1 of 1 envs; 2 missing." in verdicts  # hopper only
    assert ("**SDW-knn: partly reproduced** (as claimed on 2 of 3 datasets); SDW-knn - Av-PBC on "
            "medium/medium-expert: higher on 1, lower on 1 of 2 datasets; on medium-replay: tie "
            "on 1 of 1 datasets.") in verdicts
    assert "**SDW-flow: no verdict yet**" in verdicts  # one seed
    assert ("training loss: partly reproduced** (by step; the by-loss view is not tested). by "
            "step: crossover in 1, tie in 1, same leader in 1 of 3 orderings; by loss: "
            "untested leader change in 1, n/a in 2 of 3 orderings") in verdicts
    assert page.index("## Verdicts") < page.index("## Setup")


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
          f"sweeps.table1.dir={tmp_path / 'none'}", "misalignment=[]", "bootstrap.samples=2000"])
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
        main(["--config-name", "results", "bootstrap.sample=10"])
    assert exit_info.value.code == 2
    assert "bootstrap.samples" in capsys.readouterr().err


@pytest.mark.parametrize("winner_scores, chosen", [
    ([50, 51, 52], "By the rule: knn, ESS/N 0.1, clip 0.99 beats the default"),
    ([39, 47, 43], "does not beat the default beyond the interval, so the default stays"),
])
def test_the_calibration_rule_picks_a_setting_only_beyond_the_interval(tmp_path, winner_scores,
                                                                       chosen):
    sweep = tmp_path / "calibration"
    settings = {("knn", "0.25", None): [40, 41, 42], ("knn", "0.1", "0.99"): winner_scores,
                ("kde", "0.25", None): [60, 61, 62]}  # kde is not a candidate of the rule
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
    out = tmp_path / "results.md"
    main(["-cn", "results", f"out={out}", f"sweeps.calibration.dir={sweep}",
          f"sweeps.table1.dir={table1}", f"sweeps.sdw.dir={tmp_path / 'none'}",
          "misalignment=[]", "bootstrap.samples=2000"])
    calibration = section(out.read_text(), "## SDW calibration")
    assert "41.0 ± 0.8 (3)" in row(calibration, "knn, ESS/N 0.25, clip none")
    differences = calibration[calibration.index("Differences to the default"):]
    assert "same dataset: 31.0 over 3 seeds" in differences
    kde = row(differences, "kde, ESS/N 0.25, clip none").split(" | ")
    assert kde[2].startswith("**+20.0 [") and kde[3].startswith("**+30.0 [")  # - knn, - Av-PBC
    assert row(differences, "knn, ESS/N 0.25, clip none").split(" | ")[2] == "(the default)"
    assert chosen in calibration
