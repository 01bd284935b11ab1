#!/usr/bin/env bash
# The benchmarks of docs/BENCHMARKS.md, on a fresh clone:
#
#   scripts/bench.sh            full run (about 50 minutes on a 2-core machine, once built); writes
#                               docs/bench/results.md, results.json and throughput.svg (scenarios
#                               1-4) and layouts.md, layouts.json and layouts.svg (scenario 5)
#   scripts/bench.sh --quick    smoke test (about 5 minutes once built); writes target/bench/quick/
#   scripts/bench.sh --only layouts     scenario 5 alone (about 25 minutes): layouts.* only
#   scripts/bench.sh [--quick] [bench arguments...]   e.g. --only throttle, --out DIR,
#                               --repeats N, --layouts dense (see `target/release/bench --help`)
#
# Builds the release binaries (entra-export and the bench harness), runs the Graph client
# micro-benchmark (`cargo bench --bench graph_client`; skipped when `--only` leaves out
# `client`), starts Azurite 3.35.0 with a fresh data folder on its own port (AZURITE_BLOB_PORT,
# default 10100, so that a test run's Azurite is not disturbed; no https/oauth instance), runs
# `target/release/bench` against it and stops that Azurite, and only it, on exit.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

quick=0
out=""
client=1
args=()
while (($#)); do
    case "$1" in
        --quick) quick=1 ;;
        --out)
            out="$2"
            shift
            ;;
        --only)
            [[ ",${2:-}," == *,client,* ]] || client=0
            args+=("$1" "${2:-}")
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

client_json="$repo/target/bench/graph_client.json"
if ((client)); then
    echo "bench.sh: Graph client micro-benchmark (cargo bench --bench graph_client)" >&2
    rm -f "$client_json"
    if ((quick)); then
        BENCH_QUICK=1 BENCH_JSON="$client_json" cargo bench --bench graph_client
    else
        BENCH_JSON="$client_json" cargo bench --bench graph_client
    fi
fi

export AZURITE_BLOB_PORT="${AZURITE_BLOB_PORT:-10100}"
export AZURITE_OAUTH=0
export AZURITE_BLOB_URL="http://127.0.0.1:${AZURITE_BLOB_PORT}/devstoreaccount1"

# Stops the Azurite this script started on AZURITE_BLOB_PORT, and nothing else:
# `scripts/azurite.sh stop` also stops the https/oauth instance and removes its CA file, which a
# test run of another checkout user may be using.
stop_azurite() {
    local pid_file="$repo/.azurite/azurite-$AZURITE_BLOB_PORT.pid"
    local data_file="$repo/.azurite/azurite-$AZURITE_BLOB_PORT.data" pid data
    if [[ -f "$pid_file" ]]; then
        pid="$(cat "$pid_file")"
        if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
            kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            if kill -0 "$pid" 2>/dev/null; then
                kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
            fi
            echo "bench.sh: stopped Azurite (pid $pid) on port $AZURITE_BLOB_PORT" >&2
        fi
        rm -f "$pid_file"
    fi
    if [[ -f "$data_file" ]]; then
        data="$(cat "$data_file")"
        case "$data" in
            "${TMPDIR:-/tmp}"/azurite-data.* | /tmp/azurite-data.*) rm -rf -- "$data" ;;
        esac
        rm -f "$data_file"
    fi
}
if [[ -f "$repo/.azurite/azurite-$AZURITE_BLOB_PORT.pid" ]] \
    && kill -0 "$(cat "$repo/.azurite/azurite-$AZURITE_BLOB_PORT.pid")" 2>/dev/null; then
    echo "bench.sh: an Azurite already runs on port $AZURITE_BLOB_PORT (another bench?): set AZURITE_BLOB_PORT" >&2
    exit 1
fi
"$repo/scripts/azurite.sh" start
trap stop_azurite EXIT

bench_args=(--out "$out")
((client)) && bench_args+=(--client-results "$client_json")
((quick)) && bench_args+=(--quick)
started=$(date +%s)
ENTRA_EXPORT_BIN="$repo/target/release/entra-export" \
    "$repo/target/release/bench" "${bench_args[@]}" ${args[@]+"${args[@]}"}
echo "bench.sh: finished in $(($(date +%s) - started)) s; results in $out/" >&2
