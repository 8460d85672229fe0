"""The bi-level loop end to end on toy data with a linear teacher."""

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from sdw.data.dataset import StateNormaliser
from sdw.distill import (DistillationDiverged, InnerOptimConfig, ObjectiveConfig,
                         OuterOptimConfig, SyntheticConfig, SyntheticSet, checkpoint_step, distill,
                         student_policy, train_student)
from sdw.distill.outer_optim import PAPER_RECIPE
from sdw.networks import ActorConfig
from sdw.overrides import check_overrides
from sdw.testing.toy import LinearTeacher, random_dataset

OBS, ACT = 5, 2


@pytest.fixture(scope="module")
def toy():
    dataset = random_dataset(2000, OBS, ACT, seed=0)
    gain = torch.randn(OBS, ACT, generator=torch.Generator().manual_seed(3))
    return dataset, LinearTeacher(gain, dataset.state_normaliser())


def _run(dataset, teacher, steps=4, **overrides):
    kwargs = dict(objective=ObjectiveConfig("avpbc", batch_size=128),
                  student=ActorConfig(hidden_sizes=(16, 16)), synthetic=SyntheticConfig(size=16),
                  inner=InnerOptimConfig(steps=5), outer_steps=steps, seed=0, progress=False)
    kwargs.update(overrides)
    return distill(dataset, teacher, **kwargs)


@pytest.mark.parametrize("seed", [0, 1])
def test_outer_loss_falls_tenfold_on_a_linear_teacher(toy, seed):
    dataset, teacher = toy
    losses = []
    _run(dataset, teacher, steps=150, seed=seed,
         objective=ObjectiveConfig("pbc", teacher_actions="deterministic", batch_size=256),
         student=ActorConfig(hidden_sizes=(32, 32), head="deterministic", sample_actions=False),
         synthetic=SyntheticConfig(size=32), outer=OuterOptimConfig("sgd", lr=1.0),
         inner=InnerOptimConfig(steps=20),
         callback=lambda info: losses.append(info.outer_loss))
    assert np.mean(losses[:10]) / np.mean(losses[-10:]) >= 10


def test_artefact_carries_the_dataset_statistics_and_identity(toy):
    dataset, teacher = toy
    result = _run(dataset, teacher, steps=2)
    reference = dataset.state_normaliser()
    assert np.array_equal(result.normaliser.mean, reference.mean)
    assert np.array_equal(result.normaliser.std, reference.std)
    assert (result.env_id, result.dataset_name, result.dataset_hash, result.method) == (
        dataset.metadata.env_id, dataset.metadata.name, dataset.content_hash, "avpbc")
    assert result.config["inner_optim"]["name"] == "sgd" and result.info["outer_steps"] == 2
    assert len(result) == 16 and np.isfinite(result.info["outer_loss"])


def test_teacher_with_other_statistics_is_refused(toy):
    dataset, teacher = toy
    wrong = LinearTeacher(teacher.gain, StateNormaliser(dataset.observations.mean(0),
                                                        dataset.observations.std(0)))
    with pytest.raises(ValueError, match="state normalisation differs"):
        _run(dataset, wrong)


def test_unit_state_weights_reproduce_the_vanilla_run_exactly(toy):
    dataset, teacher = toy
    plain = _run(dataset, teacher)
    seen = []

    def ones(indices):
        seen.append(indices)
        return torch.ones(len(indices))

    weighted = _run(dataset, teacher, state_weights=ones)
    assert np.array_equal(plain.states, weighted.states)
    assert np.array_equal(plain.actions, weighted.actions)
    indices = torch.cat(seen)
    assert len(seen) == 4 and indices.dtype == torch.long
    assert 0 <= int(indices.min()) and int(indices.max()) < len(dataset.qlearning_view())


def test_state_weights_enter_the_objective(toy):
    dataset, teacher = toy
    start = _run(dataset, teacher, steps=0)
    frozen = _run(dataset, teacher, state_weights=lambda idx: torch.zeros(len(idx)))
    assert np.array_equal(start.states, frozen.states)  # zero weights: zero meta-gradient
    moved = _run(dataset, teacher, state_weights=lambda idx: (idx % 2).float())
    assert not np.array_equal(start.states, moved.states)


def test_resumed_run_equals_an_uninterrupted_one(toy, tmp_path):
    dataset, teacher = toy  # sampled teacher actions: the global RNG must be restored too
    full = _run(dataset, teacher, steps=6)
    ckpt = tmp_path / "run.pt"
    _run(dataset, teacher, steps=3, checkpoint=ckpt, checkpoint_every=2)
    resumed_steps = []
    resumed = _run(dataset, teacher, steps=6, checkpoint=ckpt, checkpoint_every=2,
                   callback=lambda info: resumed_steps.append(info.step))
    assert resumed_steps == [4, 5, 6]
    assert np.array_equal(full.states, resumed.states)
    assert np.array_equal(full.actions, resumed.actions)
    with pytest.raises(ValueError, match="different settings"):
        _run(dataset, teacher, steps=6, checkpoint=ckpt, seed=1)


@pytest.mark.parametrize("outer", [
    OuterOptimConfig("adam", lr=0.01, action_lr=0.003, schedule="cosine", min_lr_fraction=0.1),
    OuterOptimConfig("sgd", lr=0.1, clip_norm=None, schedule="cosine")], ids=["adam", "sgd"])
