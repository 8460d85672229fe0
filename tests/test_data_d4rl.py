"""D4RL HDF5 loading: every field against the hand-made file, and every kind of bad input."""

import h5py
import numpy as np
import pytest
from data_files import N, known_arrays, write_hdf5

from sdw.data.d4rl import D4RLSource, d4rl_file_name
from sdw.data.errors import DatasetError
from sdw.data.registry import load_dataset, resolve_source
from sdw.data.scores import D4RL_REFERENCE_SCORES


def all_files(root):
    return sorted(p for p in root.rglob("*"))


@pytest.fixture
def known_file(tmp_path):
    return write_hdf5(tmp_path / "files" / "hopper_medium-v2.hdf5", known_arrays())


def test_every_field_of_the_loaded_dataset(known_file):
    ds = D4RLSource(path=str(known_file)).load()
    expected = known_arrays()
    for key, value in expected.items():
        got = getattr(ds, key)
        np.testing.assert_array_equal(got, value, err_msg=key)
    assert ds.observations.dtype == np.float32 and ds.terminals.dtype == bool
    assert len(ds) == N and ds.obs_dim == 11 and ds.act_dim == 3
    np.testing.assert_array_equal(ds.episode_ends, [4, 7, 10])
    np.testing.assert_array_equal(ds.episode_starts, [0, 4, 7])
    np.testing.assert_array_equal(ds.episode_returns(), [0 + 1 + 2 + 3, 4 + 5 + 6, 7 + 8 + 9])
    meta = ds.metadata
    assert (meta.name, meta.source, meta.env_id) == ("hopper-medium-v2", "d4rl", "Hopper-v4")
    assert meta.reference_scores == D4RL_REFERENCE_SCORES["hopper"]
    assert meta.extra["path"] == str(known_file)
    assert len(ds.content_hash) == 16


def test_qlearning_view_matches_d4rl_by_hand(known_file):
    view = D4RLSource(path=str(known_file)).load().qlearning_view()
    # d4rl.qlearning_dataset keeps i < N-1 unless timeouts[i]: rows 3 and 9 are dropped.
    kept = [0, 1, 2, 4, 5, 6, 7, 8]
    obs = known_arrays()["observations"]
    np.testing.assert_array_equal(view.observations, obs[kept])
    np.testing.assert_array_equal(view.next_observations, obs[[1, 2, 3, 5, 6, 7, 8, 9]])
    np.testing.assert_array_equal(view.rewards, kept)
    np.testing.assert_array_equal(view.actions, known_arrays()["actions"][kept])
    np.testing.assert_array_equal(view.terminals, [0, 0, 0, 0, 0, 1, 0, 0])
    assert not view.timeouts.any()


def test_state_normaliser_uses_the_qlearning_view(known_file):
    normaliser = D4RLSource(path=str(known_file)).load().state_normaliser()
    rows = np.array([0, 1, 2, 4, 5, 6, 7, 8], dtype=np.float64)
    mean_row = rows.mean()  # 33/8
    std_row = np.sqrt(((rows - mean_row) ** 2).mean())
    np.testing.assert_allclose(normaliser.mean, mean_row + np.arange(11) / 100, rtol=1e-6)
    np.testing.assert_allclose(normaliser.std, np.full(11, std_row + 1e-3), rtol=1e-6)
    z = normaliser(np.full((1, 11), mean_row + np.arange(11) / 100, np.float32))
    np.testing.assert_allclose(z, 0, atol=1e-6)


def test_content_hash_changes_with_content(tmp_path, known_file):
    arrays = known_arrays()
    arrays["rewards"][0] = 1.0
    other = write_hdf5(tmp_path / "other" / "hopper_medium-v2.hdf5", arrays)
    a = D4RLSource(path=str(known_file)).load().content_hash
    assert a == D4RLSource(path=str(known_file)).load().content_hash
    assert a != D4RLSource(path=str(other)).load().content_hash


