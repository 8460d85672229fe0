"""Evaluation protocols: standard, ensemble, cross-architecture/-optimiser, last-k, references."""

import json

import numpy as np
import pytest
import torch

from sdw.data.dataset import DatasetMetadata, OfflineDataset, StateNormaliser
from sdw.data.scores import ReferenceScores
from sdw.distill.inner_optim import InnerOptimConfig
from sdw.distill.student import student_policy, train_student
from sdw.distill.synthetic import SyntheticSet
from sdw.evaluate import protocol as protocol_module
from sdw.evaluate import references as references_module
from sdw.evaluate.protocol import EvalProtocol, last_k_mean
from sdw.evaluate.references import reference_evaluations
from sdw.evaluate.summary import summarise
from sdw.networks.actor import ActorConfig
from sdw.rollout import evaluate_policy

SCORES = ReferenceScores(0.0, 100.0, "test")
STUDENT = ActorConfig(hidden_sizes=(16, 16))
INNER = InnerOptimConfig(steps=5)


def rollouts(policies, seed, normaliser):
    """(policies, 2) returns of 8-step Hopper episodes, episode j reset with seed + j."""
    return np.stack([evaluate_policy(p, "Hopper-v4", 2, seed, normaliser,
                                     max_episode_steps=8).returns for p in policies])


FIELDS = {"normalised_mean", "normalised_std", "return_mean", "return_std", "students",
          "episodes", "per_student"}


def tiny_protocol(**overrides) -> EvalProtocol:
    fields = dict(every=1, students=2, episodes=2, last_k=2, max_episode_steps=8, bc_steps=5,
                  bc_batch_size=16, seed=0)
    return EvalProtocol(**{**fields, **overrides})


@pytest.fixture(scope="module")
def synthetic() -> SyntheticSet:
    rng = np.random.default_rng(0)
    normaliser = StateNormaliser(np.zeros(11, np.float32), np.ones(11, np.float32))
    return SyntheticSet(rng.normal(size=(16, 11)), rng.uniform(-1, 1, (16, 3)), normaliser,
                        "Hopper-v4", "tiny", "hash", "test")


@pytest.fixture(scope="module")
def dataset() -> OfflineDataset:
    rng = np.random.default_rng(1)
    n = 200
    observations = rng.normal(size=(n, 11)).astype(np.float32)
    timeouts = np.zeros(n, bool)
    timeouts[49::50] = True
    return OfflineDataset(
        observations=observations, actions=rng.uniform(-1, 1, (n, 3)).astype(np.float32),
        rewards=rng.normal(size=n).astype(np.float32),
        next_observations=observations + 0.1, terminals=np.zeros(n, bool), timeouts=timeouts,
        metadata=DatasetMetadata("tiny-hopper", "test", "Hopper-v4", SCORES))


class LinearTeacher:
    """A fixed linear policy with the `Teacher` protocol and a cache identity."""

    def __init__(self, normaliser, evaluation=None):
        self.normaliser, self.evaluation = normaliser, evaluation
        self.weight = torch.linspace(-0.5, 0.5, 33).reshape(11, 3)

    def act(self, states, deterministic=True):
        return torch.tanh(states @ self.weight)

    def q(self, states, actions):
        return torch.zeros(len(states))

    def summary(self):
        return {"algorithm": "linear", "evaluation": self.evaluation}

    def state_dict(self):
        return {"weight": self.weight}


def test_standard_evaluation_has_the_eval_json_fields(synthetic):
    result = tiny_protocol().periodic(synthetic, STUDENT, INNER, SCORES)
    assert set(result) == FIELDS
    assert (result["students"], result["episodes"], len(result["per_student"])) == (2, 2, 2)
    per_student = [s["return"] for s in result["per_student"]]
    assert result["return_mean"] == pytest.approx(np.mean(per_student))
    assert result["return_std"] == pytest.approx(np.std(per_student))
    assert result["normalised_mean"] == pytest.approx(result["return_mean"])  # R_min 0, R_max 100
    unscored = tiny_protocol().periodic(synthetic, STUDENT, INNER, None)
    assert unscored["normalised_mean"] is None and unscored["normalised_std"] is None
    assert unscored["return_mean"] == result["return_mean"]
    json.dumps(result)


def test_evaluation_is_deterministic_for_a_seed(synthetic):
    a = tiny_protocol().periodic(synthetic, STUDENT, INNER, SCORES)
    b = tiny_protocol().periodic(synthetic, STUDENT, INNER, SCORES)
    c = tiny_protocol(seed=5).periodic(synthetic, STUDENT, INNER, SCORES)
    assert a == b
    assert a["per_student"] != c["per_student"]


