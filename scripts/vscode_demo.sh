#!/usr/bin/env bash
# The VS Code extension in a real VS Code without installing VS Code:
# code-server on loopback, with the extension and the bundled model, opened
# on the demo story. Open the printed address in a browser; Ctrl-C stops it.
# Usage: scripts/vscode_demo.sh [path/to/inkstream] [model folder]
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
binary="$(realpath "${1:-$repo/build/cli/inkstream}")"
model="$(realpath "${2:-$repo/models/default}")"
code_server="$("$repo/editor_plugins/vscode/scripts/setup_test_env.sh" | tail -1)"
(cd "$repo/editor_plugins/vscode" && npm run -s package >/dev/null)
work="$(mktemp -d /tmp/inkstream-vscode-demo-XXXXXX)"
mkdir -p "$work/user/User" "$work/ext" "$work/story"
cp "$repo/editor_plugins/nvim/demo/story.md" "$work/story/"
cat > "$work/user/User/settings.json" <<JSON
{
  "workbench.startupEditor": "none", "security.workspace.trust.enabled": false,
  "update.mode": "none", "extensions.autoUpdate": false, "editor.wordWrap": "on",
  "inkstream.server.path": "$binary", "inkstream.completion.model": "$model"
}
JSON
node "$code_server/out/node/entry.js" --user-data-dir "$work/user" --extensions-dir "$work/ext" \
  --install-extension "$repo/editor_plugins/vscode/dist/inkstream.vsix" >/dev/null
printf 'bind-addr: 127.0.0.1:8642\nauth: none\ncert: false\n' > "$work/config.yaml"
echo "open http://127.0.0.1:8642/?folder=$work/story in a browser, then story.md (Ctrl-C stops)"
EXTENSIONS_GALLERY='{"serviceUrl":"http://127.0.0.1:9/gallery"}' exec node "$code_server/out/node/entry.js" \
  --config "$work/config.yaml" --user-data-dir "$work/user" --extensions-dir "$work/ext" \
  --disable-telemetry --disable-update-check --disable-workspace-trust --ignore-last-opened "$work/story"
