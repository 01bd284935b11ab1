#!/usr/bin/env bash
# The quick-start (README): installs and starts Azurite 3.35.0, builds entra-export, then runs the
# demo, which starts the Graph simulator and `entra-export serve`, invokes AuditTimer and
# SignInTimer through the custom-handler protocol several times and checks what landed against
# the simulator's truth. Everything it started is stopped at the end. Pass --short for a quick run.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

cargo build --quiet --bin entra-export && cargo build --quiet -p testbed --bin demo
"$repo/scripts/azurite.sh" start
trap '"$repo/scripts/azurite.sh" stop' EXIT
export AZURITE_BLOB_URL="${AZURITE_BLOB_URL:-http://127.0.0.1:${AZURITE_BLOB_PORT:-10000}/devstoreaccount1}"
ENTRA_EXPORT_BIN="$repo/target/debug/entra-export" "$repo/target/debug/demo" "$@"
