"""Train the teachers shipped in sdw/teacher/shipped/ (docs/teachers.md), then ship them.

    nice -n 5 python scripts/train_shipped_teachers.py train [--jobs 2] [--algorithm iql] [datasets]
    python scripts/train_shipped_teachers.py ship [datasets ...]
    python scripts/train_shipped_teachers.py table
    OMP_NUM_THREADS=1 python scripts/train_shipped_teachers.py premise [--jobs 2] [--algorithm iql]
        [datasets ...]
    python scripts/train_shipped_teachers.py curves

`train` runs `train_teacher` with the documented configuration (TD3BCConfig(steps=200000),
10 evaluation episodes every 20000 steps; `--algorithm iql`: conf/teacher/ with CORL's settings for
the dataset, `iql_option`) on each dataset, `--jobs` processes with one torch
thread each, into `--cache-dir`; a killed run resumes from its last checkpoint, and a
finished teacher is not trained again, and one another `train` is training is skipped (a lock per
algorithm and dataset). Wall-clock seconds go to `<cache-dir>/timings.json`.
`ship` stores each finished teacher's weights as float16 when its evaluation with float16 weights
stays within `--tolerance` normalised points of the float32 one (float32 otherwise), and writes
sdw/teacher/shipped/<algorithm>/<dataset hash>-<config hash>.pt with its .json summary. `table`
prints the table of docs/teachers.md from the shipped summaries.
`premise` runs the selection rule's checks on each teacher (docs/teachers.md; the shipped weights,
else the trained ones in `--cache-dir`): its score
on the study's 50-episode protocol against whole-data BC (`bc_students` students of
conf/eval/local.yaml, the study's reference, read and kept where `sdw-run` keeps it:
$SDW_REFERENCES_DIR, else the cache) and the data's
mean return, and whether its training curve has levelled off; one JSON per dataset goes to
`--premise-dir` (committed). `curves` prints the premise table and the training curves.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import os
import time
from dataclasses import replace
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

STUDY_DATASETS = tuple(f"local-{env}-{level}" for env in ("hopper", "halfcheetah", "walker2d")
                       for level in ("medium", "medium-replay", "medium-expert"))
DEFAULT_CACHE = Path("outputs/shipped-teachers")


PREMISE_DIR = Path("results/teachers")
STUDY_EXPERIMENT = "obd-table1-local"
"""Whose evaluation protocol the premise check uses (every -local experiment shares it)."""
LEVEL_WINDOW, LEVEL_TOLERANCE = 3, 5.0
"""Levelled off: the mean of the last LEVEL_WINDOW evaluations is at most LEVEL_TOLERANCE
normalised points above the mean of the LEVEL_WINDOW before them (docs/teachers.md)."""


STEPS = 200_000
"""The shipped teachers' `steps` (docs/teachers.md, selection rule); the other training fields
are TD3BCConfig's defaults."""
EVAL_EVERY = 20_000
"""Periodic 10-episode evaluations: the training curve of docs/teachers.md (not in the key)."""


ALGORITHMS = ("td3bc", "iql")


def iql_option(name: str) -> str:
    """The conf/teacher option holding CORL's IQL settings for a study dataset: CORL's hopper
    medium and medium-replay share one exception, hopper medium-expert has another."""
    if name in ("local-hopper-medium", "local-hopper-medium-replay"):
        return "iql-corl-hopper-medium"
    return "iql-corl-hopper-medium-expert" if name == "local-hopper-medium-expert" else "iql"


def teacher_config(name: str, steps: int = STEPS, algorithm: str = "td3bc"):
    """The documented configuration of `algorithm` for dataset `name` (conf/teacher/td3bc.yaml, or
    `iql_option(name)`) for `steps` steps, evaluated over 10 episodes every EVAL_EVERY steps and
    at the end (`eval_every` is not part of the cache key)."""
    from hydra.utils import instantiate

    from sdw.overrides import check_overrides

    option = "td3bc" if algorithm == "td3bc" else iql_option(name)
    cfg = instantiate(check_overrides("run", [f"teacher={option}", "device=cpu"]).teacher)
    return replace(cfg, steps=steps, eval_episodes=10, eval_every=EVAL_EVERY)


def cache_entry(dataset, cfg, cache_dir: Path) -> tuple[object, Path]:
    """(config with max_action resolved, the teacher's cache entry in `cache_dir`)."""
    from sdw.teacher.cache import TeacherCache
    from sdw.teacher.train import resolve_max_action

    cfg = replace(cfg, max_action=resolve_max_action(cfg, dataset.metadata.env_id))
    header = cfg.cache_header(dataset.content_hash)
    return cfg, TeacherCache(cache_dir).entry(cfg.ALGORITHM, header["dataset_hash"],
                                              header["config_hash"])


