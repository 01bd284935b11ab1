#!/usr/bin/env bash
# Rotates the SAS tokens of Snowflake external stages over entra-export's log containers, for
# Snowflake accounts that cannot use a storage integration against Azure Government storage (see
# docs/snowflake.md, "Azure Government storage: integration or SAS").
#
# With shared-key access off on the log account (the template's default) the only SAS is a
# user-delegation SAS: signed with a key the Blob service hands to an Entra ID principal, valid at
# most 7 days. This script, run daily by a scheduler:
#   1. signs, for each container, a read + list SAS valid for --days (at most 7) with
#      `az storage container generate-sas --as-user --auth-mode login` as the signed-in principal
#      (it needs Storage Blob Data Reader on the container and Storage Blob Delegator on the account);
#   2. checks it by listing one blob with it (--no-verify to skip);
#   3. runs `ALTER STAGE <stage> SET CREDENTIALS = (AZURE_SAS_TOKEN = '...')` through the Snowflake
#      CLI (`snow sql`) or SnowSQL, the SQL in a mode-600 temporary file, never on a command line.
#
# The SAS is never printed or logged. --dry-run does every check that changes nothing (Azure CLI
# signed in, cloud, arguments) and prints the commands and SQL it would run with the token
# replaced by <SAS>; it asks Azure for no delegation key and does not contact Snowflake.
set -euo pipefail

readonly MAX_DAYS=7

usage() {
  cat <<'EOF'
Usage: scripts/snowflake-sas-rotate.sh --account ACCOUNT --stage CONTAINER=STAGE [--stage ...] [options]

Signs a user-delegation SAS (read + list) for each container of the log storage account ACCOUNT and
sets it on the Snowflake stage with ALTER STAGE ... SET CREDENTIALS = (AZURE_SAS_TOKEN = '...').
Run it daily: each token is valid for --days, so a missed day or two does not break the stages.

Required:
  --account NAME            log storage account (deployment output logStorageAccountName)
  --stage CONTAINER=STAGE   container and the fully qualified Snowflake stage reading it, e.g.
                            logs-signin=ENTRA.RAW.ENTRA_SIGNIN_STAGE; repeat for each container

Options:
  --days N                  validity in days, 1 to 7 (default 7: the service's maximum for a
                            user-delegation SAS)
  --client snow|snowsql     Snowflake client (default snow, the Snowflake CLI)
  --connection NAME         Snowflake connection name passed to the client as -c NAME
  --no-verify               do not test each new token by listing one blob with it
  --dry-run                 change nothing; print what would be done, tokens shown as <SAS>
  -h, --help                this text

Environment: the Azure CLI must be signed in (az login, or az login --identity on a scheduler) in
the cloud of the account (az cloud set --name AzureUSGovernment).
Exit status: 0 when every stage got a new token (or, with --dry-run, would have).
EOF
}

die() {
  echo "snowflake-sas-rotate: error: $*" >&2
  exit 1
}

account=''
days="$MAX_DAYS"
client='snow'
connection=''
verify=1
dry_run=0
stages=()

while [[ $# -gt 0 ]]; do
  case "$1" in
    --account) account="${2:?--account needs a value}"; shift 2 ;;
    --stage) stages+=("${2:?--stage needs CONTAINER=STAGE}"); shift 2 ;;
    --days) days="${2:?--days needs a value}"; shift 2 ;;
    --client) client="${2:?--client needs a value}"; shift 2 ;;
    --connection) connection="${2:?--connection needs a value}"; shift 2 ;;
    --no-verify) verify=0; shift ;;
    --dry-run) dry_run=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

