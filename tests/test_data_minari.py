"""Minari datasets: a local dataset round-trips; downloads fail fast and clearly without network."""

import socket
import threading
import time
from collections.abc import Iterator

import minari
import numpy as np
import pytest
from minari.data_collector import EpisodeBuffer

from sdw.data.errors import DatasetError
from sdw.data.minari_source import BUILD_RECORD, MinariSource, bounded_hub_requests, minari_root
from sdw.data.registry import load_dataset

LENGTHS = (4, 3)


def episodes() -> list[EpisodeBuffer]:
    """Episode 0 is truncated after 4 steps, episode 1 terminates after 3; values encode (ep, t)."""
    buffers = []
    for ep, length in enumerate(LENGTHS):
        t = np.arange(length + 1, dtype=np.float64)[:, None]
        buffers.append(EpisodeBuffer(
            id=ep,
            observations=100 * ep + t + np.arange(11) / 100,
            actions=np.tile(np.float32([ep, 0.5, -0.5]), (length, 1)),
            rewards=list(10.0 * ep + np.arange(length)),
            terminations=[False] * (length - 1) + [ep == 1],
            truncations=[False] * (length - 1) + [ep == 0],
            infos={},
        ))
    return buffers


def make_local(dataset_id: str, **scores) -> None:
    """A complete local dataset: the Minari files and the record sdw-collect writes last."""
    minari.create_dataset_from_buffers(dataset_id, episodes(), env="Hopper-v4",
                                       eval_env="Hopper-v4", algorithm_name="test",
                                       author_email="test@example.org", description="test data",
                                       data_format="hdf5", **scores)
    (minari_root() / dataset_id / BUILD_RECORD).write_text("{}")


def test_local_dataset_round_trips(isolated_data_dirs):
    make_local("sdw/hopper/test-v0", ref_min_score=-20.0, ref_max_score=180.0)
    ds = MinariSource("sdw/hopper/test-v0", source="local").load()
    assert len(ds) == 7 and ds.metadata.env_id == "Hopper-v4" and ds.metadata.source == "local"
    obs = [b.observations for b in episodes()]
    np.testing.assert_allclose(ds.observations, np.concatenate([o[:-1] for o in obs]), rtol=1e-6)
    np.testing.assert_allclose(ds.next_observations, np.concatenate([o[1:] for o in obs]), rtol=1e-6)
    np.testing.assert_array_equal(ds.actions[:, 0], [0, 0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(ds.rewards, [0, 1, 2, 3, 10, 11, 12])
    np.testing.assert_array_equal(ds.timeouts, [0, 0, 0, 1, 0, 0, 0])
    np.testing.assert_array_equal(ds.terminals, [0, 0, 0, 0, 0, 0, 1])
    np.testing.assert_array_equal(ds.episode_returns(), [6, 33])
    assert ds.normalised_score(80.0) == pytest.approx(50.0)
    # qlearning view: the timeout row 3 and the last row are dropped
    assert len(ds.qlearning_view()) == 5


def test_registry_reads_a_minari_id(isolated_data_dirs):
    make_local("sdw/hopper/test-v0", ref_min_score=0.0, ref_max_score=1.0)
    assert len(load_dataset("sdw/hopper/test-v0")) == 7


def test_missing_reference_scores_are_explained(isolated_data_dirs):
    make_local("sdw/hopper/noscores-v0")
    ds = MinariSource("sdw/hopper/noscores-v0").load()
    assert ds.normalised_score(100.0) is None
    assert "no ref_min_score/ref_max_score" in ds.metadata.missing_scores_reason


def test_absent_dataset_without_download_says_how_to_get_it(isolated_data_dirs):
    _, minari_dir = isolated_data_dirs
    with pytest.raises(DatasetError) as e:
        MinariSource("mujoco/hopper/medium-v0").load()
    assert "download: true" in str(e.value) and str(minari_dir) in str(e.value)
    assert list(minari_dir.iterdir()) == []


@pytest.mark.parametrize("how", ["id", "config"])
def test_absent_local_dataset_says_how_to_rebuild_it(isolated_data_dirs, how):
    _, minari_dir = isolated_data_dirs
    with pytest.raises(DatasetError) as e:
        load_dataset("sdw/walker2d/medium-v0" if how == "id" else "local-walker2d-medium")
    message = str(e.value)
    assert "sdw-collect mode=rebuild env=walker2d" in message and str(minari_dir) in message
    assert "download: true" not in message
    assert list(minari_dir.iterdir()) == []


def test_download_offline_fails_fast_with_instructions(isolated_data_dirs):
    _, minari_dir = isolated_data_dirs
    start = time.perf_counter()
    with pytest.raises(DatasetError) as e:
        MinariSource("mujoco/hopper/medium-v0", download=True).load()
    assert time.perf_counter() - start < 5
    assert "HF_HUB_OFFLINE" in str(e.value)
    assert "minari download mujoco/hopper/medium-v0" in str(e.value)
    assert list(minari_dir.iterdir()) == []


def test_download_with_unreachable_host_fails_fast(isolated_data_dirs, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", "https://minari-host.invalid")
    start = time.perf_counter()
    with pytest.raises(DatasetError, match="minari-host.invalid is unreachable"):
        MinariSource("mujoco/hopper/medium-v0", download=True).load()
    assert time.perf_counter() - start < 5


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP server on 127.0.0.1 that accepts every connection and never sends a byte."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield f"127.0.0.1:{server.getsockname()[1]}"
    server.close()
    for conn in accepted:
        conn.close()


def test_download_from_a_silent_host_fails_within_the_timeout(isolated_data_dirs, monkeypatch,
                                                              silent_server):
    _, minari_dir = isolated_data_dirs
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", f"http://{silent_server}")
    start = time.perf_counter()
    with pytest.raises(DatasetError) as e:
        MinariSource("mujoco/hopper/medium-v0", download=True, download_timeout=1.0).load()
    assert time.perf_counter() - start < 3
    assert f"{silent_server} accepted the connection but sent no answer within 1 s" in str(e.value)
    assert "(download_timeout)" in str(e.value) and list(minari_dir.iterdir()) == []


def test_every_hub_request_is_bounded_even_where_huggingface_hub_sets_none(silent_server,
                                                                           monkeypatch):
    import httpx2
    from huggingface_hub import get_session

    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    start = time.perf_counter()
    with bounded_hub_requests(0.5), pytest.raises(httpx2.TimeoutException):
        get_session().get(f"http://{silent_server}/api/datasets", timeout=None)
    assert time.perf_counter() - start < 2
    assert all(hook.__name__ != "bound" for hook in get_session().event_hooks["request"])


@pytest.mark.parametrize("timeout", [0, -1.0])
def test_download_timeout_must_be_positive(timeout):
    with pytest.raises(DatasetError, match=f"download_timeout must be a positive .* got {timeout}"):
        MinariSource("mujoco/hopper/medium-v0", download=True, download_timeout=timeout)


def test_download_timeout_comes_from_the_dataset_config():
    from sdw.data.registry import resolve_source
    from sdw.data.source import DatasetConfig

    assert resolve_source("minari-hopper-medium").download_timeout == 10
    assert DatasetConfig(name="mujoco/hopper/medium-v0", download_timeout=2.5).source() \
        .download_timeout == 2.5
