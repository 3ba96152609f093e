#!/usr/bin/env bash
# Rebuilds the bundled default model (models/default) from scratch on the CPU,
# with inkstream's own pipeline, in two runs: 800 steps from scratch, then
# 1,000 more from its checkpoint (a warm restart of the learning-rate
# schedule, other batches). About 75 minutes on a quiet 2-core VM.
#
#   models/recipe/train_default.sh [BUILD_DIR] [WORK_DIR]
# The data (sources in models/README.md): models/recipe/make_dataset.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
WORK=${2:-/tmp/inkstream-default-model}
BIN=$BUILD/cli/inkstream
models/recipe/make_dataset.sh "$BIN" "$WORK"  # corpus, cleaning, tokens
"$BIN" train --data "$WORK/tokens" --out "$WORK/run" \
  --n-layer 6 --n-head 8 --n-embd 256 --n-positions 256 \
  --steps 800 --batch-size 8 --seq-len 256 --grad-accum 2 \
  --lr 1e-3 --warmup 50 --min-lr-ratio 0.1 --weight-decay 0.1 \
  --dtype bf16 --threads 2 --seed 1337 \
  --eval-every 100 --eval-batches 20 --save-every 100 --export-dtype bf16
"$BIN" train --data "$WORK/tokens" --out "$WORK/run2" --init "$WORK/run/checkpoint" \
  --steps 1000 --batch-size 8 --seq-len 256 --grad-accum 2 \
  --lr 6e-4 --warmup 50 --min-lr-ratio 0.1 --weight-decay 0.1 \
  --dtype bf16 --threads 2 --seed 2024 \
  --eval-every 100 --eval-batches 20 --save-every 200 --export-dtype bf16
echo "trained model: $WORK/run2/model (copy it to models/default)" >&2
