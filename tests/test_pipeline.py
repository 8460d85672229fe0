"""The pieces plug together from their Hydra configs: data -> teacher -> density/weights ->
distill -> evaluate, on a small real Hopper-v4 dataset collected in the test."""

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from sdw.config import config_dir
from sdw.data.d4rl import D4RLSource
from sdw.data.example import collect_random_transitions, write_d4rl_hdf5
from sdw.density import build_state_weights
from sdw.distill import SyntheticSet, distill, student_policy, train_student
from sdw.evaluate.rollout import evaluate_policy


GROUPS = {"teacher": "td3bc", "density": "knn", "weighting": "self-normalised",
          "objective": "avpbc", "student": "official_mlp3", "synthetic": "real", "inner_optim": "sgd"}
OVERRIDES = ["teacher.cfg.steps=200", "teacher.cfg.eval_episodes=1", "teacher.cfg.hidden_dims=[32,32]",
             "objective.batch_size=256", "student.hidden_sizes=[32,32]", "synthetic.size=16",
             "inner_optim.steps=10"]


@pytest.fixture(scope="module")
def hopper(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "hopper_random-example.hdf5"
    write_d4rl_hdf5(path, collect_random_transitions("Hopper-v4", 3000, seed=0))
    return D4RLSource(path=str(path)).load()


def test_sdw_avpbc_end_to_end_from_configs(hopper, tmp_path):
    with initialize_config_dir(str(config_dir()), version_base=None):
        cfg = compose(overrides=[f"+{g}={o}" for g, o in GROUPS.items()] + OVERRIDES
                      + [f"teacher.cache_dir={tmp_path / 'teachers'}"])
    teacher = instantiate(cfg.teacher)(dataset=hopper)
    assert teacher.provenance["dataset_hash"] == hopper.content_hash

    weights, diagnostics = build_state_weights(hopper, cfg.density, cfg.weighting, tmp_path / "density")
    assert diagnostics.to_dict()["density/weight_max"] > 1.0
    assert len(weights) == len(hopper.qlearning_view())

    losses = []
    synthetic = distill(
        hopper, teacher,
        objective=instantiate(cfg.objective), student=instantiate(cfg.student),
        synthetic=instantiate(cfg.synthetic), inner=instantiate(cfg.inner_optim),
        outer_steps=3, seed=0, state_weights=weights, method="sdw-avpbc", progress=False,
        callback=lambda info: losses.append(info.outer_loss))
    assert len(losses) == 3 and np.isfinite(losses).all()
    assert synthetic.env_id == "Hopper-v4" and synthetic.method == "sdw-avpbc"

    loaded = SyntheticSet.load(synthetic.save(tmp_path / "synthetic.npz"))
    student = train_student(loaded, instantiate(cfg.student), instantiate(cfg.inner_optim))
    result = evaluate_policy(student_policy(student), loaded.env_id, n_episodes=2, seed=0,
                             normaliser=loaded.normaliser,
                             reference_scores=hopper.metadata.reference_scores,
                             max_episode_steps=100)
    assert result.normalised_mean is not None and np.isfinite(result.returns).all()
