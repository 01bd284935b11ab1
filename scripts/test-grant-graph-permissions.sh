#!/usr/bin/env bash
# Tests infra/grant-graph-permissions.sh against a fake `az` (no Azure needed): the Graph lookups,
# the role-id match by value, the permissions per option (AuditLog.Read.All + Directory.Read.All by
# default, IdentityRiskEvent.Read.All with --risk, --no-directory-read), idempotence (a second run
# posts nothing), --dry-run, both clouds, a Graph without the risk role.
# Needs a Python with jmespath (the .venv-infra that scripts/check-infra.sh builds has it).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${INFRA_PYTHON:-$root/.venv-infra/bin/python}"
script="$root/infra/grant-graph-permissions.sh"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/bin"
cat >"$work/bin/az" <<PYEOF
#!$python
import json, os, sys, uuid, jmespath
state_path = os.environ["FAKE_AZ_STATE"]
cloud = os.environ.get("FAKE_AZ_CLOUD", "AzureUSGovernment")
graph = {"AzureUSGovernment": "https://graph.microsoft.us/", "AzureCloud": "https://graph.microsoft.com/"}[cloud]
PID = "11111111-2222-3333-4444-555555555555"
GRAPH_SP = "99999999-8888-7777-6666-000000000000"
ROLES = [
    {"id": "b0afded3-3588-46d8-8b3d-9842eff778da", "value": "AuditLog.Read.All", "allowedMemberTypes": ["Application"]},
    {"id": "7ab1d382-f21e-4acd-a863-ba3e13f7da61", "value": "Directory.Read.All", "allowedMemberTypes": ["Application"]},
    {"id": "6e472fd1-ad78-48da-a0f0-97ab2c6b769e", "value": "IdentityRiskEvent.Read.All", "allowedMemberTypes": ["Application"]},
    {"id": "cccccccc-0000-0000-0000-000000000000", "value": "IdentityRiskEvent.Read.All", "allowedMemberTypes": ["User"]},
    {"id": "aaaaaaaa-0000-0000-0000-000000000000", "value": "AuditLog.Read.All", "allowedMemberTypes": ["User"]},
    {"id": "bbbbbbbb-0000-0000-0000-000000000000", "value": "Other.Read.All", "allowedMemberTypes": ["Application"]},
]
if os.environ.get("FAKE_AZ_NO_RISK_ROLE"):
    ROLES = [r for r in ROLES if not (r["value"] == "IdentityRiskEvent.Read.All" and "Application" in r["allowedMemberTypes"])]
args = sys.argv[1:]
with open(os.environ["FAKE_AZ_LOG"], "a") as log:
    log.write(" ".join(args) + "\n")
state = json.load(open(state_path)) if os.path.exists(state_path) else {"assignments": [
    {"id": "x1", "resourceId": "another-resource", "appRoleId": "b0afded3-3588-46d8-8b3d-9842eff778da"}]}

def opt(name, default=None):
    return args[args.index(name) + 1] if name in args else default

def emit(doc):
    q = opt("--query")
    if q:
        doc = jmespath.search(q, doc)
    if opt("-o") == "none":
        return
    if opt("-o") == "tsv":
        if doc is None:
            return
        items = doc if isinstance(doc, list) else [doc]
        for item in items:
            print(item)
    else:
        print(json.dumps(doc))

if args[:2] == ["cloud", "show"]:
    emit({"name": cloud, "endpoints": {"microsoftGraphResourceId": graph}})
elif args[:2] == ["account", "show"]:
    emit({"id": "sub"})
elif args[:3] == ["functionapp", "identity", "show"]:
    emit({"principalId": PID, "type": "SystemAssigned"})
elif args[0] == "rest":
    url = opt("--url")
    g = graph.rstrip("/")
    if opt("--resource") != g:
        sys.exit("fake az: wrong --resource " + str(opt("--resource")))
    if opt("--method") == "get":
        if url.startswith(g + "/v1.0/servicePrincipals/" + PID + "?"):
            emit({"id": PID, "displayName": "entraexp-test"})
        elif url == g + "/v1.0/servicePrincipals(appId='00000003-0000-0000-c000-000000000000')?\$select=id":
            emit({"id": GRAPH_SP})
        elif url == g + "/v1.0/servicePrincipals/" + GRAPH_SP + "?\$select=appRoles":
            emit({"appRoles": ROLES})
        elif url == g + "/v1.0/servicePrincipals/" + PID + "/appRoleAssignments":
            emit({"value": state["assignments"]})
        else:
            sys.exit("fake az: unexpected GET " + url)
    elif opt("--method") == "post":
        assert url == g + "/v1.0/servicePrincipals/" + GRAPH_SP + "/appRoleAssignedTo", url
        body = json.loads(opt("--body"))
        assert body["principalId"] == PID and body["resourceId"] == GRAPH_SP, body
        new = {"id": str(uuid.uuid4()), "resourceId": GRAPH_SP, "appRoleId": body["appRoleId"]}
        state["assignments"].append(new)
        json.dump(state, open(state_path, "w"))
        emit(new)
    else:
        sys.exit("fake az: unexpected method")
