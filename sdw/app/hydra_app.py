"""What every sdw Hydra app shares: overrides checked before any work (a typo lists the valid
options), bad input as one paragraph and exit code 2, the run-directory name resolver."""

from __future__ import annotations

import collections.abc
import contextlib
import dataclasses
import functools
import difflib
import hashlib
import logging
import os
import sys
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException, InstantiationException, MissingConfigException
from hydra.utils import get_class
from omegaconf import DictConfig, ListConfig, OmegaConf

from sdw.config import config_dir
from sdw.errors import UserError

log = logging.getLogger("sdw")
T = TypeVar("T")
BAD_INPUT = (UserError, ValueError, InstantiationException)
"""Errors that mean "fix your input": printed as one paragraph, exit code 2."""
HELP_FLAGS = {"--help", "-h", "--hydra-help", "--info", "-i", "--shell-completion", "-sc"}


def _dirname(overrides: str, limit: int = 160) -> str:
    """A job directory name from Hydra's override_dirname: `default` when empty, no slashes, and
    past `limit` characters cut and made unique by a hash of the whole (the same overrides give
    the same directory, so a relaunch finds its jobs)."""
    name = overrides.replace("/", "_") if overrides else "default"
    if len(name) <= limit:
        return name
    return f"{name[:limit - 17]}-{hashlib.sha256(name.encode()).hexdigest()[:16]}"


OmegaConf.register_new_resolver("sdw.dirname", _dirname, replace=True)


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


def _message(error: BaseException) -> str:
    if isinstance(error, InstantiationException) and error.__cause__ is not None:
        error = error.__cause__
    return " ".join(str(error).split())


@contextlib.contextmanager
def reported() -> Iterator[None]:
    """Bad input becomes one paragraph on stderr and exit code 2 (a traceback with --debug or
    HYDRA_FULL_ERROR=1)."""
    try:
        yield
    except BAD_INPUT as e:
        if os.environ.get("HYDRA_FULL_ERROR"):
            raise
        print(f"error: {_message(e)}", file=sys.stderr)
        sys.exit(2)


def task(function: Callable[[DictConfig], T]) -> Callable[[DictConfig], T]:
    """Decorate a Hydra task (under `@hydra.main`) so its bad input is reported as by `reported`."""
    @functools.wraps(function)
    def wrapper(cfg: DictConfig) -> T:
        with reported():
            return function(cfg)
    return wrapper


# Hydra flags whose value is the next argument (so it is never taken for an override or a path).
FLAGS_WITH_VALUE = {"-cp", "--config-path", "-cn", "--config-name", "-cd", "--config-dir",
                    "-c", "--cfg", "-p", "--package", "--experimental-rerun"}
INFO_VALUES = {"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"}


def split_argv(argv: Sequence[str], positional: str | None = None) -> tuple[list[str], list[str]]:
    """(overrides, Hydra flags with their values) of a command line.

    With `positional`, every bare argument (an existing path, or one without `=`) goes into one
    override placed first, so an explicit one still wins: `positional=[...]` (quoted list), or
    `positional=...` (one quoted value) when the name ends with `!`.
    """
    bare, overrides, flags = [], [], []
    i = 0
    while i < len(argv):
        arg = argv[i]
        takes_value = arg in FLAGS_WITH_VALUE or (
            arg == "--info" and i + 1 < len(argv) and argv[i + 1] in INFO_VALUES)
        if arg.startswith("-"):
            flags += argv[i:i + 1 + takes_value]
            i += 1 + takes_value
            continue
        is_bare = positional is not None and (os.path.exists(arg) or "=" not in arg)
        (bare if is_bare else overrides).append(arg)
        i += 1
    if bare:
        quoted = ["'" + b.replace("\\", "\\\\").replace("'", "\\'") + "'" for b in bare]
        single = positional.endswith("!")
        value = quoted[0] if single else f"[{','.join(quoted)}]"
        overrides.insert(0, f"{positional.rstrip('!')}={value}")
    return overrides, flags


def launch(config_name: str, hydra_main: Callable[[], None], argv: Sequence[str] | None,
           positional: str | None = None) -> None:
    """Check the overrides, then hand them to `hydra_main` (a `@hydra.main` function).

    `--debug` shows tracebacks (as HYDRA_FULL_ERROR=1); `positional` as in `split_argv`.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if "--debug" in args:
        os.environ["HYDRA_FULL_ERROR"] = "1"
        args = [a for a in args if a != "--debug"]
    overrides, flags = split_argv(args, positional)
    if not HELP_FLAGS.intersection(flags):
        with reported():
            check_overrides(config_name, overrides)
    saved = sys.argv
    sys.argv = [saved[0], *flags, *overrides]
    try:
        hydra_main()
    finally:
        sys.argv = saved
