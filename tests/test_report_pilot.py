"""The outer-step pilot (each curve's rise over its last 100 steps, the sizing rule, its section)
and the same check on the study's own curves."""

import numpy as np
import pytest

from sdw.report.collect import Curve, collect_runs
from sdw.report.curves import mean_curve
from sdw.report.pilot import rise, section, size, study_section
from sdw.testing.run_dirs import write_job


def curve(scores_by_step):
    steps = sorted(scores_by_step)
    return mean_curve([Curve(steps, [None] * len(steps), [scores_by_step[s] for s in steps])])


def test_rise_is_the_least_squares_slope_per_100_steps():
    line = curve({s: 10.0 + 0.03 * s for s in range(50, 401, 50)})
    assert rise(line, 200) == pytest.approx(3.0)
    assert rise(line, 400) == pytest.approx(3.0)
    bent = curve({100: 0.0, 150: 6.0, 200: 3.0})
    assert rise(bent, 200) == pytest.approx(np.polyfit([100, 150, 200], [0, 6, 3], 1)[0] * 100)
    assert rise(line, 500) is None  # not evaluated that far
    assert rise(curve({100: 1.0, 200: 2.0}), 200) is None  # two points are not a slope


def test_the_rule_takes_the_shortest_length_whose_mean_rise_is_within_the_limit():
    rising = curve({s: 0.04 * min(s, 300) for s in range(50, 401, 50)})  # flat from 300
    flat = curve({s: 50.0 for s in range(50, 401, 50)})
    sizing = size({"a": {"Av-PBC": rising}, "b": {"Av-PBC": flat}}, [200, 300, 400, 500], 1.0)
    assert sizing.rises[("a", "Av-PBC")][200] == pytest.approx(4.0)
    assert sizing.mean_rise[200] == pytest.approx(2.0)
    assert sizing.mean_rise[400] == pytest.approx(0.0)
    assert sizing.mean_rise[500] is None
    assert sizing.chosen == 400  # at 300 the window 200-300 still rises 4 on curve a: mean 2
    assert size({"a": {"x": rising}}, [200], 1.0).chosen is None


def test_the_section_tabulates_finished_pilot_jobs_and_draws_their_curves(tmp_path):
    for dataset, slope in (("sdw/hopper/medium-v0", 0.0), ("sdw/walker2d/medium-v0", 0.05)):
        for method, weighting in (("Av-PBC", "none"), ("SDW-knn", "sdw")):
            points = [(s, float(s), 20.0 + slope * s) for s in range(50, 401, 50)]
            write_job(tmp_path / "pilot" / f"{dataset.split('/')[1]}-{weighting}", method=method,
                      dataset=dataset, seed=0, status="done", curve=points,
                      references={"random_subset": 1.0, "whole_data_bc": 2.0, "teacher": 3.0},
                      weighting=weighting, score=points[-1][2])
    runs = collect_runs([tmp_path / "pilot"])
    lines = section(runs, [200, 300, 400], 1.0, tmp_path / "pilot.png", 1, "scripts/study.sh pilot")
    text = "\n".join(lines)
    assert "| sdw/walker2d/medium-v0 | SDW-knn | 30.0 | 35.0 | 40.0 | +5.0 | +5.0 | +5.0 |" in text
    assert "| mean rise |  |  |  |  | +2.5 | +2.5 | +2.5 |" in text
    assert "No length qualifies: the pilot has to run longer." in text
    partial = "\n".join(section(runs, [200], 10.0, tmp_path / "p.png", 1, "x", expected=18))
    assert "4 of the pilot's 18 curves are in" in partial and "chooses **" not in partial
    assert "The rule chooses **200 outer steps**" in "\n".join(
        section(runs, [200], 10.0, tmp_path / "p.png", 1, "x", expected=4))
    assert (tmp_path / "pilot.png").read_bytes()[:4] == b"\x89PNG"
    empty = section([], [200], 1.0, tmp_path / "none.png", 1, "x")
    assert empty[-2] == "The pilot has not run yet."


def test_the_study_section_gives_each_main_curve_its_rise_over_its_last_100_steps(tmp_path):
    for seed, offset in enumerate((0.0, 4.0)):  # two seeds: the seed-mean curve is checked
        for dataset, slope in (("sdw/hopper/medium-v0", 0.0), ("sdw/walker2d/medium-v0", 0.02)):
            points = [(s, float(s), 20.0 + offset + slope * s) for s in range(50, 301, 50)]
            write_job(tmp_path / "study" / f"{dataset.split('/')[1]}-{seed}", method="Av-PBC",
                      dataset=dataset, seed=seed, status="done", curve=points,
                      references={"random_subset": 1.0, "whole_data_bc": 2.0, "teacher": 3.0},
                      score=points[-1][2])
    short = [(50, 50.0, 10.0), (100, 100.0, 12.0)]  # no whole window: no rise
    write_job(tmp_path / "study" / "dbc", method="DBC", dataset="sdw/hopper/medium-v0", seed=0,
              status="done", curve=short, score=12.0,
              references={"random_subset": 1.0, "whole_data_bc": 2.0, "teacher": 3.0})
    runs = collect_runs([tmp_path / "study"])
    text = "\n".join(study_section(runs, 1.0, tmp_path / "curves.png", 1))
    assert "| Av-PBC | +0.0 | +2.0 | +1.0 |" in text
    assert "| DBC | - | - | - |" in text
    assert "the pilot's limit was a mean of 1." in text
    # the two curves with a rise (0 and 2) average to 1.0: above a limit of 0.5, within 1.5
    stricter = "\n".join(study_section(runs, 0.5, tmp_path / "curves.png", 1))
    assert "+1.0, above the pilot's limit: by its own rule these runs are still rising." in stricter
    looser = "\n".join(study_section(runs, 1.5, tmp_path / "curves.png", 1))
    assert ("Mean rise over all 2 curves: +1.0, within the pilot's limit: by its own rule these "
            "runs have levelled off.") in looser
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert study_section([], 1.0, tmp_path / "none.png", 1)[-2] == "No study job has finished yet."
