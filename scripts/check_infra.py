#!/usr/bin/env python3
"""Static checks of infra/ that stand in for `bicep build` (whose CLI is published only on NuGet
and GitHub, neither reachable from this build environment).

  parse     every .bicep file parses with pycep (the parser checkov uses; a file it cannot
            parse would be skipped by checkov with only a log line) and with tree-sitter-bicep
            (a second, independent grammar that knows newer syntax)
  modules   every module call (conditional ones too) passes only parameters the module declares
            and every parameter the module requires; every <module>.outputs.<name> used exists
  params    infra/main.parameters.example.json names only parameters of main.bicep, with values
            of the declared type and inside @allowed / @minLength / @maxLength / @minValue / @maxValue
  settings  every variable documented in src/config.rs (or, once split, src/config/*.rs) is an app
            setting in main.bicep (or listed there as deliberately not set), plus the custom-handler
            platform settings of each plan
            (FUNCTIONS_WORKER_RUNTIME=custom on Consumption and Dedicated, functionAppConfig
            runtime custom on Flex Consumption, where the deprecated settings must be absent)
  plans     for each hostingPlan, main.bicep's app settings are evaluated from its defaults (a small
            evaluator of the Bicep expressions used there): FUNCTION_TIMEOUT and
            AzureFunctionsJobHost__functionTimeout are one value, RUN_TIME_BUDGET fits in it by
            config.rs's rule (budget + budget/8 + 30 s), Consumption stays within the host's 10
            minutes and matches host.json; likewise the example parameter file and
            local.settings.json.example; QUERY_LAG and REPLAY_WINDOW are not 0 without
            ACCEPT_LATE_RECORD_LOSS
  streams   main.bicep's `streams` table matches the JobSpecs of src/ (job name, setting name,
            container variable and default container, default on/off, timer): one data container and
            one written-id prefix per stream, each container variable an app setting holding that
            stream's container, SIGNIN_EVENT_TYPES / AUDIT_STREAMS defaulting to the streams on by
            default, risk streams off unless riskStreams names them, an empty list written so that
            it runs no stream; the grant script takes --risk (the 403 hints name it)
  keyless   no listKeys(), account key or WEBSITE_CONTENT* setting on the keyless plans: none in
            the Flex Consumption module; in the Consumption/Dedicated module only inside the
            `useKeys ? [...] : []` branch, with useKeys = Consumption && !hostStorageIdentityBased;
            the host account's allowSharedKeyAccess follows the same condition
  role      the exporter's custom role on the log account grants exactly the blob actions
            entra-export needs and no delete, move, permanent delete, tag, immutability or
            wildcard action; Storage Blob Data Contributor is not given on the log account
  lifecycle the state container's lifecycle rule deletes the written-id shards
            (<job container>/ids/) and old versions, and never sooner than RECONCILE_WINDOW
  monitoring an action group, the three alert rules (failed runs, runs without progress,
            checkpoint lag) and a workbook exist; every run-report field their queries read
            exists in src/pipeline/report.rs; no query names a stream (they group by the report's
            job; the enabled streams come from main.bicep)
  inbound   the app and its SCM site deny by default and allow operatorIpRanges
  clouds    no hard-coded cloud host names or suffixes outside comments (environment() and
            primaryEndpoints are used instead)
  skips     every `checkov:skip=` carries a reason
  checkov   reads checkov's JSON report (argument --checkov-report): resources were scanned and
            no check failed

Prints one line per check and `check-infra: N passed, M failed`; exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "infra"

passed = 0
failed = 0


def check(name: str, ok: bool, detail: str = "") -> bool:
    global passed, failed
    if ok:
        passed += 1
        print(f"ok: {name}")
    else:
        failed += 1
        print(f"FAILED: {name}{': ' + detail if detail else ''}")
    return ok


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


def strip_comments(text: str) -> str:
    """Removes // and /* */ comments, keeping strings intact (Bicep strings use single quotes)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c == "'":
            j = i + 1
            while j < n and text[j] != "'":
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i)
            i = n if j < 0 else j + 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def parse_all() -> dict[Path, dict]:
    from pycep import BicepParser
    import tree_sitter_bicep
    from tree_sitter import Language, Parser

    pycep = BicepParser()
    ts = Parser(Language(tree_sitter_bicep.language()))
    parsed = {}
    files = bicep_files()
    check("infra/ has .bicep files", bool(files))
    for f in files:
        rel = f.relative_to(ROOT)
        try:
            parsed[f] = pycep.parse(file_path=f)
            check(f"{rel} parses (pycep)", True)
        except Exception as e:  # noqa: BLE001 - report any parser error
            check(f"{rel} parses (pycep)", False, f"{type(e).__name__}: {str(e)[:400]}")
        tree = ts.parse(f.read_bytes())
        errors = []

        def walk(node):
            if node.type == "ERROR" or node.is_missing:
                errors.append(f"line {node.start_point.row + 1} col {node.start_point.column + 1}: "
                              f"{node.text[:60].decode(errors='replace')!r}")
            for child in node.children:
                walk(child)

        walk(tree.root_node)
        check(f"{rel} parses (tree-sitter-bicep)", not errors, "; ".join(errors[:3]))
    return parsed


def check_modules(parsed: dict[Path, dict]) -> None:
    for f, doc in parsed.items():
        text = strip_comments(f.read_text())
        modules = doc.get("modules", {}) or {}
        outputs_of = {}
        for name, mod in modules.items():
            target = (f.parent / mod["detail"]["path"]).resolve()
            rel = f"{f.relative_to(ROOT)}: module {name}"
            if not check(f"{rel} file exists", target in parsed, str(target)):
                continue
            declared = parsed[target].get("parameters", {}) or {}
            config = mod.get("config", {}) or {}
            if "condition" in config:  # module x = if (cond) { ... }
                config = config.get("config", {}) or {}
            given = set((config.get("params") or {}).keys())
            unknown = sorted(given - set(declared))
            required = sorted(p for p, d in declared.items() if d.get("default") is None)
            missing = sorted(set(required) - given)
            check(f"{rel} passes only declared parameters", not unknown, ", ".join(unknown))
            check(f"{rel} passes every required parameter", not missing, ", ".join(missing))
            outputs_of[name] = set((parsed[target].get("outputs") or {}).keys())
        for mod, out in sorted(set(re.findall(r"\b(\w+)\.outputs\.(\w+)", text))):
            if mod in outputs_of:
                check(f"{f.relative_to(ROOT)}: {mod}.outputs.{out} exists", out in outputs_of[mod])


