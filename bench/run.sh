#!/usr/bin/env bash
# Runs the benchmarks and prints the figures (markdown tables, JSON lines) for bench/RESULTS.md.
# Usage: [SECTIONS="..."] bench/run.sh [BUILD_DIR]   (default: build; run `make build` or `make test` first)
# Needs /usr/bin/python3 with numpy (checkpoint generator) and torch (the
# PyTorch baseline): apt-get install python3-numpy python3-torch.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
MODELS=${INKSTREAM_BENCH_MODELS:-/tmp/inkstream-bench-models}
THREADS=${THREADS:-2}
# SECTIONS="formats llama" runs only those sections (all by default): tokenizer
# generation formats memory llama lsp kernels decode context engine vscode serve.
want() { [[ -z ${SECTIONS:-} || " $SECTIONS " == *" $1 "* ]]; }
LLAMA_NPM=3.22.1
F=/usr/share/games/fortunes
if [[ ! -d $F ]]; then
  echo "installing the 'fortunes' package for English prose" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fortunes >&2
fi

if want tokenizer; then
echo "## Tokenizer ($(date -u +%F), $(nproc) cores)"
"$BUILD/bench/tokenizer_bench" --tokenizer tests/fixtures/tokenizer/gpt2 \
  --text $F/literature $F/fortunes $F/people $F/humorists $F/wisdom $F/love $F/politics $F/pratchett \
         $F/science $F/songs-poems $F/men-women $F/miscellaneous $F/education $F/art | tee /tmp/inkstream-tok.json
fi
echo

[[ -f $MODELS/gpt2-small-bf16/model.safetensors ]] || /usr/bin/python3 bench/make_gpt2_small.py "$MODELS" >&2
if want generation; then
echo "## Generation: GPT-2 small shape (124M), random weights, $THREADS threads, prompt 256, decode 64"
results=()
# Interleave the implementations so that machine noise hits both alike.
for dtype in bf16 fp32; do
  folder=$MODELS/gpt2-small-${dtype/fp32/f32}
  results+=("$("$BUILD/bench/generation_bench" --model "$folder" --dtype "$dtype" --threads "$THREADS" --decode 64)")
  results+=("$("$BUILD/bench/generation_bench" --model "$folder" --dtype "$dtype" --threads "$THREADS" --decode 64 --copy-weights)")
  results+=("$(/usr/bin/python3 bench/pytorch_gpt2_bench.py --model "$folder" --dtype "$dtype" --threads "$THREADS" --decode 64 | sed 's/}$/, "implementation": "pytorch"}/')")
done
printf '%s\n' "${results[@]}" | /usr/bin/python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
print("| implementation | dtype | load ms | prefill 256 ms | decode N=1 tok/s | decode N=4 tok/s (aggregate) | peak RSS MB |")
print("|---|---|---|---|---|---|---|")
for r in rows:
    impl = "pytorch (python loop)" if "pytorch" in r.get("implementation", "") else "inkstream, weights " + r["weights"]
    print("| %s | %s | %.0f | %.0f | %.1f | %.1f | %.0f |" % (impl, r["dtype"], r["load_ms"], r["prefill_ms"],
          r["decode_tok_s_n1"], r["decode_tok_s_n4"], r["peak_rss_mb"]))
ours = {r["dtype"]: r for r in rows if "pytorch" not in r.get("implementation", "") and r["weights"] == "mapped"}
base = {r["dtype"]: r for r in rows if "pytorch" in r.get("implementation", "")}
print()
for d in ours:
    o, b = ours[d], base[d]
    print("- %s ratio inkstream / pytorch: decode N=1 %.2fx, N=4 %.2fx, prefill %.2fx faster, load %.1fx faster" % (
        d, o["decode_tok_s_n1"] / b["decode_tok_s_n1"], o["decode_tok_s_n4"] / b["decode_tok_s_n4"],
        b["prefill_ms"] / o["prefill_ms"], b["load_ms"] / o["load_ms"]))
'
fi

echo
if want formats; then
echo "## Every CPU weight format, native kernels and capped to AVX2 (INKSTREAM_KERNELS=avx2), fp32 checkpoint"
formats=()
for k in auto avx2; do
  for d in fp32 bf16 fp16 int8; do
    formats+=("$(INKSTREAM_KERNELS=$k "$BUILD/bench/generation_bench" --model "$MODELS/gpt2-small-f32" --dtype "$d" --threads "$THREADS" --decode 64 --copy-weights | sed "s/}$/, \"kernels\": \"$k\"}/")")
  done