else:
    sys.exit("fake az: unexpected command " + " ".join(args))
PYEOF
chmod +x "$work/bin/az"

export PATH="$work/bin:$PATH" FAKE_AZ_LOG="$work/az.log"
passed=0
failed=0
check() { # check NAME CONDITION-COMMAND...
  local name="$1"; shift
  if "$@"; then passed=$((passed + 1)); echo "ok: $name"; else failed=$((failed + 1)); echo "FAILED: $name"; fi
}
posts() { grep -c -- '--method post' "$FAKE_AZ_LOG" || true; }
run() { # run STATE-NAME ARGS... -> output in $work/out, status in $status
  export FAKE_AZ_STATE="$work/$1.json"; shift
  : >"$FAKE_AZ_LOG"
  set +e
  "$script" "$@" >"$work/out" 2>&1
  status=$?
  set -e
}

granted_roles() { grep -o '^granted: *[A-Za-z.]*' "$work/out" | awk '{print $2}' | sort | tr '\n' ' '; }

run s1 --principal-id 11111111-2222-3333-4444-555555555555
check "first run exits 0" test "$status" -eq 0
check "first run grants AuditLog.Read.All and Directory.Read.All (provisioning) by default" \
  grep -q 'done: 2 granted, 0 already granted' "$work/out"
check "first run posts twice" test "$(posts)" -eq 2
check "the two roles are the default ones" test "$(granted_roles)" = "AuditLog.Read.All Directory.Read.All "
check "application role picked, not the User-only one" grep -q 'AuditLog.Read.All (b0afded3-3588-46d8-8b3d-9842eff778da)' "$work/out"
check "Gov Graph used" grep -q 'graph:          https://graph.microsoft.us$' "$work/out"
check "no risk permission without --risk" bash -c "! grep -q IdentityRiskEvent '$work/out'"

run s1 --principal-id 11111111-2222-3333-4444-555555555555
check "second run exits 0" test "$status" -eq 0
check "second run is idempotent" grep -q 'done: 0 granted, 2 already granted' "$work/out"
check "second run posts nothing" test "$(posts)" -eq 0

run s1 --principal-id 11111111-2222-3333-4444-555555555555 --risk
check "--risk on top exits 0" test "$status" -eq 0
check "--risk adds IdentityRiskEvent.Read.All only" grep -q 'done: 1 granted, 2 already granted' "$work/out"
check "--risk picks the application role" grep -q 'IdentityRiskEvent.Read.All (6e472fd1-ad78-48da-a0f0-97ab2c6b769e)' "$work/out"
check "--risk posts once" test "$(posts)" -eq 1

run s1 --principal-id 11111111-2222-3333-4444-555555555555 --risk --directory-read
check "--directory-read (older instructions) still accepted" test "$status" -eq 0
check "third run is idempotent" grep -q 'done: 0 granted, 3 already granted' "$work/out"
check "third run posts nothing" test "$(posts)" -eq 0

run s2 --resource-group rg --name app --dry-run --risk
check "dry run exits 0" test "$status" -eq 0
check "dry run names each role" bash -c "grep -q 'would grant:    AuditLog.Read.All' '$work/out' \
  && grep -q 'would grant:    Directory.Read.All' '$work/out' && grep -q 'would grant:    IdentityRiskEvent.Read.All' '$work/out'"
check "dry run posts nothing" test "$(posts)" -eq 0

run s5 --principal-id 11111111-2222-3333-4444-555555555555 --no-directory-read
check "--no-directory-read exits 0" test "$status" -eq 0
check "--no-directory-read grants AuditLog.Read.All only" grep -q 'done: 1 granted, 0 already granted' "$work/out"
check "--no-directory-read warns about provisioning" grep -q 'provisioning stream gets 403' "$work/out"

FAKE_AZ_CLOUD=AzureCloud run s3 -g rg -n app
check "public cloud exits 0" test "$status" -eq 0
check "public cloud uses graph.microsoft.com" grep -q 'graph:          https://graph.microsoft.com$' "$work/out"
check "public cloud grants the default two" grep -q 'done: 2 granted, 0 already granted' "$work/out"

FAKE_AZ_NO_RISK_ROLE=1 run s6 --principal-id 11111111-2222-3333-4444-555555555555 --risk
check "a Graph without the risk application role fails" test "$status" -ne 0
check "... naming the role" grep -q 'no application role named IdentityRiskEvent.Read.All' "$work/out"

run s4 --bogus
check "unknown argument fails" test "$status" -ne 0
run s4 --principal-id not-a-guid
check "bad principal id fails" test "$status" -ne 0
run s4
check "missing identity fails" test "$status" -ne 0
"$script" --help >"$work/out"
check "--help exits 0 and lists the permission per stream" grep -q 'IdentityRiskEvent.Read.All  riskDetections' "$work/out"

echo "grant-graph-permissions: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
