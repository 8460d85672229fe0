"""Where the Hydra configs live: `conf/` of a source checkout, or `sdw/conf` inside a wheel."""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def config_dir() -> Path:
    for candidate in (_PACKAGE_DIR.parent / "conf", _PACKAGE_DIR / "conf"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"no conf/ directory beside {_PACKAGE_DIR}; reinstall sdw.")
