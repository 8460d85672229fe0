#!/usr/bin/env bash
# Train (or resume) each env's behaviour policy, then export its zoo and build its datasets,
# one env after the other (one training process at a time), niced, logs in outputs/collect/.
# Extra arguments are Hydra overrides for every env, e.g. train.total_steps=300000.
#   nohup scripts/collect_suite.sh train.total_steps=300000 > /dev/null 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p outputs/collect
SDW_COLLECT="${SDW_COLLECT:-sdw-collect}"
for env in ${ENVS:-hopper halfcheetah walker2d}; do
  nice -n 10 "$SDW_COLLECT" env="$env" mode=train "$@" >> "outputs/collect/$env-train.log" 2>&1
  nice -n 10 "$SDW_COLLECT" env="$env" mode=build "$@" >> "outputs/collect/$env-build.log" 2>&1
done
