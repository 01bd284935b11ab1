#!/usr/bin/env bash
# The benchmarks of docs/BENCHMARKS.md, on a fresh clone:
#
#   scripts/bench.sh            full run (about 26 minutes on a 2-core machine, once built); writes
#                               docs/bench/results.md, results.json and throughput.svg
#   scripts/bench.sh --quick    smoke test (about 2 minutes once built); writes target/bench/quick/
#   scripts/bench.sh [--quick] [bench arguments...]   e.g. --only throttle, --out DIR,
#                               --repeats N (see `target/release/bench --help`)
#
# Builds the release binaries (entra-export and the bench harness), runs the Graph client
# micro-benchmark (`cargo bench --bench graph_client`), starts Azurite 3.35.0 with a fresh data
# folder on its own port (AZURITE_BLOB_PORT, default 10100, so that a test run's Azurite is not
# disturbed), runs `target/release/bench` against it and stops Azurite on exit.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

quick=0
out=""
args=()
while (($#)); do
    case "$1" in
        --quick) quick=1 ;;
        --out)
            out="$2"
            shift
            ;;
        *) args+=("$1") ;;
    esac
    shift
done
if [[ -z "$out" ]]; then
    if ((quick)); then out="target/bench/quick"; else out="docs/bench"; fi
fi
mkdir -p "$out" target/bench

echo "bench.sh: building release binaries" >&2
cargo build --release --bin entra-export -p entra-export
cargo build --release --bin bench -p testbed

echo "bench.sh: Graph client micro-benchmark (cargo bench --bench graph_client)" >&2
client_json="$repo/target/bench/graph_client.json"
rm -f "$client_json"
if ((quick)); then
    BENCH_QUICK=1 BENCH_JSON="$client_json" cargo bench --bench graph_client
else
    BENCH_JSON="$client_json" cargo bench --bench graph_client
fi

export AZURITE_BLOB_PORT="${AZURITE_BLOB_PORT:-10100}"
export AZURITE_OAUTH=0
export AZURITE_BLOB_URL="http://127.0.0.1:${AZURITE_BLOB_PORT}/devstoreaccount1"
"$repo/scripts/azurite.sh" start
trap '"$repo/scripts/azurite.sh" stop' EXIT

bench_args=(--out "$out" --client-results "$client_json")
((quick)) && bench_args+=(--quick)
started=$(date +%s)
ENTRA_EXPORT_BIN="$repo/target/release/entra-export" \
    "$repo/target/release/bench" "${bench_args[@]}" ${args[@]+"${args[@]}"}
echo "bench.sh: finished in $(($(date +%s) - started)) s; results in $out/results.md" >&2
