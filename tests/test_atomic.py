"""atomic_write: content appears whole or not at all, with the mode a plain open() would give."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from sdw.atomic import atomic_write


@pytest.fixture
def umask():
    """Set a umask for the test and restore the previous one afterwards."""
    previous = os.umask(0o022)
    os.umask(previous)
    yield os.umask
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077, 0o027])
def test_new_file_gets_the_mode_of_a_plain_open(tmp_path, umask, mask):
    umask(mask)
    plain = tmp_path / "plain.txt"
    with open(plain, "w") as f:
        f.write("x")
    written = atomic_write(tmp_path / "atomic.txt", lambda f: f.write("x"), "w")
    assert mode(written) == mode(plain) == 0o666 & ~mask


def test_overwrite_keeps_the_mode_of_the_existing_file(tmp_path, umask):
    umask(0o022)
    path = tmp_path / "shared.bin"
    path.write_bytes(b"old")
    path.chmod(0o664)
    atomic_write(path, lambda f: f.write(b"new"))
    assert path.read_bytes() == b"new" and mode(path) == 0o664


def test_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path):
    path = tmp_path / "out" / "keep.txt"
    path.parent.mkdir()
    path.write_text("old")

    def fail(f) -> None:
        f.write("half")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        atomic_write(path, fail, "w")
    assert path.read_text() == "old"
    assert sorted(p.name for p in path.parent.iterdir()) == ["keep.txt"]