def test_lookup_by_d4rl_name_in_dataset_dir(isolated_data_dirs):
    d4rl_dir, _ = isolated_data_dirs
    write_hdf5(d4rl_dir / "hopper_medium_replay-v2.hdf5", known_arrays())
    ds = load_dataset("hopper-medium-replay-v2")
    assert ds.metadata.name == "hopper-medium-replay-v2" and len(ds) == N
    assert resolve_source("hopper-medium-replay-v2").is_present()


def test_d4rl_file_names():
    assert d4rl_file_name("hopper-medium-v2") == "hopper_medium-v2.hdf5"
    assert d4rl_file_name("halfcheetah-medium-expert-v2") == "halfcheetah_medium_expert-v2.hdf5"
    assert d4rl_file_name("walker2d-medium-replay-v2") == "walker2d_medium_replay-v2.hdf5"


def test_missing_file_names_path_and_d4rl_file_name(isolated_data_dirs):
    d4rl_dir, _ = isolated_data_dirs
    with pytest.raises(DatasetError) as e:
        load_dataset("walker2d-medium-expert-v2")
    assert str(d4rl_dir / "walker2d_medium_expert-v2.hdf5") in str(e.value)
    assert "'walker2d_medium_expert-v2.hdf5'" in str(e.value)


def bad_input_cases(tmp_path):
    """(description, writer of a bad file, expected message fragments)."""

    def truncated(path):
        write_hdf5(path, known_arrays())
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])

    def corrupt(path):
        path.write_bytes(b"this is not an hdf5 file" * 100)

    def missing_key(path):
        arrays = known_arrays()
        del arrays["rewards"]
        write_hdf5(path, arrays)

    def lengths(path):
        arrays = known_arrays()
        arrays["rewards"] = arrays["rewards"][:-1]
        write_hdf5(path, arrays)

    def non_finite(path):
        arrays = known_arrays()
        arrays["observations"][5, 2] = np.nan
        arrays["observations"][7, 0] = np.inf
        arrays["observations"][7, 1] = -np.inf
        write_hdf5(path, arrays)

    def strings(path):
        arrays = known_arrays()
        arrays["rewards"] = np.array([b"r"] * N)
        write_hdf5(path, arrays)

    def group(path):
        arrays = known_arrays()
        del arrays["actions"]
        write_hdf5(path, arrays)
        with h5py.File(path, "a") as f:
            f.create_group("actions").create_dataset("a", data=np.zeros(N))

    def wrong_obs_size(path):
        arrays = known_arrays()
        arrays["observations"] = np.zeros((N, 17), np.float32)
        arrays["next_observations"] = np.zeros((N, 17), np.float32)
        write_hdf5(path, arrays)

    def next_obs_width(path):
        arrays = known_arrays()
        arrays["next_observations"] = np.zeros((N, 10), np.float32)
        write_hdf5(path, arrays)

    def reward_columns(path):
        arrays = known_arrays()
        arrays["rewards"] = np.zeros((N, 2), np.float32)
        write_hdf5(path, arrays)

    def action_size(path):
        arrays = known_arrays()
        arrays["actions"] = np.zeros((N, 6), np.float32)
        write_hdf5(path, arrays)

    return [
        ("truncated", truncated, ["truncated or corrupt"]),
        ("corrupt", corrupt, ["truncated or corrupt", "download it again"]),
        ("missing key", missing_key, ["missing the key(s) ['rewards']"]),
        ("different lengths", lengths, ["different lengths", "'rewards': 9", "'observations': 10"]),
        ("non-finite", non_finite, ["observations has 3 non-finite value(s) in 2 row(s)", "first at row 5"]),
        ("obs size", wrong_obs_size, ["17 dimensions", "Hopper-v4 observes 11",
                                       "sdw-run dataset.env_id=<env>"]),
        ("strings", strings, ["non-numeric dtype {'rewards': '|S1'}"]),
        ("group", group, ["['actions'] are HDF5 groups, not arrays"]),
        ("next-obs width", next_obs_width, ["observations are 11-dimensional but next_observations "
                                            "10-dimensional", "(10, 11) and (10, 10)"]),
        ("reward columns", reward_columns, ["rewards must hold one value per transition",
                                            "got shape (10, 2)"]),
        ("action size", action_size, ["actions have 6 dimensions", "Hopper-v4 takes 3"]),
    ]


