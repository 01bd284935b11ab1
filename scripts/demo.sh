#!/usr/bin/env bash
# The quick-start (README): installs and starts Azurite 3.35.0, builds entra-export, then runs the
# demo, which starts the Graph simulator and `entra-export serve`, invokes AuditTimer and
# SignInTimer through the custom-handler protocol several times and checks what landed against
# the simulator's truth. Everything it started is stopped at the end, unless --keep.
#
#   scripts/demo.sh [--short] [--save-blobs DIR] [--keep]
#   scripts/demo.sh --stop       stop what --keep left running, and Azurite
#   scripts/demo.sh --help
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

# What --keep leaves behind: the demo's pid, the `export` lines it printed and Azurite's ports.
keep_dir="$repo/target/demo-keep"
pid_file="$keep_dir/demo.pid"
env_file="$keep_dir/env.sh"
ports_file="$keep_dir/azurite-ports"

usage() {
    cat <<'EOF'
Usage: scripts/demo.sh [--short] [--save-blobs DIR] [--keep]
       scripts/demo.sh --stop

Builds entra-export and the demo, starts Azurite on 127.0.0.1:10000, then runs the demo: the
Graph simulator with a few days of history and live late arrivals, `entra-export serve` invoked
through the custom-handler protocol as the Functions host does, a summary of what landed and a
check against the simulator's truth. Stops everything it started at the end.

Options:
  --short            a quicker run: one day of history, two timer ticks (four by default)
  --save-blobs DIR   also download the blobs into DIR/logs-audit/ and DIR/logs-signin/
  --keep             when the checks pass, leave Azurite, the Graph simulator and
                     `entra-export serve` running and print the `export` lines that point
                     target/debug/entra-export (status, run, config check) at them; they are
                     also written to target/demo-keep/env.sh. Then `target/debug/demo --list`
                     lists the blobs that landed.
  --stop             stop what --keep left running, and Azurite
  -h, --help         this text (the demo binary's own: target/debug/demo --help)
EOF
}

running_demo() {
    local pid
    [[ -f "$pid_file" ]] || return 1
    pid="$(cat "$pid_file")"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

stop_kept() {
    local pid
    if pid="$(running_demo)"; then
        # The demo ends `entra-export serve` when it exits; its process group is the fallback.
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        fi
        echo "demo.sh: stopped the demo (pid $pid): the Graph simulator and entra-export serve" >&2
    else
        echo "demo.sh: no kept demo is running" >&2
    fi
    if [[ -f "$ports_file" ]]; then
        # The ports Azurite was started on (AZURITE_BLOB_PORT, AZURITE_OAUTH_PORT).
        while IFS='=' read -r name value; do
            [[ "$name" =~ ^AZURITE_(BLOB|OAUTH)_PORT$ ]] && export "$name=$value"
        done <"$ports_file"
    fi
    rm -f "$pid_file" "$env_file" "$ports_file"
    "$repo/scripts/azurite.sh" stop
}

keep=0
for arg in "$@"; do
    case "$arg" in
        -h | --help)
            usage
            exit 0
            ;;
        --stop)
            [[ $# -eq 1 ]] || { echo "demo.sh: --stop takes no other argument" >&2; exit 2; }
            stop_kept
            exit 0
            ;;
        --keep) keep=1 ;;
    esac
done

if pid="$(running_demo)"; then
    echo "demo.sh: a demo left running by --keep is still running (pid $pid): scripts/demo.sh --stop first" >&2
    exit 1
fi

echo "demo.sh: building entra-export and the demo (the first build takes about 7 minutes on 2 cores)..." >&2
# One cargo invocation, so that the dependencies are built once, with one feature set.
cargo build --quiet -p entra-export -p testbed --bin entra-export --bin demo
"$repo/scripts/azurite.sh" start
export AZURITE_BLOB_URL="${AZURITE_BLOB_URL:-http://127.0.0.1:${AZURITE_BLOB_PORT:-10000}/devstoreaccount1}"
export ENTRA_EXPORT_BIN="$repo/target/debug/entra-export"

if [[ "$keep" == 0 ]]; then
    trap '"$repo/scripts/azurite.sh" stop' EXIT
    "$repo/target/debug/demo" "$@"
    exit 0
fi

# --keep: the demo runs in the background in its own session, so that it outlives this script;
# once its checks pass it writes $env_file, and this script returns. Until then, a failure or an
# interrupt stops the demo and Azurite as usual.
mkdir -p "$keep_dir"
rm -f "$env_file" "$pid_file"
printf 'AZURITE_BLOB_PORT=%s\nAZURITE_OAUTH_PORT=%s\n' \
    "${AZURITE_BLOB_PORT:-10000}" "${AZURITE_OAUTH_PORT:-10010}" >"$ports_file"
demo_pid=''
ready=0
cleanup() {
    if [[ "$ready" == 0 ]]; then
        if [[ -n "$demo_pid" ]] && kill -0 "$demo_pid" 2>/dev/null; then
            # Its process group: `entra-export serve` too (before --keep, SIGTERM is fatal to it).
            kill -TERM -- "-$demo_pid" 2>/dev/null || kill -TERM "$demo_pid" 2>/dev/null || true
            wait "$demo_pid" 2>/dev/null || true
        fi
        rm -f "$pid_file" "$env_file" "$ports_file"
        "$repo/scripts/azurite.sh" stop
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
launcher=()
command -v setsid >/dev/null && launcher=(setsid)
"${launcher[@]}" "$repo/target/debug/demo" "$@" --env-file "$env_file" </dev/null &
demo_pid=$!
echo "$demo_pid" >"$pid_file"
while [[ ! -f "$env_file" ]]; do
    if ! kill -0 "$demo_pid" 2>/dev/null; then
        status=0
        wait "$demo_pid" || status=$?
        echo "demo.sh: the demo ended without reaching --keep (exit $status)" >&2
        exit "$((status == 0 ? 1 : status))"
    fi
    sleep 0.2
done
ready=1
echo "   Or stop everything, Azurite included: scripts/demo.sh --stop"
