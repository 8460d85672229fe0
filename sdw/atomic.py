"""Writing files so that a crash never leaves a half-written one: temp file, fsync, rename."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from sdw.errors import UserError


def current_umask() -> int:
    """The process umask (read by setting it and restoring it at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def plain_write_mode(path: Path) -> int:
    """The permission bits `open(path, "w")` would leave: the existing file's, else 0o666 & ~umask."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return 0o666 & ~current_umask()


def atomic_write(path: Path, write: Callable[[IO[Any]], None], mode: str = "wb") -> Path:
    """Call `write` on a temporary file beside `path`, then rename it into place.

    The file gets the permissions a plain `open(path, "w")` would give (not mkstemp's 0600), so a
    cache shared by a group stays readable by the group.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            os.fchmod(f.fileno(), plain_write_mode(path))
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


class UnwritableLocationError(UserError):
    """A file a command must write cannot be written there."""


def unwritable_reason(path: Path) -> str | None:
    """Why `atomic_write(path, ...)` would fail for lack of a writable place, or None if it would not.

    Creates the missing parent directories and a probe file there, then removes both, so a
    read-only, full or uncreatable location is found before the work whose result goes there.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        return "it is a directory"
    missing = [p for p in path.parents if not p.exists()]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=path.parent)
        os.close(fd)
        os.unlink(probe)
    except (FileExistsError, NotADirectoryError):
        blocker = next(p for p in path.parents if p.exists())
        return f"{blocker} is a file, not a directory"
    except OSError as e:
        return f"{e.strerror or e}" + (f" ({e.filename})" if e.filename else "")
    finally:
        for directory in missing:  # deepest first
            try:
                directory.rmdir()
            except OSError:
                pass  # not created here, or something else wrote into it meanwhile
    return None


def check_writable(path: Path, what: str) -> Path:
    """`path` if a file can be written there, else an UnwritableLocationError naming it and the fix."""
    reason = unwritable_reason(path)
    if reason is not None:
        raise UnwritableLocationError(
            f"cannot write {what} {path}: {reason}. Choose a writable location or fix its "
            "permissions."
        )
    return Path(path)
