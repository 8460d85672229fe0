"""What every sdw Hydra app shares: the command line split and checked before any work
(`sdw.overrides`), bad input as one paragraph and exit code 2, the run-directory name resolver."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from hydra.errors import InstantiationException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from sdw.errors import UserError
from sdw.overrides import check_overrides

log = logging.getLogger("sdw")
T = TypeVar("T")
BAD_INPUT = (UserError, ValueError, FileNotFoundError, InstantiationException)
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


def config_dirs(flags: Sequence[str]) -> list[str]:
    """The user's config folders given with `-cd` / `--config-dir`."""
    return _flag_values(flags, ("-cd", "--config-dir"))


def _flag_values(flags: Sequence[str], names: tuple[str, ...]) -> list[str]:
    """The values given to any of `names` (`-cd DIR`, `--config-dir DIR`, `--config-dir=DIR`)."""
    values = []
    for i, flag in enumerate(flags):
        name, sep, value = flag.partition("=")
        if name in names:
            values.append(value if sep else flags[i + 1])
    return values


def launch(config_name: str, hydra_main: Callable[[], None], argv: Sequence[str] | None,
           positional: str | None = None,
           validate: Callable[[DictConfig, bool], None] | None = None) -> None:
    """Check the overrides (and with `validate(cfg, multirun)` the composed config, Hydra's node
    included), then hand them to `hydra_main` (a `@hydra.main` function), so bad input fails
    before Hydra makes a directory.

    `--debug` shows tracebacks (as HYDRA_FULL_ERROR=1); `positional` as in `split_argv`.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if "--debug" in args:
        os.environ["HYDRA_FULL_ERROR"] = "1"
        args = [a for a in args if a != "--debug"]
    overrides, flags = split_argv(args, positional)
    if not HELP_FLAGS.intersection(flags):
        with reported():
            names = _flag_values(flags, ("-cn", "--config-name"))
            cfg = check_overrides(names[-1] if names else config_name, overrides,
                                  config_dirs(flags), hydra_node=validate is not None)
            if validate is not None:
                validate(cfg, bool({"-m", "--multirun"} & set(flags))
                         or cfg.hydra.mode == RunMode.MULTIRUN)
    saved = sys.argv
    sys.argv = [saved[0], *flags, *overrides]
    try:
        hydra_main()
    finally:
        sys.argv = saved
