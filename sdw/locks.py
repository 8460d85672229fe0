"""Advisory file locks: one writer per run directory, and shared work (a dataset build, a teacher,
a density, a reference evaluation) done by the first process that needs it while the others wait.

`fcntl.flock` rather than the `filelock` package: a refusal must name the process and host that
hold the lock, so the lock file carries them, and `held` must probe a lock without taking it.
The kernel drops a lock when its process dies, however it dies, so a lock left by a killed run
is simply taken by the next one. On Linux NFS (v3 with lockd, v4) flock is carried out as a POSIX
lock on the server and holds across hosts (docs/experiments.md, "One writer per run directory").
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)


class LockHeld(RuntimeError):
    """Another process holds the lock (`holder`: its pid, host and since when, as it wrote them)."""

    def __init__(self, path: Path, holder: dict) -> None:
        self.path, self.holder = path, holder
        super().__init__(f"{path} is held by {describe(holder)}")


def describe(holder: dict) -> str:
    """`process 123 on host node7 (since 2026-12-02T10:00:00+00:00)`, or what is known of it."""
    if not holder:
        return "another process (it has not written its name yet)"
    return (f"process {holder.get('pid', '?')} on host {holder.get('host', '?')}"
            + (f" (since {holder['since']})" if holder.get("since") else ""))


def holder(path: Path) -> dict:
    """What the process holding (or last holding) the lock at `path` wrote about itself."""
    try:
        return json.loads(Path(path).read_text() or "{}")
    except (OSError, ValueError):
        return {}


def held(path: Path) -> bool:
    """Whether a live process holds the lock at `path` (a missing lock file: no)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def lock_for(path: Path) -> Path:
    """The lock guarding the making of the file `path`: `<its folder>/.locks/<its name>.lock`
    (a hidden folder, so listings of the folder's files stay as they were)."""
    path = Path(path)
    return path.parent / ".locks" / f"{path.name}.lock"


@contextlib.contextmanager
def exclusive(path: Path, *, wait: bool = True, what: str = "") -> Iterator[None]:
    """Hold the lock at `path` for the block.

    Held elsewhere: `wait=False` raises LockHeld at once; `wait=True` logs who holds it and what
    for, then blocks until it is free. The lock file stays (removing it would let two processes
    lock two different files of the same name).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as e:  # a read-only cache: its callers report that; nothing to share then
        log.debug("no lock at %s (%s): going on without it", path, e)
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                raise LockHeld(path, holder(path)) from None
            log.info("waiting for %s, which is computing %s (lock %s)", describe(holder(path)),
                     what or "the same thing", path)
            fcntl.flock(fd, fcntl.LOCK_EX)
        me = {"pid": os.getpid(), "host": socket.gethostname(),
              "since": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