def check_params(parsed: dict[Path, dict]) -> None:
    main = INFRA / "main.bicep"
    declared = parsed.get(main, {}).get("parameters", {}) or {}
    example = INFRA / "main.parameters.example.json"
    try:
        values = json.loads(example.read_text())["parameters"]
    except Exception as e:  # noqa: BLE001
        check("main.parameters.example.json is valid JSON", False, str(e))
        return
    check("main.parameters.example.json is valid JSON", True)
    types = {"string": str, "int": int, "bool": bool, "object": dict, "array": list}
    for name, wrapper in values.items():
        if not check(f"parameter file: {name} is a parameter of main.bicep", name in declared):
            continue
        value = wrapper.get("value")
        spec = declared[name]
        want = types.get(spec.get("type"))
        ok = want is None or (isinstance(value, want) and not (want is int and isinstance(value, bool)))
        problems = [] if ok else [f"type {type(value).__name__}, declared {spec.get('type')}"]
        for d in spec.get("decorators", []):
            t, a = d.get("type"), d.get("argument")
            if t == "allowed" and isinstance(value, list):
                problems += [f"{v!r} not in {a}" for v in value if v not in a]
            elif t == "allowed" and value not in a:
                problems.append(f"{value!r} not in {a}")
            elif t == "min_length" and len(value) < a:
                problems.append(f"shorter than {a}")
            elif t == "max_length" and len(value) > a:
                problems.append(f"longer than {a}")
            elif t == "min_value" and value < a:
                problems.append(f"below {a}")
            elif t == "max_value" and value > a:
                problems.append(f"above {a}")
        check(f"parameter file: {name} fits its declaration", not problems, "; ".join(problems))


def config_sources() -> list[Path]:
    """src/config.rs, or the files of src/config/ once the configuration is split by area."""
    single = ROOT / "src" / "config.rs"
    split = sorted((ROOT / "src" / "config").rglob("*.rs")) if (ROOT / "src" / "config").is_dir() else []
    return ([single] if single.exists() else []) + split


def documented_variables() -> list[str]:
    """The variables of the configuration's module-doc tables (`//! | `NAME`, `NAME` | ...`)."""
    documented = []
    for f in config_sources():
        for line in f.read_text().splitlines():
            m = re.match(r"\s*//!\s*\|\s*(`[A-Z0-9_]+`(?:\s*,\s*`[A-Z0-9_]+`)*)\s*\|", line)
            if m:
                documented += [v for v in re.findall(r"`([A-Z0-9_]+)`", m[1]) if v not in documented]
    return documented


def check_settings() -> None:
    main_text = (INFRA / "main.bicep").read_text()
    if not config_sources():
        check("src/config.rs or src/config/ exists", False)
        return
    documented = documented_variables()
    check("the configuration (src/config.rs or src/config/) documents its variables", len(documented) >= 10,
          str(documented))
    code = strip_comments(main_text)
    not_set = set()
    for line in main_text.splitlines():
        if "not set" in line and line.strip().startswith("//"):
            not_set.update(re.findall(r"\b([A-Z][A-Z0-9_]{3,})\b", line.split("not set")[0]))
    for var in documented:
        as_key = re.search(rf"^\s*{var}\s*:", code, re.M) is not None
        check(f"app setting {var} in main.bicep", as_key or var in not_set,
              "neither a key of exportSettings nor in a '// ... not set' comment")
    for var in ("AUDIT_SCHEDULE", "SIGNIN_SCHEDULE"):
        check(f"app setting {var} in main.bicep", re.search(rf"^\s*{var}\s*:", code, re.M) is not None)
    check("AUTH_MODE is managed_identity", re.search(r"^\s*AUTH_MODE:\s*'managed_identity'", code, re.M) is not None)

    classic = strip_comments((INFRA / "modules" / "function-app.bicep").read_text())
    for key, value in (("FUNCTIONS_WORKER_RUNTIME", "'custom'"), ("FUNCTIONS_EXTENSION_VERSION", "'~4'")):
        check(f"function-app.bicep (Consumption, Dedicated): {key} is {value}",
              re.search(rf"^\s*{key}:\s*{re.escape(value)}", classic, re.M) is not None)
    check("function-app.bicep: Always On on Dedicated (timers need it)",
          re.search(r"^\s*alwaysOn:\s*!isConsumption\s*$", classic, re.M) is not None)
    flex = strip_comments((INFRA / "modules" / "function-app-flex.bicep").read_text())
    check("function-app-flex.bicep: plan FC1 / FlexConsumption",
          re.search(r"name:\s*'FC1'", flex) is not None and re.search(r"tier:\s*'FlexConsumption'", flex) is not None)
    check("function-app-flex.bicep: functionAppConfig runtime custom",
          re.search(r"runtime:\s*\{\s*name:\s*'custom'", flex) is not None)
    check("function-app-flex.bicep: identity-based deployment storage",
          re.search(r"authentication:\s*\{\s*type:\s*'SystemAssignedIdentity'", flex) is not None)
    check("function-app-flex.bicep: maximumInstanceCount set",
          re.search(r"maximumInstanceCount:\s*maximumInstanceCount", flex) is not None)
    deprecated = ["FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION", "WEBSITE_RUN_FROM_PACKAGE",
                  "WEBSITE_CONTENTSHARE", "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING", "SCM_DO_BUILD_DURING_DEPLOYMENT",
                  "ENABLE_ORYX_BUILD", "AzureFunctionsWebHost__hostid", "linuxFxVersion", "alwaysOn",
                  "functionAppScaleLimit", "use32BitWorkerProcess", "cors"]
    found = [d for d in deprecated if re.search(rf"\b{d}\b", flex)]
    check("function-app-flex.bicep: no setting Flex Consumption deprecates or rejects", not found, ", ".join(found))
    for name, text in (("function-app.bicep", classic), ("function-app-flex.bicep", flex)):
        check(f"{name}: APPLICATIONINSIGHTS_CONNECTION_STRING is set",
              re.search(r"^\s*APPLICATIONINSIGHTS_CONNECTION_STRING:", text, re.M) is not None)


# src/config.rs: a run takes at most RUN_TIME_BUDGET + grace (an eighth of it) + FINAL_WRITES.
FINAL_WRITES_SECONDS = 30
CONSUMPTION_MAX_SECONDS = 600
PLANS = ("FlexConsumption", "Dedicated", "Consumption")


