#!/usr/bin/env bash
# The GPU check (docs/distillation.md, "K distillations in one process"), in under 8 minutes:
# the CUDA tests (tests/test_cuda.py: batched meta-gradient on the GPU against the CPU, a CUDA
# distillation resumed bit for bit, sdw-run device=cuda end to end), then seconds per member of
# the paper configuration's whole outer step (distill_batched, sampled Av-PBC) for K = 1, 8, 32,
# 64 members batched against runs one after the other (4 of them timed), and the projected
# GPU-hours per 50k outer steps per member beside the papers' 25 V100-hours per 50k-step job. Writes gpu_check.json (and prints everything) into $OUT or ./.
#
#     bash scripts/gpu_check.sh            # on a machine with a CUDA device, the package installed
set -euo pipefail
out="${OUT:-.}"
python - <<'PY'
import torch
assert torch.cuda.is_available(), "gpu_check: torch sees no CUDA device"
print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}, CUDA {torch.version.cuda}")
PY
WANDB_MODE=disabled HF_HUB_OFFLINE=1 timeout 180 python -m pytest -q -m cuda tests/test_cuda.py
timeout 280 python scripts/bench_distill.py --members 1 8 32 64 --pairs 256 --loop --steps 3 \
    --warmup 1 --sequential-cap 4 --device cuda --json "$out/gpu_check.json"
python - "$out/gpu_check.json" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))
print("\nprojected hours per 50k outer steps per member (whole outer steps, evaluations apart; "
      "the papers: 25 V100-hours per 50k-step job)")
print(f"{'members':>8} {'sequential h':>13} {'batched h':>10}")
for r in rows:
    print(f"{r['members']:>8} {r['sequential'] * 50_000 / 3600:>13.2f} "
          f"{r['batched'] * 50_000 / 3600:>10.2f}")
PY
