"""The fingerprint of a run: the resolved configuration keys that change its results.

A run directory records them (status.json `config` and `fingerprint`); a later launch with other
values is refused before any work, or run again with `rerun=true` (docs/experiments.md).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from omegaconf import DictConfig, OmegaConf

NOT_RESULTS = ("threads", "progress", "capture_video", "logger", "paths", "name",
               "checkpoint_every", "rerun")
"""Top-level keys that change how a run goes, not what it finds."""
EXTENDABLE = "outer_steps"
"""A finished run with fewer outer steps is extended from its checkpoint (constant outer lr)."""


def result_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved configuration as dotted keys, without NOT_RESULTS (and Hydra's own)."""
    tree = OmegaConf.to_container(cfg, resolve=True)
    flat: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict) and node:
            for key, value in node.items():
                walk(value, f"{prefix}{key}.")
        else:
            flat[prefix[:-1]] = node

    walk({k: v for k, v in tree.items() if k not in NOT_RESULTS and k != "hydra"}, "")
    return json.loads(json.dumps(flat, sort_keys=True, default=str))


def extendable(config: dict[str, Any]) -> bool:
    """Whether `outer_steps` may grow without changing the steps already taken."""
    return config.get("outer_optim.schedule", "constant") == "constant"


def fingerprint(config: dict[str, Any]) -> str:
    """16 hex digits of SHA-256 over the keys that fix the results (outer_steps apart when
    extendable: a longer run of the same settings continues the shorter one)."""
    keys = {k: v for k, v in config.items() if not (k == EXTENDABLE and extendable(config))}
    return hashlib.sha256(json.dumps(keys, sort_keys=True).encode()).hexdigest()[:16]


def differences(old: dict[str, Any], new: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """key -> (old value, new value) for every key whose value differs (outer_steps apart when
    extendable); a key missing on one side shows as None there."""
    skip = EXTENDABLE if extendable(new) and extendable(old) else None
    return {k: (old.get(k), new.get(k)) for k in sorted(set(old) | set(new))
            if k != skip and old.get(k) != new.get(k)}


def describe_differences(diff: dict[str, tuple[Any, Any]], limit: int = 8) -> str:
    """`eval.episodes: 2 -> 3, seed: 0 -> 1`, the first `limit` keys and how many more."""
    parts = [f"{k}: {json.dumps(a)} -> {json.dumps(b)}" for k, (a, b) in list(diff.items())[:limit]]
    more = len(diff) - limit
    return ", ".join(parts) + (f" and {more} more" if more > 0 else "")
