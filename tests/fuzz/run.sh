#!/usr/bin/env bash
# Runs every libFuzzer target of a fuzz build (make test-fuzz) for SECONDS
# each, starting from the committed corpus, and prints executions and
# coverage per target. A crash fails the run and leaves its input in
# BUILD/fuzz-artifacts/: copy it into tests/fuzz/corpus/<target>/ so the
# replay test (CTest fuzz_<target>_corpus) keeps it fixed.
# Usage: tests/fuzz/run.sh BUILD SECONDS [RUNS [TARGET...]]
#   RUNS > 0: each target runs until it has executed RUNS inputs instead
#   (SECONDS is then ignored), e.g. a long run of 1000000 each; TARGETs
#   (names like jsonrpc) limit the run to those.
set -euo pipefail
build=$1
seconds=$2
runs=${3:-0}
shift $(( $# < 3 ? $# : 3 ))
only=" $* "
here="$(cd "$(dirname "$0")" && pwd)"
artifacts="$build/fuzz-artifacts"
mkdir -p "$artifacts"
status=0
for bin in "$build"/tests/fuzz/fuzz_*; do
  name=$(basename "$bin")
  name=${name#fuzz_}
  if [ -n "${only// /}" ] && [[ "$only" != *" $name "* ]]; then continue; fi
  work="$build/fuzz-corpus/$name"  # grows here, not in the repository
  mkdir -p "$work"
  log="$build/fuzz-$name.log"
  if [ "$runs" -gt 0 ]; then limit=(-runs="$runs"); took="until $runs"; else limit=(-max_total_time="$seconds"); took="in ${seconds} s"; fi
  start=$SECONDS
  if "$bin" "${limit[@]}" -timeout=10 -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 \
      -artifact_prefix="$artifacts/$name-" "$work" "$here/corpus/$name" >"$log" 2>&1; then
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo '?')
    echo "fuzz $name: $execs executions ($took, $((SECONDS - start)) s), coverage $cov edges, no crash"
  else
    echo "fuzz $name: FAILED (log: $log; input: $(ls "$artifacts"/"$name"-* 2>/dev/null | head -1))"
    tail -40 "$log"
    status=1
  fi
done
exit $status