[[ -n "$account" ]] || { usage >&2; die "--account is required"; }
[[ "$account" =~ ^[a-z0-9]{3,24}$ ]] || die "--account '$account' is not a storage account name (3-24 lowercase letters and digits)"
[[ ${#stages[@]} -gt 0 ]] || { usage >&2; die "at least one --stage CONTAINER=STAGE is required"; }
if ! [[ "$days" =~ ^[0-9]+$ ]] || ((days < 1 || days > MAX_DAYS)); then
  die "--days must be 1 to $MAX_DAYS (a user-delegation SAS lives at most 7 days), got '$days'"
fi
case "$client" in
  snow | snowsql) ;;
  *) die "--client must be snow or snowsql, got '$client'" ;;
esac
for pair in "${stages[@]}"; do
  container="${pair%%=*}"
  stage="${pair#*=}"
  [[ "$pair" == *=* && -n "$container" && -n "$stage" ]] || die "--stage '$pair' is not CONTAINER=STAGE"
  [[ "$container" =~ ^[a-z0-9]([a-z0-9-]{1,61}[a-z0-9])?$ ]] || die "'$container' is not a container name"
  # A stage name goes into SQL: identifiers, dots and double-quoted identifiers only.
  [[ "$stage" =~ ^([A-Za-z_][A-Za-z0-9_$]*|\"[^\"]+\")(\.([A-Za-z_][A-Za-z0-9_$]*|\"[^\"]+\")){0,2}$ ]] \
    || die "'$stage' is not a Snowflake stage name (db.schema.stage)"
done

command -v az >/dev/null 2>&1 || die "the Azure CLI (az) is not installed"
if [[ $dry_run -eq 0 ]]; then
  command -v "$client" >/dev/null 2>&1 || die "the Snowflake client '$client' is not installed (--client snow|snowsql)"
fi

cloud="$(az cloud show --query name -o tsv)" || die "az cloud show failed"
suffix="$(az cloud show --query suffixes.storageEndpoint -o tsv)" || die "az cloud show failed"
signed_in="$(az account show --query user.name -o tsv 2>/dev/null)" \
  || die "the Azure CLI is not signed in (az login, or az login --identity)"
expiry="$(date -u -d "+${days} days" +%Y-%m-%dT%H:%MZ)"
echo "snowflake-sas-rotate: cloud $cloud, account $account.blob.$suffix, signer $signed_in, tokens valid until $expiry"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
chmod 700 "$work"

client_args=()
[[ -n "$connection" ]] && client_args+=(-c "$connection")

rotated=0
for pair in "${stages[@]}"; do
  container="${pair%%=*}"
  stage="${pair#*=}"
  generate=(az storage container generate-sas --as-user --auth-mode login --account-name "$account"
    --name "$container" --permissions rl --https-only --expiry "$expiry" -o tsv)
  if [[ $dry_run -eq 1 ]]; then
    echo "dry run: ${generate[*]}"
    echo "dry run: $client sql ${client_args[*]} -f <file>: ALTER STAGE $stage SET CREDENTIALS = (AZURE_SAS_TOKEN = '<SAS>');"
    rotated=$((rotated + 1))
    continue
  fi
  token="$("${generate[@]}")" || die "could not sign a SAS for $container (needs Storage Blob Data Reader on it and Storage Blob Delegator on $account)"
  token="${token#\?}"
  [[ "$token" == *sig=* && "$token" == *skoid=* ]] || die "az returned something that is not a user-delegation SAS for $container"
  if [[ $verify -eq 1 ]]; then
    status="$(curl -sS -o /dev/null -w '%{http_code}' --config - <<EOF
url = "https://$account.blob.$suffix/$container?restype=container&comp=list&maxresults=1&$token"
EOF
)" || status=000
    [[ "$status" == 200 ]] || die "the new SAS for $container does not list blobs (HTTP $status); stage $stage left unchanged"
  fi
  sql="$work/alter.sql"
  (umask 077 && printf "ALTER STAGE %s SET CREDENTIALS = (AZURE_SAS_TOKEN = '%s');\n" "$stage" "?$token" >"$sql")
  if [[ "$client" == snowsql ]]; then
    snowsql "${client_args[@]}" -o exit_on_error=true -o friendly=false -f "$sql" >/dev/null \
      || die "ALTER STAGE $stage failed (snowsql); the stage keeps its previous token"
  else
    snow sql "${client_args[@]}" -f "$sql" >/dev/null \
      || die "ALTER STAGE $stage failed (snow sql); the stage keeps its previous token"
  fi
  rm -f "$sql"
  unset token
  echo "snowflake-sas-rotate: $stage <- new SAS for $container (read, list) until $expiry"
  rotated=$((rotated + 1))
done

if [[ $dry_run -eq 1 ]]; then
  echo "snowflake-sas-rotate: $rotated stage(s) would be rotated"
else
  echo "snowflake-sas-rotate: $rotated stage(s) rotated"
fi
