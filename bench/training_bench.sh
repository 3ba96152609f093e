#!/usr/bin/env bash
# Training throughput and peak memory of `inkstream train`, as markdown.
# Usage: bench/training_bench.sh [BUILD_DIR] [--medium]
#   default shapes: the bundled model's (6 layers, 256 wide, context 256) and GPT-2 small (124M);
#   --medium adds the memory check: fine-tuning GPT-2 medium (355M) with gradient checkpointing.
# tokens/s is the median of the timed steps (the first step, which warms the allocator, is left out).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
MEDIUM=${2:-}
WORK=${INKSTREAM_BENCH_MODELS:-/tmp/inkstream-bench-models}/training
THREADS=${THREADS:-2}
BIN=$BUILD/cli/inkstream
[[ -f $WORK/tokens/dataset.json && ( -z $MEDIUM || -f $WORK/gpt2-medium/model.safetensors ) ]] ||
  /usr/bin/python3 bench/make_training_inputs.py "$WORK" $MEDIUM

run() {  # label, steps, then train options
  local label=$1 steps=$2; shift 2
  rm -rf "$WORK/run"
  "$BIN" train --data "$WORK/tokens" --out "$WORK/run" --steps "$steps" --warmup 1 --eval-every 0 --eval-batches 1 \
    --threads "$THREADS" "$@" >/dev/null 2>&1
  /usr/bin/python3 - "$label" "$WORK/run/log.jsonl" <<'PY'
import json, statistics, sys
label, log = sys.argv[1], sys.argv[2]
rows = [json.loads(l) for l in open(log) if '"step_seconds"' in l]
steps = [r["step_seconds"] for r in rows[1:]] or [rows[0]["step_seconds"]]
tokens = rows[-1]["tokens_per_second"] * sum(r["step_seconds"] for r in rows) / len(rows)  # tokens per step
print("| %s | %.0f | %.2f | %.2f |" % (label, tokens / statistics.median(steps), statistics.median(steps),
                                      max(r["peak_rss_bytes"] for r in rows) / 2**30))
PY
}

echo "## Training ($(date -u +%F), $(nproc) cores, $THREADS threads, random tokens)"
echo
echo "| run | tokens/s | s/step | peak RSS GiB |"
echo "|---|---|---|---|"
DEFAULT=(--n-layer 6 --n-head 8 --n-embd 256 --n-positions 256 --batch-size 8 --seq-len 256)
SMALL=(--n-layer 12 --n-head 12 --n-embd 768 --n-positions 1024 --batch-size 4 --seq-len 256)
for dtype in fp32 bf16; do
  run "default shape (6x256), B=8 T=256, $dtype" 5 "${DEFAULT[@]}" --dtype $dtype
  run "default shape (6x256), B=8 T=256, $dtype, checkpointing" 5 "${DEFAULT[@]}" --dtype $dtype --gradient-checkpointing
done
for dtype in fp32 bf16; do
  run "GPT-2 small (124M), B=4 T=256, $dtype" 4 "${SMALL[@]}" --dtype $dtype
  run "GPT-2 small (124M), B=4 T=256, $dtype, checkpointing" 4 "${SMALL[@]}" --dtype $dtype --gradient-checkpointing
done
if [[ -n $MEDIUM ]]; then
  run "GPT-2 medium (355M) fine-tune, B=1 T=1024, fp32, checkpointing" 3 --init "$WORK/gpt2-medium" --batch-size 1 --seq-len 1024 --dtype fp32 --gradient-checkpointing
  run "GPT-2 medium (355M) fine-tune, B=1 T=1024, bf16, checkpointing" 3 --init "$WORK/gpt2-medium" --batch-size 1 --seq-len 1024 --dtype bf16 --gradient-checkpointing
fi
