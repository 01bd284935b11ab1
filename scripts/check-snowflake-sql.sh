#!/usr/bin/env bash
# Runs the DuckDB stand-in for the docs/snowflake.md queries (scripts/check_snowflake_sql.py).
#
#   scripts/check-snowflake-sql.sh                 generated sample blobs, both layouts, plain + gzip
#   scripts/check-snowflake-sql.sh --blobs DIR     real blobs (DIR/logs-audit, DIR/logs-signin, or one
#                                                  container folder), e.g. downloaded with
#                                                  az storage blob download-batch
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${INFRA_VENV:-$root/.venv-infra}"

if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import duckdb' 2>/dev/null; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "$(grep '^duckdb==' "$root/infra/tools-requirements.txt")"
fi
exec "$venv/bin/python" "$root/scripts/check_snowflake_sql.py" "$@"
