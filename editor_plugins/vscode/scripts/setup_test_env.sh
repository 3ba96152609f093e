#!/usr/bin/env bash
# What the VS Code extension's build and tests need, installed only where
# missing: the extension's npm packages (esbuild, vsce, the language client,
# playwright-core) and a real VS Code to test in — code-server 4.100.3 (VS
# Code 1.100.3, the last line on Node 20) from npm, set up offline (its own
# install script downloads ripgrep from GitHub and native-module headers:
# Debian's ripgrep and /usr's Node headers stand in). Debian's
# chromium-headless-shell, ripgrep and libkrb5-dev come from scripts/setup.sh.
#
# Usage: editor_plugins/vscode/scripts/setup_test_env.sh [--packages-only]
# (--packages-only: only the extension's npm packages, to build the .vsix.)
# Prints the code-server folder last; INKSTREAM_CACHE_DIR moves the cache
# (default ~/.cache/inkstream).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
CODE_SERVER_VERSION=4.100.3
cache="${INKSTREAM_CACHE_DIR:-$HOME/.cache/inkstream}"
dest="$cache/code-server-$CODE_SERVER_VERSION"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "setup: the VS Code extension needs Node 20 and npm (node, npm on PATH)" >&2
  exit 1
fi
major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [[ "$major" != 20 ]]; then
  echo "setup: the VS Code tests need Node 20 (code-server $CODE_SERVER_VERSION runs on no other); found $(node --version 2>/dev/null || echo none)" >&2
  exit 1
fi
export npm_config_python=/usr/bin/python3 npm_config_nodedir=/usr npm_config_audit=false npm_config_fund=false \
  npm_config_update_notifier=false npm_config_loglevel=error

# The extension's packages (package-lock.json pins them).
stamp="$here/node_modules/.inkstream-lock"
if [[ ! -f "$stamp" ]] || ! cmp -s "$here/package-lock.json" "$stamp"; then
  echo "setup: npm ci in editor_plugins/vscode" >&2
  (cd "$here" && npm ci --ignore-scripts >&2)
  cp "$here/package-lock.json" "$stamp"
fi

[[ "${1:-}" == "--packages-only" ]] && exit 0

if [[ ! -f "$dest/.complete" ]]; then
  echo "setup: installing code-server $CODE_SERVER_VERSION into $dest" >&2
  rm -rf "$dest"
  mkdir -p "$dest"
  cd "$dest"
  npm install --ignore-scripts --no-save "code-server@$CODE_SERVER_VERSION" >&2
  # argon2 (code-server's password hashing): built from source, no prebuilt download.
  npm rebuild --build-from-source argon2 >&2
  cd node_modules/code-server/lib/vscode
  npm install --omit=dev --ignore-scripts >&2
  npm rebuild --build-from-source kerberos @parcel/watcher @vscode/deviceid @vscode/spdlog native-watchdog >&2
  # node-pty's own script also wants node-gyp from npm for a compile database: take it.
  npm_config_yes=true npm rebuild --build-from-source node-pty >&2
  mkdir -p node_modules/@vscode/ripgrep/bin
  ln -sf "$(command -v rg)" node_modules/@vscode/ripgrep/bin/rg
  ln -sfn node_modules node_modules.asar   # what its postinstall does
  touch "$dest/.complete"
fi
echo "$dest/node_modules/code-server"
