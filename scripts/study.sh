#!/usr/bin/env bash
# Issue 12's reproduction study on the local suite (docs/results.md). Every sweep is resumable:
# rerunning skips finished jobs and resumes interrupted ones; job directories land in
# results/sweeps/<experiment>/ (small files, committed; checkpoints and caches are gitignored),
# the reference evaluations they read in results/references/ (committed with them).
#   scripts/study.sh calibration   # SDW's weighting on local-hopper-medium (36 jobs)
#   scripts/study.sh pilot         # Av-PBC and SDW-knn, one seed, 400 outer steps on nine datasets (18 jobs): sizes outer_steps
#   scripts/study.sh study         # DBC, PBC, Av-PBC and SDW-kde on nine datasets, SDW-{knn,flow} on the three medium ones, seed by seed (210 jobs)
#   scripts/study.sh budget        # Av-PBC with 16 to 256 pairs on local-hopper-medium-replay (15 jobs)
#   scripts/study.sh report        # docs/results.md from whatever has finished
#   scripts/study.sh commit        # git-commit the finished (done or failed) job directories
# JOBS=1 runs one job at a time (default 2, one torch thread each).
set -euo pipefail
cd "$(dirname "$0")/.."
export SDW_OUTPUT_DIR=${SDW_OUTPUT_DIR:-results}
# The reference evaluations (random subset, whole-data BC students, teacher episodes) are kept
# with the results, so the jobs of every session and machine read the same ones.
export SDW_REFERENCES_DIR=${SDW_REFERENCES_DIR:-$SDW_OUTPUT_DIR/references}
jobs=${JOBS:-2}
run() { sdw-run "$@" hydra.launcher.n_jobs="$jobs"; }

stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(calibration study budget report)
for stage in "${stages[@]}"; do
  case $stage in
    calibration)  # kNN first (full cross with clipping), then the other estimators
      run experiment=sdw-calibration-local density=knn
      run experiment=sdw-calibration-local density=knn weighting.clip_quantile=0.99
      run experiment=sdw-calibration-local density=kde
      run experiment=sdw-calibration-local density=flow ;;
    pilot)
      run experiment=pilot-local ;;
    study)  # seed-major, so an interrupted study has whole seeds across all datasets
      medium=local-hopper-medium,local-halfcheetah-medium,local-walker2d-medium
      for seed in 0 1 2 3 4; do
        run experiment=obd-table1-local seed=$seed
        run experiment=sdw-study-local seed=$seed  # the calibrated estimator on nine datasets
        run experiment=sdw-study-local seed=$seed density=knn,flow dataset=$medium
      done ;;
    budget)
      run experiment=budget-local ;;
    report)
      sdw-report --config-name results ;;
    commit)  # finished jobs only: a running job's directory is committed once it has finished
      finished=$(python3 - "$SDW_OUTPUT_DIR"/sweeps/*/ <<'PY'
import json, sys
from pathlib import Path
for sweep in map(Path, sys.argv[1:]):
    for status in sorted(sweep.glob("*/status.json")):
        if json.loads(status.read_text()).get("status") in ("done", "failed"):
            print(status.parent)
    if (sweep / "multirun.yaml").is_file():
        print(sweep / "multirun.yaml")
PY
)
      references=$(ls "$SDW_REFERENCES_DIR"/*.json 2>/dev/null || true)
      finished=$(printf '%s\n%s' "$finished" "$references" | sed '/^$/d')
      if [ -n "$finished" ]; then
        mapfile -t paths <<< "$finished"
        git add -- "${paths[@]}"
        if git diff --cached --quiet -- "${paths[@]}"; then
          echo "no newly finished job"
        else
          git commit -q -m "Study: finished job directories" -- "${paths[@]}"
          git log --oneline -1
        fi
      fi ;;
    *)
      echo "unknown stage '$stage': use calibration, pilot, study, budget, report or commit" >&2
      exit 2 ;;
  esac
done
