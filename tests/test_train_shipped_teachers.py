"""scripts/train_shipped_teachers.py: the configurations its `train` and `premise` use."""

import importlib.util
from pathlib import Path

import pytest

from sdw.teacher.td3bc import TD3BCConfig

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "train_shipped_teachers.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("train_shipped_teachers", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_td3bc_is_the_documented_configuration_at_the_asked_steps(script):
    cfg = script.teacher_config("local-walker2d-medium", 400_000)
    expected = TD3BCConfig(steps=400_000)
    assert cfg.cache_header("h")["config_hash"] == expected.cache_header("h")["config_hash"]
    assert (cfg.eval_every, cfg.eval_episodes, cfg.device) == (script.EVAL_EVERY, 10, "cpu")


@pytest.mark.parametrize("name, beta, expectile, scaled, deterministic, tau", [
    ("local-hopper-medium", 3.0, 0.7, True, True, 0.001),
    ("local-hopper-medium-replay", 3.0, 0.7, True, True, 0.001),
    ("local-hopper-medium-expert", 6.0, 0.5, False, False, 0.005),
    ("local-walker2d-medium", 3.0, 0.7, False, False, 0.005),
])
def test_iql_takes_corl_settings_of_the_dataset(script, name, beta, expectile, scaled,
                                                deterministic, tau):
    cfg = script.teacher_config(name, 1234, "iql")
    assert cfg.ALGORITHM == "iql" and cfg.steps == 1234
    assert (cfg.beta, cfg.expectile, cfg.normalize_reward, cfg.deterministic_actor, cfg.tau) == (
        beta, expectile, scaled, deterministic, tau)
