#!/usr/bin/env bash
# Runs the dpkeyring command line from this checkout: `bash run.sh serve`, `bash run.sh keys list ...`.
#
# Where Go is installed it is `go run ./cmd/dpkeyring ARGS...`; on a machine with no Go toolchain
# (the .NET SDK only) it is the same server prebuilt from main, ../shared/bin/dpkeyring beside the
# clone (DPKEYRING_BIN overrides both). It runs from the repository root, so `serve` keeps its data
# in the clone's ./data as the README says.
set -euo pipefail
root=$(cd "$(dirname "$0")" && pwd)
cd "$root"
if [ -n "${DPKEYRING_BIN:-}" ]; then
  exec "$DPKEYRING_BIN" "$@"
elif command -v go >/dev/null 2>&1; then
  exec go run ./cmd/dpkeyring "$@"
elif [ -x "$root/../shared/bin/dpkeyring" ]; then
  exec "$root/../shared/bin/dpkeyring" "$@"
fi
printf 'run.sh: no Go toolchain, no DPKEYRING_BIN and no prebuilt %s\n' "$root/../shared/bin/dpkeyring" >&2
exit 1
