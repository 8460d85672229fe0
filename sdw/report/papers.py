"""Published numbers the reproduction study sets its own beside (normalised return x 100, D4RL v2).

Sources: OBD (Lei et al., NeurIPS 2024) Tables 1, 3 and 5; SDW (Lei, Cheng, Tao, arXiv
2512.06692) headline scores as summarised in the project's reference notes. These are the
papers' numbers on D4RL with their GPU configuration, not measurements of this project.
"""

from __future__ import annotations

import re

from sdw.data.scores import D4RL_REFERENCE_SCORES

ENVS = ("halfcheetah", "hopper", "walker2d")
LEVELS = ("medium-replay", "medium", "medium-expert")
LEVEL_SHORT = {"medium-replay": "M-R", "medium": "M", "medium-expert": "M-E"}
ENV_SHORT = {"halfcheetah": "HC", "hopper": "Hop", "walker2d": "W2D"}

_T1_ORDER = [(env, level) for env in ENVS for level in LEVELS]
_T1 = {
    "Random subset": (0.9, 1.8, 2.0, 19.1, 19.2, 11.6, 1.9, 4.9, 6.7),
    "DBC": (2.5, 28.2, 29.0, 12.1, 37.8, 31.1, 6.1, 29.3, 11.7),
    "PBC": (19.4, 30.9, 20.5, 35.6, 25.1, 33.4, 41.5, 33.2, 34.0),
    "Av-PBC": (35.9, 36.9, 22.0, 40.9, 32.5, 38.7, 55.0, 39.5, 42.1),
    "BC (whole data)": (14.0, 42.3, 59.8, 22.9, 50.2, 51.7, 14.6, 65.9, 89.6),
}
OBD_TABLE1: dict[str, dict[tuple[str, str], float]] = {
    method: dict(zip(_T1_ORDER, values)) for method, values in _T1.items()}
"""OBD Table 1 (256 pairs): method -> (env, level) -> score."""

OBD_TABLE1_OFFLINE_RL: dict[tuple[str, str], float] = dict(zip(
    _T1_ORDER, (45.8, 47.6, 50.8, 98.0, 56.4, 107.3, 87.4, 84.0, 109.0)))
"""OBD Table 1's offline RL on the whole data (Cal-QL): the paper's teachers."""

OBD_TABLE3_AVPBC_ENSEMBLE: dict[tuple[str, str], float] = dict(zip(
    _T1_ORDER, (39.8, 41.4, 37.2, 39.7, 27.6, 38.8, 75.9, 58.6, 73.7)))
"""OBD Table 3: Av-PBC's synthetic sets evaluated by an ensemble of 10 students."""

SDW_HEADLINE: dict[tuple[str, str], float] = {
    ("halfcheetah", "medium"): 39.5, ("hopper", "medium"): 38.4, ("hopper", "medium-expert"): 42.6}
"""SDW's reported scores where the reference notes have them (the rest are not public here)."""

OBD_TABLE5: dict[str, dict[int, float]] = {
    "halfcheetah": {16: 6.9, 32: 15.3, 64: 23.8, 128: 33.2, 256: 35.9},
    "hopper": {16: 27.3, 32: 29.9, 64: 32.3, 128: 38.1, 256: 40.9},
    "walker2d": {16: 14.8, 32: 21.8, 64: 34.0, 128: 50.0, 256: 55.0},
}
"""OBD Table 5: Av-PBC on medium-replay against the synthetic budget."""

DATASET_PATTERN = re.compile(r"(halfcheetah|hopper|walker2d)\W+(medium-replay|medium-expert|medium)")


def env_level(dataset: str | None) -> tuple[str, str] | None:
    """("hopper", "medium-replay") from a dataset name such as sdw/hopper/medium-replay-v0."""
    match = DATASET_PATTERN.search(str(dataset or ""))
    return (match.group(1), match.group(2)) if match else None


def to_d4rl(score: float | None, dataset: str,
            return_map: tuple[float, float] | None) -> float | None:
    """A normalised score in D4RL's units: the raw return `return_map` gives it (raw at 0, raw
    per point: sdw.report.collect.Run.return_map), normalised with D4RL's reference returns of
    the dataset's env; None without a score, a map or a D4RL locomotion env."""
    key = env_level(dataset)
    if score is None or key is None or return_map is None:
        return None
    return float(D4RL_REFERENCE_SCORES[key[0]].normalise(return_map[0] + return_map[1] * score))