def train_one(name: str, cache_dir: str, steps: int, algorithm: str) -> dict:
    """Train (or resume, or find) the teacher of one dataset; its score and wall-clock time."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    from sdw.data.registry import load_dataset
    from sdw.teacher.train import train_teacher

    torch.set_num_threads(1)
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {name} %(name)s: %(message)s")
    lock_path = Path(cache_dir) / "locks" / f"{algorithm}-{name}.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return {"dataset": name, "skipped": "another `train` is training it"}
        dataset = load_dataset(name)
        cfg = teacher_config(name, steps, algorithm)
        if cache_entry(dataset, cfg, Path(cache_dir))[1].exists():
            return {"dataset": name, "skipped": "already trained"}
        t0 = time.perf_counter()
        teacher = train_teacher(dataset, cfg, cache_dir)
        return {"dataset": name, "dataset_hash": dataset.content_hash,
                "seconds": time.perf_counter() - t0,
                "normalised": teacher.evaluation["normalised_mean"]}


def timing_key(algorithm: str, name: str) -> str:
    """A teacher's entry in timings.json: the dataset for TD3+BC, `<algorithm>-<dataset>` else."""
    return name if algorithm == "td3bc" else f"{algorithm}-{name}"


def read_timings(cache_dir: Path) -> dict:
    path = cache_dir / "timings.json"
    return json.loads(path.read_text()) if path.exists() else {}


def cmd_train(args: argparse.Namespace) -> None:
    from sdw.atomic import atomic_write

    timings_path = args.cache_dir / "timings.json"
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(train_one, name, str(args.cache_dir), args.steps, args.algorithm)
                   for name in args.datasets]
        for future in futures:
            result = future.result()
            if "skipped" in result:
                print(f"{result['dataset']}: skipped, {result['skipped']}", flush=True)
                continue
            timings = read_timings(args.cache_dir)  # another `train` may have added to it
            entry = timings.setdefault(timing_key(args.algorithm, result["dataset"]),
                                       {"seconds": 0.0, "sessions": []})
            entry["sessions"].append(round(result["seconds"], 1))
            entry["seconds"] = round(sum(entry["sessions"]), 1)
            entry.update(dataset_hash=result["dataset_hash"], normalised=result["normalised"])
            atomic_write(timings_path, lambda f, t=timings: f.write(
                json.dumps(t, indent=1, sort_keys=True) + "\n"), "w")
            print(f"{result['dataset']}: normalised {result['normalised']:.1f}, "
                  f"{result['seconds']:.0f} s this session", flush=True)


def cmd_ship(args: argparse.Namespace) -> None:
    import torch

    from sdw.data.registry import load_dataset
    from sdw.teacher.cache import TeacherCache, read_record, ship_record
    from sdw.teacher.train import TRAINERS, evaluate_teacher

    torch.set_num_threads(1)
    timings = read_timings(args.cache_dir)
    for name in args.datasets:
        dataset = load_dataset(name)
        cfg, entry = cache_entry(dataset, teacher_config(name, args.steps, args.algorithm),
                                 args.cache_dir)
        if not entry.exists():
            print(f"{name}: no trained teacher at {entry}; run `train` first")
            continue
        record = read_record(entry)
        half = ship_record(record, "float16")
        teacher = TRAINERS[cfg.ALGORITHM].TEACHER.from_record(half)
        ev16 = evaluate_teacher(teacher, dataset.metadata.env_id,
                                dataset.metadata.reference_scores, cfg.eval_episodes, cfg.eval_seed)
        n32, n16 = record["evaluation"]["normalised_mean"], ev16["normalised_mean"]
        dtype = "float16" if abs(n16 - n32) <= args.tolerance else "float32"
        shipped = ship_record(record, dtype)
        if dtype == "float16":  # the evaluation of the weights that are shipped
            shipped["evaluation"] = {**ev16, "step": record["evaluation"]["step"]}
        shipped["shipped"] = {"dtype": dtype, "normalised_float32": n32, "normalised_float16": n16,
                              "train_seconds": timings.get(timing_key(args.algorithm, name),
                                                           {}).get("seconds"),
                              "dataset_name": name}
        out = args.shipped_root / cfg.ALGORITHM / entry.name
        TeacherCache(args.shipped_root).save(out, shipped, {k: v for k, v in shipped.items()
                                                       if k != "state_dict"})
        print(f"{name}: normalised float32 {n32:.1f}, float16 {n16:.1f} -> shipped {dtype} "
              f"({out.stat().st_size / 1024:.0f} KiB) {out}")


