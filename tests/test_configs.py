"""Every option of every config group composes into the run config and instantiates; every field
of every group is documented; every experiment composes with its sweep grid."""

import re

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from sdw.app.logger import LoggerConfig
from sdw.config import config_dir
from sdw.data.source import DatasetConfig
from sdw.density import DensityEstimator, WeightingScheme
from sdw.distill import InnerOptimConfig, ObjectiveConfig, OuterOptimConfig, SyntheticConfig
from sdw.evaluate.protocol import EvalProtocol
from sdw.networks import ActorConfig
from sdw.teacher.build import CorlConfig
from sdw.teacher.offline_rl import OfflineRLConfig

KINDS = {"dataset": DatasetConfig, "teacher": (OfflineRLConfig, CorlConfig),
         "density": DensityEstimator, "weighting": WeightingScheme, "objective": ObjectiveConfig,
         "synthetic": SyntheticConfig, "student": ActorConfig, "inner_optim": InnerOptimConfig,
         "outer_optim": OuterOptimConfig, "eval": EvalProtocol, "logger": LoggerConfig}
"""One shape: every group's node builds an instance of one class (paths is plain values)."""
APP_GROUPS = [*KINDS, "paths"]
OPTIONS = [(group, path.stem) for group in APP_GROUPS
           for path in sorted((config_dir() / group).glob("*.yaml"))]
EXPERIMENTS = sorted(p.stem for p in (config_dir() / "experiment").glob("*.yaml"))
NEEDS = {("teacher", "corl"): ["teacher.path=teacher.pt"]}
FIELD = re.compile(r"^([A-Za-z_][\w-]*):")


def _compose(overrides, hydra=False):
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        return compose("run", overrides=overrides, return_hydra_config=hydra)


@pytest.mark.parametrize("group, option", OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_composes_instantiates_and_documents_its_fields(group, option):
    cfg = _compose([f"{group}={option}", *NEEDS.get((group, option), [])])
    if group in KINDS:
        built = instantiate(cfg[group])
        assert isinstance(built, KINDS[group])
        assert cfg[group]._target_.endswith(type(built).__name__)
    for line in (config_dir() / group / f"{option}.yaml").read_text().splitlines():
        match = FIELD.match(line)
        if match and match.group(1) not in ("defaults", "_target_"):
            assert "#" in line, f"conf/{group}/{option}.yaml: undocumented field {line!r}"


def test_the_run_config_documents_its_own_fields():
    for line in (config_dir() / "run.yaml").read_text().splitlines():
        match = FIELD.match(line)
        if match and match.group(1) not in ("defaults", "hydra"):
            assert "#" in line, f"conf/run.yaml: undocumented field {line!r}"


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_and_instantiates(experiment):
    cfg = _compose([f"experiment={experiment}"], hydra=True)
    assert cfg.name == experiment
    params = cfg.hydra.sweeper.params
    assert params and "seed" in params and str(cfg.hydra.mode) == "RunMode.MULTIRUN"
    for value in params.values():
        assert "," in str(value) or value  # a grid or a single value, never empty
    for group, kind in KINDS.items():
        assert isinstance(instantiate(cfg[group]), kind)
    # the table number averages evaluations of the run's second half only
    assert cfg.eval.last_k * cfg.eval.every <= cfg.outer_steps / 2
    if experiment.endswith("-local"):
        assert cfg.threads == 1 and cfg.hydra.launcher.n_jobs == 2
        assert all(d.startswith("local-") for d in str(params.dataset).split(","))
    else:  # the paper's schedule: every 1000 outer steps, 10 episodes, the last 5
        assert (cfg.eval.every, cfg.eval.episodes, cfg.eval.last_k) == (1000, 10, 5)
    if experiment.startswith("cross-arch"):
        assert len(cfg.eval.architectures) == 6 and len(cfg.eval.optimisers) == 3
    if experiment.startswith("ensemble"):
        assert cfg.eval.ensemble == 10


def test_paper_defaults():
    cfg = _compose(["objective=avpbc", "student=mlp3x256", "synthetic=real", "inner_optim=sgd",
                    "outer_optim=paper"])
    objective, student = instantiate(cfg.objective), instantiate(cfg.student)
    synthetic, inner = instantiate(cfg.synthetic), instantiate(cfg.inner_optim)
    outer = instantiate(cfg.outer_optim)
    assert (objective.name, objective.beta, objective.batch_size) == ("avpbc", 0.02, 2560)
    assert objective.teacher_actions == "sampled"
    assert student.hidden_sizes == (256, 256, 256) and student.sample_actions
    assert (synthetic.size, synthetic.init) == (256, "real")
    assert (outer.name, outer.lr, outer.momentum, outer.clip_norm, outer.schedule) == (
        "sgd", 0.1, 0.9, 2.0, "constant")
    assert (inner.name, inner.lr, inner.steps, inner.momentum) == ("sgd", 0.1, 100, 0.0)
