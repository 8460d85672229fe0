"""Overrides checked before any work, as Hydra will compose them (its loader, its search path,
its plugins' groups, the user's config folders): an unknown group option, key or a value of the
wrong type is a UserError that names it and lists the valid ones."""

from __future__ import annotations

import collections.abc
import dataclasses
import difflib
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Glob, IntervalSweep
from hydra.errors import HydraException, MissingConfigException
from hydra.utils import get_class
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from sdw.config import config_dir
from sdw.errors import UserError


def _key(override: str) -> str:
    """The key or group of an override (`+`, `~` and `@package` left off)."""
    return override.split("=", 1)[0].lstrip("+~").split("@")[0]


def _first_values(overrides: Sequence[str], options: Callable[[str], list[str]]) -> list[str]:
    """The overrides with every sweep reduced to one value the run could get: the first of a
    choice (`a=1,2`), range or glob over a group's options, the lower end of an interval (what
    Optuna's `interval(0.01,0.1)` samples from)."""
    out = []
    for override in OverridesParser.create().parse_overrides(list(overrides)):
        text, value = override.input_line, override.value()
        if isinstance(value, IntervalSweep):
            text = f"{override.get_key_element()}={value.start}"
        elif isinstance(value, Glob):
            matches = value.filter(options(override.key_or_group))
            text = f"{override.get_key_element()}={matches[0]}" if matches else text
        elif override.is_sweep_override():
            first = next(iter(override.sweep_string_iterator()))
            text = f"{override.get_key_element()}={first}"
        out.append(text)
    return out


def _search_path(overrides: Sequence[str], config_dirs: Sequence[str]) -> list[str]:
    """`hydra.searchpath` as the run will have it: the command line's, then every `-cd DIR`."""
    paths: list[str] = []
    for override in OverridesParser.create().parse_overrides(list(overrides)):
        if override.key_or_group == "hydra.searchpath":
            value = override.value()
            paths = [str(v) for v in value] if isinstance(value, list) else [str(value)]
    paths += [f"file://{Path(d).expanduser().resolve()}" for d in config_dirs]
    return [f"hydra.searchpath=[{','.join(paths)}]"] if paths else []


def check_overrides(config_name: str, overrides: Sequence[str],
                    config_dirs: Sequence[str] = (), hydra_node: bool = False) -> DictConfig:
    """Compose `config_name` with `overrides` as Hydra will, through Hydra's own loader and the
    run's search path (sdw's conf/, Hydra's and its plugins' configs, `hydra.searchpath`, every
    `-cd` in `config_dirs`); an unknown group option or key is a UserError that names it and
    lists the valid ones. Sweeps are checked by one value each. Returns the composed config
    (with Hydra's own node only when `hydra_node`)."""
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        try:
            search = _search_path(overrides, config_dirs)

            def options(group: str) -> list[str]:
                return loader.get_group_options(group, config_name=config_name, overrides=search)

            parsed = [o for o in _first_values(overrides, options)
                      if _key(o) != "hydra.searchpath"]
        except HydraException as e:
            raise UserError(f"cannot parse the overrides {list(overrides)}: {e}") from None
        groups = [o for o in parsed if "." not in _key(o) and options(_key(o))]
        settings = [o for o in parsed if o not in groups and _key(o).startswith("hydra.")]
        values = [o for o in parsed if o not in groups and o not in settings]
        try:
            base = compose(config_name, overrides=search + groups, return_hydra_config=True)
        except MissingConfigException as e:
            raise UserError(_missing_option_message(e, groups, options)) from None
        for override in values:
            if not override.startswith(("+", "~")):
                _check_key(base, override.split("=", 1)[0])
        try:
            cfg = compose(config_name, overrides=search + groups + settings + values,
                          return_hydra_config=True)
        except HydraException as e:
            raise UserError(f"the overrides {settings + values} do not fit the config: "
                            f"{' '.join(str(e).split())}") from None
    hydra_cfg = cfg.hydra
    with open_dict(cfg):
        del cfg["hydra"]
    for override in values:
        _check_type(cfg, override.split("=", 1)[0])
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise UserError(f"{', '.join(missing)} must be set (the config leaves it as ???), e.g. "
                        f"{missing[0]}=<value> on the command line.")
    if hydra_node:
        with open_dict(cfg):
            cfg.hydra = hydra_cfg
    return cfg


