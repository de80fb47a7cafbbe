#!/usr/bin/env bash
# Points the tests at the real Chromium binary (not the /usr/bin wrapper; see TOOLCHAIN.md).
set -euo pipefail
path="${CHROMIUM_PATH:-/usr/lib/chromium/chromium}"
[ -x "$path" ] || { echo "Chromium not found at $path (apt-get install chromium)" >&2; exit 1; }
echo "export CHROMIUM_PATH='$path'"
