#!/usr/bin/env bash
# Runs the DuckDB stand-in for docs/snowflake.md (scripts/check_snowflake_sql.py): the doc's stages,
# copies and views for every stream (audit, the four sign-in types, provisioning, both risk
# detection streams), its views translated and run.
#
#   scripts/check-snowflake-sql.sh                 generated sample blobs of every stream, both layouts,
#                                                  plain + gzip (tests/fixtures/graph and
#                                                  scripts/snowflake-samples.json)
#   scripts/check-snowflake-sql.sh --blobs DIR     real blobs (DIR/<default container>/: logs-audit,
#                                                  logs-signin, logs-provisioning, ..., or one container
#                                                  folder), e.g. the demo's --save-blobs or
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
