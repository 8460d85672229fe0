#!/usr/bin/env bash
# Issue 11's time-to-score benchmark (docs/distillation.md, "Outer optimiser"): Av-PBC on one
# medium dataset per environment, 3 seeds, the papers' outer optimiser for 600 outer steps against
# Adam for 300 (run first: the cheaper arm), evaluated every 50 steps (eval=standard); then the ranking check, Av-PBC vs SDW
# with both recipes on local-hopper-medium. Jobs land in results/sweeps/outer-optim-local/ (small
# files, committed); rerunning the script skips finished jobs and resumes interrupted ones.
#   DATASETS=local-hopper-medium scripts/outer_optim_benchmark.sh   # one environment only
#   STAGE=report scripts/outer_optim_benchmark.sh                   # only regenerate the doc figures
#   JOBS=1 scripts/outer_optim_benchmark.sh                         # one job at a time (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
export SDW_OUTPUT_DIR=${SDW_OUTPUT_DIR:-results}
datasets=${DATASETS:-local-hopper-medium,local-halfcheetah-medium,local-walker2d-medium}
sweep="$SDW_OUTPUT_DIR/sweeps/outer-optim-local"
if [ "${STAGE:-all}" != report ]; then
  sdw-run experiment=outer-optim-local "dataset=$datasets" outer_optim=adam outer_steps=300 hydra.launcher.n_jobs="${JOBS:-2}"
  sdw-run experiment=outer-optim-local "dataset=$datasets" outer_optim=paper outer_steps=600 hydra.launcher.n_jobs="${JOBS:-2}"
  if [ "${RANKING:-1}" = 1 ]; then
    sdw-run experiment=outer-optim-local dataset=local-hopper-medium weighting=sdw outer_optim=paper outer_steps=600 hydra.launcher.n_jobs="${JOBS:-2}"
    sdw-run experiment=outer-optim-local dataset=local-hopper-medium weighting=sdw outer_optim=adam outer_steps=300 hydra.launcher.n_jobs="${JOBS:-2}"
  fi
fi
sdw-report "$sweep" out=docs/outer-optim speed.enabled=true table.rows=outer_optim \
    "where={method:Av-PBC}" plots.enabled=true
sdw-report "$sweep" out=docs/outer-optim/ranking table.rows=method table.cols=outer_optim \
    "where={dataset:sdw/hopper/medium-v0}" plots.enabled=false