def test_resume_is_exact_with_every_outer_optimiser(toy, tmp_path, outer):
    dataset, teacher = toy  # optimiser moments and the lr schedule live in the checkpoint
    full = _run(dataset, teacher, steps=5, outer=outer)
    ckpt = tmp_path / "run.pt"

    def interrupt(info):
        if info.step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _run(dataset, teacher, steps=5, checkpoint=ckpt, checkpoint_every=2, outer=outer,
             callback=interrupt)
    assert checkpoint_step(ckpt) == 2
    resumed = _run(dataset, teacher, steps=5, checkpoint=ckpt, checkpoint_every=2, outer=outer)
    assert np.array_equal(full.states, resumed.states)
    assert np.array_equal(full.actions, resumed.actions)
    assert resumed.config["outer_optim"]["name"] == outer.name
    with pytest.raises(ValueError, match="different settings.*outer_optim"):
        _run(dataset, teacher, steps=5, checkpoint=ckpt, outer=OuterOptimConfig())
    with pytest.raises(ValueError, match="different settings.*outer_steps"):
        _run(dataset, teacher, steps=9, checkpoint=ckpt, outer=outer)


def test_outer_optimisers_take_different_steps(toy):
    dataset, teacher = toy
    sgd = _run(dataset, teacher, steps=3, outer=PAPER_RECIPE)
    adam = _run(dataset, teacher, steps=3)  # the default: sdw-run's Adam, lr 0.01
    assert OuterOptimConfig() == instantiate(check_overrides("run", []).outer_optim)  # sdw-run's
    assert PAPER_RECIPE == instantiate(check_overrides("run", ["outer_optim=paper"]).outer_optim)
    frozen_actions = _run(dataset, teacher, steps=3,
                          outer=OuterOptimConfig("adam", lr=0.01, action_lr=1e-30))
    start = _run(dataset, teacher, steps=0)
    assert not np.allclose(sgd.states, adam.states)
    np.testing.assert_allclose(frozen_actions.actions, start.actions, atol=1e-20)
    assert not np.allclose(frozen_actions.states, start.states)


def test_a_diverging_run_stops_and_keeps_the_last_good_checkpoint(toy, tmp_path):
    dataset, teacher = toy
    ckpt = tmp_path / "run.pt"
    calls = []

    def weights(indices):
        calls.append(1)
        return torch.full((len(indices),), 3e38 if len(calls) > 3 else 1.0)  # overflows the loss

    with pytest.raises(DistillationDiverged, match="outer step 4.*kept at"):
        _run(dataset, teacher, steps=6, checkpoint=ckpt, checkpoint_every=2,
             state_weights=weights)
    assert checkpoint_step(ckpt) == 2


def test_bad_outer_optimiser_settings_are_named():
    with pytest.raises(ValueError, match="outer_optim.name='rmsprop'"):
        OuterOptimConfig("rmsprop")
    with pytest.raises(ValueError, match="outer_optim.lr=0"):
        OuterOptimConfig(lr=0)


def test_unroll_and_analytic_loops_agree(toy):
    dataset, teacher = toy
    fast = _run(dataset, teacher, steps=3)
    slow = _run(dataset, teacher, steps=3, meta_gradient="unroll")
    np.testing.assert_allclose(fast.states, slow.states, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(fast.actions, slow.actions, rtol=1e-4, atol=1e-5)


def test_callback_snapshots_round_trip(toy, tmp_path):
    dataset, teacher = toy
    snapshots = []
    final = _run(dataset, teacher, steps=2, objective=ObjectiveConfig("dbc", batch_size=64),
                 callback=lambda info: snapshots.append(info.snapshot()))
    assert len(snapshots) == 2 and np.array_equal(snapshots[-1].states, final.states)
    loaded = SyntheticSet.load(final.save(tmp_path / "final.npz"))
    assert np.array_equal(loaded.states, final.states) and loaded.method == "dbc"


def test_compose_of_the_state_weights_decides_the_avpbc_weight(toy):
    dataset, teacher = toy

    class Weights:
        def __init__(self, compose):
            self.compose = compose

        def __call__(self, indices):
            return torch.ones(len(indices))

    def first_loss(weights):
        losses = []
        _run(dataset, teacher, steps=1, state_weights=weights, seed=3,
             objective=ObjectiveConfig("avpbc", teacher_actions="deterministic", batch_size=128),
             callback=lambda info: losses.append(info.outer_loss))
        return losses[0]

    pbc = []
    _run(dataset, teacher, steps=1, seed=3,
         objective=ObjectiveConfig("pbc", teacher_actions="deterministic", batch_size=128),
         callback=lambda info: pbc.append(info.outer_loss))
    assert first_loss(Weights("replace")) == pytest.approx(pbc[0], rel=1e-6)
    assert first_loss(Weights("multiply")) == pytest.approx(first_loss(None), rel=1e-6)
    assert first_loss(Weights("multiply")) != pytest.approx(pbc[0], rel=1e-3)


def test_a_synthetic_set_gives_a_policy_that_acts_on_raw_observations(toy, tmp_path):
    dataset, teacher = toy
    synthetic = _run(dataset, teacher, steps=2)
    synthetic.save(tmp_path / "set.npz")
    loaded = SyntheticSet.load(tmp_path / "set.npz")
    policy = loaded.policy(seed=3)
    raw = dataset.observations[:7]
    actions = policy.act(raw)
    assert actions.shape == (7, ACT) and policy.act(raw[0]).shape == (ACT,)
    # the same student as the recipe the set carries trains, on states normalised by the set
    student = train_student(loaded, ActorConfig(hidden_sizes=(16, 16)), InnerOptimConfig(steps=5),
                            seed=3)
    expected = student_policy(student)(loaded.normaliser(raw))
    np.testing.assert_allclose(actions, expected, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="carries no student or inner_optim recipe"):
        SyntheticSet(loaded.states, loaded.actions, loaded.normaliser, "Hopper-v4", "x", "h",
                     "random-subset").policy()
