"""What a run leaves in its directory: status.json, metrics.jsonl, eval.json, and the lock that
keeps it to one writer (docs/experiments.md)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sdw.app.fingerprint import describe_differences, differences, extendable, fingerprint
from sdw.atomic import atomic_write
from sdw.distill.loop import previous_checkpoint
from sdw.errors import UserError
from sdw.locks import LockHeld, describe, exclusive

STATUS, METRICS, EVAL = "status.json", "metrics.jsonl", "eval.json"
CHECKPOINT, SYNTHETIC = "checkpoint.pt", "synthetic.npz"
WEIGHTS_JSON, WEIGHTS_PNG = "weights.json", "weights.png"
CURVE_PNG = "curve.png"
"""The learning curve with the references as lines (written for the wandb mirror)."""
LOCK = ".lock"
"""Held by the process running the directory (sdw.locks): one writer, and a probe for liveness."""


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def git_commit() -> str | None:
    """The commit of the sdw checkout this code runs from (None outside a git checkout)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None


def _json_safe(value: Any) -> Any:
    """NaN and infinities as null: the files stay strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def write_json(path: Path, doc: dict) -> None:
    text = json.dumps(_json_safe(doc), indent=1, sort_keys=True) + "\n"
    atomic_write(path, lambda f: f.write(text), "w")


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


class StaleRun(UserError):
    """The run directory holds results of other settings (`differences`: key -> (old, new))."""


class RunLocked(UserError):
    """Another live process is running this run directory (`holder`: its pid, host, since)."""

    def __init__(self, message: str, holder: dict) -> None:
        super().__init__(message)
        self.holder = holder


class RunRecord:
    """The status file, fingerprint, lock and final evaluation of one run directory.

    status.json `status`: running (a live process holds LOCK), done, failed, interrupted (a
    signal stopped it; `sdw-report` also shows a `running` one whose process is gone so).
    """

    HEARTBEAT_SECONDS = 30.0
    """How often a running job rewrites its `heartbeat` at least."""

    def __init__(self, run_dir: Path) -> None:
        self.dir = Path(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.status: dict = read_json(self.dir / STATUS) or {}
        self._beat = 0.0

    @property
    def done(self) -> bool:
        return self.status.get("status") == "done" and (self.dir / EVAL).exists()

    def evaluation(self) -> dict | None:
        return read_json(self.dir / EVAL)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Be the one process writing this directory, or raise RunLocked naming the other."""
        try:
            with exclusive(self.dir / LOCK, wait=False):
                yield
        except LockHeld as e:
            raise RunLocked(
                f"{self.dir} is being run by {describe(e.holder)}: wait for it to finish, or stop "
                "it first (a run whose process is killed frees the directory at once).",
                e.holder) from None

    def check(self, config: dict, outer_steps: int, rerun: bool) -> str:
        """What a launch with `config` does here: "done" (nothing), "run" (start or resume) or
        "extend" (a finished run continued from its checkpoint to more outer steps).

        Results of other settings raise StaleRun before any work, or are deleted with `rerun`.
        A directory from before fingerprints were recorded is taken as it is.
        """
        old = self.status.get("config")
        diff = differences(old, config) if old is not None else {}
        if diff and not rerun:
            self.update(stale={"keys": sorted(diff), "checked": _now()})
            raise StaleRun(
                f"{self.dir} holds a run with other settings ({describe_differences(diff)}); its "
                "results are not those of this command. Pass rerun=true to delete them and run "
                "again, or give this configuration its own directory (another name=).")
        if rerun:
            self.discard()
            return "run"
        self.status.pop("stale", None)
        if not self.done:
            return "run"
        done_steps = self.evaluation().get("outer_steps", outer_steps)
        if done_steps == outer_steps or not extendable(config):
            return "done"
        checkpoint = self.dir / CHECKPOINT
        if outer_steps > done_steps and checkpoint.exists():
            return "extend"
        why = ("its checkpoint is gone" if outer_steps > done_steps
               else "a shorter run's result is its periodic evaluations in metrics.jsonl")
        raise StaleRun(
            f"{self.dir} finished {done_steps} outer steps, not {outer_steps}, and {why}. Pass "
            f"rerun=true to run {outer_steps} steps from the start, or outer_steps={done_steps}.")

    def discard(self) -> None:
        """Delete this directory's results and status (`rerun=true`); Hydra's files stay."""
        for path in (*(self.dir / name for name in (EVAL, METRICS, SYNTHETIC, WEIGHTS_JSON,
                                                    WEIGHTS_PNG, CHECKPOINT, STATUS)),
                     previous_checkpoint(self.dir / CHECKPOINT)):
            path.unlink(missing_ok=True)
        self.status = {}

    def start(self, method: str, config: dict) -> None:
        """Mark the run as running in this process (again, when resumed): `started` stays the
        first attempt's, the timings of earlier attempts are kept and summed."""
        now = _now()
        self.status.update({"status": "running", "error": None, "method": method,
                            "git_commit": git_commit(), "finished": None, "attempt_started": now,
                            "attempts": self.status.get("attempts", 0) + 1,
                            "pid": os.getpid(), "host": socket.gethostname(), "heartbeat": now,
                            "fingerprint": fingerprint(config), "config": config})
        self.status.setdefault("started", now)
        self.status.setdefault("timings", {})
        self._write()
        self._beat = time.monotonic()

    def beat(self) -> None:
        """Rewrite `heartbeat` when the last write is HEARTBEAT_SECONDS old."""
        if time.monotonic() - self._beat >= self.HEARTBEAT_SECONDS:
            self.update(heartbeat=_now())
            self._beat = time.monotonic()

    def update(self, **fields: Any) -> None:
        self.status.update(fields)
        self._write()

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time one stage of the run into status.json's timings (summed over resumed attempts)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add_time(name, time.perf_counter() - start)

    def add_time(self, name: str, seconds: float) -> None:
        """Add `seconds` to the timing of stage `name` (a stage shared by a packed job's members
        counts in full for each)."""
        timings = self.status.setdefault("timings", {})
        timings[name] = timings.get(name, 0.0) + seconds
        self._write()

    def finish(self, evaluation: dict) -> None:
        write_json(self.dir / EVAL, evaluation)
        timings = self.status.setdefault("timings", {})
        timings["total"] = sum(v for k, v in timings.items() if k != "total")
        self.update(status="done", finished=_now(), heartbeat=_now())

    def fail(self, error: BaseException) -> None:
        self.update(status="failed", error=f"{type(error).__name__}: {error}", finished=_now())

    def interrupt(self, signal_name: str, step: int | None) -> None:
        self.update(status="interrupted", error=f"stopped by {signal_name}", finished=_now(),
                    interrupted_at_step=step)

    def _write(self) -> None:
        write_json(self.dir / STATUS, self.status)


class MetricsLog:
    """metrics.jsonl: one JSON object per line, appended and flushed as the run goes."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def rows(self) -> list[dict]:
        if not self.path.exists():
            return []
        rows = []
        for line in self.path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:  # a line cut short by a kill: everything after it is redone
                break
        return rows

    def keep_until(self, step: int) -> list[dict]:
        """Drop the rows after outer step `step` (the checkpoint a resumed run restarts from)."""
        rows = [r for r in self.rows() if r.get("step", 0) <= step]
        text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)
        atomic_write(self.path, lambda f: f.write(text), "w")
        return rows

    def append(self, row: dict) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(_json_safe(row), sort_keys=True) + "\n")
