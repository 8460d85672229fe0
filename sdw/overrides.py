"""Overrides checked before any work, as Hydra will compose them: an unknown group option, key
or a value of the wrong type is a UserError that names it and lists the valid ones."""

from __future__ import annotations

import collections.abc
import dataclasses
import difflib
import types
import typing
from collections.abc import Sequence
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException, MissingConfigException
from hydra.utils import get_class
from omegaconf import DictConfig, ListConfig, OmegaConf

from sdw.config import config_dir
from sdw.errors import UserError


def _first_values(overrides: Sequence[str]) -> list[str]:
    """The overrides with every sweep (`a=1,2`, `range(3)`) reduced to its first value."""
    out = []
    for override, text in zip(OverridesParser.create().parse_overrides(list(overrides)),
                              overrides):
        if override.is_sweep_override():
            first = next(iter(override.sweep_string_iterator()))
            out.append(f"{override.get_key_element()}={first}")
        else:
            out.append(text)
    return out


def _is_group(key: str) -> bool:
    return (config_dir() / key.lstrip("+~").split("@")[0]).is_dir()


def check_overrides(config_name: str, overrides: Sequence[str]) -> DictConfig:
    """Compose `config_name` with `overrides` as Hydra will; an unknown group option or key is a
    UserError that names it and lists the valid ones. Returns the composed config."""
    try:
        parsed = _first_values(overrides)
    except HydraException as e:
        raise UserError(f"cannot parse the overrides {list(overrides)}: {e}") from None
    groups = [o for o in parsed if _is_group(o.split("=", 1)[0])]
    values = [o for o in parsed if o not in groups and not o.lstrip("+~").startswith("hydra.")]
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        try:
            base = compose(config_name, overrides=groups)
        except MissingConfigException as e:
            raise UserError(_missing_option_message(e, groups)) from None
        for override in values:
            key = override.split("=", 1)[0]
            if key.startswith(("+", "~")):
                continue
            _check_key(base, key)
        try:
            cfg = compose(config_name, overrides=groups + values)
        except HydraException as e:
            raise UserError(f"the overrides {values} do not fit the config: {e}") from None
    for override in values:
        _check_type(cfg, override.split("=", 1)[0])
    missing = sorted(k for k in OmegaConf.missing_keys(cfg) if not k.startswith("hydra."))
    if missing:
        raise UserError(f"{', '.join(missing)} must be set (the config leaves it as ???), e.g. "
                        f"{missing[0]}=<value> on the command line.")
    return cfg


def _missing_option_message(error: MissingConfigException, groups: Sequence[str]) -> str:
    for override in groups:
        key, _, option = override.lstrip("+").partition("=")
        folder = config_dir() / key.split("@")[0]
        options = sorted(p.stem for p in folder.glob("*.yaml"))
        if option not in options and option != "null":
            close = difflib.get_close_matches(option, options, n=3, cutoff=0.5)
            hint = f" Did you mean {' or '.join(close)}?" if close else ""
            return (f"{key}={option}: no such option in conf/{key}/.{hint} "
                    f"Valid options: {', '.join(options)}.")
    return str(error)


def _check_key(cfg: DictConfig, key: str) -> None:
    node, parts = cfg, key.split(".")
    for depth, part in enumerate(parts):
        if not isinstance(node, DictConfig) or part not in node.keys():  # keys(): also `???`
            parent = ".".join(parts[:depth]) or "the top level"
            valid = sorted(node.keys()) if isinstance(node, DictConfig) else []
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
