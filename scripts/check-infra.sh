#!/usr/bin/env bash
# Validates the deployment code without Azure: for CI (.ci/run) and before a commit.
#
#   1. tools      pinned Python tools into .venv-infra (infra/tools-requirements.txt +
#                 infra/tools-constraints.txt); shellcheck from Debian if missing
#   2. bicep      every infra/**/*.bicep parses (pycep and tree-sitter-bicep), module calls and
#                 outputs line up, the parameters example fits, each hosting plan's app settings
#                 match src/config.rs (timeouts and budget included), one container, app setting,
#                 written-id prefix and alert expectation per stream of src/job.rs (streams
#                 enabled as the JobSpecs say), no listKeys on the keyless
#                 plans, the exporter's custom role has no delete action, the lifecycle rule,
#                 alert rules, workbook and inbound restrictions exist, no hard-coded cloud
#                 suffixes, every checkov skip has a reason (scripts/check_infra.py)
#   3. checkov    static IaC scan of infra/ (framework bicep): no failed check
#   4. shellcheck infra/*.sh and this project's deployment scripts
#   5. grant      scripts/test-grant-graph-permissions.sh (fake az: lookups, idempotence, the
#                 permissions per stream, --risk)
#   6. snowflake  scripts/check-snowflake-sql.sh (DuckDB runs docs/snowflake.md's stages, copies and
#                 views of every stream over sample blobs)
#   7. sas-rotate scripts/test-snowflake-sas-rotate.sh (fake az, curl, snow, snowsql: the
#                 user-delegation SAS rotation for Snowflake stages, --dry-run included)
#
# Exits non-zero if any step fails; ends with `check-infra: N passed, M failed` (steps).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${INFRA_VENV:-$root/.venv-infra}"
cd "$root"

started=$SECONDS
steps_passed=0
steps_failed=0
failed_steps=()

step() { # step NAME COMMAND...
  local name="$1"; shift
  local t0=$SECONDS
  echo "== check-infra: $name"
  if "$@"; then
    steps_passed=$((steps_passed + 1))
    echo "== check-infra: $name ok ($((SECONDS - t0)) s)"
  else
    steps_failed=$((steps_failed + 1))
    failed_steps+=("$name")
    echo "== check-infra: $name FAILED ($((SECONDS - t0)) s)" >&2
  fi
}

install_tools() {
  if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
  fi
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    -r infra/tools-requirements.txt -c infra/tools-constraints.txt
  if ! command -v shellcheck >/dev/null 2>&1; then
    if [[ $(id -u) -eq 0 ]]; then
      { apt-get install -y -qq shellcheck || { apt-get update -qq && apt-get install -y -qq shellcheck; }; } >/dev/null
    else
      echo "shellcheck is not installed (apt-get install shellcheck)" >&2
      return 1
    fi
  fi
}

run_checkov() {
  local report
  report="$(mktemp)"
  # --skip-download: no Prisma Cloud calls (no network here); the built-in checks run offline.
  # checkov exits 1 on a failed check; the report is judged by check_infra.py either way.
  "$venv/bin/checkov" --directory infra --framework bicep --skip-download --quiet --compact \
    --output json >"$report" 2>"$report.log" || true
  local status=0
  "$venv/bin/python" scripts/check_infra.py --checkov-report "$report" || status=$?
  if [[ $status -ne 0 ]]; then
    "$venv/bin/checkov" --directory infra --framework bicep --skip-download --compact --quiet 2>/dev/null || true
    tail -n 20 "$report.log" >&2
  fi
  rm -f "$report" "$report.log"
  return "$status"
}

run_shellcheck() {
  local files=(infra/*.sh)
  local f
  for f in scripts/package.sh scripts/test-package.sh scripts/check-infra.sh \
    scripts/check-snowflake-sql.sh scripts/test-grant-graph-permissions.sh \
    scripts/snowflake-sas-rotate.sh scripts/test-snowflake-sas-rotate.sh; do
    [[ -f "$f" ]] && files+=("$f")
  done
  shellcheck --version | sed -n 2p
  shellcheck "${files[@]}" && echo "shellcheck: ${#files[@]} files clean"
}

step tools install_tools
if [[ $steps_failed -gt 0 ]]; then
  echo "check-infra: 0 passed, 1 failed" >&2
  exit 1
fi
step bicep "$venv/bin/python" scripts/check_infra.py
step checkov run_checkov
step shellcheck run_shellcheck
step grant env INFRA_PYTHON="$venv/bin/python" scripts/test-grant-graph-permissions.sh
step snowflake env INFRA_VENV="$venv" scripts/check-snowflake-sql.sh
step sas-rotate scripts/test-snowflake-sas-rotate.sh

echo "== check-infra: $((SECONDS - started)) s in all"
if [[ $steps_failed -gt 0 ]]; then
  echo "check-infra: failed steps: ${failed_steps[*]}" >&2
fi
echo "check-infra: $steps_passed passed, $steps_failed failed"
[[ $steps_failed -eq 0 ]]
