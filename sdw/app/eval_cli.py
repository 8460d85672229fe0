"""`sdw-eval ARTEFACT [key=value ...]`: score any saved synthetic set with an evaluation protocol.

ARTEFACT is a synthetic-set .npz, or an sdw-run directory (its synthetic.npz).
Hydra app over conf/evaluate.yaml; a bare path on the command line becomes `artefact=PATH`.
Prints each evaluation and writes them as JSON in eval.json's layout (docs/distillation.md,
"Evaluation protocols").
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from sdw.app.record import SYNTHETIC
from sdw.atomic import atomic_write
from sdw.collect.rebuild import load_or_build
from sdw.config import config_dir
from sdw.data.minari_source import minari_data_path
from sdw.data.scores import D4RL_REFERENCE_SCORES, ReferenceScores
from sdw.distill.synthetic import SyntheticSet
from sdw.errors import UserError
from sdw.evaluate.pictures import capture
from sdw.evaluate.protocol import EvalProtocol
from sdw.evaluate.references import KINDS as REFERENCE_KINDS
from sdw.evaluate.references import reference_evaluations
from sdw.evaluate.summary import describe
from sdw.hydra_app import launch, task
from sdw.teacher.build import build_teacher

log = logging.getLogger("sdw.eval")


def artefact_reference_scores(synthetic: SyntheticSet) -> tuple[ReferenceScores | None, str]:
    """R_min / R_max for the set's dataset without loading it, or None and the reason.

    A Minari dataset present here: its metadata (ref_min_score, ref_max_score); a D4RL-named
    dataset (`hopper-...`): D4RL's reference returns for its env, as the D4RL loader gives them.
    """
    name = synthetic.dataset_name
    metadata = minari_data_path(name) / "metadata.json" if "/" in name else None
    if metadata is not None and metadata.is_file():
        meta = json.loads(metadata.read_text())
        low, high = meta.get("ref_min_score"), meta.get("ref_max_score")
        if low is None or high is None:
            return None, f"Minari dataset {name!r} has no ref_min_score/ref_max_score"
        return ReferenceScores(float(low), float(high), f"minari metadata of {name}"), ""
    if metadata is None and name.split("-", 1)[0] in D4RL_REFERENCE_SCORES:
        return D4RL_REFERENCE_SCORES[name.split("-", 1)[0]], ""
    where = f"Minari dataset {name!r} is not in {metadata.parent}" if metadata else (
        f"{name!r} is neither a D4RL locomotion name nor a Minari id")
    return None, f"no reference scores: {where}; pass dataset=<option> to read them from it"


def evaluate_artefact(cfg: DictConfig) -> dict:
    """Load the artefact, run the protocol (and the references with a dataset), write the JSON."""
    if not cfg.artefact:
        raise UserError("no artefact to evaluate: sdw-eval PATH/TO/synthetic.npz [key=value ...]")
    path = Path(cfg.artefact)
    if path.is_dir():  # a run directory: its synthetic set
        path = path / SYNTHETIC
    try:
        synthetic = SyntheticSet.load(path)
    except (FileNotFoundError, ValueError) as e:
        raise UserError(f"artefact={path}: {e}") from None
    if cfg.threads is not None:
        torch.set_num_threads(int(cfg.threads))
    protocol: EvalProtocol = instantiate(cfg.eval)
    student, inner = instantiate(cfg.student), instantiate(cfg.inner_optim)
    _note_recipe_change(synthetic, student.to_dict(), inner.to_dict())

    dataset = load_or_build(instantiate(cfg.dataset)) if cfg.get("dataset") else None
    if dataset is not None:
        if dataset.content_hash != synthetic.dataset_hash:
            log.warning("dataset %s (hash %s) is not the set's dataset %s (hash %s): its "
                        "references and scores describe other data", dataset.metadata.name,
                        dataset.content_hash, synthetic.dataset_name, synthetic.dataset_hash)
        scores, missing = (dataset.metadata.reference_scores,
                           dataset.metadata.missing_scores_reason)
    else:
        scores, missing = artefact_reference_scores(synthetic)
    log.info("%s: %d pairs of %s (%s), method %s; %s", path, len(synthetic),
             synthetic.dataset_name, synthetic.env_id, synthetic.method,
             f"normalised with R_min {scores.min:g}, R_max {scores.max:g} ({scores.source})"
             if scores else f"normalised score n/a ({missing})")

    final = protocol.final(synthetic, student, inner, scores, cfg.device)
    references = (reference_evaluations(dataset, None, protocol, student, inner, len(synthetic),
                                        Path(cfg.cache_dir), cfg.device)
                  if dataset is not None else dict.fromkeys(REFERENCE_KINDS))
    info = synthetic.info or {}
    evaluation = {
        "method": synthetic.method, "dataset": synthetic.dataset_name,
        "env_id": synthetic.env_id, "seed": synthetic.config.get("seed"),
        "size": len(synthetic),
        "outer_steps": info.get("outer_steps", synthetic.config.get("outer_steps")),
        **final, "last_k": None, "references": references, "weights": None,
        "artefact": str(path), "reference_scores": (
            {"min": scores.min, "max": scores.max, "source": scores.source} if scores
            else {"missing": missing}),
        "protocol": protocol.to_dict(), "student": student.to_dict(),
        "inner_optim": inner.to_dict()}
    out = Path(cfg.out) if cfg.out else path.with_name(f"{path.stem}.eval.json")
    atomic_write(out, lambda f: json.dump(evaluation, f, indent=1), mode="w")
    if cfg.capture_video:
        _capture(cfg, synthetic, student, inner, dataset, path, protocol.seed)
    _print(evaluation, out, missing)
    return evaluation


def _capture(cfg: DictConfig, synthetic: SyntheticSet, student, inner, dataset, path: Path,
             seed: int) -> None:
    """The set's pose grid and a student's rollout (beside `teacher=`'s) beside the set."""
    teacher = None
    if cfg.get("teacher"):
        if dataset is None:
            raise UserError("teacher= needs dataset=<the set's conf/dataset option> to find or "
                            "train the teacher on")
        teacher = build_teacher(instantiate(cfg.teacher), dataset, Path(cfg.teacher_cache_dir))
    files = capture(synthetic, student, inner, teacher, path.parent, prefix=f"{path.stem}.",
                    seed=seed, device=cfg.device, max_steps=int(cfg.video_steps),
                    size=int(cfg.video_size), pose_size=int(cfg.pose_size))
    print("pictures: " + ", ".join(str(p) for p in files.values()))


def _note_recipe_change(synthetic: SyntheticSet, student: dict, inner: dict) -> None:
    """Say so when the set is scored with another student or recipe than it was distilled for."""
    for key, chosen in (("student", student), ("inner_optim", inner)):
        made = synthetic.config.get(key)
        if made and any(made.get(k) != v for k, v in chosen.items() if k in made):
            log.info("note: the set was distilled for %s %s; it is evaluated with %s", key,
                     made, chosen)


def _print(evaluation: dict, out: Path, missing: str) -> None:
    lines = [f"standard: {describe(evaluation['standard'])}"]
    if evaluation["ensemble"]:
        lines.append(f"ensemble of {evaluation['ensemble']['members']}: "
                     f"{describe(evaluation['ensemble'])}")
    for kind in ("cross_architecture", "cross_optimiser"):
        lines += [f"{kind} {name}: {describe(r)}" for name, r in evaluation[kind].items()]
    lines += [f"reference {kind}: {describe(r)}"
              for kind, r in evaluation["references"].items() if r is not None]
    if evaluation["standard"]["normalised_mean"] is None:
        lines.append(f"normalised score unavailable: {missing}")
    print("\n".join(lines + [f"written to {out}"]))


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="evaluate")
@task
def _eval_app(cfg: DictConfig) -> None:
    evaluate_artefact(cfg)


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point; `argv` (without the program name) for tests."""
    launch("evaluate", _eval_app, argv, positional="artefact!")


if __name__ == "__main__":
    main()
