#!/usr/bin/env bash
# The test command (README "Quick start"): installs and starts Azurite 3.35.0 on loopback with
# a fresh data folder, runs every test of the workspace against it, and stops it again.
# Storage tests fail (they do not skip) when CI=true and Azurite is unreachable.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

"$repo/scripts/azurite.sh" start
trap '"$repo/scripts/azurite.sh" stop' EXIT

export AZURITE_BLOB_URL="${AZURITE_BLOB_URL:-http://127.0.0.1:${AZURITE_BLOB_PORT:-10000}/devstoreaccount1}"
export AZURITE_OAUTH_URL="${AZURITE_OAUTH_URL:-https://127.0.0.1:${AZURITE_OAUTH_PORT:-10010}/devstoreaccount1}"
cargo test --workspace --all-targets "$@"
