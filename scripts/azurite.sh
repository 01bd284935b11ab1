#!/usr/bin/env bash
# Starts and stops a local Azurite blob service for the storage tests.
#
#   scripts/azurite.sh start   install azurite@3.35.0 into <repo>/.azurite (once, git-ignored),
#                              start it on 127.0.0.1:${AZURITE_BLOB_PORT:-10000} (http, account
#                              key / SAS) with a fresh data folder, wait until the port answers;
#                              print a clear error and exit non-zero if it does not start.
#                              With openssl available it also starts a second instance on
#                              127.0.0.1:${AZURITE_OAUTH_PORT:-10010} over https with
#                              `--oauth basic` (token path), using a throwaway CA written to
#                              <repo>/.azurite/oauth-ca.pem; set AZURITE_OAUTH=0 to skip it.
#   scripts/azurite.sh stop    stop what `start` started and remove the data folders
#   scripts/azurite.sh status  say what runs
#
# Test URLs: http://127.0.0.1:10000/devstoreaccount1 (AZURITE_BLOB_URL) and
# https://127.0.0.1:10010/devstoreaccount1 (AZURITE_OAUTH_URL).
# Azurite 3.35.0 is pinned: 3.36 needs Node 21 and 3.37 needs Node 22.
set -euo pipefail

AZURITE_VERSION="3.35.0"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX="$REPO/.azurite"
BLOB_PORT="${AZURITE_BLOB_PORT:-10000}"
OAUTH_PORT="${AZURITE_OAUTH_PORT:-10010}"
OAUTH_CA="$PREFIX/oauth-ca.pem"
START_TIMEOUT_SECS="${AZURITE_START_TIMEOUT:-30}"
TMP_ROOT="${TMPDIR:-/tmp}"
TMP_ROOT="${TMP_ROOT%/}"

fail() {
    echo "azurite.sh: error: $*" >&2
    exit 1
}

port_answers() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