def _missing_option_message(error: MissingConfigException, groups: Sequence[str],
                            options: Callable[[str], list[str]]) -> str:
    for override in groups:
        key, option = _key(override), override.split("=", 1)[1]
        valid = options(key)
        if option not in valid and option != "null":
            close = difflib.get_close_matches(option, valid, n=3, cutoff=0.5)
            hint = f" Did you mean {' or '.join(close)}?" if close else ""
            return (f"{key}={option}: no such option in the config group {key} (sdw's conf/, "
                    f"Hydra's and its plugins', and your search path).{hint} "
                    f"Valid options: {', '.join(valid)}.")
    return " ".join(str(error).split())


def _check_key(cfg: DictConfig, key: str) -> None:
    node, parts = cfg, key.split(".")
    for depth, part in enumerate(parts):
        if not isinstance(node, DictConfig) or part not in node.keys():  # keys(): also `???`
            parent = ".".join(parts[:depth]) or "the top level"
            valid = sorted(k for k in node.keys() if depth or k != "hydra") \
                if isinstance(node, DictConfig) else []
            close = difflib.get_close_matches(part, valid, n=3, cutoff=0.5)
            hint = f" Did you mean {' or '.join('.'.join(parts[:depth] + [c]) for c in close)}?" \
                if close else ""
            raise UserError(f"{key}: no key {part!r} in {parent}.{hint} Valid keys there: "
                            f"{', '.join(valid)}. (A new key needs a leading +, e.g. +{key}=...)")
        node = node._get_node(part)


def _accepts(annotation: Any, value: Any) -> bool:
    """Whether a config value can stand for a field of this annotation (unknown kinds: yes)."""
    if annotation is Any or isinstance(annotation, (str, typing.TypeVar)):
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(a, value) for a in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    kind = origin or annotation
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is str:
        return isinstance(value, str)
    if kind in (tuple, list, typing.Sequence, collections.abc.Sequence):
        return isinstance(value, (list, tuple, ListConfig))
    if kind in (dict, typing.Mapping, collections.abc.Mapping):
        return isinstance(value, (dict, DictConfig))
    return True


def _check_type(cfg: DictConfig, key: str) -> None:
    """A value overridden in a group node must fit the type of the field it sets (`steps=abc`)."""
    *path, field = key.lstrip("+").split(".")
    node = OmegaConf.select(cfg, ".".join(path)) if path else None
    if not isinstance(node, DictConfig) or "_target_" not in node:
        return
    try:
        target = get_class(node._target_)
        hints = typing.get_type_hints(target if dataclasses.is_dataclass(target)
                                      else target.__init__)
    except Exception:  # a target that cannot be inspected is left to instantiation
        return
    if field not in hints:
        return
    value = OmegaConf.select(cfg, key.lstrip("+"), throw_on_missing=False)
    if not _accepts(hints[field], value):
        raise UserError(f"{key}={value!r} is not a valid {_type_name(hints[field])} for "
                        f"{node._target_.rsplit('.', 1)[-1]}.{field}.")


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def compose_each(config_name: str, jobs: Sequence[Sequence[str]],
                 config_dirs: Sequence[str] = ()) -> list[DictConfig]:
    """The config of each job (its overrides already checked by `check_overrides`), with Hydra's
    node and its `job.override_dirname`, as a launcher would compose it."""
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        return [compose(config_name, overrides=_search_path(job, config_dirs)
                        + [o for o in job if _key(o) != "hydra.searchpath"],
                        return_hydra_config=True) for job in jobs]
