"""CORL-format checkpoints (the official OBD teachers) load into a Teacher with the same outputs."""

import __main__

import numpy as np
import pytest
import torch
from torch import nn

from sdw.data.dataset import StateNormaliser
from sdw.teacher.base import Teacher
from sdw.teacher.corl import load_corl_teacher

OBS, ACT = 17, 6


def _main_scalar_class() -> type[nn.Module]:
    """A class pickled as `__main__.Scalar`, like the one a CORL training script defines."""

    class Scalar(nn.Module):
        def __init__(self, value: float):
            super().__init__()
            self.constant = nn.Parameter(torch.tensor(value))

    Scalar.__module__, Scalar.__qualname__ = "__main__", "Scalar"
    return Scalar


class _CorlActor(nn.Module):
    """CORL's TanhGaussianPolicy, written out independently of sdw."""

    def __init__(self, scalar: type[nn.Module]):
        super().__init__()
        self.base_network = nn.Sequential(
            nn.Linear(OBS, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
            nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 2 * ACT))
        self.log_std_multiplier = scalar(1.0)
        self.log_std_offset = scalar(-1.0)

    def forward(self, obs, deterministic, noise=None):
        mean, log_std = torch.split(self.base_network(obs), ACT, dim=-1)
        log_std = (self.log_std_multiplier.constant * log_std
                   + self.log_std_offset.constant).clamp(-20, 2)
        return torch.tanh(mean) if deterministic else torch.tanh(mean + log_std.exp() * noise)


def _corl_critic() -> nn.Module:
    return nn.Sequential(nn.Linear(OBS + ACT, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                         nn.Linear(256, 1))


@pytest.fixture
def corl_checkpoint(tmp_path, monkeypatch):
    """A checkpoint laid out as CORL's Cal-QL `state_dict()`, incl. pickled __main__.Scalar."""
    scalar = _main_scalar_class()
    monkeypatch.setattr(__main__, "Scalar", scalar, raising=False)
    torch.manual_seed(0)
    actor, critic1, critic2 = _CorlActor(scalar), _corl_critic(), _corl_critic()
    with torch.no_grad():  # non-default scalars, so a loader that ignores them fails
        actor.log_std_multiplier.constant.fill_(0.7)
        actor.log_std_offset.constant.fill_(-0.4)
    opt = torch.optim.Adam(actor.parameters(), lr=3e-4)
    actor(torch.randn(4, OBS), True).sum().backward()
    opt.step()
    ckpt = {"actor": actor.state_dict(),
            "critic1": {f"network.{k}": v for k, v in critic1.state_dict().items()},
            "critic2": {f"network.{k}": v for k, v in critic2.state_dict().items()},
            "actor_optim": opt.state_dict(), "sac_log_alpha": scalar(0.0),
            "cql_log_alpha": scalar(1.0), "total_it": 1000}
    path = tmp_path / "Cal-QL-halfcheetah-medium-v2" / "checkpoint.pt"
    path.parent.mkdir()
    torch.save(ckpt, path)
    return path, actor, critic1, critic2


def _normaliser() -> StateNormaliser:
    return StateNormaliser(np.zeros(OBS, np.float32), np.ones(OBS, np.float32))


def test_corl_checkpoint_loads_and_gives_the_same_actions_and_values(corl_checkpoint):
    path, actor, critic1, critic2 = corl_checkpoint
    teacher = load_corl_teacher(path, normaliser=_normaliser())
    assert isinstance(teacher, Teacher)
    s, noise = torch.randn(32, OBS), torch.randn(32, ACT)
    with torch.no_grad():
        torch.testing.assert_close(teacher.act(s, deterministic=True), actor(s, True),
                                   rtol=0, atol=0)
        torch.testing.assert_close(teacher.actor(s, noise=noise), actor(s, False, noise),
                                   rtol=0, atol=0)
        a = teacher.act(s)
        torch.testing.assert_close(teacher.q(s, a), critic1(torch.cat([s, a], 1)).squeeze(-1),
                                   rtol=0, atol=0)
        other = load_corl_teacher(path, normaliser=_normaliser(), critic="critic2")
        torch.testing.assert_close(other.q(s, a), critic2(torch.cat([s, a], 1)).squeeze(-1),
                                   rtol=0, atol=0)
    sampled = teacher.act(s, deterministic=False)
    assert sampled.shape == (32, ACT) and not torch.equal(sampled, teacher.act(s))


def test_corl_teacher_takes_the_dataset_statistics(corl_checkpoint):
    from sdw.testing.toy import random_dataset

    dataset = random_dataset(3000, OBS, ACT)
    teacher = load_corl_teacher(corl_checkpoint[0], dataset=dataset)
    assert np.array_equal(teacher.normaliser.mean, dataset.state_normaliser().mean)
    with pytest.raises(ValueError, match="no state statistics"):
        load_corl_teacher(corl_checkpoint[0])


def test_missing_file_names_the_official_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match="Cal-QL-<d4rl-name>/checkpoint.pt"):
        load_corl_teacher(tmp_path / "nope.pt", normaliser=_normaliser())


def test_checkpoint_without_actor_is_refused(tmp_path):
    path = tmp_path / "c.pt"
    torch.save({"critic1": {}}, path)
    with pytest.raises(ValueError, match="has no \\['actor'\\]"):
        load_corl_teacher(path, normaliser=_normaliser())


def test_wrong_state_dimension_is_refused(corl_checkpoint):
    wrong = StateNormaliser(np.zeros(11, np.float32), np.ones(11, np.float32))
    with pytest.raises(ValueError, match="17-dimensional states"):
        load_corl_teacher(corl_checkpoint[0], normaliser=wrong)


class _Payload:
    """An arbitrary pickled object: must not be unpickled unless the file is trusted."""


def test_foreign_pickled_objects_are_refused_unless_trusted(tmp_path, corl_checkpoint):
    ckpt = torch.load(corl_checkpoint[0], weights_only=False)
    ckpt["extra"] = _Payload()
    path = tmp_path / "c.pt"
    torch.save(ckpt, path)
    with pytest.raises(ValueError, match="trusted=True"):
        load_corl_teacher(path, normaliser=_normaliser())
    assert load_corl_teacher(path, normaliser=_normaliser(), trusted=True) is not None


def test_corl_config_builds_the_teacher_with_the_dataset_statistics(corl_checkpoint):
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from sdw.config import config_dir
    from sdw.teacher.build import build_teacher
    from sdw.testing.toy import random_dataset

    cfg = OmegaConf.load(config_dir() / "teacher" / "corl.yaml")
    cfg.path, cfg.device = str(corl_checkpoint[0]), "cpu"
    dataset = random_dataset(3000, OBS, ACT)
    teacher = build_teacher(instantiate(cfg), dataset, cache_dir=None)
    assert np.array_equal(teacher.normaliser.std, dataset.state_normaliser().std)