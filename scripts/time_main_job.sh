#!/usr/bin/env bash
# Time the README's first Quickstart command (the main job) as a new user meets it: a fresh clone
# of this checkout, empty dataset, cache and home directories, the command read from README.md.
#   scripts/time_main_job.sh            # prints the seconds of the whole line and of `sdw-run` alone
set -u
src=$(cd "$(dirname "$0")/.." && pwd)
root=$(mktemp -d /tmp/sdw-main-job.XXXXXX)
mkdir -p "$root/home" "$root/minari" "$root/cache"
git clone -q "$src" "$root/sdw" && cd "$root/sdw" || exit 1
cmd=$(sed -n '/^## Quickstart/,/<!-- test-command -->/p' README.md | sed -n '/^```bash/{n;p;q}')
echo "command: $cmd"
export HOME=$root/home MINARI_DATASETS_PATH=$root/minari SDW_CACHE_DIR=$root/cache \
       WANDB_MODE=disabled HF_HUB_OFFLINE=1
start=$(date +%s)
bash -c "$cmd" > "$root/main-job.log" 2>&1
rc=$?
echo "whole line: rc=$rc, $(( $(date +%s) - start )) s (log: $root/main-job.log)"
rm -rf "$root/minari" "$root/cache" outputs && mkdir -p "$root/minari" "$root/cache"
start=$(date +%s)
.venv/bin/sdw-run > "$root/sdw-run.log" 2>&1
echo "sdw-run alone, empty dataset and cache dirs: rc=$?, $(( $(date +%s) - start )) s"
grep "normalised score:" "$root/sdw-run.log" | sed 's/.*INFO\] - //'