done
printf '%s\n' "${formats[@]}" | /usr/bin/python3 -c '
import json, sys
print("| kernels | format | decode N=1 tok/s | N=4 aggregate | prefill 256 ms | load ms | peak RSS MB | weights + KV MB | RSS over pre-load: peak of load / prefill / decode, trimmed at the end MB |")
print("|---|---|---|---|---|---|---|---|---|")
for r in (json.loads(l) for l in sys.stdin if l.strip()):
    over = lambda k: r[k] - r["baseline_rss_mb"]
    print("| %s | %s | %.1f | %.0f | %.0f | %.0f | %.0f | %.0f + %.0f | %.0f / %.0f / %.0f, %.0f |" % (r["kernels"], r["dtype"], r["decode_tok_s_n1"], r["decode_tok_s_n4"],
          r["prefill_no_cache_ms"], r["load_ms"], r["peak_rss_mb"], r["weights_mb"], r["kv_mb"],
          over("load_peak_rss_mb"), over("prefill_peak_rss_mb"), over("decode_peak_rss_mb"), over("trimmed_rss_mb")))
'
fi

if want memory; then
echo "## Peak resident memory of inkstream complete per CPU weight format (issue 11's bound: 1.25 x weights + KV)"
/usr/bin/python3 bench/rss_bench.py "$BUILD" "$MODELS/gpt2-small-f32"
fi

if want llama; then
echo "## CPU weight formats against llama.cpp (node-llama-cpp $LLAMA_NPM, prebuilt CPU binary) on the same weights"
# The GGUF files come from bench/gguf_convert; node-llama-cpp is installed
# from npm into a scratch folder. Three interleaved rounds, best of each.
LLAMA_DIR=$MODELS/llama-cpp
mkdir -p "$LLAMA_DIR"
[[ -d $LLAMA_DIR/node_modules/node-llama-cpp ]] ||
  (cd "$LLAMA_DIR" && npm install --silent --no-audit --no-fund "node-llama-cpp@$LLAMA_NPM" >&2)
cp bench/llama_cpp_bench.mjs "$LLAMA_DIR/"
for t in f16 q8_0; do
  [[ -f $LLAMA_DIR/gpt2-small-$t.gguf ]] ||
    "$BUILD/bench/gguf_convert" --model "$MODELS/gpt2-small-f32" --out "$LLAMA_DIR/gpt2-small-$t.gguf" --type "$t"
done
bandwidth=$("$BUILD/bench/kernels_bench" --threads "$THREADS" --bandwidth-only)
rows=()
for round in 1 2 3; do
  for d in int8 fp16 fp32; do
    rows+=("$("$BUILD/bench/generation_bench" --model "$MODELS/gpt2-small-f32" --dtype "$d" --threads "$THREADS" --decode 64 --copy-weights)")
  done
  for t in q8_0 f16; do
    rows+=("$(cd "$LLAMA_DIR" && node llama_cpp_bench.mjs --model "gpt2-small-$t.gguf" --threads "$THREADS" | sed "s/}$/, \"dtype\": \"$t\"}/")")
  done
done
printf '%s\n' "$bandwidth" "${rows[@]}" | /usr/bin/python3 -c '
import json, sys
lines = [json.loads(l) for l in sys.stdin if l.strip()]
bw = lines[0]["gb_s"]
best = {}
for r in lines[1:]:
    key = ("llama.cpp " if "implementation" in r else "inkstream ") + r["dtype"]
    b = best.setdefault(key, dict(r))
    b["decode_tok_s_n1"] = max(b["decode_tok_s_n1"], r["decode_tok_s_n1"])
    b["prefill"] = min(b.get("prefill", 1e9), r.get("prefill_no_cache_ms", r["prefill_ms"]))
# Bytes of weights read per token: GPT-2 small, 124.4 M parameters (85.0 M in
# the layers, 38.6 M in the tied head, read once per token either way).
params = 124.4e6
bytes_per = {"fp32": 4, "bf16": 2, "fp16": 2, "f16": 2, "int8": 1 + 4 / 32, "q8_0": 34 / 32}
print("read bandwidth (%d threads): %.1f GB/s" % (lines[0]["threads"], bw))
print()
print("| implementation | decode N=1 tok/s | bandwidth limit tok/s | share of the limit | prefill 256 ms |")
print("|---|---|---|---|---|")
for key, r in best.items():
    limit = bw * 1e9 / (params * bytes_per[r["dtype"]])
    print("| %s | %.1f | %.0f | %.0f%% | %.0f |" % (key, r["decode_tok_s_n1"], limit, 100 * r["decode_tok_s_n1"] / limit, r["prefill"]))
