"""Rerun one finished sdw-run job from scratch and compare it with the committed one.

    python scripts/rerun_check.py results/sweeps/teachers-50k/sdw-calibration-local/<job dir>

The job's own overrides (.hydra/overrides.yaml) are run again with `sdw-run` into a temporary
output directory (caches are reused: they are keyed by content; `--fresh-caches` starts from an
empty cache directory, so the density, its weights and the references are computed again too);
then the table score (eval.json last_k), the final score, the weights' ESS/N, the references and
the synthetic set's arrays are compared. Exit 0 when the score is within `--tolerance`
(default 0: the same number), 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

ARRAYS = ("states", "actions", "state_mean", "state_std")


def rerun(job: Path, out: Path, fresh_caches: bool) -> Path:
    """Run the job's overrides again under `out`; return the new job directory."""
    overrides = yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())
    env = {**os.environ, "SDW_OUTPUT_DIR": str(out), "WANDB_MODE": "disabled"}
    if fresh_caches:
        env["SDW_CACHE_DIR"] = str(out / "cache")
    subprocess.run(["sdw-run", *overrides, "hydra.launcher.n_jobs=1", "progress=false"],
                   env=env, check=True)
    found = [p for p in out.rglob(job.name) if (p / "eval.json").is_file()]
    if len(found) != 1:
        sys.exit(f"rerun_check: expected one rerun of {job.name} under {out}, found {found}")
    return found[0]


def summary(job: Path) -> dict:
    result = json.loads((job / "eval.json").read_text())
    references = result.get("references") or {}
    return {"score": result["last_k"]["normalised_mean"],
            "final": result["standard"]["normalised_mean"],
            "ess": (result.get("weights") or {}).get("ess_fraction"),
            **{name: (ref or {}).get("normalised_mean") for name, ref in references.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("job", type=Path, help="a finished job directory (holds eval.json)")
    parser.add_argument("--tolerance", type=float, default=0.0,
                        help="largest accepted |score difference| (normalised points)")
    parser.add_argument("--fresh-caches", action="store_true",
                        help="rerun with an empty cache: recompute the density and the references")
    args = parser.parse_args()
    if not (args.job / "eval.json").is_file():
        sys.exit(f"rerun_check: {args.job} has no eval.json: give a finished sdw-run job directory")
    with tempfile.TemporaryDirectory(prefix="sdw-rerun-") as tmp:
        again = rerun(args.job, Path(tmp), args.fresh_caches)
        before, after = summary(args.job), summary(again)
        old, new = (np.load(j / "synthetic.npz") for j in (args.job, again))
        identical = all(np.array_equal(old[k], new[k]) for k in ARRAYS)
    print(args.job)
    for key in before:
        same = "same" if before[key] == after.get(key) else "DIFFERENT"
        print(f"  {key:<14} committed {before[key]!r:<22} rerun {after.get(key)!r:<22} {same}")
    print(f"  synthetic states/actions/normaliser bit-identical: {identical}")
    sys.exit(0 if abs(before["score"] - after["score"]) <= args.tolerance else 1)


if __name__ == "__main__":
    main()
