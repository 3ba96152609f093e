#!/usr/bin/env bash
# Opens Neovim with the inkstream plugin of this repository on a sample story,
# the cursor at its end in insert mode, and a cheat sheet of the keys.
#
#   scripts/nvim_demo.sh [BINARY] [MODEL_DIR]
#
# BINARY defaults to build/cli/inkstream of this checkout; MODEL_DIR defaults
# to none (the server's default model). The fixture models have random
# weights (gibberish, but streamed for real), e.g.:
#   scripts/nvim_demo.sh build/cli/inkstream build/fixtures/deep-scaled
# Your own Neovim configuration is not read (nvim -u <demo init.lua>).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
binary="${1:-$repo/build/cli/inkstream}"
model="${2:-}"

if ! command -v nvim >/dev/null 2>&1; then
  echo "nvim is not installed: run scripts/setup.sh to install it (Debian 12 ships Neovim 0.7.2)." >&2
  exit 1
fi
if [ ! -x "$binary" ]; then
  echo "no inkstream binary at $binary: build it first (make build), or pass its path as the first argument." >&2
  exit 1
fi
binary="$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")"
if [ -n "$model" ]; then
  if [ ! -d "$model" ]; then
    echo "no model folder at $model" >&2
    exit 1
  fi
  model="$(cd "$model" && pwd)"
elif [ ! -d "$repo/models/default" ]; then
  echo "note: no MODEL_DIR given and models/default does not exist yet; if no suggestion appears, try" >&2
  echo "  $0 $binary $repo/build/fixtures/deep-scaled" >&2
fi

# Work on a copy, so the demo never changes the repository's story.
work="$(mktemp -d "${TMPDIR:-/tmp}/inkstream-demo.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cp "$repo/editor_plugins/nvim/demo/story.md" "$work/story.md"

INKSTREAM_DEMO_PLUGIN="$repo/editor_plugins/nvim" \
INKSTREAM_DEMO_BINARY="$binary" \
INKSTREAM_DEMO_MODEL="$model" \
  nvim -u "$repo/editor_plugins/nvim/demo/init.lua" "$work/story.md"
