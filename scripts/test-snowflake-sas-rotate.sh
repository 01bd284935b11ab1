#!/usr/bin/env bash
# Tests scripts/snowflake-sas-rotate.sh against fake `az`, `curl`, `snow` and `snowsql` (no Azure,
# no Snowflake): the az call signs a user-delegation SAS (--as-user --auth-mode login, read + list,
# https only, at most 7 days), the token is checked, reaches Snowflake only inside the SQL file
# (never argv, stdout or stderr), --dry-run signs nothing and runs no SQL, and bad input is refused
# before anything runs (stage names that are not identifiers, --days over 7, no sign-in, a token
# that does not list, a failing ALTER STAGE).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
script="$root/scripts/snowflake-sas-rotate.sh"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
passed=0
failed=0

expect() { # expect NAME CONDITION...
  local name="$1"; shift
  if "$@"; then
    passed=$((passed + 1)); echo "ok: $name"
  else
    failed=$((failed + 1)); echo "FAILED: $name"
  fi
}

readonly TOKEN='se=2030-01-01T00%3A00Z&sp=rl&spr=https&sv=2022-11-02&sr=c&skoid=o1&sktid=t1&skt=x&ske=y&sks=b&skv=2022-11-02&sig=SECRETSIGNATURE%3D'

mkdir -p "$work/bin"
cat >"$work/bin/az" <<'EOF'
#!/usr/bin/env bash
echo "az $*" >>"$FAKE_LOG"
case "$1 $2" in
  "cloud show")
    if [[ "$*" == *suffixes.storageEndpoint* ]]; then echo core.usgovcloudapi.net; else echo AzureUSGovernment; fi ;;
  "account show")
    [[ "${FAKE_AZ_SIGNED_OUT:-0}" == 1 ]] && { echo "Please run 'az login'" >&2; exit 1; }
    echo "rotator@contoso.us" ;;
  "storage container")
    echo "$FAKE_TOKEN" ;;
  *) echo "fake az: unexpected $*" >&2; exit 2 ;;
esac
EOF
cat >"$work/bin/curl" <<'EOF'
#!/usr/bin/env bash
# Reads the URL from --config - (stdin), as the script passes it.
echo "curl $*" >>"$FAKE_LOG"
cat >>"$FAKE_CURL_CONFIG"
printf '%s' "${FAKE_CURL_STATUS:-200}"
EOF
for client in snow snowsql; do
  cat >"$work/bin/$client" <<EOF
