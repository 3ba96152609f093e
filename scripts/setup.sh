#!/usr/bin/env bash
# Installs what inkstream needs on Debian 12, only what is missing.
# Usage: scripts/setup.sh [--tests]   (--tests adds what the test suite needs)
set -euo pipefail

packages=(
  cmake ninja-build g++ pkg-config
  libtorch-dev libopenblas0-pthread   # libtorch; OpenBLAS at run time (else fp32 matmul is ~35x slower)
  nlohmann-json3-dev libasio-dev libcpp-httplib-dev libspdlog-dev libicu-dev libcli11-dev
  libcld2-dev                         # language identification for `inkstream data clean --language`
  libgtest-dev
  neovim                              # `make run` is the Neovim demo; the plugin tests drive it headless
)
if [[ "${1:-}" == "--tests" ]]; then
  packages+=(
    python3 python3-numpy   # fixture checkpoint generator
    # the VS Code extension's end-to-end tests: a real VS Code (code-server,
    # set up by editor_plugins/vscode/scripts/setup_test_env.sh) in Chromium
    chromium-headless-shell ripgrep libkrb5-dev make
    nginx   # deploy/nginx is linted and run in front of two `inkstream serve` replicas
    clang-14 libclang-rt-14-dev   # the parsers' libFuzzer targets (make test-fuzz)
  )
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

if [[ "${1:-}" == "--tests" ]]; then
  editor_plugins_vscode="$(dirname "$0")/../editor_plugins/vscode"
  # The official OpenAI SDK, the conformance client of `inkstream serve`'s tests.
  serve_tests="$(dirname "$0")/../tests/http_server"
  if command -v npm >/dev/null && ! cmp -s "$serve_tests/package-lock.json" "$serve_tests/node_modules/.inkstream-lock" 2>/dev/null; then
    (cd "$serve_tests" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2 &&
      cp package-lock.json node_modules/.inkstream-lock)
  fi
  # Needs Node 20 + npm: without them the VS Code tests are skipped, not the rest.
  "$editor_plugins_vscode/scripts/setup_test_env.sh" >/dev/null ||
    echo "setup: the VS Code extension's tests cannot be set up (see above); CTest will skip vscode_e2e" >&2
fi
