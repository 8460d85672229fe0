"""The published content hashes of the local datasets, and the check of a build against them.

`sdw/collect/published.json` lists, for every dataset `sdw-collect mode=rebuild` writes with the
default settings from the shipped zoos, its content hash, size and mean return, with the build
settings, zoo hashes and package versions they were measured with (written by
scripts/publish_datasets.py from the build records of a rebuild). A rebuild with the same
settings and zoo must give the same hashes on any x86-64 machine (docs/datasets.md); when it
does not, the build says so and how its setting differs, and keeps what it built.
"""

from __future__ import annotations

import json
import logging
import platform
from importlib import metadata
from pathlib import Path

log = logging.getLogger(__name__)

PUBLISHED = Path(__file__).resolve().parent / "published.json"
VERSIONED_PACKAGES = ("numpy", "mujoco", "gymnasium", "minari", "h5py")
"""Packages whose versions can change the bytes of a rebuilt dataset (recorded with each build)."""


def environment() -> dict:
    """Package, Python and C library versions of this process (the record of a build)."""
    versions = {name: metadata.version(name) for name in VERSIONED_PACKAGES}
    libc, libc_version = platform.libc_ver()
    return {**versions, "python": platform.python_version(),
            "libc": f"{libc} {libc_version}".strip(), "machine": platform.machine()}


def load_published(path: Path = PUBLISHED) -> dict:
    return json.loads(path.read_text()) if path.exists() else {"datasets": {}}


def comparable_settings(record: dict) -> dict:
    """What determines a dataset's bytes besides the code: seed, build settings, zoo hash."""
    return {"seed": record["seed"], "n_envs": record["build"]["n_envs"],
            "sizes": record["build"]["sizes"], "zoo_hash": record["zoo_hash"]}


def check_against_published(record: dict, published: dict | None = None) -> bool | None:
    """Log whether a dataset's build record matches its published entry: True / False, or None
    when there is nothing comparable (no entry, or other settings or zoo)."""
    published = load_published() if published is None else published
    did = record["dataset_id"]
    entry = published["datasets"].get(did)
    if entry is None:
        log.info("%s: no published hash to compare with", did)
        return None
    ours, theirs = comparable_settings(record), comparable_settings(entry)
    if ours != theirs:
        differs = {k: (ours[k], theirs[k]) for k in ours if ours[k] != theirs[k]}
        log.info("%s: not compared with the published hash, the build differs in "
                 "(this build, published) %s", did, differs)
        return None
    if record["content_hash"] == entry["content_hash"]:
        log.info("%s: content hash %s matches the published one", did, record["content_hash"])
        return True
    versions = {k: (record["environment"].get(k), v) for k, v in entry["environment"].items()
                if record["environment"].get(k) != v}
    log.warning(
        "%s: content hash %s differs from the published %s (transitions %d vs %d, episodes %d vs "
        "%d, mean return %.1f vs %.1f) although the seed, sizes and zoo (%s) are the same. "
        "Versions that differ (this build, published): %s. The dataset is kept; caches keyed by "
        "the published hash (shipped teachers) will not match it. Please report this with the "
        "versions above (docs/datasets.md, 'Bit-identical rebuilds').",
        did, record["content_hash"], entry["content_hash"], record["transitions"],
        entry["transitions"], record["episodes"], entry["episodes"], record["mean_return"],
        entry["mean_return"], record["zoo_hash"], versions or "none")
    return False
