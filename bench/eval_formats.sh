#!/usr/bin/env bash
# The bundled default model's validation perplexity in every CPU weight
# format (issue: int8 within 1% of fp32), on its own validation split: the
# corpus, cleaning and tokenization (models/recipe/make_dataset.sh, reused
# from WORK_DIR when an earlier run left them there).
#
#   bench/eval_formats.sh [BUILD_DIR] [WORK_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
WORK=${2:-/tmp/inkstream-default-model}
BIN=$BUILD/cli/inkstream
models/recipe/make_dataset.sh "$BIN" "$WORK"  # the recipe's corpus, cleaning and tokens

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