print()
ratio = lambda a, b: best[a]["decode_tok_s_n1"] / best[b]["decode_tok_s_n1"]
print("- int8 / llama.cpp q8_0: %.2fx decode; fp16 / llama.cpp f16: %.2fx decode" % (ratio("inkstream int8", "llama.cpp q8_0"), ratio("inkstream fp16", "llama.cpp f16")))
print("- prefill 256: inkstream int8 %.0f ms, fp16 %.0f ms against llama.cpp f16 %.0f ms" % (best["inkstream int8"]["prefill"], best["inkstream fp16"]["prefill"], best["llama.cpp f16"]["prefill"]))
'
fi
echo

if want lsp; then
echo "## Language server: editor-perceived latency (GPT-2-small shape from its bf16 checkpoint, dtype auto, n=3, max_tokens=24, ~540-token document)"
"$BUILD/bench/lsp_bench" --binary "$BUILD/cli/inkstream" --model "$MODELS/gpt2-small-bf16" --text $F/literature --runs 5
fi

echo
if want kernels; then
echo "## Linear kernels against libtorch (fp32: OpenBLAS, bf16: oneDNN; $THREADS threads, $(grep -o 'avx512f\|avx512_bf16\|avx2' /proc/cpuinfo | sort -u | tr '\n' ' '))"
"$BUILD/bench/kernels_bench" --threads "$THREADS"
echo "## int8 quantizing at load (GPT-2 small's weights; against the column-by-column reference)"
"$BUILD/bench/kernels_bench" --threads "$THREADS" --quantize
echo "## Attention over a cached prefix (cache-hot per layer; 12 layers from memory, with their read bandwidth)"
"$BUILD/bench/kernels_bench" --threads "$THREADS" --attention
echo "## The sampler per row (50,257 logits; top-k 40 as the editor asks, none as OpenAI clients do)"
"$BUILD/bench/sampler_bench"
echo "## A whole decoding step's int8 products (GPT-2 small, 136 MB; from memory where the last-level cache is smaller)"
"$BUILD/bench/kernels_bench" --threads "$THREADS" --int8-step
fi

echo
if want decode; then
echo "## One batched decoding step in process: the kernels against libtorch alone (INKSTREAM_KERNELS=off)"
for d in fp32 bf16; do
  folder=$MODELS/gpt2-small-f32
  [[ $d == bf16 ]] && folder=$MODELS/gpt2-small-bf16
  for k in auto off; do
    echo "# $d, INKSTREAM_KERNELS=$k"
    INKSTREAM_KERNELS=$k "$BUILD/bench/decode_step_bench" --model "$folder" --dtype "$d" --threads "$THREADS"
  done
done
for d in fp16 int8; do  # libtorch has no CPU kernels for these formats: ours only
  echo "# $d"
  "$BUILD/bench/decode_step_bench" --model "$MODELS/gpt2-small-f32" --dtype "$d" --threads "$THREADS"
done
fi

echo
if want context; then
echo "## Context selection on a long document of short sentences"
"$BUILD/bench/context_bench" --tokenizer tests/fixtures/tokenizer/gpt2
fi

echo
if want engine; then
echo "## Engine through the language server: keystrokes (reuse on/off), concurrency, peak RSS"
for d in fp32 auto; do
  folder=$MODELS/gpt2-small-f32
  [[ $d == auto ]] && folder=$MODELS/gpt2-small-bf16
  "$BUILD/bench/keystroke_bench" --binary "$BUILD/cli/inkstream" --model "$folder" --dtype "$d" \
    --text $F/literature $F/fortunes $F/people $F/wisdom --pauses 6
done
# At a writer's pace (1.5 s to type each pause's words): the server reads
# ahead the window a long document moves to while the writer types.
"$BUILD/bench/keystroke_bench" --binary "$BUILD/cli/inkstream" --model "$MODELS/gpt2-small-bf16" --dtype auto \
  --text $F/literature $F/fortunes $F/people $F/wisdom --pauses 20 --type-ms 1500 --skip-concurrency
fi

echo
if want vscode; then
echo "## VS Code extension: flicker and first-ghost latency of each re-render method (real VS Code in code-server)"
(cd editor_plugins/vscode && scripts/setup_test_env.sh >/dev/null && npm run -s package >/dev/null)
node bench/vscode_flicker.mjs "$BUILD/cli/inkstream" models/default 2>/dev/null
fi

echo
if want serve; then
echo "## inkstream serve: simulated writers (1, 4, 16) streaming suggestions of growing documents"
node bench/serve_bench.mjs "$BUILD/cli/inkstream" "$MODELS/gpt2-small-f32" --dtype auto --requests 16
echo "### with OpenAI's default sampling (temperature 1, top_p 1, no top-k)"
node bench/serve_bench.mjs "$BUILD/cli/inkstream" "$MODELS/gpt2-small-f32" --dtype auto --requests 16 --openai-defaults
fi
