"""What a run leaves in its directory: status.json, metrics.jsonl, eval.json (docs/experiments.md)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sdw.atomic import atomic_write

STATUS, METRICS, EVAL = "status.json", "metrics.jsonl", "eval.json"
CHECKPOINT, SYNTHETIC = "checkpoint.pt", "synthetic.npz"
WEIGHTS_JSON, WEIGHTS_PNG = "weights.json", "weights.png"


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


class RunRecord:
    """The status file and the final evaluation of one run directory."""

    def __init__(self, run_dir: Path) -> None:
        self.dir = Path(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.status: dict = read_json(self.dir / STATUS) or {}

    @property
    def done(self) -> bool:
        return self.status.get("status") == "done" and (self.dir / EVAL).exists()

    def evaluation(self) -> dict | None:
        return read_json(self.dir / EVAL)

    def start(self, method: str) -> None:
        """Mark the run as running (again, when resumed), keeping the timings of earlier attempts."""
        self.status.update({"status": "running", "error": None, "method": method,
                            "git_commit": git_commit(), "started": _now(), "finished": None,
                            "attempts": self.status.get("attempts", 0) + 1})
        self.status.setdefault("timings", {})
        self._write()

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
            timings = self.status.setdefault("timings", {})
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - start
            self._write()

    def finish(self, evaluation: dict) -> None:
        write_json(self.dir / EVAL, evaluation)
        timings = self.status.setdefault("timings", {})
        timings["total"] = sum(v for k, v in timings.items() if k != "total")
        self.update(status="done", finished=_now())

    def fail(self, error: BaseException) -> None:
        self.update(status="failed", error=f"{type(error).__name__}: {error}", finished=_now())

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
