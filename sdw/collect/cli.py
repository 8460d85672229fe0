"""`sdw-collect`: train behaviour policies and build the local D4RL-style datasets (Hydra app)."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from sdw.atomic import atomic_write, check_writable
from sdw.collect.libm import pin_libm
from sdw.hydra_app import task

log = logging.getLogger("sdw.collect")
COLLECT_CONF = Path(__file__).resolve().parent / "conf"
"""sdw-collect's own configs, apart from conf/ so that sdw-run's groups stay the run's."""

MODES = ("train", "export", "build", "rebuild")
ZOO_ROOT = Path(__file__).resolve().parent / "zoo"


def zoo_dir(cfg: DictConfig) -> Path:
    return Path(cfg.zoo_dir) if cfg.zoo_dir else ZOO_ROOT / cfg.env.name


def check_locations(cfg: DictConfig) -> None:
    """Fail at once, naming the place, if a location this mode writes cannot be written."""
    from sdw.collect.minari_writer import STAGING
    from sdw.collect.zoo import MANIFEST
    from sdw.data.minari_source import minari_root

    run_dir, zoo = Path(cfg.run_dir), zoo_dir(cfg)
    places = []
    if cfg.mode == "train":
        places.append((run_dir / "snapshots.json", "the training run (run_dir)"))
    if cfg.mode in ("export", "build"):
        places.append((zoo.with_name(zoo.name + ".tmp") / MANIFEST, "the policy zoo (zoo_dir)"))
    if cfg.mode in ("build", "rebuild"):
        root = minari_root()
        places += [(root / STAGING / "probe", "the datasets ($MINARI_DATASETS_PATH)"),
                   (root / "sdw" / cfg.env.name / "probe", "the datasets ($MINARI_DATASETS_PATH)"),
                   (run_dir / "build_report.json", "the build report (run_dir)")]
    for path, what in places:
        check_writable(path, what)


def run(cfg: DictConfig) -> None:
    if cfg.mode not in MODES:
        raise ValueError(f"mode={cfg.mode!r} is not one of {', '.join(MODES)}")
    check_locations(cfg)
    import torch

    torch.set_num_threads(cfg.torch_threads)
    if cfg.mode == "train":
        from sdw.collect.train import TrainSettings, train

        settings = TrainSettings(**OmegaConf.to_container(cfg.train, resolve=True))
        state = train(cfg.env.env_id, settings, Path(cfg.run_dir), seed=cfg.seed,
                      device=cfg.device)
        best = max(state.snapshots, key=lambda s: s.eval_return)
        log.info("stopped at step %d after %.0f s of training; best snapshot step %d, eval "
                 "return %.1f", state.steps, state.train_seconds, best.step, best.eval_return)
        return
    from sdw.collect.build import BuildSettings, build_all
    from sdw.collect.zoo import Zoo, export_zoo

    if cfg.mode in ("export", "build"):
        export_zoo(Path(cfg.run_dir), zoo_dir(cfg), cfg.env.env_id,
                   medium_fraction=cfg.build.medium_fraction, dtype=cfg.build.zoo_dtype,
                   expert_candidates=cfg.build.expert_candidates,
                   expert_episodes=cfg.build.expert_episodes)
    if cfg.mode in ("build", "rebuild"):
        zoo_env = Zoo.load(zoo_dir(cfg)).env_id
        if zoo_env != cfg.env.env_id:
            raise ValueError(f"the zoo {zoo_dir(cfg)} holds {zoo_env} policies, not "
                             f"{cfg.env.env_id}: fix zoo_dir or env")
        b = OmegaConf.to_container(cfg.build, resolve=True)
        settings = BuildSettings(levels=b["levels"], sizes=b["sizes"],
                                 ref_episodes=b["ref_episodes"], n_envs=b["n_envs"])
        t0 = time.perf_counter()
        reports = build_all(zoo_dir(cfg), cfg.env.name, settings, seed=cfg.seed)
        report = Path(cfg.run_dir) / "build_report.json"
        try:
            write_build_report(report, reports, cfg, time.perf_counter() - t0)
        except OSError as e:  # checked before the work; the datasets are written either way
            log.warning("the datasets are written, but the build report %s could not be (%s)",
                        report, e)


def write_build_report(path: Path, reports: list, cfg: DictConfig, seconds: float) -> None:
    """The measured collection speeds of a build, read by scripts/make_datasets_doc.py."""
    transitions = sum(r.transitions for r in reports)
    doc = {"env": cfg.env.name, "mode": cfg.mode, "seed": cfg.seed, "seconds_total": seconds,
           "levels": [asdict(r) | {"steps_per_second": r.steps_per_second} for r in reports],
           "transitions_written": transitions}
    atomic_write(path, lambda f: f.write(json.dumps(doc, indent=1)), "w")
    log.info("built %d datasets (%d transitions) in %.0f s; report in %s", len(reports),
             transitions, seconds, path)


@hydra.main(version_base=None, config_path=str(COLLECT_CONF), config_name="collect")
@task
def _hydra_main(cfg: DictConfig) -> None:
    run(cfg)


def main() -> None:
    """Bad input (an unwritable location, an unknown mode) prints one paragraph and exits 2;
    `--debug` or HYDRA_FULL_ERROR=1 shows the traceback."""
    pin_libm()
    if "--debug" in sys.argv:
        os.environ["HYDRA_FULL_ERROR"] = "1"
        sys.argv.remove("--debug")
    _hydra_main()


if __name__ == "__main__":
    main()
