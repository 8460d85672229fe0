"""Estimators and weighting schemes from their Hydra configs (`conf/density/`, `conf/weighting/`)."""

from __future__ import annotations

import difflib
from collections.abc import Mapping

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from sdw.config import config_dir
from sdw.density.base import DensityError, DensityEstimator
from sdw.density.weighting import WeightingScheme


def group_names(group: str) -> list[str]:
    """Config names of one group (`density` or `weighting`)."""
    return sorted(p.stem for p in (config_dir() / group).glob("*.yaml"))


def _load(group: str, name: str) -> DictConfig:
    path = config_dir() / group / f"{name}.yaml"
    if not path.exists():
        close = difflib.get_close_matches(name, group_names(group), n=3, cutoff=0.4)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise DensityError(f"no {group} config {name!r} ({path} does not exist).{hint} "
                           f"Known: {', '.join(group_names(group))}.")
    return OmegaConf.load(path)


def _build(group: str, cfg: str | Mapping | DictConfig, kind: type):
    if isinstance(cfg, kind):
        return cfg
    if isinstance(cfg, str):
        cfg = _load(group, cfg)
    if not isinstance(cfg, (Mapping, DictConfig)) or "_target_" not in cfg:
        raise DensityError(f"{group} config must be a config name, a mapping with _target_, or a "
                           f"{kind.__name__}; got {cfg!r}.")
    try:
        built = instantiate(cfg, _convert_="all")
    except InstantiationException as err:
        if isinstance(err.__cause__, DensityError):
            raise err.__cause__ from None
        raise DensityError(f"{group} config could not be built: {err}") from err
    if not isinstance(built, kind):
        raise DensityError(f"{group} config _target_={cfg['_target_']} built a {type(built).__name__}, "
                           f"not a {kind.__name__}.")
    return built


def make_estimator(cfg: str | Mapping | DictConfig | DensityEstimator) -> DensityEstimator:
    """A density estimator from a name in conf/density/, a config with _target_, or itself."""
    return _build("density", cfg, DensityEstimator)


def make_weighting(cfg: str | Mapping | DictConfig | WeightingScheme) -> WeightingScheme:
    """A weighting scheme from a name in conf/weighting/, a config with _target_, or itself."""
    return _build("weighting", cfg, WeightingScheme)
