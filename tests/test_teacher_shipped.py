"""Shipped teachers: found through the dataset's content hash and config hash, nothing trained."""

from __future__ import annotations

import json
import logging
from dataclasses import replace

import pytest
import torch
from hydra.utils import instantiate

from sdw.overrides import check_overrides
from sdw.teacher import train as train_module
from sdw.teacher.cache import SHIPPED_ROOT, TeacherCache, read_record, ship_record
from sdw.teacher.td3bc import TD3BCTrainer
from sdw.teacher.train import resolve_max_action, train_teacher
from tests.test_teacher_td3bc import SMALL, linear_dataset


@pytest.fixture
def shipped_dir(tmp_path, monkeypatch):
    """A fake shipped folder holding the float16 teacher of `linear_dataset()` under SMALL."""
    cache = tmp_path / "trained"
    teacher = train_teacher(linear_dataset(), SMALL, cache)
    header = teacher.cfg.cache_header(teacher.provenance["dataset_hash"])
    source = TeacherCache(cache).entry("td3bc", header["dataset_hash"], header["config_hash"])
    shipped = tmp_path / "shipped"
    record = ship_record(read_record(source), "float16")
    TeacherCache(shipped).save(TeacherCache(shipped).entry("td3bc", header["dataset_hash"],
                                                           header["config_hash"]),
                               record, {k: v for k, v in record.items() if k != "state_dict"})
    monkeypatch.setattr(train_module, "SHIPPED_ROOT", shipped)
    return shipped, teacher


def test_a_shipped_teacher_is_loaded_and_nothing_is_trained(shipped_dir, tmp_path, monkeypatch,
                                                              caplog):
    _, trained = shipped_dir

    def no_training(*_args, **_kwargs):
        raise AssertionError("a shipped teacher exists: nothing may be trained")

    monkeypatch.setattr(TD3BCTrainer, "__init__", no_training)
    with caplog.at_level(logging.INFO, logger="sdw.teacher.train"):
        teacher = train_teacher(linear_dataset(), SMALL, tmp_path / "empty-cache")
    assert "is shipped with sdw" in caplog.text
    assert teacher.origin.startswith("shipped ") and teacher.origin.endswith(".pt")
    assert trained.origin == "trained"
    assert not (tmp_path / "empty-cache" / "td3bc").exists()
    states = torch.randn(64, 4)
    for name, param in teacher.state_dict().items():
        assert param.dtype == torch.float32, name
    torch.testing.assert_close(teacher.act(states), trained.act(states), atol=2e-2, rtol=0)


def test_no_shipped_teacher_for_another_config_or_dataset(shipped_dir, monkeypatch):
    trainers = []
    init = TD3BCTrainer.__init__

    def counting(self, *args, **kwargs):
        trainers.append(1)
        init(self, *args, **kwargs)

    monkeypatch.setattr(TD3BCTrainer, "__init__", counting)
    train_teacher(linear_dataset(), replace(SMALL, seed=1), None)
    train_teacher(linear_dataset(seed=1), SMALL, None)
    assert len(trainers) == 2


def test_shipped_files_are_valid_teacher_records():
    for path in sorted(SHIPPED_ROOT.glob("*/*.pt")):
        record = read_record(path)
        assert path.name == f"{record['dataset_hash']}-{record['config_hash']}.pt"
        assert record["evaluation"]["episodes"] == 10


STUDY_DATASETS = [f"local-{env}-{level}" for env in ("hopper", "halfcheetah", "walker2d")
                  for level in ("medium", "medium-replay", "medium-expert")]
ENV_IDS = {"hopper": "Hopper-v4", "halfcheetah": "HalfCheetah-v4", "walker2d": "Walker2d-v4"}


@pytest.mark.parametrize("name", STUDY_DATASETS)
def test_every_study_teacher_option_is_a_shipped_teacher(name):
    """conf/teacher/study/<dataset>.yaml composes to the config hash of a teacher shipped for it."""
    cfg = instantiate(check_overrides("run", [f"teacher=study/{name}", "device=cpu"]).teacher)
    cfg = replace(cfg, max_action=resolve_max_action(cfg, ENV_IDS[name.split("-")[1]]))
    shipped = [json.loads(p.read_text()) for p in SHIPPED_ROOT.glob(f"{cfg.ALGORITHM}/*.json")]
    ours = [s for s in shipped if s["shipped"]["dataset_name"] == name]
    header = cfg.cache_header(ours[0]["dataset_hash"])
    assert header["config_hash"] in {s["config_hash"] for s in ours}, name


@pytest.mark.parametrize("experiment", ["obd-table1-local", "sdw-study-local", "pilot-local",
                                        "sdw-calibration-local", "budget-local"])
def test_the_study_experiments_take_each_datasets_study_teacher(experiment):
    for name in ("local-hopper-medium-expert", "local-walker2d-medium"):
        ours = check_overrides("run", [f"experiment={experiment}", f"dataset={name}"]).teacher
        chosen = check_overrides("run", [f"teacher=study/{name}"]).teacher
        assert ours == chosen and ours.steps == (400000 if "hopper" in name else 200000)
