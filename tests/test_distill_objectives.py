"""Outer objectives: values by hand, state weights, teacher targets."""

import pytest
import torch

from sdw.distill.objectives import (ObjectiveConfig, OuterTargets, avpbc_loss,
                                    check_state_weights, dbc_loss, pbc_loss)
from sdw.testing.toy import LinearTeacher, random_dataset

PRED = torch.tensor([[0.5, -0.5], [1.0, 0.0], [0.0, 0.2]])
TARGET = torch.tensor([[0.0, 0.5], [0.0, 0.0], [0.4, 0.2]])
# per-state mean squared errors: (0.25 + 1) / 2, (1 + 0) / 2, (0.16 + 0) / 2
ERRORS = [0.625, 0.5, 0.08]


def test_dbc_and_pbc_by_hand():
    expected = sum(ERRORS) / 3
    assert dbc_loss(PRED, TARGET).item() == pytest.approx(expected, rel=1e-6)
    assert pbc_loss(PRED, TARGET).item() == pytest.approx(expected, rel=1e-6)
    # the official nn.MSELoss over all entries gives the same value
    assert torch.nn.functional.mse_loss(PRED, TARGET).item() == pytest.approx(expected, rel=1e-6)


def test_avpbc_by_hand():
    q = torch.tensor([100.0, 50.0, -10.0])
    expected = (0.02 * 100 * 0.625 + 0.02 * 50 * 0.5 + 0.02 * -10 * 0.08) / 3
    assert avpbc_loss(PRED, TARGET, q).item() == pytest.approx(expected, rel=1e-6)
    assert avpbc_loss(PRED, TARGET, q, beta=1.0).item() == pytest.approx(expected / 0.02, rel=1e-6)


def test_state_weights_by_hand():
    w = torch.tensor([2.0, 0.5, 10.0])
    q = torch.tensor([100.0, 50.0, -10.0])
    weighted = (2 * 0.625 + 0.5 * 0.5 + 10 * 0.08) / 3
    assert dbc_loss(PRED, TARGET, w).item() == pytest.approx(weighted, rel=1e-6)
    assert pbc_loss(PRED, TARGET, w).item() == pytest.approx(weighted, rel=1e-6)
    multiplied = (2 * 2 * 0.625 + 0.5 * 1 * 0.5 + 10 * -0.2 * 0.08) / 3
    assert avpbc_loss(PRED, TARGET, q, state_weights=w).item() == pytest.approx(multiplied,
                                                                              rel=1e-6)
    assert avpbc_loss(PRED, TARGET, q, state_weights=w, compose="replace").item() == \
        pytest.approx(weighted, rel=1e-6)


def test_unit_state_weights_give_the_vanilla_values_exactly():
    g = torch.Generator().manual_seed(0)
    pred, target = torch.randn(2560, 6, generator=g), torch.randn(2560, 6, generator=g)
    q, ones = torch.rand(2560, generator=g) * 300, torch.ones(2560)
    assert torch.equal(dbc_loss(pred, target, ones), dbc_loss(pred, target))
    assert torch.equal(pbc_loss(pred, target, ones), pbc_loss(pred, target))
    assert torch.equal(avpbc_loss(pred, target, q, state_weights=ones), avpbc_loss(pred, target, q))


def test_weights_change_each_state_term_exactly_by_their_factor():
    """d H / d e_i = w_i / B: the gradient of each state's error carries exactly its weight."""
    g = torch.Generator().manual_seed(1)
    pred = torch.randn(8, 3, generator=g, requires_grad=True)
    target, w = torch.randn(8, 3, generator=g), torch.rand(8, generator=g) * 5
    (plain,) = torch.autograd.grad(pbc_loss(pred, target), pred)
    (weighted,) = torch.autograd.grad(pbc_loss(pred, target, w), pred)
    torch.testing.assert_close(weighted, plain * w[:, None])


def test_unknown_compose_and_objective_fail():
    with pytest.raises(ValueError, match="compose"):
        avpbc_loss(PRED, TARGET, torch.ones(3), state_weights=torch.ones(3), compose="add")
    with pytest.raises(ValueError, match="objective name"):
        ObjectiveConfig(name="bc")


def _teacher_setup(n=300):
    dataset = random_dataset(n, 4, 2)
    normaliser = dataset.state_normaliser()
    states = torch.as_tensor(normaliser(dataset.observations))
    teacher = LinearTeacher(torch.randn(4, 2, generator=torch.Generator().manual_seed(2)),
                            normaliser)
    return states, torch.as_tensor(dataset.actions), teacher


def test_deterministic_teacher_targets_are_precomputed_once_and_looked_up():
    states, actions, teacher = _teacher_setup()
    targets = OuterTargets(ObjectiveConfig("avpbc", teacher_actions="deterministic"), states,
                           actions, teacher, chunk=64)
    idx = torch.tensor([3, 250, 7, 3])
    act, q = targets(idx)
    torch.testing.assert_close(act, teacher.act(states[idx]))
    torch.testing.assert_close(q, teacher.q(states[idx], teacher.act(states[idx])))
    teacher.gain.zero_()  # a precomputed table no longer asks the teacher
    assert torch.equal(targets(idx)[0], act)


def test_sampled_teacher_targets_are_drawn_per_batch():
    states, actions, teacher = _teacher_setup()
    targets = OuterTargets(ObjectiveConfig("pbc", teacher_actions="sampled"), states, actions,
                           teacher)
    idx = torch.arange(10)
    first, q = targets(idx)
    assert q is None and not torch.equal(first, targets(idx)[0])


def test_dbc_targets_are_the_dataset_actions_and_need_no_teacher():
    states, actions, _ = _teacher_setup()
    targets = OuterTargets(ObjectiveConfig("dbc"), states, actions, teacher=None)
    idx = torch.tensor([5, 1])
    assert torch.equal(targets(idx)[0], actions[idx])
    with pytest.raises(ValueError, match="needs a teacher"):
        OuterTargets(ObjectiveConfig("pbc"), states, actions, teacher=None)


def test_state_weight_checks():
    assert check_state_weights(torch.ones(4, dtype=torch.float64), 4, torch.device("cpu")).dtype \
        == torch.float32
    with pytest.raises(ValueError, match="expected \\(4,\\)"):
        check_state_weights(torch.ones(4, 1), 4, torch.device("cpu"))
    with pytest.raises(ValueError, match="non-finite"):
        check_state_weights(torch.tensor([1.0, float("inf"), 1.0, 1.0]), 4, torch.device("cpu"))