def parse_duration(text: str) -> float | None:
    """config.rs parse_duration: a whole number and s, m, h or d."""
    m = re.fullmatch(r"(\d+)([smhd])", text.strip())
    return int(m[1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m[2]] if m else None


def parse_function_timeout(text: str) -> float | None:
    """config.rs parse_function_timeout: a duration, [d.]hh:mm:ss, or -1 (returned as inf)."""
    text = text.strip()
    if text == "-1":
        return float("inf")
    d = parse_duration(text)
    if d is not None:
        return d
    m = re.fullmatch(r"(?:(\d+)\.)?(\d{1,2}):(\d{1,2}):(\d{1,2})", text)
    if not m or int(m[2]) > 23 or int(m[3]) > 59 or int(m[4]) > 59:
        return None
    return int(m[1] or 0) * 86400 + int(m[2]) * 3600 + int(m[3]) * 60 + int(m[4])


def check_timeouts() -> None:
    host = json.loads((ROOT / "host.json").read_text())
    host_timeout = host.get("functionTimeout")
    check("host.json sets functionTimeout", isinstance(host_timeout, str), repr(host_timeout))
    host_seconds = parse_function_timeout(host_timeout or "")
    check("host.json functionTimeout fits every plan (Consumption's 10 minutes: one package for all)",
          host_seconds is not None and 0 < host_seconds <= CONSUMPTION_MAX_SECONDS, repr(host_timeout))
    try:
        example = {k: v.get("value") for k, v in
                   json.loads((INFRA / "main.parameters.example.json").read_text())["parameters"].items()}
    except Exception:  # noqa: BLE001 - check_params reports it
        example = {}
    sources = [(f"main.bicep defaults, {plan}", {"hostingPlan": plan}) for plan in PLANS]
    example_plan = example.get("hostingPlan", "Dedicated")
    sources.append((f"main.parameters.example.json ({example_plan})", example))
    for source, overrides in sources:
        try:
            env = app_settings_env("AzureUSGovernment", overrides)
        except ValueError as e:
            check(f"{source}: app settings evaluate", False, str(e))
            continue
        plan = overrides.get("hostingPlan", "Dedicated")
        timeout_text = env.get("FUNCTION_TIMEOUT", "")
        check(f"{source}: FUNCTION_TIMEOUT and AzureFunctionsJobHost__functionTimeout are one value",
              timeout_text != "" and env.get("AzureFunctionsJobHost__functionTimeout") == timeout_text,
              f"{timeout_text!r} vs {env.get('AzureFunctionsJobHost__functionTimeout')!r}")
        judge_timing(source, plan, env, host_timeout)
    local = json.loads((ROOT / "local.settings.json.example").read_text()).get("Values", {})
    check("local.settings.json.example: FUNCTION_TIMEOUT is host.json's functionTimeout",
          local.get("FUNCTION_TIMEOUT") == host_timeout, repr(local.get("FUNCTION_TIMEOUT")))
    judge_timing("local.settings.json.example", "Consumption", local, host_timeout, match_host=False)


def judge_timing(source: str, plan: str, env: dict, host_timeout: str | None, match_host: bool = True) -> None:
    timeout = parse_function_timeout(env.get("FUNCTION_TIMEOUT", ""))
    budget = parse_duration(env.get("RUN_TIME_BUDGET", ""))
    if check(f"{source}: FUNCTION_TIMEOUT and RUN_TIME_BUDGET are readable", timeout is not None and budget is not None,
             f"FUNCTION_TIMEOUT={env.get('FUNCTION_TIMEOUT')!r}, RUN_TIME_BUDGET={env.get('RUN_TIME_BUDGET')!r}"):
        longest = budget + budget / 8 + FINAL_WRITES_SECONDS
        check(f"{source}: RUN_TIME_BUDGET + grace + final writes fits FUNCTION_TIMEOUT",
              longest <= timeout, f"{longest:g} s > {timeout:g} s")
        if plan == "Consumption":
            check(f"{source}: FUNCTION_TIMEOUT fits Linux Consumption (at most 00:10:00)",
                  0 < timeout <= CONSUMPTION_MAX_SECONDS, env.get("FUNCTION_TIMEOUT"))
            if match_host:
                check(f"{source}: Consumption's FUNCTION_TIMEOUT is host.json's functionTimeout",
                      env.get("FUNCTION_TIMEOUT") == host_timeout, f"{env.get('FUNCTION_TIMEOUT')!r} vs {host_timeout!r}")
    for name in ("QUERY_LAG", "REPLAY_WINDOW"):
        zero = parse_duration(env.get(name, "5m")) == 0
        check(f"{source}: {name} is not 0 (unless ACCEPT_LATE_RECORD_LOSS)",
              not zero or env.get("ACCEPT_LATE_RECORD_LOSS", "false").lower() == "true", env.get(name))


def block_of(text: str, opener: str, quote: str = "'") -> str:
    """The text of the bracketed block that starts at `opener` (which ends with '{' or '['),
    brackets matched outside strings (quoted with `quote`: Bicep's ', Rust's ") and comments."""
    start = text.index(opener) + len(opener)
    depth, i, n = 1, start, len(text)
    while i < n and depth:
        c = text[i]
        if c == quote:
            j = i + 1
            while j < n and text[j] != quote:
                j += 2 if text[j] == "\\" else 1
            i = j + 1
            continue
        if text.startswith("//", i):
            i = text.find("\n", i)
            continue
        if c in "{[":
            depth += 1
        elif c in "}]":
            depth -= 1
        i += 1
    return text[start:i - 1]


def check_keyless() -> None:
    flex = (INFRA / "modules" / "function-app-flex.bicep").read_text()
    flex_code = strip_comments(flex)
    hits = [w for w in ("listKeys", "AccountKey", "WEBSITE_CONTENT", "AzureWebJobsStorage'") if w in flex_code]
    check("keyless: Flex Consumption module has no listKeys, account key or WEBSITE_CONTENT* setting",
          not hits, ", ".join(hits))
    classic = strip_comments((INFRA / "modules" / "function-app.bicep").read_text())
    check("keyless: useKeys = Consumption with key-based host storage only",
          re.search(r"^var useKeys = isConsumption && !hostStorageIdentityBased\s*$", classic, re.M) is not None)
    m = re.search(r"^var keySettings = useKeys \? \[", classic, re.M)
    if check("keyless: key-based settings sit in `var keySettings = useKeys ? [...] : []`", m is not None):
        branch = block_of(classic, m[0])
        rest = classic.replace(branch, "")
        outside = [w for w in ("listKeys", "AccountKey", "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING", "WEBSITE_CONTENTSHARE")
                   if w in rest]
        check("keyless: no listKeys / AccountKey / WEBSITE_CONTENT* outside that branch", not outside, ", ".join(outside))
        check("keyless: the branch's else is empty", re.search(re.escape(branch) + r"\]\s*:\s*\[\]", classic) is not None)
    for f in bicep_files():
        if f.name not in ("function-app.bicep",):
            code = strip_comments(f.read_text())
            check(f"keyless: no listKeys in {f.relative_to(ROOT)}", "listKeys" not in code)
    main = strip_comments((INFRA / "main.bicep").read_text())
    check("keyless: host account shared-key access only for Consumption with key-based host storage",
          re.search(r"^var hostStorageNeedsKey = isConsumption && !hostStorageIdentityBased\s*$", main, re.M) is not None
          and re.search(r"^\s*allowSharedKeyAccess: hostStorageNeedsKey\s*$", main, re.M) is not None
          and re.search(r"^\s*hostStorageIdentityBased: !hostStorageNeedsKey\s*$", main, re.M) is not None)
    host = strip_comments((INFRA / "modules" / "host-storage.bicep").read_text())
    check("keyless: host-storage.bicep takes allowSharedKeyAccess from its parameter",
          re.search(r"^\s*allowSharedKeyAccess: allowSharedKeyAccess\s*$", host, re.M) is not None)
    log = strip_comments((INFRA / "modules" / "log-storage.bicep").read_text())
    check("keyless: log account shared-key access follows logStorageAllowSharedKey (default false)",
          re.search(r"^\s*allowSharedKeyAccess: allowSharedKeyAccess\s*$", log, re.M) is not None
          and re.search(r"^param logStorageAllowSharedKey bool = false\s*$", main, re.M) is not None)
    for plan in PLANS:
        env = app_settings_env("AzureUSGovernment", {"hostingPlan": plan})
        bad = [k for k in env if k.startswith("WEBSITE_CONTENT") or k == "AzureWebJobsStorage"]
        check(f"keyless: {plan} (default parameters): no key-based setting among the entra-export settings",
              not bad, ", ".join(bad))


REQUIRED_DATA_ACTIONS = {
    "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",
    "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write",
    "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action",
}
REQUIRED_ACTIONS = {
    "Microsoft.Storage/storageAccounts/blobServices/containers/read",
    "Microsoft.Storage/storageAccounts/blobServices/containers/write",
}


def check_role() -> None:
    text = strip_comments((INFRA / "modules" / "roles.bicep").read_text())

    def strings(var: str) -> list[str]:
        m = re.search(rf"^var {var} = \[", text, re.M)
        return re.findall(r"'([^']*)'", block_of(text, m[0])) if m else []

    actions, data_actions = strings("exporterActions"), strings("exporterDataActions")
    check("role: the custom role's actions and dataActions are listed", bool(actions) and bool(data_actions))
    role = re.search(r"resource exporterRole 'Microsoft\.Authorization/roleDefinitions@[\w-]+' = if \(createRole\) \{", text)
    if check("role: custom role definition resource exists", role is not None):
        body = block_of(text, role[0])
        check("role: its permissions are exporterActions / exporterDataActions, nothing else",
              re.search(r"actions: exporterActions", body) is not None
              and re.search(r"dataActions: exporterDataActions", body) is not None
              and re.search(r"notActions: \[\]", body) is not None and "assignableScopes" in body)
    everything = actions + data_actions
    forbidden = [a for a in everything if re.search(r"delete|Delete|\*|move/action|tags/|immutableStorage|"
                                                    r"runAsSuperUser|manageOwnership|modifyPermissions|"
                                                    r"generateUserDelegationKey|setAcl|immutabilityPolicies", a)]
    check("role: no delete (blobs, versions, containers, permanent), move, tag, immutability or wildcard action",
          not forbidden, ", ".join(forbidden))
    check("role: can read, write and create blobs", REQUIRED_DATA_ACTIONS <= set(data_actions),
          ", ".join(sorted(REQUIRED_DATA_ACTIONS - set(data_actions))))
    check("role: can create, read, set metadata on and lease containers", REQUIRED_ACTIONS <= set(actions),
          ", ".join(sorted(REQUIRED_ACTIONS - set(actions))))
    assign = re.search(r"resource logWriter 'Microsoft\.Authorization/roleAssignments@[\w-]+' = \{", text)
    if check("role: the identity is assigned a role on the log account", assign is not None):
        body = block_of(text, assign[0])
        check("role: that assignment uses the custom role (or the one given), not a built-in",
              "scope: logStorage" in body and "roleDefinitionId: exporterRoleId" in body)
    on_log = []
    for m in re.finditer(r"resource (\w+) 'Microsoft\.Authorization/roleAssignments@[\w-]+' = [^{\n]*\{", text):
        body = block_of(text, m[0])
        if "scope: logStorage" in body and "storageBlobDataContributor" in body:
            on_log.append(m[1])
    check("role: Storage Blob Data Contributor is not assigned on the log account", not on_log, ", ".join(on_log))


def check_lifecycle() -> None:
    log = strip_comments((INFRA / "modules" / "log-storage.bicep").read_text())
    m = re.search(r"resource lifecycle 'Microsoft\.Storage/storageAccounts/managementPolicies@[\w-]+' = \{", log)
    if not check("lifecycle: management policy on the log account", m is not None):
        return
    body = block_of(log, m[0])
    check("lifecycle: deletes written-id shards under <state container>/<job container>/ids/ by modification age",
          "prefixMatch: [for p in stateIdPrefixes: '${stateContainer}/${p}']" in body
          and "daysAfterModificationGreaterThan: stateRetentionDays" in body)
    check("lifecycle: deletes previous versions in the state container",
          re.search(r"version:\s*\{\s*delete:\s*\{\s*daysAfterCreationGreaterThan: stateRetentionDays", body) is not None
          and "'${stateContainer}/'" in body)
    data_prefix = re.findall(r"auditContainer|signinContainer|dataContainers", body)
    check("lifecycle: no rule names a data container", not data_prefix)
    main = strip_comments((INFRA / "main.bicep").read_text())
    check("lifecycle: the shards' prefixes are '<stream container>/ids/' of every stream (check_streams: all of them)",
          re.search(r"^var stateIdPrefixes = \[for s in streams: '\$\{s\.container\}/ids/'\]", main, re.M) is not None
          and "stateIdPrefixes: stateIdPrefixes" in main)
    defaults = bicep_defaults()
    window_hours = int(defaults.get("reconcileWindowHours", "0"))
    days = int(defaults.get("stateRetentionDays", "0"))
    check("lifecycle: default stateRetentionDays (days) is longer than the default RECONCILE_WINDOW",
          days * 24 > window_hours, f"{days} d vs {window_hours} h")
    check("lifecycle: the retention is raised past any RECONCILE_WINDOW (max(stateRetentionDays, window days + 1))",
          re.search(r"^var effectiveStateRetentionDays = max\(stateRetentionDays, \(reconcileWindowHours \+ 23\) / 24 \+ 1\)",
                    main, re.M) is not None and "stateRetentionDays: effectiveStateRetentionDays" in main)
    m = re.search(r"@maxValue\((\d+)\)\s*param reconcileWindowHours", main)
    check("lifecycle: reconcileWindowHours is capped at config.rs's 30 days", m is not None and int(m[1]) <= 720)


# --- streams: main.bicep against the JobSpecs of src/ -------------------------------------------

def job_specs() -> dict[str, dict]:
    """Every `static|const NAME: JobSpec = JobSpec { field: value, ..., ..BASE };` under src/, with
    its base's fields filled in: {NAME: {field: value}} (strings unquoted, `Timer::X` as "X")."""
    raw = {}
    for f in sorted((ROOT / "src").rglob("*.rs")):
        text = f.read_text()
        for m in re.finditer(r"^(?:pub(?:\(\w+\))? )?(?:static|const) (\w+): JobSpec = JobSpec \{", text, re.M):
            body = block_of(text, m[0], quote='"')
            fields = {}
            for fm in re.finditer(r"^\s*(\w+): (.+?),?\s*$", body, re.M):
                value = fm[2].strip().rstrip(",")
                sm = re.fullmatch(r'"(.*)"', value)
                if sm:
                    value = sm[1]
                elif value.startswith("Timer::"):
                    value = value.split("::", 1)[1]
                elif value in ("true", "false"):
                    value = value == "true"
                fields[fm[1]] = value
            base = re.search(r"\.\.(\w+)\s*$", body.strip())
            raw[m[1]] = (fields, base[1] if base else None)

    def resolve(name: str, seen=()) -> dict:
        fields, base = raw[name]
        if base and base in raw and base not in seen:
            return {**resolve(base, seen + (name,)), **fields}
        return dict(fields)

    specs = {name: resolve(name) for name in raw}
    return {n: s for n, s in specs.items() if s.get("name")}  # the shared base has no name


def param_allowed(name: str) -> list:
    """The @allowed([...]) list right above `param <name>` in main.bicep."""
    text = (INFRA / "main.bicep").read_text()
    m = re.search(rf"@allowed\(\[([^\]]*)\]\)\s*(?:@\w+\([^)]*\)\s*)*param {name}\b", text)
    return re.findall(r"'([^']*)'", m[1]) if m else []


def check_streams() -> None:
    specs = list(job_specs().values())
    if not check("streams: the JobSpecs of src/ are found (src/job.rs or wherever they moved)", len(specs) >= 2,
                 str([s.get("name") for s in specs])):
        return
    print(f"info: streams in src/: {', '.join(s['name'] for s in specs)}")
    text = (INFRA / "main.bicep").read_text()
    env = app_settings_env("AzureUSGovernment")
    ev = evaluator("AzureUSGovernment")
    table = ev.eval(bicep_vars(text)["streams"])
    by_job = {row["job"]: row for row in table}
    check("streams: main.bicep's streams table has one row per JobSpec, no other",
          sorted(by_job) == sorted(s["name"] for s in specs) and len(table) == len(specs),
          f"{sorted(by_job)} vs {sorted(s['name'] for s in specs)}")
    signin = [s for s in specs if s.get("timer") == "SignIn"]
    audit = [s for s in specs if s.get("timer", "Audit") == "Audit"]
    for s in specs:
        row = by_job.get(s["name"])
        if row is None:
            continue
        var, default = s.get("container_variable"), s.get("default_container")
        check(f"streams: {s['name']}: setting name {s.get('setting_name')!r}", row["setting"] == s.get("setting_name"),
              repr(row["setting"]))
        check(f"streams: {s['name']}: app setting {var} = its container {default!r} (the default of job.rs)",
              env.get(var) == default == row["container"], f"{env.get(var)!r}, table {row['container']!r}")
        check(f"streams: {s['name']}: enabled by default exactly when job.rs says default_on={s.get('default_on')}",
              row["enabled"] == s.get("default_on", True), repr(row["enabled"]))
    containers = [row["container"] for row in table]
    check("streams: every stream has its own data container, distinct from the state container",
          len(set(containers)) == len(containers) and env.get("STATE_CONTAINER") not in containers, str(containers))
    data = ev.eval(bicep_vars(text)["dataContainers"])
    check("streams: log-storage creates every stream's container (enabled or not)",
          sorted(c["name"] for c in data) == sorted(containers), str(data))
    prefixes = ev.eval(bicep_vars(text)["stateIdPrefixes"])
    check("streams: the lifecycle rule ages out every stream's written-id shards (at most 10 prefixes a rule)",
          sorted(prefixes) == sorted(f"{c}/ids/" for c in containers) and len(prefixes) <= 10, str(prefixes))
    check("streams: SIGNIN_EVENT_TYPES allows exactly the SignInTimer streams",
          sorted(param_allowed("signinEventTypes")) == sorted(s["setting_name"] for s in signin),
          str(param_allowed("signinEventTypes")))
    check("streams: AUDIT_STREAMS (auditStreams + riskStreams) allows exactly the AuditTimer streams",
          sorted(param_allowed("auditStreams") + param_allowed("riskStreams")) == sorted(s["setting_name"] for s in audit),
          f"{param_allowed('auditStreams')} + {param_allowed('riskStreams')}")
    check("streams: riskStreams offers only streams off by default",
          all(not s.get("default_on", True) for s in audit if s["setting_name"] in param_allowed("riskStreams"))
          and all(s.get("default_on", True) for s in audit if s["setting_name"] in param_allowed("auditStreams")))
    for timer, var, group in (("SignIn", "SIGNIN_EVENT_TYPES", signin), ("Audit", "AUDIT_STREAMS", audit)):
        want = [s["setting_name"] for s in group if s.get("default_on", True)]
        check(f"streams: default {var} = the streams on by default ({','.join(want)})",
              env.get(var, "").split(",") == want, repr(env.get(var)))
    alerts = ev.eval(bicep_vars(text)["enabledJobs"])
    check("streams: the alert rules expect a report from each default stream",
          alerts == [s["name"] for s in specs if s.get("default_on", True)], str(alerts))
    # Variants of the parameters.
    none = app_settings_env("AzureUSGovernment", {"signinEventTypes": [], "auditStreams": []})
    check("streams: an empty list is written as ',' (an empty app setting would mean: the default streams)",
          none.get("SIGNIN_EVENT_TYPES") == "," and none.get("AUDIT_STREAMS") == ",",
          f"{none.get('SIGNIN_EVENT_TYPES')!r}, {none.get('AUDIT_STREAMS')!r}")
    risky = {"riskStreams": param_allowed("riskStreams")}
    with_risk = app_settings_env("AzureUSGovernment", risky)
    risk_names = [s["name"] for s in audit if not s.get("default_on", True)]
    check("streams: riskStreams adds the risk streams to AUDIT_STREAMS and to the alerts' streams",
          with_risk.get("AUDIT_STREAMS", "").split(",") == param_allowed("auditStreams") + param_allowed("riskStreams")
          and all(n in evaluator("AzureUSGovernment", risky).eval(bicep_vars(text)["enabledJobs"]) for n in risk_names),
          repr(with_risk.get("AUDIT_STREAMS")))
    grant = (INFRA / "grant-graph-permissions.sh").read_text()
    hints = " ".join(s.get("forbidden_hint", "") for s in specs)
    check("streams: the grant script takes --risk, as the 403 hints say",
          ("--risk" not in hints) or re.search(r"^\s*--risk\)", grant, re.M) is not None)
    check("streams: the grant script grants Directory.Read.All (provisioning) and IdentityRiskEvent.Read.All (--risk)",
          "Directory.Read.All" in grant and "IdentityRiskEvent.Read.All" in grant)


def report_fields() -> set[str]:
    text = (ROOT / "src" / "pipeline" / "report.rs").read_text()
    body = text[text.index("pub struct RunReport"):]
    body = body[:body.index("\n}\n")]
    return set(re.findall(r"^\s*pub (\w+):", body, re.M))


def check_monitoring() -> None:
    text = (INFRA / "modules" / "alerts.bicep").read_text()
    code = strip_comments(text)
    main = strip_comments((INFRA / "main.bicep").read_text())
    check("monitoring: main.bicep deploys modules/alerts.bicep", "module alerts 'modules/alerts.bicep'" in main)
    check("monitoring: action group", re.search(r"'Microsoft\.Insights/actionGroups@", code) is not None
          and "emailReceivers" in code and "webhookReceivers" in code)
    check("monitoring: scheduled-query alert rules", re.search(r"'Microsoft\.Insights/scheduledQueryRules@", code) is not None)
    for name, needle in (("failed runs", "failedRunsQuery"), ("runs without progress", "runs_without_progress"),
                         ("checkpoint lag", "checkpoint_after")):
        check(f"monitoring: an alert rule for {name}", needle in code)
    check("monitoring: rules notify the action group", "actionGroup.id" in code)
    check("monitoring: workbook", re.search(r"'Microsoft\.Insights/workbooks@", code) is not None
          and all(k in code for k in ("records-per-stream", "run-outcomes", "checkpoint-lag")))
    fields = report_fields()
    used = set(re.findall(r"\breport\.(\w+)", code))
    unknown = sorted(used - fields)
    check("monitoring: every report.<field> the queries read exists in src/pipeline/report.rs",
          bool(used) and not unknown, ", ".join(unknown))
    names = sorted({s["name"] for s in job_specs().values()}) or ["audit", "signin"]
    quoted = [n for n in names if re.search(rf'"{re.escape(n)}"', code)]
    check("monitoring: no query or rule names a stream (they group by the report's job)", not quoted, ", ".join(quoted))
    check("monitoring: the lag rule and the workbook take the enabled streams from main.bicep (jobs: enabledJobs)",
          "jobs: enabledJobs" in main and re.search(r"^param jobs array", code, re.M) is not None
          and "datatable(job: string) [__JOBS__]" in code and code.count("'__JOBS__', jobsTable") >= 2)
    check("monitoring: a failed invocation counts only without a failed stream report (no double alert)",
          "invocation !in (reported)" in code)
    mon = strip_comments((INFRA / "modules" / "monitoring.bicep").read_text())
    check("monitoring: App Insights local auth off with appInsightsEntraAuth (default on for Flex and Dedicated)",
          "DisableLocalAuth: entraAuthOnly" in mon
          and re.search(r"^param appInsightsEntraAuth bool = hostingPlan != 'Consumption'", main, re.M) is not None)


def check_inbound() -> None:
    for name in ("function-app.bicep", "function-app-flex.bicep"):
        code = strip_comments((INFRA / "modules" / name).read_text())
        check(f"inbound: {name}: the app denies by default and allows operatorIpRanges",
              "ipSecurityRestrictions: allowRules" in code and "ipSecurityRestrictionsDefaultAction: 'Deny'" in code
              and "for (cidr, i) in operatorIpRanges" in code)
        check(f"inbound: {name}: the SCM site has its own rules, denying by default",
              "scmIpSecurityRestrictionsUseMain: false" in code
              and "scmIpSecurityRestrictions: scmAllowAllNetworks ? [] : allowRules" in code
              and "scmIpSecurityRestrictionsDefaultAction: scmAllowAllNetworks ? 'Allow' : 'Deny'" in code)


def check_clouds() -> None:
    pattern = re.compile(r"core\.windows\.net|usgovcloudapi|chinacloudapi|azurewebsites\.|microsoftonline|"
                         r"graph\.microsoft\.|management\.azure\.com|\.azure\.us\b", re.I)
    for f in bicep_files():
        hits = [m.group(0) for m in pattern.finditer(strip_comments(f.read_text()))]
        check(f"{f.relative_to(ROOT)}: no hard-coded cloud host names", not hits, ", ".join(sorted(set(hits))))


def check_skips() -> None:
    for f in bicep_files():
        bad = [line.strip() for line in f.read_text().splitlines()
               if "checkov:skip=" in line and not re.search(r"checkov:skip=[A-Z0-9_]+:\s*\S.{8,}", line)]
        check(f"{f.relative_to(ROOT)}: every checkov skip has a reason", not bad, "; ".join(bad[:3]))


def check_checkov(report: Path) -> None:
    try:
        doc = json.loads(report.read_text())
    except Exception as e:  # noqa: BLE001
        check("checkov produced a JSON report", False, str(e))
        return
    reports = doc if isinstance(doc, list) else [doc]
    summary = {"passed": 0, "failed": 0, "skipped": 0, "parsing_errors": 0, "resource_count": 0}
    failures = []
    for r in reports:
        s = r.get("summary", {})
        for k in summary:
            summary[k] += int(s.get(k, 0) or 0)
        for c in r.get("results", {}).get("failed_checks", []):
            failures.append(f"{c['check_id']} {c['resource']} ({c['file_path']})")
    print(f"info: checkov: {summary}")
    check("checkov scanned the Bicep resources", summary["resource_count"] > 0 and summary["passed"] > 0)
    check("checkov: no parsing errors", summary["parsing_errors"] == 0)
    check("checkov: no failed checks", summary["failed"] == 0 and not failures, "; ".join(failures))


def bicep_defaults() -> dict[str, str]:
    """main.bicep's `param name type = <default>` lines, the default as Bicep text (multi-line
    array and object literals included)."""
    text = (INFRA / "main.bicep").read_text()
    out = {}
    for m in re.finditer(r"^param\s+(\w+)\s+\w+\s*=\s*(.+)$", text, re.M):
        rest = m[2].strip()
        if rest in ("{", "["):
            rest = rest + block_of(text, m[0]) + ("}" if rest == "{" else "]")
        out[m[1]] = rest
    return out


def bicep_vars(text: str) -> dict[str, str]:
    """main.bicep's `var name = <expression>`, multi-line object and array literals and
    `[for ...]` expressions included: the expression runs to the end of the line on which its
    brackets are balanced."""
    out = {}
    for m in re.finditer(r"^var\s+(\w+)\s*=\s*", text, re.M):
        out[m[1]] = balanced_expression(text, m.end())
    return out


def balanced_expression(text: str, start: int) -> str:
    """The text from `start` to the first line end outside brackets, strings and comments."""
    depth, i, n = 0, start, len(text)
    while i < n:
        c = text[i]
        if c == "'":
            j = i + 1
            while j < n and text[j] != "'":
                j += 2 if text[j] == "\\" else 1
            i = j + 1
            continue
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        if c in "{[(":
            depth += 1
        elif c in "}])":
            depth -= 1
        elif c == "\n" and depth <= 0:
            break
        i += 1
    return text[start:i].rstrip()


class Evaluator:
    """Evaluates the subset of Bicep expressions main.bicep uses for its app settings: literals
    ('...' with ${} interpolation, numbers, true/false, null, multi-line objects and arrays),
    parameters and variables, a.b and a[b] access, !, ==, !=, &&, ||, ?: (only the branch that
    applies is evaluated, as in ARM), + - * / on ints, and the functions empty(), string(), max(),
    min(). Deployment-time values (module outputs, tenant, environment()) come from `runtime`.
    Raises ValueError on anything else."""

    LEVELS = [("||",), ("&&",), ("==", "!="), ("<", ">", "<=", ">="), ("+", "-"), ("*", "/")]
    OPS = {"||": lambda a, b: a or b, "&&": lambda a, b: a and b, "==": lambda a, b: a == b,
           "!=": lambda a, b: a != b, "<": lambda a, b: a < b, ">": lambda a, b: a > b,
           "<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b, "+": lambda a, b: a + b,
           "-": lambda a, b: a - b, "*": lambda a, b: a * b, "/": lambda a, b: a // b}

    def __init__(self, params: dict, variables: dict[str, str], runtime: dict, cache: dict | None = None,
                 local: dict | None = None):
        self.params, self.vars, self.runtime = params, variables, runtime
        self.cache = {} if cache is None else cache
        self.local = dict(local or {})  # the loop variables of enclosing [for x in ...: ...]
        self.toks, self.pos, self.skipping = [], 0, False

    def eval(self, text: str):
        sub = Evaluator(self.params, self.vars, self.runtime, self.cache, self.local)
        sub.toks = self.tokenize(text)
        value = sub.ternary()
        if sub.pos != len(sub.toks):
            raise ValueError(f"cannot evaluate {text!r}: unexpected {sub.toks[sub.pos]!r}")
        return value

    def name(self, ident: str):
        if ident in self.local:
            return self.local[ident]
        if ident in self.params:
            return self.params[ident]
        if ident in self.vars:
            if ident not in self.cache:
                self.cache[ident] = self.eval(self.vars[ident])
            return self.cache[ident]
        raise ValueError(f"cannot evaluate {ident!r} from main.bicep")

    @staticmethod
    def tokenize(text: str) -> list:
        toks, i, n = [], 0, len(text)
        while i < n:
            c = text[i]
            if c.isspace() or c == ",":
                i += 1
            elif text.startswith("//", i):
                j = text.find("\n", i)
                i = n if j < 0 else j
            elif c == "'":
                j, parts, buf = i + 1, [], ""
                while j < n and text[j] != "'":
                    if text[j] == "\\":
                        buf += {"n": "\n", "t": "\t"}.get(text[j + 1], text[j + 1])
                        j += 2
                    elif text.startswith("${", j):
                        k, depth = j + 2, 1
                        while depth:
                            depth += {"{": 1, "}": -1}.get(text[k], 0)
                            k += 1
                        parts += [buf, ("expr", text[j + 2:k - 1])]
                        buf, j = "", k
                    else:
                        buf += text[j]
                        j += 1
                toks.append(("str", parts + [buf]))
                i = j + 1
            elif c.isdigit():
                j = i
                while j < n and text[j].isdigit():
                    j += 1
                toks.append(("num", int(text[i:j])))
                i = j
            elif c.isalpha() or c == "_":
                j = i
                while j < n and (text[j].isalnum() or text[j] == "_"):
                    j += 1
                toks.append(("id", text[i:j]))
                i = j
            elif text[i:i + 2] in ("==", "!=", "&&", "||", "<=", ">="):
                toks.append(("op", text[i:i + 2]))
                i += 2
            elif c in "?:!()[]{}.+-*/<>":
                toks.append(("op", c))
                i += 1
            else:
                raise ValueError(f"cannot tokenize {text[i:i + 20]!r}")
        return toks

    def peek(self, value):
        return self.pos < len(self.toks) and self.toks[self.pos] == ("op", value)

    def take(self, value):
        if not self.peek(value):
            raise ValueError(f"expected {value!r} at {self.toks[self.pos:self.pos + 3]!r}")
        self.pos += 1

    def skipped(self, parse):
        was, self.skipping = self.skipping, True
        try:
            parse()
        finally:
            self.skipping = was

    def ternary(self):
        cond = self.binary(0)
        if not self.peek("?"):
            return cond
        self.pos += 1
        if self.skipping:
            self.ternary()
            self.take(":")
            self.ternary()
            return None
        if cond:
            value = self.ternary()
            self.take(":")
            self.skipped(self.ternary)
            return value
        self.skipped(self.ternary)
        self.take(":")
        return self.ternary()

    def binary(self, level):
        if level == len(self.LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while self.pos < len(self.toks) and self.toks[self.pos][0] == "op" and self.toks[self.pos][1] in self.LEVELS[level]:
            op = self.toks[self.pos][1]
            self.pos += 1
            right = self.binary(level + 1)
            left = None if self.skipping else self.OPS[op](left, right)
        return left

    def unary(self):
        if self.peek("!"):
            self.pos += 1
            v = self.unary()
            return None if self.skipping else not v
        if self.peek("-"):
            self.pos += 1
            v = self.unary()
            return None if self.skipping else -v
        return self.postfix(self.primary())

    def postfix(self, value):
        while True:
            if self.peek("."):
                self.pos += 1
                key = self.toks[self.pos][1]
                self.pos += 1
                if not self.skipping:
                    if not isinstance(value, dict) or key not in value:
                        raise ValueError(f"no member {key!r}")
                    value = value[key]
            elif self.peek("["):
                self.pos += 1
                key = self.ternary()
                self.take("]")
                value = None if self.skipping else value[key]
            else:
                return value

    def primary(self):
        if self.pos >= len(self.toks):
            raise ValueError("unexpected end of expression")
        kind, val = self.toks[self.pos]
        self.pos += 1
        if kind == "num":
            return val
        if kind == "str":
            if self.skipping:
                return None
            return "".join(self.render(self.eval(p[1])) if isinstance(p, tuple) else p for p in val)
        if kind == "op" and val == "(":
            v = self.ternary()
            self.take(")")
            return v
        if kind == "op" and val == "{":
            obj = {}
            while not self.peek("}"):
                key = self.toks[self.pos][1]
                if isinstance(key, list):
                    key = "".join(p for p in key if isinstance(p, str))
                self.pos += 1
                self.take(":")
                obj[key] = self.ternary()
            self.take("}")
            return obj
        if kind == "op" and val == "[" and self.pos < len(self.toks) and self.toks[self.pos] == ("id", "for"):
            return self.comprehension()
        if kind == "op" and val == "[":
            arr = []
            while not self.peek("]"):
                arr.append(self.ternary())
            self.take("]")
            return arr
        if kind == "id":
            if val in ("true", "false"):
                return val == "true"
            if val == "null":
                return None
            if self.peek("("):
                self.pos += 1
                args = []
                while not self.peek(")"):
                    args.append(self.ternary())
                self.take(")")
                if self.skipping:
                    return None
                funcs = {"empty": lambda x: x in ("", None, [], {}), "string": self.render, "max": max, "min": min,
                         "contains": lambda c, x: x in c, "join": lambda a, sep: sep.join(self.render(v) for v in a),
                         "concat": lambda *xs: ("".join(xs) if all(isinstance(x, str) for x in xs)
                                                else [v for x in xs for v in x]),
                         "flatten": lambda a: [v for x in a for v in x], "length": len}
                if val not in funcs:
                    raise ValueError(f"function {val}() is not supported by the evaluator")
                return funcs[val](*args)
            # Dotted deployment-time names such as logStorage.outputs.blobEndpoint.
            dotted, k = val, self.pos
            while k + 1 < len(self.toks) and self.toks[k] == ("op", ".") and self.toks[k + 1][0] == "id":
                dotted += "." + self.toks[k + 1][1]
                k += 2
                if dotted in self.runtime:
                    self.pos = k
                    return self.runtime[dotted]
            if val in self.runtime:
                return self.runtime[val]
            return None if self.skipping else self.name(val)
        raise ValueError(f"unexpected {val!r}")

    def comprehension(self):
        """`[for x in <items>: <body>]` (the `[` taken): the body evaluated once per item."""
        self.pos += 1  # for
        var = self.toks[self.pos][1]
        self.pos += 1
        if self.toks[self.pos] != ("id", "in"):
            raise ValueError(f"expected 'in' after 'for {var}'")
        self.pos += 1
        items = self.binary(0)
        self.take(":")
        start = self.pos
        if self.skipping or not items:
            self.skipped(self.ternary)
            self.take("]")
            return None if self.skipping else []
        out = []
        outer = self.local
        for item in items:
            self.pos = start
            self.local = {**outer, var: item}
            try:
                out.append(self.ternary())
            finally:
                self.local = outer
        self.take("]")
        return out

    @staticmethod
    def render(v) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        return "" if v is None else str(v)


def evaluator(cloud: str, overrides: dict | None = None) -> Evaluator:
    """An evaluator of main.bicep with its default parameters (or `overrides`, e.g.
    {"hostingPlan": "Consumption"} or a parameter file's values) and the deployment-time values
    (tenant, storage endpoint) replaced by plausible ones for `cloud`."""
    text = (INFRA / "main.bicep").read_text()
    variables = bicep_vars(text)
    suffix = {"AzurePublic": "core.windows.net", "AzureUSGovernment": "core.usgovcloudapi.net"}[cloud]
    arm = {"AzurePublic": "AzureCloud", "AzureUSGovernment": "AzureUSGovernment"}[cloud]
    runtime = {
        "tenantId": "00000000-0000-0000-0000-000000000001",
        "logStorage.outputs.blobEndpoint": f"https://entraexplogexample.blob.{suffix}",
        "armCloud": arm,
    }
    params: dict = {}
    ev = Evaluator(params, variables, runtime)
    defaults = bicep_defaults()
    for name in defaults:
        if name in runtime:
            continue
        if overrides and name in overrides:
            params[name] = overrides[name]
    # Defaults may refer to other parameters: evaluate lazily, in declaration order.
    for name, expr in defaults.items():
        if name in runtime or name in params:
            continue
        try:
            params[name] = ev.eval(expr)
        except (ValueError, IndexError, KeyError, TypeError):
            pass  # resourceGroup(), uniqueString() and the like: not needed by the settings
    return ev


def app_settings_env(cloud: str, overrides: dict | None = None) -> dict[str, str]:
    """The entra-export app settings main.bicep would set (see evaluator()).
    Standard library only, so scripts/test-package.sh can run it without the tools venv."""
    text = (INFRA / "main.bicep").read_text()
    ev = evaluator(cloud, overrides)
    env = {}
    block = block_of(text, "var exportSettings = {")
    for m in re.finditer(r"^\s+([A-Za-z][A-Za-z0-9_]+):\s*(.+)$", block, re.M):
        v = Evaluator.render(ev.eval(m[2]))
        if v != "":
            env[m[1]] = v
    return env


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkov-report", type=Path)
    ap.add_argument("--print-settings-env", metavar="CLOUD", choices=["AzurePublic", "AzureUSGovernment"],
                    help="print the default entra-export app settings of main.bicep as KEY=VALUE lines")
    ap.add_argument("--plan", choices=PLANS, default=None,
                    help="with --print-settings-env: the hostingPlan (default: main.bicep's default)")
    args = ap.parse_args()
    if args.print_settings_env:
        overrides = {"hostingPlan": args.plan} if args.plan else None
        for k, v in app_settings_env(args.print_settings_env, overrides).items():
            print(f"{k}={v}")
        return 0
    if args.checkov_report:
        check_checkov(args.checkov_report)
    else:
        parsed = parse_all()
        check_modules(parsed)
        check_params(parsed)
        check_settings()
        check_timeouts()
        check_streams()
        check_keyless()
        check_role()
        check_lifecycle()
        check_monitoring()
        check_inbound()
        check_clouds()
        check_skips()
    print(f"check-infra: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