#!/usr/bin/env bash
echo "$client \$*" >>"\$FAKE_LOG"
while [[ \$# -gt 0 ]]; do
  if [[ "\$1" == -f ]]; then
    stat -c '%a' "\$2" >>"\$FAKE_SQL_MODES"
    cat "\$2" >>"\$FAKE_SQL"
  fi
  shift
done
exit "\${FAKE_SQL_EXIT:-0}"
EOF
done
chmod +x "$work/bin/"*

run() { # run CASE ARGS... ; output in $work/CASE.out, status in $work/CASE.status
  local case="$1"; shift
  export FAKE_LOG="$work/$case.log" FAKE_SQL="$work/$case.sql" FAKE_SQL_MODES="$work/$case.modes" \
    FAKE_CURL_CONFIG="$work/$case.curl" FAKE_TOKEN="?$TOKEN"
  : >"$FAKE_LOG"; : >"$FAKE_SQL"; : >"$FAKE_SQL_MODES"; : >"$FAKE_CURL_CONFIG"
  local status=0
  PATH="$work/bin:$PATH" "$script" "$@" >"$work/$case.out" 2>&1 || status=$?
  echo "$status" >"$work/$case.status"
}
status_of() { cat "$work/$1.status"; }
has() { grep -qF -- "$2" "$work/$1"; }
lacks() { ! grep -qF -- "$2" "$work/$1"; }

stages=(--stage logs-signin=ENTRA.RAW.ENTRA_SIGNIN_STAGE --stage logs-audit=ENTRA.RAW.ENTRA_AUDIT_STAGE)

bash -n "$script" && expect "bash -n" true

# 1. Dry run: no SAS signed, no SQL run, commands shown with <SAS>.
run dry --account entraexplog1 "${stages[@]}" --dry-run
expect "dry run exits 0" test "$(status_of dry)" = 0
expect "dry run signs nothing" lacks dry.log "generate-sas"
expect "dry run runs no SQL" test ! -s "$work/dry.sql"
expect "dry run shows the az command for each container" \
  bash -c "grep -c 'dry run: az storage container generate-sas --as-user --auth-mode login' '$work/dry.out' | grep -qx 2"
expect "dry run shows the ALTER STAGE with <SAS>" has dry.out "ALTER STAGE ENTRA.RAW.ENTRA_SIGNIN_STAGE SET CREDENTIALS = (AZURE_SAS_TOKEN = '<SAS>');"
expect "dry run counts 2 stages" has dry.out "2 stage(s) would be rotated"

# 2. A real run with the Snowflake CLI.
run real --account entraexplog1 "${stages[@]}" --days 7 --connection rotator
expect "run exits 0" test "$(status_of real)" = 0
expect "az signs a user-delegation SAS (--as-user --auth-mode login)" has real.log "az storage container generate-sas --as-user --auth-mode login --account-name entraexplog1 --name logs-signin"
expect "the SAS is read + list only, https only" has real.log "--permissions rl --https-only"
expiry="$(grep -o -- '--expiry [^ ]*' "$work/real.log" | head -n1 | cut -d' ' -f2)"
expect "expiry is at most 7 days ahead" test "$(($(date -u -d "$expiry" +%s) - $(date -u +%s)))" -le $((7 * 86400))
expect "expiry is more than 6 days ahead with --days 7" test "$(($(date -u -d "$expiry" +%s) - $(date -u +%s)))" -gt $((6 * 86400))
expect "each token is checked by listing one blob on the cloud's endpoint" \
  has real.curl "url = \"https://entraexplog1.blob.core.usgovcloudapi.net/logs-signin?restype=container&comp=list&maxresults=1&$TOKEN\""
expect "the token never appears in argv (az, curl, snow)" lacks real.log "SECRETSIGNATURE"
expect "the token never appears in the output" lacks real.out "SECRETSIGNATURE"
expect "ALTER STAGE for the sign-in stage with the token" has real.sql "ALTER STAGE ENTRA.RAW.ENTRA_SIGNIN_STAGE SET CREDENTIALS = (AZURE_SAS_TOKEN = '?$TOKEN');"
expect "ALTER STAGE for the audit stage" has real.sql "ALTER STAGE ENTRA.RAW.ENTRA_AUDIT_STAGE SET CREDENTIALS"
expect "snow sql runs with the connection" has real.log "snow sql -c rotator -f "
expect "the SQL file is private (mode 600)" bash -c "sort -u '$work/real.modes' | grep -qx 600"
expect "2 stages rotated" has real.out "2 stage(s) rotated"

# 3. SnowSQL.
run snowsql --account entraexplog1 --stage logs-signin=ENTRA_SIGNIN_STAGE --client snowsql
expect "snowsql run exits 0" test "$(status_of snowsql)" = 0
expect "snowsql stops on error" has snowsql.log "snowsql -o exit_on_error=true -o friendly=false -f "

# 4. Refusals.
run days8 --account entraexplog1 "${stages[@]}" --days 8
expect "--days 8 refused" test "$(status_of days8)" = 1
expect "--days 8 signs nothing" lacks days8.log "generate-sas"
run inject --account entraexplog1 --stage "logs-signin=S; DROP TABLE X"
expect "a stage name that is not an identifier is refused" test "$(status_of inject)" = 1
expect "... before any call" test ! -s "$work/inject.log"
run badacct --account "Bad_Account" "${stages[@]}"
expect "a bad account name is refused" test "$(status_of badacct)" = 1
FAKE_AZ_SIGNED_OUT=1 run signedout --account entraexplog1 "${stages[@]}"
expect "not signed in: refused" test "$(status_of signedout)" = 1
expect "not signed in: says so" has signedout.out "not signed in"
FAKE_CURL_STATUS=403 run nolist --account entraexplog1 "${stages[@]}"
expect "a token that does not list: exit 1" test "$(status_of nolist)" = 1
expect "a token that does not list: no ALTER STAGE" test ! -s "$work/nolist.sql"
FAKE_SQL_EXIT=1 run sqlfail --account entraexplog1 "${stages[@]}"
expect "a failing ALTER STAGE: exit 1 and says so" bash -c "[[ \$(cat '$work/sqlfail.status') == 1 ]] && grep -q 'keeps its previous token' '$work/sqlfail.out'"
expect "a failing ALTER STAGE: token still not printed" lacks sqlfail.out "SECRETSIGNATURE"
unset FAKE_AZ_SIGNED_OUT FAKE_CURL_STATUS FAKE_SQL_EXIT

echo "test-snowflake-sas-rotate: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
