"""The wandb mirror: one run id per run directory, a bounded start on a silent network."""

import socket
import threading
import time

import pytest

from sdw.app.logger import LoggerConfig, RunLogger, wandb_run_id
from sdw.errors import UserError


def test_run_ids_follow_the_run_directory(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert wandb_run_id(a) == wandb_run_id(tmp_path / "x" / ".." / "a") != wandb_run_id(b)


def test_unknown_mode_is_named():
    with pytest.raises(UserError, match="logger.mode='onlin'"):
        LoggerConfig(mode="onlin")


def test_local_logger_appends_metrics_only(tmp_path):
    logger = RunLogger(LoggerConfig(), tmp_path, "x", {})
    logger.log({"type": "step", "step": 1, "outer_loss": float("nan")})
    logger.finish()
    assert (tmp_path / "metrics.jsonl").read_text() == \
        '{"outer_loss": null, "step": 1, "type": "step"}\n'
    assert not (tmp_path / "wandb").exists()


@pytest.fixture
def silent_server():
    """A TCP server on loopback that accepts connections and never answers (for 30 s at most)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.5)
    held, stop = [], threading.Event()

    def accept():
        deadline = time.monotonic() + 30
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                held.append(server.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_online_wandb_on_a_silent_network_fails_within_the_timeout(silent_server, tmp_path,
                                                                   monkeypatch):
    monkeypatch.setenv("WANDB_BASE_URL", silent_server)
    monkeypatch.setenv("WANDB_API_KEY", "a" * 40)
    start = time.monotonic()
    with pytest.raises(UserError, match="did not answer within logger.init_timeout=2"):
        RunLogger(LoggerConfig(wandb=True, mode="online", init_timeout=2), tmp_path, "x", {})
    assert time.monotonic() - start < 8