@pytest.mark.parametrize("case", range(11), ids=["truncated", "corrupt", "missing-key", "lengths",
                                                  "non-finite", "obs-size", "strings", "group",
                                                  "next-obs-width", "reward-columns", "action-size"])
def test_bad_files_fail_with_a_clear_message_and_write_nothing(tmp_path, case, isolated_data_dirs):
    _, write_bad, fragments = bad_input_cases(tmp_path)[case]
    path = tmp_path / "files" / "hopper_medium-v2.hdf5"
    path.parent.mkdir()
    write_bad(path)
    before = all_files(tmp_path)
    with pytest.raises(DatasetError) as e:
        D4RLSource(path=str(path)).load()
    message = str(e.value)
    assert str(path) in message and "\n" not in message
    for fragment in fragments:
        assert fragment in message
    assert all_files(tmp_path) == before


def test_unknown_name_lists_close_matches():
    with pytest.raises(DatasetError) as e:
        resolve_source("hoper-medium-v2")
    assert "Did you mean: hopper-medium-v2" in str(e.value)


def test_explicit_env_id_overrides_the_name(known_file):
    with pytest.raises(DatasetError, match="HalfCheetah-v4 observes 17"):
        D4RLSource(path=str(known_file), env_id="HalfCheetah-v4").load()


def test_reference_scores_follow_the_env_not_the_file_name(tmp_path, known_file):
    mine = tmp_path / "mydata.hdf5"
    mine.write_bytes(known_file.read_bytes())  # the same bytes under a name D4RL does not know
    named = D4RLSource(path=str(known_file)).load()
    by_env = D4RLSource(path=str(mine), env_id="Hopper-v4").load()
    assert named.metadata.reference_scores == by_env.metadata.reference_scores
    assert by_env.normalised_score(1000.0) == named.normalised_score(1000.0) is not None
    with pytest.raises(DatasetError, match=r"sdw-run dataset.env_id=Hopper-v4"):
        D4RLSource(path=str(mine)).load()  # no env in the name and none given: named the fix


def test_a_file_without_next_observations_or_timeouts_is_read_as_d4rl_reads_it(tmp_path, caplog):
    arrays = known_arrays()
    full = D4RLSource(path=str(write_hdf5(tmp_path / "a" / "hopper_full.hdf5", arrays))).load()
    del arrays["next_observations"], arrays["timeouts"]
    path = write_hdf5(tmp_path / "b" / "hopper_bare.hdf5", arrays)
    with caplog.at_level("WARNING"):
        bare = D4RLSource(path=str(path)).load()
    assert "has no timeouts" in caplog.text and "has no next_observations" in caplog.text
    np.testing.assert_array_equal(bare.next_observations[:-1], full.observations[1:])
    np.testing.assert_array_equal(bare.next_observations[-1], full.observations[-1])
    # 10 rows, one terminal at row 6, Hopper-v4's limit of 1000 steps: no time limit is reached
    assert not bare.timeouts.any() and bare.terminals[6]
    assert len(bare.qlearning_view()) == len(bare) - 1


def test_a_missing_timeouts_key_ends_episodes_at_the_envs_step_limit(tmp_path):
    n = 2500
    arrays = {"observations": np.zeros((n, 11), np.float32), "actions": np.zeros((n, 3), np.float32),
              "rewards": np.ones(n, np.float32), "terminals": np.zeros(n, bool)}
    arrays["terminals"][1499] = True  # an episode of 500 steps after the first one of 1000
    dataset = D4RLSource(path=str(write_hdf5(tmp_path / "hopper_long.hdf5", arrays))).load()
    assert list(np.flatnonzero(dataset.timeouts)) == [999, 2499]  # step 1000 of each episode
    assert list(dataset.episode_ends[:3]) == [1000, 1500, 2500]
