#!/usr/bin/env bash
# The test command (README "Quick start"): installs and starts Azurite 3.35.0 on loopback with
# a fresh data folder, runs every test of the workspace against it, and stops it again.
# Storage tests fail (they do not skip) when CI=true and Azurite is unreachable.
# The clock-skew test runs `serve` under libfaketime (Debian's `faketime` package), installed
# here when missing and this runs as root; under CI its absence fails the test.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

libfaketime=/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1
if [[ ! -e "$libfaketime" ]]; then
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
        echo "test.sh: installing Debian's faketime package (libfaketime) for the clock-skew test"
        (apt-get install -y -q faketime >/dev/null 2>&1 \
            || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q faketime >/dev/null 2>&1; }) \
            || echo "test.sh: could not install faketime; the clock-skew test fails under CI, skips otherwise" >&2
    else
        echo "test.sh: $libfaketime is missing (apt-get install faketime); the clock-skew test skips outside CI" >&2
    fi
fi

"$repo/scripts/azurite.sh" start
trap '"$repo/scripts/azurite.sh" stop' EXIT

export AZURITE_BLOB_URL="${AZURITE_BLOB_URL:-http://127.0.0.1:${AZURITE_BLOB_PORT:-10000}/devstoreaccount1}"
export AZURITE_OAUTH_URL="${AZURITE_OAUTH_URL:-https://127.0.0.1:${AZURITE_OAUTH_PORT:-10010}/devstoreaccount1}"
cargo test --workspace --all-targets "$@"
