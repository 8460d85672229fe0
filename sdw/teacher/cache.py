"""On-disk cache of trained teachers, keyed by dataset content hash and training-config hash.

Layout: `<cache_dir>/<algorithm>/<dataset_hash>-<config_hash>.pt` (the teacher record, read with
`torch.load(weights_only=True)`), a `.json` beside it with the same metadata minus the weights
(readable without torch), and `.partial.pt` while a training run is unfinished (resumed by the
next run). Every write goes to a temporary file in the same directory and is renamed into place,
so a crash never leaves a half-written entry; an entry that fails to load or does not match its
key is reported with a warning and retrained, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from sdw.atomic import atomic_write

RECORD_FORMAT = "sdw-teacher"
RECORD_FORMAT_VERSION = 1
SHIPPED_ROOT = Path(__file__).resolve().parent / "shipped"
"""Teachers shipped with the package, laid out like a cache (docs/teachers.md); read-only."""


def config_hash(fields: Mapping[str, Any]) -> str:
    """Stable 16-hex-digit hash of a JSON-serialisable mapping (key order does not matter)."""
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def atomic_torch_save(obj: Any, path: Path) -> None:
    atomic_write(path, lambda f: torch.save(obj, f), "wb")


def atomic_json_save(obj: Any, path: Path) -> None:
    atomic_write(path, lambda f: f.write(json.dumps(obj, indent=2, sort_keys=True) + "\n"), "w")


def read_record(path: Path | str) -> dict:
    """Load a teacher record (tensors and plain Python values only: no code is unpickled)."""
    record = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT:
        raise ValueError(f"{path} is not an sdw teacher file (no format={RECORD_FORMAT!r} key).")
    if record.get("format_version") != RECORD_FORMAT_VERSION:
        raise ValueError(f"{path} has teacher format version {record.get('format_version')}, "
                         f"this sdw reads {RECORD_FORMAT_VERSION}; retrain or upgrade sdw.")
    return record


class TeacherCache:
    """Teacher records under `root`, one entry per (algorithm, dataset hash, config hash)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser()

    def entry(self, algorithm: str, dataset_hash: str, cfg_hash: str) -> Path:
        return self.root / algorithm / f"{dataset_hash}-{cfg_hash}.pt"

    @staticmethod
    def partial(entry: Path) -> Path:
        return entry.with_suffix(".partial.pt")

    @staticmethod
    def summary(entry: Path) -> Path:
        return entry.with_suffix(".json")

    def load(self, path: Path, expected: Mapping[str, Any]) -> dict | None:
        """The record at `path` if it exists, loads and carries the `expected` header values.

        A file that exists but fails any check yields a warning and None (the caller retrains).
        """
        if not path.exists():
            return None
        try:
            record = read_record(path)
        except Exception as e:  # a corrupt or foreign file of any kind must not stop training
            warnings.warn(f"ignoring unreadable cached teacher {path} ({type(e).__name__}: {e}); "
                          "retraining.", stacklevel=2)
            return None
        mismatched = {k: (record.get(k), v) for k, v in expected.items() if record.get(k) != v}
        if mismatched:
            warnings.warn(f"ignoring cached teacher {path}: header does not match its key "
                          f"(found, expected) {mismatched}; retraining.", stacklevel=2)
            return None
        return record

    def save(self, path: Path, record: dict, summary: dict) -> None:
        """Write the record, then its JSON summary, each atomically."""
        atomic_torch_save(record, path)
        atomic_json_save(summary, self.summary(path))


def ship_record(record: dict, dtype: str) -> dict:
    """A copy of `record` whose floating-point weights are stored as `dtype` ("float16" halves
    the file; "float32" keeps it exact)."""
    target = getattr(torch, dtype)
    return {**record, "state_dict": {k: v.to(target) if v.is_floating_point() else v
                                     for k, v in record["state_dict"].items()}}

