"""`sdw-collect`: train behaviour policies and build the local D4RL-style datasets (Hydra app)."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from sdw.config import config_dir

log = logging.getLogger("sdw.collect")

MODES = ("train", "export", "build", "rebuild")
ZOO_ROOT = Path(__file__).resolve().parent / "zoo"


def zoo_dir(cfg: DictConfig) -> Path:
    return Path(cfg.zoo_dir) if cfg.zoo_dir else ZOO_ROOT / cfg.env.name


def run(cfg: DictConfig) -> None:
    import torch

    torch.set_num_threads(cfg.torch_threads)
    if cfg.mode not in MODES:
        raise ValueError(f"mode={cfg.mode!r} is not one of {', '.join(MODES)}")
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
        write_build_report(Path(cfg.run_dir) / "build_report.json", reports, cfg,
                           time.perf_counter() - t0)


def write_build_report(path: Path, reports: list, cfg: DictConfig, seconds: float) -> None:
    """The measured collection speeds of a build, read by scripts/make_datasets_doc.py."""
    path.parent.mkdir(parents=True, exist_ok=True)
    transitions = sum(r.transitions for r in reports)
    doc = {"env": cfg.env.name, "mode": cfg.mode, "seed": cfg.seed, "seconds_total": seconds,
           "levels": [asdict(r) | {"steps_per_second": r.steps_per_second} for r in reports],
           "transitions_written": transitions}
    path.write_text(json.dumps(doc, indent=1))
    log.info("built %d datasets (%d transitions) in %.0f s; report in %s", len(reports),
             transitions, seconds, path)


@hydra.main(version_base=None, config_path=str(config_dir() / "collect"), config_name="collect")
def _hydra_main(cfg: DictConfig) -> None:
    run(cfg)


def main() -> None:
    _hydra_main()