def test_students_are_the_inner_loop_recipe_with_seeds_seed_plus_i(synthetic):
    protocol = tiny_protocol(seed=3)
    assert protocol.student_seeds() == [3, 4]
    policies = [student_policy(train_student(synthetic, STUDENT, INNER, seed=s))
                for s in (3, 4)]
    returns = rollouts(policies, 3, synthetic.normaliser)
    assert protocol.periodic(synthetic, STUDENT, INNER, SCORES) == summarise(returns, SCORES)


def test_ensemble_acts_on_the_averaged_actions_of_its_members(synthetic):
    protocol = tiny_protocol(ensemble=3, students=1)
    (seeds,) = protocol.ensemble_seeds()
    assert not set(seeds) & set(protocol.student_seeds())
    members = [train_student(synthetic, STUDENT, INNER, seed=s) for s in seeds]

    def averaged(states):
        with torch.no_grad():
            s = torch.as_tensor(states)
            return torch.stack([m(s, deterministic=True) for m in members]).mean(0).numpy()

    returns = rollouts([averaged], 0, synthetic.normaliser)
    result = protocol.evaluate_ensemble(synthetic, STUDENT, INNER, SCORES)
    assert result == {**summarise(returns, SCORES), "members": 3}
    single = rollouts([student_policy(members[0])], 0, synthetic.normaliser)
    assert not np.allclose(single, returns)


def test_final_evaluation_covers_ensemble_and_cross_evaluations(synthetic, monkeypatch):
    protocol = tiny_protocol(
        ensemble=2, cross_steps=3,
        architectures={"res": ActorConfig(hidden_sizes=(8, 8, 8), skips=((1, 3),)),
                       "mlp2": {"hidden_sizes": [8]}},
        optimisers={"adam": InnerOptimConfig(name="adam", lr=1e-3, steps=50)})
    steps_seen = []
    real_train = protocol_module.train_student

    def spy(synthetic, student, optim, **kwargs):
        steps_seen.append((student.hidden_sizes, optim.name, optim.steps))
        return real_train(synthetic, student, optim, **kwargs)

    monkeypatch.setattr(protocol_module, "train_student", spy)
    result = protocol.final(synthetic, STUDENT, INNER, SCORES)
    assert set(result) == {"standard", "ensemble", "cross_architecture", "cross_optimiser"}
    assert set(result["ensemble"]) == FIELDS | {"members"} and result["ensemble"]["members"] == 2
    assert set(result["cross_architecture"]) == {"res", "mlp2"}
    assert set(result["cross_optimiser"]) == {"adam"}
    assert all(set(r) == FIELDS for r in result["cross_architecture"].values())
    # standard 2 + ensemble 2 x 2 students with the recipe; cross students with cross_steps
    assert steps_seen.count(((16, 16), "sgd", 5)) == 6
    assert steps_seen.count(((8, 8, 8), "sgd", 3)) == 2
    assert steps_seen.count(((8,), "sgd", 3)) == 2
    assert steps_seen.count(((16, 16), "adam", 3)) == 2
    plain = tiny_protocol().final(synthetic, STUDENT, INNER, SCORES)
    assert plain["ensemble"] is None and plain["cross_architecture"] == {}


def test_last_k_is_the_mean_of_the_last_k_evaluations():
    evals = [(step, {"normalised_mean": score}) for step, score in [(10, 1.0), (20, 2.0),
                                                                     (30, 4.0)]]
    assert last_k_mean(evals, 2) == {"k": 2, "steps": [20, 30], "normalised_mean": 3.0}
    assert last_k_mean(evals, 5)["steps"] == [10, 20, 30]
    assert last_k_mean([(1, {"normalised_mean": None})], 1)["normalised_mean"] is None


