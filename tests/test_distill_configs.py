"""Every config of the distillation groups composes, instantiates, and documents its fields."""

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from sdw.config import config_dir
from sdw.distill import InnerOptimConfig, ObjectiveConfig, OuterOptimConfig, SyntheticConfig
from sdw.networks import ActorConfig

GROUPS = {"objective": ObjectiveConfig, "student": ActorConfig, "synthetic": SyntheticConfig,
          "inner_optim": InnerOptimConfig, "outer_optim": OuterOptimConfig}
OPTIONS = [(group, path.stem) for group in GROUPS
           for path in sorted((config_dir() / group).glob("*.yaml"))]


@pytest.mark.parametrize("group, option", OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_config_composes_and_instantiates(group, option):
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(overrides=[f"+{group}={option}"])
    built = instantiate(cfg[group])
    assert isinstance(built, GROUPS[group])
    text = (config_dir() / group / f"{option}.yaml").read_text()
    for line in text.splitlines():
        if ":" in line and not line.startswith(("#", " ", "-", "defaults", "_target_")):
            assert "#" in line, f"{group}/{option}.yaml: undocumented field {line!r}"


def test_paper_defaults():
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(overrides=["+objective=avpbc", "+student=mlp3x256", "+synthetic=real",
                                 "+inner_optim=sgd", "+outer_optim=paper"])
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