def cmd_table(args: argparse.Namespace) -> None:
    """The markdown table of docs/teachers.md from the shipped teachers' summaries."""
    print("| dataset | content hash | normalised (float32) | normalised (shipped) | weights | "
          "training time | file |")
    print("|---|---|---:|---:|---|---:|---:|")
    summaries = [json.loads(p.read_text()) for p in sorted(args.shipped_root.glob("*/*.json"))]
    order = {name: i for i, name in enumerate(STUDY_DATASETS)}
    total = 0
    for s in sorted(summaries, key=lambda s: order.get(s["shipped"]["dataset_name"], 99)):
        info = s["shipped"]
        pt = args.shipped_root / s["algorithm"] / f"{s['dataset_hash']}-{s['config_hash']}.pt"
        total += pt.stat().st_size
        shipped = info["normalised_float16" if info["dtype"] == "float16" else "normalised_float32"]
        minutes = f"{info['train_seconds'] / 60:.1f} min" if info["train_seconds"] else "n/a"
        print(f"| `{info['dataset_name']}` | `{s['dataset_hash']}` | "
              f"{info['normalised_float32']:.1f} | {shipped:.1f} | {info['dtype']} | {minutes} | "
              f"{pt.stat().st_size / 1024:.0f} KiB |")
    print(f"\n{len(summaries)} teachers, {total / 2**20:.1f} MiB in total.")


def training_curve(summary: dict) -> list[tuple[int, float]]:
    """(step, 10-episode normalised score) of the periodic evaluations and the final one."""
    points = [(h["step"], h["eval_normalised"]) for h in summary.get("history", [])
              if h.get("eval_normalised") is not None]
    final = summary.get("evaluation") or {}
    if final.get("normalised_mean") is not None:
        points.append((final["step"], final["normalised_mean"]))
    return points


def levelled_off(curve: list[tuple[int, float]]) -> dict:
    """The rule's step 3 on a training curve: the last window's mean against the one before."""
    scores = [score for _, score in curve]
    if len(scores) < 2 * LEVEL_WINDOW:
        return {"passed": None, "reason": f"fewer than {2 * LEVEL_WINDOW} evaluations"}
    last = sum(scores[-LEVEL_WINDOW:]) / LEVEL_WINDOW
    before = sum(scores[-2 * LEVEL_WINDOW:-LEVEL_WINDOW]) / LEVEL_WINDOW
    return {"passed": last - before <= LEVEL_TOLERANCE, "last": last, "before": before,
            "rise": last - before}


def study_protocol():
    """The study's evaluation protocol, student, inner optimiser, synthetic-set size and
    references folder, composed as `sdw-run experiment=STUDY_EXPERIMENT` composes them
    (conf/eval/local.yaml, conf/paths/default.yaml)."""
    from hydra.utils import instantiate

    from sdw.overrides import check_overrides

    cfg = check_overrides("run", [f"experiment={STUDY_EXPERIMENT}"])
    return (instantiate(cfg.eval), instantiate(cfg.student), instantiate(cfg.inner_optim),
            int(cfg.synthetic.size), Path(cfg.paths.references_dir))


