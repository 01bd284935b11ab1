#!/usr/bin/env python3
"""Static checks of infra/ that stand in for `bicep build` (whose CLI cannot be installed here).

  parse     every .bicep file parses with pycep (the parser checkov uses; a file it cannot
            parse would be skipped by checkov with only a log line) and with tree-sitter-bicep
            (a second, independent grammar that knows newer syntax)
  modules   every module call passes only parameters the module declares and every parameter
            the module requires; every <module>.outputs.<name> used exists
  params    infra/main.parameters.example.json names only parameters of main.bicep, with values
            of the declared type and inside @allowed / @minLength / @maxLength / @minValue / @maxValue
  settings  every variable documented in src/config.rs is an app setting in main.bicep (or listed
            there as deliberately not set), plus the custom-handler platform settings
  timeouts  main.bicep's functionTimeout defaults to host.json's and feeds both the host
            (AzureFunctionsJobHost__functionTimeout) and entra-export (FUNCTION_TIMEOUT); its
            default runTimeBudget, the example parameter file's and local.settings.json.example's
            fit in it by config.rs's rule (budget + budget/8 + 30 s); Y1 stays within the host's
            10 minutes; QUERY_LAG and REPLAY_WINDOW are not 0 without ACCEPT_LATE_RECORD_LOSS
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
            given = set((mod.get("config", {}).get("params") or {}).keys())
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
            if t == "allowed" and value not in a:
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


def check_settings() -> None:
    config = ROOT / "src" / "config.rs"
    main_text = (INFRA / "main.bicep").read_text()
    app_text = (INFRA / "modules" / "function-app.bicep").read_text()
    if not config.exists():
        check("src/config.rs exists", False)
        return
    documented = []
    for line in config.read_text().splitlines():
        m = re.match(r"\s*//!\s*\|\s*(`[A-Z0-9_]+`(?:\s*,\s*`[A-Z0-9_]+`)*)\s*\|", line)
        if m:
            documented += re.findall(r"`([A-Z0-9_]+)`", m[1])
    check("src/config.rs documents its variables", len(documented) >= 10, str(documented))
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
    app_code = strip_comments(app_text)
    for key, value in (("FUNCTIONS_WORKER_RUNTIME", "'custom'"), ("FUNCTIONS_EXTENSION_VERSION", "'~4'")):
        check(f"{key} is {value}", re.search(rf"^\s*{key}:\s*{re.escape(value)}", app_code, re.M) is not None)
    check("APPLICATIONINSIGHTS_CONNECTION_STRING is set",
          re.search(r"^\s*APPLICATIONINSIGHTS_CONNECTION_STRING:", app_code, re.M) is not None)


# src/config.rs: a run takes at most RUN_TIME_BUDGET + grace (an eighth of it) + FINAL_WRITES.
FINAL_WRITES_SECONDS = 30
CONSUMPTION_MAX_SECONDS = 600


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
    text = (INFRA / "main.bicep").read_text()
    code = strip_comments(text)
    defaults = {m[1]: m[2].strip() for m in re.finditer(r"^param\s+(\w+)\s+\w+\s*=\s*(.+)$", text, re.M)}
    host = json.loads((ROOT / "host.json").read_text())
    host_timeout = host.get("functionTimeout")
    check("host.json sets functionTimeout", isinstance(host_timeout, str), repr(host_timeout))
    bicep_timeout = defaults.get("functionTimeout", "").strip("'")
    check("main.bicep param functionTimeout defaults to host.json's functionTimeout",
          bicep_timeout == host_timeout, f"{bicep_timeout!r} vs host.json {host_timeout!r}")
    for key in ("FUNCTION_TIMEOUT", "AzureFunctionsJobHost__functionTimeout"):
        check(f"main.bicep sets {key} from functionTimeout",
              re.search(rf"^\s*{key}:\s*functionTimeout\s*$", code, re.M) is not None)
    try:
        example = {k: v.get("value") for k, v in
                   json.loads((INFRA / "main.parameters.example.json").read_text())["parameters"].items()}
    except Exception:  # noqa: BLE001 - check_params reports it
        example = {}
    local = json.loads((ROOT / "local.settings.json.example").read_text()).get("Values", {})
    check("local.settings.json.example: FUNCTION_TIMEOUT is host.json's functionTimeout",
          local.get("FUNCTION_TIMEOUT") == host_timeout, repr(local.get("FUNCTION_TIMEOUT")))
    local_params = {"functionTimeout": local.get("FUNCTION_TIMEOUT", ""), "runTimeBudget": local.get("RUN_TIME_BUDGET", ""),
                    "queryLag": local.get("QUERY_LAG", ""), "replayWindow": local.get("REPLAY_WINDOW", ""),
                    "acceptLateRecordLoss": local.get("ACCEPT_LATE_RECORD_LOSS", "false"), "planSku": "Y1"}
    for source, values in (("main.bicep defaults", {}), ("main.parameters.example.json", example),
                           ("local.settings.json.example", local_params)):
        def value(name: str) -> str:
            return str(values.get(name, defaults.get(name, "").strip("'")))

        timeout = parse_function_timeout(value("functionTimeout"))
        budget = parse_duration(value("runTimeBudget"))
        if not check(f"{source}: functionTimeout and runTimeBudget are readable",
                     timeout is not None and budget is not None,
                     f"functionTimeout={value('functionTimeout')!r}, runTimeBudget={value('runTimeBudget')!r}"):
            continue
        longest = budget + budget / 8 + FINAL_WRITES_SECONDS
        check(f"{source}: runTimeBudget + grace + final writes fits functionTimeout",
              longest <= timeout, f"{longest:g} s > {timeout:g} s")
        if value("planSku") == "Y1":
            check(f"{source}: functionTimeout fits Linux Consumption (Y1, at most 00:10:00)",
                  0 < timeout <= CONSUMPTION_MAX_SECONDS, value("functionTimeout"))
        for name in ("queryLag", "replayWindow"):
            zero = parse_duration(value(name)) == 0
            check(f"{source}: {name} is not 0 (unless acceptLateRecordLoss)",
                  not zero or value("acceptLateRecordLoss").lower() == "true", value(name))


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


def app_settings_env(cloud: str) -> dict[str, str]:
    """The entra-export app settings main.bicep would set with its default parameters, with the
    deployment-time values (tenant, storage endpoint) replaced by plausible ones for `cloud`.
    Standard library only, so scripts/test-package.sh can run it without the tools venv."""
    text = (INFRA / "main.bicep").read_text()
    defaults = {}
    for m in re.finditer(r"^param\s+(\w+)\s+\w+\s*=\s*(.+)$", text, re.M):
        defaults[m[1]] = m[2].strip()
    block = text[text.index("exportSettings: {"):]
    block = block[:block.index("\n    }\n")]
    suffix = {"AzurePublic": "core.windows.net", "AzureUSGovernment": "core.usgovcloudapi.net"}[cloud]
    runtime = {
        "tenantId": "00000000-0000-0000-0000-000000000001",
        "resolvedCloud": cloud,
        "logStorage.outputs.blobEndpoint": f"https://entraexplogexample.blob.{suffix}",
    }

    def value(expr: str) -> str:
        expr = expr.strip()
        if expr in runtime:
            return runtime[expr]
        m = re.fullmatch(r"string\((\w+)\)", expr)
        if m:
            return value(m[1])
        m = re.fullmatch(r"(\w+)\s*\?\s*'([^']*)'\s*:\s*'([^']*)'", expr)
        if m:
            return m[2] if value(m[1]) == "true" else m[3]
        if expr.startswith("'") and expr.endswith("'"):
            return expr[1:-1]
        if expr in defaults:
            return value(defaults[expr])
        if re.fullmatch(r"-?\d+|true|false", expr):
            return expr
        raise ValueError(f"cannot evaluate {expr!r} from main.bicep")

    env = {}
    for m in re.finditer(r"^\s+([A-Z][A-Z0-9_]+):\s*(.+)$", block, re.M):
        v = value(m[2])
        if v != "":
            env[m[1]] = v
    return env


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkov-report", type=Path)
    ap.add_argument("--print-settings-env", metavar="CLOUD", choices=["AzurePublic", "AzureUSGovernment"],
                    help="print the default entra-export app settings of main.bicep as KEY=VALUE lines")
    args = ap.parse_args()
    if args.print_settings_env:
        for k, v in app_settings_env(args.print_settings_env).items():
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
        check_clouds()
        check_skips()
    print(f"check-infra: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
