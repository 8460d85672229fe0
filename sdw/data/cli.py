"""`sdw-data`: list the configured datasets, describe one, or make a small example dataset."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import traceback
from pathlib import Path

import numpy as np

from sdw.atomic import check_writable
from sdw.data.d4rl import env_of
from sdw.data.dataset import OfflineDataset
from sdw.data.example import collect_random_transitions, write_d4rl_hdf5
from sdw.data.minari_source import MinariSource
from sdw.data.registry import dataset_names, resolve_source
from sdw.data.validate import env_spaces
from sdw.errors import UserError

DEFAULT_EXAMPLE = "outputs/data/hopper_random-example.hdf5"


def describe(ds: OfflineDataset) -> dict:
    """Size, episodes, return statistics (raw and normalised) and state-space statistics."""
    meta = ds.metadata
    returns = ds.episode_returns(complete_only=True)
    ends = ds.episode_ends
    unfinished = int(not (ds.terminals[ends[-1] - 1] or ds.timeouts[ends[-1] - 1]))
    view = ds.qlearning_view()
    normaliser = ds.state_normaliser()
    info = {
        "name": meta.name, "source": meta.source, "env_id": meta.env_id,
        "location": meta.extra.get("path", ""), "content_hash": ds.content_hash,
        "transitions": len(ds), "qlearning_transitions": len(view),
        "obs_dim": ds.obs_dim, "act_dim": ds.act_dim,
        "episodes_complete": len(returns), "episodes_unfinished": unfinished,
        "terminals": int(ds.terminals.sum()), "timeouts": int(ds.timeouts.sum()),
        "return": _stats(returns),
        "reference_scores": None, "normalised_return": None,
        "normalised_missing_reason": meta.missing_scores_reason,
        "action_min": float(ds.actions.min()), "action_max": float(ds.actions.max()),
        "state_mean": normaliser.mean.round(4).tolist(),
        "state_std": (normaliser.std - 1e-3).round(4).tolist(),
        "state_min": float(view.observations.min()), "state_max": float(view.observations.max()),
    }
    if meta.reference_scores is not None and len(returns):
        scores = meta.reference_scores
        info["reference_scores"] = {"min": scores.min, "max": scores.max, "source": scores.source}
        info["normalised_return"] = _stats(scores.normalise(returns))
    return info


def _stats(x: np.ndarray) -> dict[str, float] | None:
    if len(x) == 0:
        return None
    return {"mean": float(x.mean()), "std": float(x.std()), "min": float(x.min()),
            "median": float(np.median(x)), "max": float(x.max())}


def _fmt_stats(s: dict | None) -> str:
    if s is None:
        return "n/a (no complete episode)"
    return (f"mean {s['mean']:.1f}  std {s['std']:.1f}  min {s['min']:.1f}  "
            f"median {s['median']:.1f}  max {s['max']:.1f}")


def _fmt_vector(v: list[float]) -> str:
    return "[" + ", ".join(f"{x:.3g}" for x in v) + "]"


def print_info(info: dict) -> None:
    print(f"{info['name']}  ({info['source']}, evaluated on {info['env_id']})")
    print(f"  location      {info['location']}")
    print(f"  content hash  {info['content_hash']}")
    print(f"  transitions   {info['transitions']:,} ({info['qlearning_transitions']:,} in the qlearning view)")
    print(f"  episodes      {info['episodes_complete']:,} complete + {info['episodes_unfinished']} unfinished "
          f"({info['terminals']:,} terminals, {info['timeouts']:,} timeouts)")
    print(f"  return (raw)  {_fmt_stats(info['return'])}")
    if info["normalised_return"] is not None:
        ref = info["reference_scores"]
        print(f"  normalised    {_fmt_stats(info['normalised_return'])}  "
              f"(x100; R_min {ref['min']:g}, R_max {ref['max']:g} from {ref['source']})")
    else:
        print(f"  normalised    n/a: {info['normalised_missing_reason'] or 'no complete episode'}")
    print(f"  dims          obs {info['obs_dim']}, act {info['act_dim']} "
          f"(actions in [{info['action_min']:.3g}, {info['action_max']:.3g}])")
    print(f"  state mean    {_fmt_vector(info['state_mean'])}")
    print(f"  state std     {_fmt_vector(info['state_std'])}")
    print(f"  state range   [{info['state_min']:.3g}, {info['state_max']:.3g}]")


def cmd_list(_: argparse.Namespace) -> int:
    rows = []
    for name in dataset_names():
        source = resolve_source(name)
        incomplete = isinstance(source, MinariSource) and source.is_incomplete()
        rows.append((name, type(source).__name__.removesuffix("Source").lower(),
                     "yes" if source.is_present() else "partial" if incomplete else "no",
                     str(source.location())))
    width = max(len(r[0]) for r in rows)
    print(f"{'name':<{width}}  source  present  location")
    for name, kind, present, where in rows:
        print(f"{name:<{width}}  {kind:<6}  {present:<7}  {where}")
    if any(r[2] == "partial" for r in rows):
        print("partial: an interrupted or older sdw-collect left an incomplete local dataset, "
              "read as absent; rebuild it with `sdw-collect mode=rebuild env=<env>`.")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    source = resolve_source(args.dataset)
    if args.env is not None:
        source = dataclasses.replace(source, env_id=args.env)
    info = describe(source.load())
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print_info(info)
    return 0


def cmd_example(args: argparse.Namespace) -> int:
    out = Path(args.out)
    env_id = args.env or env_of(out.stem.replace("_", "-"))
    env_spaces(env_id)
    check_writable(out, "the example dataset")
    print(f"collecting {args.steps:,} random-policy transitions in {env_id} ...", flush=True)
    write_d4rl_hdf5(out, collect_random_transitions(env_id, args.steps, args.seed))
    env_option = "" if args.env is None else f" --env {args.env}"
    print(f"wrote {out}  (describe it with: sdw-data info {out}{env_option})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sdw-data",
        description="Inspect the offline datasets sdw can read: D4RL HDF5 files, Minari datasets "
                    "and the project's own local datasets.",
    )
    debug_help = "show the full traceback of an error, not only its message (as HYDRA_FULL_ERROR=1)"
    parser.add_argument("--debug", action="store_true", help=debug_help)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=debug_help)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", parents=[common], help="configured datasets (conf/dataset/) and whether each is present "
                                "locally").set_defaults(func=cmd_list)
    info = sub.add_parser("info", parents=[common], help="size, episodes, returns (raw and normalised), state statistics")
    info.add_argument("dataset", help="a configured name (see `sdw-data list`), a path to a "
                                      "D4RL-layout .hdf5 file, or a Minari dataset id")
    info.add_argument("--json", action="store_true", help="print machine-readable JSON")
    info.add_argument("--env", default=None,
                      help="gymnasium env id the data is evaluated on (e.g. Hopper-v4); needed for "
                           "a .hdf5 file whose name does not start with hopper, halfcheetah or "
                           "walker2d")
    info.set_defaults(func=cmd_info)
    example = sub.add_parser("example", parents=[common], help="collect a small random-policy dataset in D4RL layout "
                                             "(works offline; the env comes from the file name)")
    example.add_argument("--out", default=DEFAULT_EXAMPLE,
                         help=f"output .hdf5 path, named <env>_<level>...; default {DEFAULT_EXAMPLE}")
    example.add_argument("--env", default=None,
                         help="gymnasium env id to collect in (e.g. Hopper-v4); default: from the "
                              "file name")
    example.add_argument("--steps", type=positive_int, default=5000,
                         help="transitions to collect (at least 1)")
    example.add_argument("--seed", type=int, default=0, help="env and action-sampling seed")
    example.set_defaults(func=cmd_example)
    return parser


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    """Run a command; bad input (a `UserError`) prints one paragraph and exits 2."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError as e:
        if args.debug or os.environ.get("HYDRA_FULL_ERROR") == "1":
            traceback.print_exc()
        print(f"sdw-data: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