def premise_one(name: str, cache_dir: str, steps: int, algorithm: str, premise_dir: str) -> dict:
    """The premise check of one dataset's teacher, into `<premise_dir>/<name>.json`: the shipped
    weights where they are shipped, else the trained ones in `cache_dir` (never trains)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import numpy as np
    import torch

    from sdw.atomic import atomic_write
    from sdw.data.registry import load_dataset
    from sdw.evaluate.references import reference_evaluations
    from sdw.teacher.cache import SHIPPED_ROOT
    from sdw.teacher.train import train_teacher

    torch.set_num_threads(1)
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {name} %(name)s: %(message)s")
    dataset = load_dataset(name)
    cfg = teacher_config(name, steps, algorithm)
    shipped = cache_entry(dataset, cfg, SHIPPED_ROOT)[1].exists()
    if not shipped and not cache_entry(dataset, cfg, Path(cache_dir))[1].exists():
        raise FileNotFoundError(f"{name}: no {algorithm} teacher of {steps} steps shipped or in "
                                f"{cache_dir}; run `train` first")
    teacher = train_teacher(dataset, cfg, None if shipped else cache_dir)
    protocol, student, inner, size, references = study_protocol()
    refs = reference_evaluations(dataset, teacher, protocol, student, inner, size, references)
    data = dataset.normalised_score(dataset.episode_returns(complete_only=True))
    bc_students = [s["normalised"] for s in refs["whole_data_bc"]["per_student"]]
    episodes = refs["teacher"]["per_episode"]
    summary = {"history": teacher.history, "evaluation": teacher.evaluation}
    result = {
        "dataset": name, "dataset_hash": dataset.content_hash, "teacher_steps": steps,
        "algorithm": algorithm,
        "teacher": {"mean": float(np.mean(episodes)), "std": float(np.std(episodes)),
                    "episodes": len(episodes), "per_episode": episodes},
        "whole_data_bc": {"mean": float(np.mean(bc_students)), "std": float(np.std(bc_students)),
                          "students": len(bc_students), "steps": protocol.bc_steps,
                          "per_student": bc_students},
        "data_mean": float(np.mean(data)),
        "curve": training_curve(summary),
    }
    result["beats_bc"] = result["teacher"]["mean"] > result["whole_data_bc"]["mean"]
    result["beats_data"] = result["teacher"]["mean"] > result["data_mean"]
    result["levelled_off"] = levelled_off(result["curve"])
    result["passed"] = bool(result["beats_bc"] and result["beats_data"]
                            and result["levelled_off"]["passed"])
    out = Path(premise_dir) / f"{name}.json"
    atomic_write(out, lambda f: f.write(json.dumps(result, indent=1) + "\n"), "w")
    return result


def cmd_premise(args: argparse.Namespace) -> None:
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = {name: pool.submit(premise_one, name, str(args.cache_dir), args.steps,
                                     args.algorithm,
                                     str(args.premise_dir)) for name in args.datasets}
        for name, future in futures.items():
            r = future.result()
            print(f"{name}: teacher {r['teacher']['mean']:.1f}, whole-data BC "
                  f"{r['whole_data_bc']['mean']:.1f}, data {r['data_mean']:.1f}, levelled off "
                  f"{r['levelled_off']['passed']} -> {'passes' if r['passed'] else 'fails'}",
                  flush=True)


def cmd_curves(args: argparse.Namespace) -> None:
    """The premise table and the training curves of docs/teachers.md, from `--premise-dir`."""
    results = [json.loads((args.premise_dir / f"{name}.json").read_text())
               for name in args.datasets if (args.premise_dir / f"{name}.json").exists()]
    print("| dataset | teacher (50 episodes) | whole-data BC (students) | data | > BC | > data | "
          "levelled off (rise) | premise |")
    print("|---|---:|---:|---:|---|---|---|---|")
    for r in results:
        t, bc, level = r["teacher"], r["whole_data_bc"], r["levelled_off"]
        rise = f" ({level['rise']:+.1f})" if level.get("rise") is not None else ""
        print(f"| `{r['dataset']}` | {t['mean']:.1f} ± {t['std']:.1f} | {bc['mean']:.1f} ± "
              f"{bc['std']:.1f} ({bc['students']}) | {r['data_mean']:.1f} | "
              f"{'yes' if r['beats_bc'] else 'no'} | {'yes' if r['beats_data'] else 'no'} | "
              f"{'yes' if level['passed'] else 'no'}{rise} | "
              f"{'passes' if r['passed'] else '**fails**'} |")
    if not results:
        return
    steps = [step for step, _ in results[0]["curve"]]
    print("\n| dataset | " + " | ".join(f"{s // 1000}k" for s in steps) + " |")
    print("|---|" + "---:|" * len(steps))
    for r in results:
        scores = dict(map(tuple, r["curve"]))
        print(f"| `{r['dataset']}` | " + " | ".join(
            f"{scores[s]:.1f}" if s in scores else "" for s in steps) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("train", "ship", "table", "premise", "curves"))
    parser.add_argument("datasets", nargs="*", default=list(STUDY_DATASETS))
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--shipped-root", type=Path, default=None,
                        help="where `ship` writes; default sdw/teacher/shipped")
    parser.add_argument("--jobs", type=int, default=2, help="training processes (1 thread each)")
    parser.add_argument("--algorithm", choices=ALGORITHMS, default="td3bc",
                        help="td3bc: the documented TD3+BC; iql: IQL with CORL's settings for the "
                             "dataset (conf/teacher/iql-corl-*.yaml)")
    parser.add_argument("--steps", type=int, default=STEPS,
                        help="gradient steps (other values only to try the script out)")
    parser.add_argument("--premise-dir", type=Path, default=PREMISE_DIR,
                        help="where `premise` writes one JSON per dataset and `curves` reads them")
    parser.add_argument("--tolerance", type=float, default=1.0,
                        help="largest normalised-score change allowed to float16 weights")
    args = parser.parse_intermixed_args()
    args.datasets = args.datasets or list(STUDY_DATASETS)
    if args.shipped_root is None:
        from sdw.teacher.cache import SHIPPED_ROOT

        args.shipped_root = SHIPPED_ROOT
    {"train": cmd_train, "ship": cmd_ship, "table": cmd_table, "premise": cmd_premise,
     "curves": cmd_curves}[args.command](args)


if __name__ == "__main__":
    main()