@pytest.mark.parametrize("kwargs, message", [
    ({"students": 0}, "eval.students"), ({"every": -1}, "eval.every"),
    ({"architectures": {"x": InnerOptimConfig()}}, "not a ActorConfig"),
])
def test_bad_protocols_are_refused(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        EvalProtocol(**kwargs)


def test_references_are_computed_once_and_then_read_from_the_cache(dataset, tmp_path,
                                                                    monkeypatch):
    protocol, teacher = tiny_protocol(), LinearTeacher(dataset.state_normaliser())
    first = reference_evaluations(dataset, teacher, protocol, STUDENT, INNER, 16, tmp_path, "cpu")
    assert set(first) == {"random_subset", "whole_data_bc", "teacher"}
    assert all(FIELDS <= set(first[k]) for k in first)
    assert first["random_subset"]["students"] == 2 and first["whole_data_bc"]["students"] == 1
    assert first["teacher"]["episodes"] == 4 and first["teacher"]["source"] == "rollout"
    assert len(list(tmp_path.glob("*.json"))) == 3

    def fail(*args, **kwargs):
        raise AssertionError("recomputed a cached reference")

    for module in (protocol_module, references_module):
        monkeypatch.setattr(module, "train_student", fail, raising=False)
        monkeypatch.setattr(module, "evaluate_policy", fail, raising=False)
    monkeypatch.setattr(references_module, "real_pairs", fail)  # not even the data is prepared
    again = reference_evaluations(dataset, teacher, protocol, STUDENT, INNER, 16, tmp_path, "cpu")
    assert again == json.loads(json.dumps(first))
    with pytest.raises(AssertionError, match="recomputed"):  # another size is another entry
        reference_evaluations(dataset, teacher, protocol, STUDENT, INNER, 8, tmp_path, "cpu")
    # the same summary with other weights (a shipped float16 copy and its float32 original):
    # the subset and BC references (computed first) are still read from the cache, and only then
    # is the teacher rolled out again

    def roll_out(*args, **kwargs):
        raise AssertionError("rolled out the teacher")

    monkeypatch.setattr(references_module, "evaluate_policy", roll_out)
    teacher.weight = teacher.weight + 1e-4
    with pytest.raises(AssertionError, match="rolled out the teacher"):
        reference_evaluations(dataset, teacher, protocol, STUDENT, INNER, 16, tmp_path, "cpu")


def test_random_subsets_are_real_pairs_of_the_requested_size(dataset, monkeypatch):
    seen = []
    real_train = references_module.train_student

    def spy(subset, *args, **kwargs):
        seen.append(subset)
        return real_train(subset, *args, **kwargs)

    monkeypatch.setattr(references_module, "train_student", spy)
    protocol = tiny_protocol(references=True, bc_steps=0)
    result = reference_evaluations(dataset, None, protocol, STUDENT, INNER, 16, None, "cpu")
    assert result["whole_data_bc"] is None and result["teacher"] is None
    normalised = dataset.state_normaliser()(dataset.qlearning_view().observations)
    assert len(seen) == 2 and not np.array_equal(seen[0].states, seen[1].states)
    for subset in seen:
        assert subset.states.shape == (16, 11)
        rows = [np.flatnonzero((normalised == s).all(1)) for s in subset.states]
        assert all(len(r) == 1 for r in rows)
        assert len({int(r[0]) for r in rows}) == 16
    assert reference_evaluations(dataset, None, tiny_protocol(references=False), STUDENT,
                                 INNER, 16, None) == dict.fromkeys(
        ["random_subset", "whole_data_bc", "teacher"])


def test_random_subset_i_is_the_distillations_real_initialisation_for_seed_i(dataset,
                                                                            monkeypatch):
    from sdw.distill import ObjectiveConfig, SyntheticConfig, distill

    seen = []
    real_train = references_module.train_student
    monkeypatch.setattr(references_module, "train_student",
                        lambda subset, *a, **k: seen.append(subset) or real_train(subset, *a, **k))
    protocol = tiny_protocol(seed=4, bc_steps=0)
    reference_evaluations(dataset, None, protocol, STUDENT, INNER, 16, None)
    for seed, subset in zip(protocol.student_seeds(), seen):
        initial = distill(dataset, None, objective=ObjectiveConfig("dbc", batch_size=32),
                          student=STUDENT, synthetic=SyntheticConfig(size=16, init="real"),
                          inner=INNER, outer_steps=0, seed=seed, progress=False)
        np.testing.assert_array_equal(subset.states, initial.states)
        np.testing.assert_array_equal(subset.actions, initial.actions)


def test_teacher_reference_reuses_its_own_evaluation(dataset, monkeypatch):
    own = {"episodes": 5, "seed": 7, "returns": [10.0, 20.0, 30.0, 40.0, 50.0]}
    teacher = LinearTeacher(dataset.state_normaliser(), evaluation=own)
    monkeypatch.setattr(references_module, "evaluate_policy",
                        lambda *a, **k: pytest.fail("rolled out the teacher again"))
    protocol = tiny_protocol(max_episode_steps=None, bc_steps=0)
    result = reference_evaluations(dataset, teacher, protocol, STUDENT, INNER, 10**6, None)
    assert result["random_subset"] is None  # size above the dataset's 200 pairs
    assert result["teacher"]["return_mean"] == 30.0
    assert result["teacher"]["normalised_mean"] == pytest.approx(30.0)
    assert "own evaluation" in result["teacher"]["source"]


def test_whole_data_bc_reports_its_progress_per_student(dataset, caplog, capsys):
    protocol = tiny_protocol(bc_students=2, bc_steps=30)
    with caplog.at_level("INFO", logger="sdw.evaluate.protocol"):
        reference_evaluations(dataset, None, protocol, ActorConfig(hidden_sizes=(8,)),
                              InnerOptimConfig(steps=3), 16, None)
    lines = [r.getMessage() for r in caplog.records]
    assert [line.split(" trained")[0] for line in lines] == [
        "whole-data BC reference (tiny-hopper): student 1 of 2",
        "whole-data BC reference (tiny-hopper): student 2 of 2"]
    assert "(30 steps," in lines[0]
    assert "whole-data BC reference (tiny-hopper): 100%" in capsys.readouterr().err  # the bar
