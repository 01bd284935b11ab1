#!/usr/bin/env bash
# Grants the entra-export managed identity the Microsoft Graph application permissions its streams
# need, in the cloud the Azure CLI is set to:
#
#   AuditLog.Read.All           every stream's log (directory audits, all four sign-in types,
#                               provisioning)
#   Directory.Read.All          provisioning logs (Graph lists both permissions for them); left out
#                               with --no-directory-read when provisioning is not in AUDIT_STREAMS
#   IdentityRiskEvent.Read.All  with --risk: the risk detection streams (riskDetections,
#                               servicePrincipalRiskDetections in AUDIT_STREAMS)
#
# ARM/Bicep cannot do this: it is an app role assignment made through Microsoft Graph
# (POST /servicePrincipals/{graph-sp}/appRoleAssignedTo). Run it once after each new deployment
# (a new system-assigned identity gets a new principal id). It is idempotent.
#
# The caller needs AppRoleAssignment.ReadWrite.All + Application.Read.All, or a directory role
# such as Privileged Role Administrator (or Global Administrator).
set -euo pipefail

readonly GRAPH_APP_ID='00000003-0000-0000-c000-000000000000'

usage() {
  cat <<'EOF'
Usage: grant-graph-permissions.sh (--principal-id ID | --resource-group RG --name APP) [options]

Grants a managed identity the Microsoft Graph application permissions AuditLog.Read.All and
Directory.Read.All (and, with --risk, IdentityRiskEvent.Read.All) in the cloud the Azure CLI is
set to (az cloud set --name AzureUSGovernment | AzureCloud). Already granted permissions are left
alone; nothing is ever revoked.

  permission                  streams (AUDIT_STREAMS / SIGNIN_EVENT_TYPES) that need it
  AuditLog.Read.All           all: directoryAudits, the four sign-in types, provisioning
  Directory.Read.All          provisioning
  IdentityRiskEvent.Read.All  riskDetections, servicePrincipalRiskDetections (--risk)

Identity (one of):
  --principal-id ID        object id of the managed identity's service principal
                           (the Bicep output "principalId")
  --resource-group RG --name APP
                           look the id up with: az functionapp identity show

Options:
  --risk                   also grant IdentityRiskEvent.Read.All, for the risk detection streams
                           (the Bicep parameter riskStreams; output riskStreamsEnabled)
  --no-directory-read      leave out Directory.Read.All: only when provisioning is not in
                           AUDIT_STREAMS (the Bicep parameter auditStreams)
  --directory-read         accepted for older instructions: Directory.Read.All is now the default
  --graph-endpoint URL     Microsoft Graph root to use instead of the CLI cloud's
                           (e.g. https://dod-graph.microsoft.us for DoD / L5 tenants)
  --dry-run                look everything up and print what would be granted; change nothing
  -h, --help               this text

Exit status: 0 when every requested permission is granted (now or before), non-zero otherwise.
EOF
}

die() {
  echo "error: $*" >&2
  exit 1
}

principal_id=''
resource_group=''
app_name=''
directory_read=true
risk=false
graph_endpoint=''
dry_run=false

while [[ $# -gt 0 ]]; do
  case "$1" in
    --principal-id) principal_id="${2:?--principal-id needs a value}"; shift 2 ;;
    --resource-group | -g) resource_group="${2:?--resource-group needs a value}"; shift 2 ;;
    --name | -n) app_name="${2:?--name needs a value}"; shift 2 ;;
    --directory-read) directory_read=true; shift ;;
    --no-directory-read) directory_read=false; shift ;;
    --risk) risk=true; shift ;;
    --graph-endpoint) graph_endpoint="${2:?--graph-endpoint needs a value}"; shift 2 ;;
    --dry-run) dry_run=true; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

command -v az >/dev/null 2>&1 || die "the Azure CLI (az) is not on PATH"

cloud_name="$(az cloud show --query name -o tsv)"
if [[ -z "$graph_endpoint" ]]; then
  graph_endpoint="$(az cloud show --query endpoints.microsoftGraphResourceId -o tsv)"
