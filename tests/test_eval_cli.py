"""`sdw-eval ARTEFACT`: scores a saved synthetic set, writes its JSON, makes no Hydra folders."""

import json
from pathlib import Path

import numpy as np
import pytest

from data_files import known_arrays, write_hdf5
from sdw.data.dataset import StateNormaliser
from sdw.data.scores import D4RL_REFERENCE_SCORES
from sdw.distill.synthetic import SyntheticSet
from sdw.app.eval_cli import artefact_reference_scores, main

FAST = ["eval=quick", "student.hidden_sizes=[16,16]", "inner_optim.steps=5", "threads=1"]


def tiny_set(dataset_name: str = "hopper-tiny-v2", size: int = 4) -> SyntheticSet:
    rng = np.random.default_rng(0)
    normaliser = StateNormaliser(np.zeros(11, np.float32), np.ones(11, np.float32))
    return SyntheticSet(rng.normal(size=(size, 11)), rng.uniform(-1, 1, (size, 3)), normaliser,
                        "Hopper-v4", dataset_name, "somehash", "Av-PBC",
                        config={"seed": 3, "outer_steps": 7}, info={"outer_steps": 7})


def test_bare_path_is_evaluated_and_written_beside_it(tmp_path, monkeypatch, capsys):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    artefact = tiny_set().save(work / "run" / "synthetic.npz")
    main(["run/synthetic.npz", *FAST])
    written = json.loads((work / "run" / "synthetic.eval.json").read_text())
    assert (written["method"], written["dataset"], written["env_id"]) == (
        "Av-PBC", "hopper-tiny-v2", "Hopper-v4")
    assert (written["seed"], written["size"], written["outer_steps"]) == (3, 4, 7)
    standard = written["standard"]
    assert (standard["students"], standard["episodes"], len(standard["per_student"])) == (2, 2, 2)
    assert standard["normalised_mean"] == pytest.approx(
        D4RL_REFERENCE_SCORES["hopper"].normalise(standard["return_mean"]))
    assert written["ensemble"] is None and written["cross_architecture"] == {}
    assert written["references"] == {"random_subset": None, "whole_data_bc": None,
                                     "teacher": None}
    assert written["reference_scores"]["source"] == "d4rl"
    assert "standard: normalised" in capsys.readouterr().out
    assert sorted(p.name for p in work.iterdir()) == ["run"]  # no outputs/, no .hydra/
    assert sorted(p.name for p in artefact.parent.iterdir()) == ["synthetic.eval.json",
                                                                  "synthetic.npz"]
    main(["run", *FAST, "out=again.json"])  # a run directory stands for its synthetic.npz
    assert json.loads((work / "again.json").read_text())["standard"] == standard


def test_dataset_adds_the_references_and_out_is_honoured(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = write_hdf5(tmp_path / "hopper_tiny-v2.hdf5", known_arrays())
    tiny_set().save(tmp_path / "set.npz")
    main([str(tmp_path / "set.npz"), *FAST, "dataset=hopper-medium-v2",
          f"dataset.path={data}", "out=result.json",
          f"cache_dir={tmp_path / 'cache'}", "eval.bc_steps=3"])
    written = json.loads((tmp_path / "result.json").read_text())
    refs = written["references"]
    assert refs["random_subset"]["students"] == 2 and refs["whole_data_bc"]["students"] == 1
    assert refs["teacher"] is None
    assert len(list((tmp_path / "cache").glob("*.json"))) == 2


def test_missing_scores_are_said_and_the_raw_return_kept(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    tiny_set("someone/else/data-v0").save(tmp_path / "set.npz")
    main(["set.npz", *FAST])
    written = json.loads((tmp_path / "set.eval.json").read_text())
    assert written["standard"]["normalised_mean"] is None
    assert np.isfinite(written["standard"]["return_mean"])
    assert "not in" in written["reference_scores"]["missing"]
    assert "normalised score unavailable" in capsys.readouterr().out


def test_minari_reference_scores_come_from_the_local_metadata(isolated_data_dirs):
    _, minari = isolated_data_dirs
    meta = minari / "sdw" / "hopper" / "medium-v0" / "data" / "metadata.json"
    meta.parent.mkdir(parents=True)
    meta.write_text(json.dumps({"ref_min_score": -10.0, "ref_max_score": 990.0}))
    scores, reason = artefact_reference_scores(tiny_set("sdw/hopper/medium-v0"))
    assert (scores.min, scores.max, reason) == (-10.0, 990.0, "")


def test_unreadable_artefact_is_one_line_and_exit_code_2(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("broken.npz").write_text("not a set")
    with pytest.raises(SystemExit) as exit_info:
        main(["broken.npz", *FAST])
    assert exit_info.value.code == 2
    assert "broken.npz" in capsys.readouterr().err


def test_the_eval_app_config_documents_its_fields():
    from sdw.config import config_dir

    for line in (config_dir() / "evaluate.yaml").read_text().splitlines():
        field = line.split(":", 1)[0]
        if ":" in line and field.isidentifier() and field not in ("defaults", "hydra"):
            assert "#" in line, f"conf/evaluate.yaml: undocumented field {line!r}"
