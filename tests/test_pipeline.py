"""The README's Python pipeline: data -> teacher -> density/weights -> distill -> evaluate, from
the composed run config, on a small real Hopper-v4 dataset collected in the test."""

import numpy as np
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from sdw.config import config_dir
from sdw.data.example import collect_random_transitions, write_d4rl_hdf5
from sdw.density import build_state_weights
from sdw.distill import SyntheticSet, distill
from sdw.teacher.build import build_teacher

SMALL = ["teacher.steps=200", "teacher.eval_episodes=1", "teacher.hidden_dims=[32,32]",
         "objective.batch_size=256", "student.hidden_sizes=[32,32]", "synthetic.size=16",
         "inner_optim.steps=10", "eval=quick"]


def test_the_readme_pipeline_runs_from_the_run_config(tmp_path):
    path = tmp_path / "hopper_random-example.hdf5"
    write_d4rl_hdf5(path, collect_random_transitions("Hopper-v4", 3000, seed=0))
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        cfg = compose("run", overrides=[f"dataset.path={path}", *SMALL])

    dataset = instantiate(cfg.dataset).load()
    teacher = build_teacher(instantiate(cfg.teacher), dataset, tmp_path / "teachers")
    assert teacher.provenance["dataset_hash"] == dataset.content_hash
    weights, diagnostics = build_state_weights(dataset, cfg.density, cfg.weighting,
                                               tmp_path / "density")
    assert 0 < diagnostics.ess_fraction < 1 and len(weights) == len(dataset.qlearning_view())

    student, inner = instantiate(cfg.student), instantiate(cfg.inner_optim)
    losses = []
    synthetic = distill(dataset, teacher, objective=instantiate(cfg.objective), student=student,
                        synthetic=instantiate(cfg.synthetic), inner=inner,
                        outer=instantiate(cfg.outer_optim), outer_steps=3, state_weights=weights,
                        progress=False, callback=lambda info: losses.append(info.outer_loss))
    assert len(losses) == 3 and np.isfinite(losses).all() and synthetic.env_id == "Hopper-v4"

    loaded = SyntheticSet.load(synthetic.save(tmp_path / "synthetic.npz"))
    result = instantiate(cfg.eval).final(loaded, student, inner, dataset.metadata.reference_scores)
    assert result["standard"]["normalised_mean"] is not None
    assert len(result["standard"]["per_student"]) == 2