running_pid() {
    local pid_file="$PREFIX/azurite-$1.pid" pid
    [[ -f "$pid_file" ]] || return 1
    pid="$(cat "$pid_file")"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

install() {
    local bin="$PREFIX/node_modules/.bin/azurite-blob"
    local installed="$PREFIX/node_modules/azurite/package.json"
    if [[ -x "$bin" ]] && grep -q "\"version\": \"$AZURITE_VERSION\"" "$installed" 2>/dev/null; then
        return 0
    fi
    command -v npm >/dev/null || fail "npm not found: install Node.js 20 (Azurite $AZURITE_VERSION needs Node >= 18)"
    echo "azurite.sh: installing azurite@$AZURITE_VERSION into $PREFIX" >&2
    mkdir -p "$PREFIX"
    npm install --prefix "$PREFIX" --no-audit --no-fund --loglevel=error "azurite@$AZURITE_VERSION" >&2 \
        || fail "npm install azurite@$AZURITE_VERSION failed"
    [[ -x "$bin" ]] || fail "npm install finished but $bin is missing"
}

# launch <port> <data folder> <extra azurite-blob arguments...>
launch() {
    local port="$1" data="$2"
    shift 2
    local pid_file="$PREFIX/azurite-$port.pid" log_file="$PREFIX/azurite-$port.log"
    echo "$data" >"$PREFIX/azurite-$port.data"
    # setsid: Azurite gets its own process group, so `stop` can end it and its children together.
    local launcher=()
    command -v setsid >/dev/null && launcher=(setsid)
    "${launcher[@]}" "$PREFIX/node_modules/.bin/azurite-blob" \
        --blobHost 127.0.0.1 --blobPort "$port" --location "$data" \
        --skipApiVersionCheck --disableTelemetry --silent "$@" \
        >"$log_file" 2>&1 </dev/null &
    local pid=$!
    echo "$pid" >"$pid_file"
    local waited=0
    while ! port_answers "$port"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "azurite.sh: Azurite exited during start-up; its log ($log_file):" >&2
            tail -n 40 "$log_file" >&2 || true
            rm -f "$pid_file" "$PREFIX/azurite-$port.data"
            rm -rf -- "$data"
            return 1
        fi
        if ((waited >= START_TIMEOUT_SECS * 10)); then
            echo "azurite.sh: Azurite did not answer within ${START_TIMEOUT_SECS}s; its log ($log_file):" >&2
            tail -n 40 "$log_file" >&2 || true
            stop_port "$port" >/dev/null 2>&1 || true
            return 1
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    echo "azurite.sh: Azurite $AZURITE_VERSION is running (pid $pid) on 127.0.0.1:$port $*" >&2
}

# A throwaway CA and a server certificate for 127.0.0.1/localhost (CA:FALSE on the leaf).
make_certificates() {
    local dir="$1"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=entra-export test CA" \
        -keyout "$dir/ca.key" -out "$dir/ca.pem" >/dev/null 2>&1 || return 1
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
        -keyout "$dir/server.key" -out "$dir/server.csr" >/dev/null 2>&1 || return 1
    printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" >"$dir/server.ext"
    openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
        -days 2 -extfile "$dir/server.ext" -out "$dir/server.pem" >/dev/null 2>&1 || return 1
    rm -f "$dir/ca.key" "$dir/server.csr"
}

start() {
    mkdir -p "$PREFIX"
    if pid="$(running_pid "$BLOB_PORT")"; then
        echo "azurite.sh: already running (pid $pid) on 127.0.0.1:$BLOB_PORT" >&2
    else
        port_answers "$BLOB_PORT" \
            && fail "port 127.0.0.1:$BLOB_PORT is already in use by another process: stop it or set AZURITE_BLOB_PORT"
        install
        launch "$BLOB_PORT" "$(mktemp -d "$TMP_ROOT/azurite-data.XXXXXX")" \
            || fail "Azurite did not start on 127.0.0.1:$BLOB_PORT"
    fi

    [[ "${AZURITE_OAUTH:-1}" == "0" ]] && return 0
    if running_pid "$OAUTH_PORT" >/dev/null; then
        return 0
    fi
    if ! command -v openssl >/dev/null; then
        echo "azurite.sh: openssl not found: not starting the https/oauth instance (token-path tests skip)" >&2
        return 0
    fi
    port_answers "$OAUTH_PORT" \
        && fail "port 127.0.0.1:$OAUTH_PORT is already in use by another process: stop it or set AZURITE_OAUTH_PORT (or AZURITE_OAUTH=0)"
    local data
    data="$(mktemp -d "$TMP_ROOT/azurite-data.XXXXXX")"
    make_certificates "$data" || fail "openssl could not make the test certificates"
    cp "$data/ca.pem" "$OAUTH_CA"
    launch "$OAUTH_PORT" "$data" --oauth basic --cert "$data/server.pem" --key "$data/server.key" \
        || fail "the https/oauth Azurite did not start on 127.0.0.1:$OAUTH_PORT"
}

stop_port() {
    local port="$1" pid data_file="$PREFIX/azurite-$1.data"
    if pid="$(running_pid "$port")"; then
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        fi
        echo "azurite.sh: stopped Azurite (pid $pid) on port $port" >&2
    fi
    rm -f "$PREFIX/azurite-$port.pid"
    if [[ -f "$data_file" ]]; then
        local data
        data="$(cat "$data_file")"
        case "$data" in
            "$TMP_ROOT"/azurite-data.*) rm -rf -- "$data" ;;
        esac
        rm -f "$data_file"
    fi
}

stop() {
    stop_port "$BLOB_PORT"
    stop_port "$OAUTH_PORT"
    rm -f "$OAUTH_CA"
}

status() {
    local code=1 pid
    for port in "$BLOB_PORT" "$OAUTH_PORT"; do
        if pid="$(running_pid "$port")"; then
            echo "running (pid $pid) on 127.0.0.1:$port"
            code=0
        else
            echo "not running on 127.0.0.1:$port"
        fi
    done
    return "$code"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *)
        echo "usage: $0 start|stop|status" >&2
        exit 2
        ;;
esac
