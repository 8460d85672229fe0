#!/bin/bash
# Rebuild one env's local datasets into a temporary folder under the given environment settings
# and print each dataset's content hash, transitions, episodes and mean return (docs/datasets.md,
# "Bit-identical rebuilds"); compare with sdw/collect/published.json.
#
#   scripts/rebuild_hashes.sh ENV [VAR=value ...]
#   scripts/rebuild_hashes.sh halfcheetah OPENBLAS_CORETYPE=Haswell OPENBLAS_NUM_THREADS=1
set -euo pipefail
env_name=$1; shift
out=$(mktemp -d "${TMPDIR:-/tmp}/sdw-rebuild-$env_name.XXXXXX")
start=$(date +%s)
env "$@" MINARI_DATASETS_PATH="$out/datasets" sdw-collect mode=rebuild env="$env_name" \
    run_dir="$out/run" hydra.run.dir="$out/hydra" > "$out/log" 2>&1
echo "# $env_name rebuilt in $(( $(date +%s) - start )) s with: ${*:-(default settings)}; log $out/log"
for level in random medium medium-replay expert medium-expert; do
  MINARI_DATASETS_PATH="$out/datasets" sdw-data info "sdw/$env_name/$level-v0" --json | python -c \
    "import json, sys; i = json.load(sys.stdin); print(i['name'], i['content_hash'], i['transitions'], i['episodes_complete'], round(i['return']['mean'], 1))"
done