fi
graph_endpoint="${graph_endpoint%/}"
[[ "$graph_endpoint" == https://* ]] || die "Graph endpoint '$graph_endpoint' is not an https URL"

az account show --query id -o none >/dev/null 2>&1 || die "not logged in: run 'az login' (cloud $cloud_name)"

if [[ -z "$principal_id" ]]; then
  [[ -n "$resource_group" && -n "$app_name" ]] \
    || { usage >&2; die "give --principal-id, or --resource-group and --name"; }
  principal_id="$(az functionapp identity show -g "$resource_group" -n "$app_name" --query principalId -o tsv)"
  [[ -n "$principal_id" ]] \
    || die "function app $app_name has no system-assigned identity (az functionapp identity show returned none)"
fi
[[ "$principal_id" =~ ^[0-9a-fA-F-]{36}$ ]] || die "principal id '$principal_id' is not a GUID"

echo "cloud:          $cloud_name"
echo "graph:          $graph_endpoint"
echo "identity:       $principal_id"

# graph_get URL QUERY: GET a Graph URL with the CLI's token for that Graph, print --query as tsv.
graph_get() {
  az rest --method get --resource "$graph_endpoint" --url "$1" --query "$2" -o tsv
}

# The managed identity's service principal can take a minute to replicate after a deployment.
identity_name=''
for attempt in 1 2 3 4 5 6; do
  if identity_name="$(graph_get "$graph_endpoint/v1.0/servicePrincipals/$principal_id?\$select=id,displayName" displayName 2>/dev/null)"; then
    break
  fi
  [[ $attempt -lt 6 ]] || die "service principal $principal_id not found in $graph_endpoint (wrong tenant or cloud?)"
  echo "  service principal not visible yet, retrying in 10 s ($attempt/5)"
  sleep 10
done
echo "identity name:  $identity_name"

graph_sp_id="$(graph_get "$graph_endpoint/v1.0/servicePrincipals(appId='$GRAPH_APP_ID')?\$select=id" id)"
[[ -n "$graph_sp_id" ]] || die "Microsoft Graph service principal not found in this tenant"
echo "graph sp:       $graph_sp_id"

roles=(AuditLog.Read.All)
if [[ "$directory_read" == true ]]; then
  roles+=(Directory.Read.All)
fi
if [[ "$risk" == true ]]; then
  roles+=(IdentityRiskEvent.Read.All)
fi
echo "permissions:    ${roles[*]}"
if [[ "$directory_read" != true ]]; then
  echo "note: without Directory.Read.All the provisioning stream gets 403: take provisioning out of AUDIT_STREAMS (auditStreams)"
fi

# Current assignments of the identity, on the Graph service principal only.
existing="$(graph_get "$graph_endpoint/v1.0/servicePrincipals/$principal_id/appRoleAssignments" \
  "value[?resourceId=='$graph_sp_id'].appRoleId")"

granted=0
kept=0
for role in "${roles[@]}"; do
  role_id="$(graph_get "$graph_endpoint/v1.0/servicePrincipals/$graph_sp_id?\$select=appRoles" \
    "appRoles[?value=='$role' && contains(allowedMemberTypes, 'Application')].id | [0]")"
  [[ "$role_id" =~ ^[0-9a-fA-F-]{36}$ ]] || die "Graph has no application role named $role in $graph_endpoint"
  if grep -qix -- "$role_id" <<<"$existing"; then
    echo "kept:           $role ($role_id) was already granted"
    kept=$((kept + 1))
    continue
  fi
  if [[ "$dry_run" == true ]]; then
    echo "would grant:    $role ($role_id)"
    continue
  fi
  body="$(printf '{"principalId":"%s","resourceId":"%s","appRoleId":"%s"}' "$principal_id" "$graph_sp_id" "$role_id")"
  if ! assignment_id="$(az rest --method post --resource "$graph_endpoint" \
    --url "$graph_endpoint/v1.0/servicePrincipals/$graph_sp_id/appRoleAssignedTo" \
    --headers 'Content-Type=application/json' --body "$body" --query id -o tsv)"; then
    die "granting $role failed: the signed-in account needs AppRoleAssignment.ReadWrite.All + Application.Read.All, or Privileged Role Administrator"
  fi
  echo "granted:        $role ($role_id), assignment $assignment_id"
  granted=$((granted + 1))
done

if [[ "$dry_run" == true ]]; then
  echo "dry run: nothing changed ($kept already granted)"
else
  echo "done: $granted granted, $kept already granted."
  if [[ $granted -gt 0 ]]; then
    echo "note: tokens are cached for up to ~8 hours per resource; a running app may need a restart (az functionapp restart) before Graph accepts the new permission."
  fi
fi
