#!/usr/bin/env python3
"""Local check of docs/snowflake.md, with DuckDB standing in for Snowflake, for every stream.

Snowflake reads each staged JSON document into a VARIANT ($1); DuckDB's read_json_objects() does
the same into a JSON value. The doc's loading shapes map one to one:

  Snowflake                                          DuckDB (below)
  $1 (one row per blob, graph-page)                  read_json_objects(..., format='auto')
  lateral flatten(input => $1:value) f, f.value      unnest(from_json(json->'$.value', '["json"]'))
  $1 (one row per line, ndjson)                      read_json_objects(..., format='newline_delimited')
  metadata$filename                                  filename=true
  compression = auto (.gz)                           compression='auto' (.gz)
  pattern = '.*y=[0-9]{4}/m=.*[.]json([.]gz)?'       only <container>/y=*/... is read

and the doc's views are **run**, translated mechanically (translate()):

  record:a:b[0]:c::string                            json_extract_string(record, '$.a.b[0].c')
  record:a::timestamp_tz / ::number / ::boolean      cast(json_extract_string(...) as timestamptz / double / boolean)
  record:a (a VARIANT)                               json_extract(record, '$.a')
  try_parse_json(x)                                  case when json_valid(x) then cast(x as json) end
  order by ..., blob_last_modified desc, blob desc   order by ..., blob desc (DuckDB sees no blob times)
  qualify row_number() over (...) = 1                the same

The doc itself is checked too: for every stream (STREAMS, which follows src/job.rs) there is a stage
on its container, a `copy` into its `_pages` and its `_raw` table from that stage whose pattern
takes the data blobs (`y=…/m=…`) and leaves `quarantine/` out, a records view over each table, and a
deduplicated view over the records view, partitioned by the record id.

Without --blobs it builds a small blob tree per stream, in both layouts (graph-page and ndjson),
plain and gzip, laid out like entra-export's blob names, with duplicates (a re-run over an
overlapping window), one republished record and a quarantined record, from the repository's Graph
fixtures (tests/fixtures/graph: documentation examples) and, for the streams without one, the
synthetic samples in scripts/snowflake-samples.json. It asserts exact counts, runs every view of the
doc over it, and asserts that each view has one row per id, keeps the republished version, and that
every column it selects is filled in at least one sample record (a misspelt field is NULL
everywhere: the mistake the Python sample's queries made).

With --blobs DIR it checks real blobs (for example the demo's output): DIR holds container folders
named after the default containers (logs-audit/, logs-signin/, logs-provisioning/, ...) or is one
container folder; counts are compared with an independent Python parse, every record must lie
inside the window its blob name gives, and the doc's views must run over them with one row per id
(columns that are NULL throughout are reported, not failed: a small sample may hold no failure).
"""

from __future__ import annotations

import argparse
import copy
import gzip
import hashlib
import json
import re
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "snowflake.md"
SAMPLES = ROOT / "scripts" / "snowflake-samples.json"

NAME_RE = re.compile(
    r"y=(\d{4})/m=(\d\d)/d=(\d\d)/h=(\d\d)/"
    r"(\d{8}T\d{6}\.\d{7}Z)_(\d{8}T\d{6}\.\d{7}Z)_(\d{5})\.json(\.gz)?$"
)


@dataclass
class Stream:
    """One stream of src/job.rs as docs/snowflake.md loads it."""
    job: str                 # the run report's job
    time_field: str          # the record field that places it (src/job.rs time_field)
    view: str                # the deduplicated view in docs/snowflake.md
    fixtures: list = field(default_factory=list)  # tests/fixtures/graph files (documentation examples)
    adapt: dict = field(default_factory=dict)     # fields set on fixture records (beta sign-in types)
    hex_ids: int = 0         # ids are this many hex digits (risk detections), else GUIDs

    @property
    def prefix(self) -> str:
        """entra_<prefix>_stage, _pages, _raw, _records."""
        return self.job.replace("-", "_")


STREAMS = {
    "logs-audit": Stream("audit", "activityDateTime", "entra_directory_audits",
                         ["directoryAudits-list-v1.json", "directoryAudits-list-v1-filter-initiatedBy.json"]),
    "logs-signin": Stream("signin", "createdDateTime", "entra_signins",
                          ["signIns-list-v1.json", "signIns-list-v1-filter-startswith.json",
                           "signIns-list-beta-example2-password.json"]),
    "logs-signin-noninteractive": Stream(
        "signin-noninteractive", "createdDateTime", "entra_signins_noninteractive",
        ["signIns-list-beta-example1-fido-mfa.verbatim.txt"],
        {"isInteractive": False, "signInEventTypes": ["nonInteractiveUser"]}),
    "logs-signin-serviceprincipal": Stream("signin-serviceprincipal", "createdDateTime",
                                           "entra_signins_serviceprincipal"),
    "logs-signin-managedidentity": Stream("signin-managedidentity", "createdDateTime",
                                          "entra_signins_managedidentity"),
    "logs-provisioning": Stream("provisioning", "activityDateTime", "entra_provisioning",
                                ["provisioning-list-v1-example1.verbatim.txt"]),
    "logs-riskdetections": Stream("riskdetections", "detectedDateTime", "entra_risk_detections", hex_ids=64),
    "logs-spriskdetections": Stream("spriskdetections", "detectedDateTime", "entra_sp_risk_detections", hex_ids=52),
}
# Kept for callers of the previous version: container -> (time field, fixture files).
JOBS = {c: (s.time_field, s.fixtures) for c, s in STREAMS.items()}

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


# --- sample blobs ---------------------------------------------------------------------------

def graph_time(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond:06d}0Z"


def compact(t: datetime) -> str:
    return t.strftime("%Y%m%dT%H%M%S.") + f"{t.microsecond:06d}0Z"


def parse_compact(s: str) -> datetime:
    return datetime.strptime(s[:-2], "%Y%m%dT%H%M%S.%f").replace(tzinfo=timezone.utc)


def parse_graph_time(s: str) -> datetime:
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", s)
    if not m:
        raise ValueError(s)
    base = datetime.strptime(m[1], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    frac = (m[2] or "0")[:6].ljust(6, "0")
    return base + timedelta(microseconds=int(frac))


def blob_name(start: datetime, end: datetime, seq: int, gz: bool) -> str:
    return (f"y={start:%Y}/m={start:%m}/d={start:%d}/h={start:%H}/"
            f"{compact(start)}_{compact(end)}_{seq:05d}.json{'.gz' if gz else ''}")


def write_blob(path: Path, records: list[dict], layout: str) -> None:
    if layout == "graph-page":
        text = json.dumps({"value": records}, separators=(",", ":"))
    else:
        text = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode()
    if path.name.endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)


def load_fixture(path: Path) -> list[dict]:
    """A fixture's `value` records. The .verbatim.txt files are the documentation as published,
    with trailing commas that are not JSON: those are dropped first."""
    text = path.read_text()
    if path.name.endswith(".verbatim.txt"):
        text = re.sub(r",(\s*[\]}])", r"\1", text)
    return json.loads(text)["value"]


def base_records(fixtures: Path, container: str) -> list[dict]:
    stream = STREAMS[container]
    bases = []
    for f in stream.fixtures:
        p = fixtures / f
        if p.exists():
            for r in load_fixture(p):
                bases.append({**r, **stream.adapt})
    if SAMPLES.exists():
        bases += json.loads(SAMPLES.read_text()).get(container, [])
    if not bases:
        sys.exit(f"no sample records for {container} in {fixtures} or {SAMPLES}")
    return bases


def synthesize(fixtures: Path, container: str, count: int) -> list[dict]:
    stream = STREAMS[container]
    bases = base_records(fixtures, container)
    t0 = datetime(2026, 11, 1, 10, 0, 0, tzinfo=timezone.utc)
    out = []
    for n in range(count):
        r = copy.deepcopy(bases[n % len(bases)])
        # spread over three hours, with sub-second precision
        t = t0 + timedelta(seconds=n * 10800 // count, microseconds=123457 * (n % 7))
        r[stream.time_field] = graph_time(t)
        if container == "logs-audit":
            # audit ids can contain spaces (Authentication Methods_...)
            prefix = "Authentication Methods" if n % 5 == 0 else "Directory"
            r["id"] = f"{prefix}_{uuid.uuid5(uuid.NAMESPACE_URL, f'audit-{n}')}_X{n % 10}ZQ_{n}"
        elif stream.hex_ids:
            r["id"] = hashlib.sha256(f"{stream.job}-{n}".encode()).hexdigest()[:stream.hex_ids]
        else:
            r["id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{stream.job}-{n}"))
        out.append(r)
    return out


def build_samples(root: Path, fixtures: Path, per_blob: int = 4, count: int = 24) -> dict:
    """Writes <root>/<layout>/<container>/... and returns the expected counts."""
    expected = {}
    for layout in ("graph-page", "ndjson"):
        for container, stream in STREAMS.items():
            field_ = stream.time_field
            records = synthesize(fixtures, container, count)
            base = root / layout / container
            raw = 0
            t0 = datetime(2026, 11, 1, 10, tzinfo=timezone.utc)
            for hour in range(3):
                start, end = t0 + timedelta(hours=hour), t0 + timedelta(hours=hour + 1)
                inside = [r for r in records if start <= parse_graph_time(r[field_]) < end]
                for seq in range(0, (len(inside) + per_blob - 1) // per_blob):
                    part = inside[seq * per_blob:(seq + 1) * per_blob]
                    write_blob(base / blob_name(start, end, seq, gz=(hour % 2 == 1)), part, layout)
                    raw += len(part)
            # A re-run over an overlapping window (what the Python sample did on every re-run):
            # the records of 10:30-11:00 are written again under another name.
            start, end = t0 + timedelta(minutes=30), t0 + timedelta(hours=1)
            again = [r for r in records if start <= parse_graph_time(r[field_]) < end]
            # ...and one of them was republished with changed content (REPUBLISH_UPDATES=true); a
            # risk detection changes its lastUpdatedDateTime with it.
            again = copy.deepcopy(again)
            again[0]["_republished"] = True
            if "lastUpdatedDateTime" in again[0]:
                again[0]["lastUpdatedDateTime"] = "2026-11-02T00:00:00.0000000Z"
            write_blob(base / blob_name(start, end, 0, gz=True), again, layout)
            raw += len(again)
            # A quarantined record: another shape, outside the y=/m= partitions; the stages'
            # pattern must leave it out.
            q = base / "quarantine" / f"{hashlib.sha256(container.encode()).hexdigest()[:16]}.json"
            q.parent.mkdir(parents=True, exist_ok=True)
            q.write_text(json.dumps({"reason": "no usable time", "query": "...", "record": {"id": "x"}}))
            expected[(layout, container)] = {
                "raw": raw, "unique": len(records), "dups": len(again), "republished_id": again[0]["id"],
            }
    return expected


# --- the loading shapes (DuckDB equivalents of docs/snowflake.md sections 2 and 3) ------------

def data_blobs(container_dir: Path) -> list[Path]:
    """The blobs the stages' pattern takes: the y=/m= partitions, never quarantine/."""
    return sorted(p for p in container_dir.glob("y=*/**/*.json*") if p.is_file())


def records_sql(container_dir: Path, layout: str) -> str:
    glob = str(container_dir / "y=*" / "**" / "*.json*").replace("'", "''")
    if layout == "graph-page":
        # Snowflake: select f.value as record, p.blob from entra_<s>_pages p,
        #            lateral flatten(input => p.page:value) f
        return f"""
            select unnest(from_json(json->'$.value', '["json"]')) as record, filename as blob
            from read_json_objects('{glob}', format = 'auto', compression = 'auto', filename = true)
        """
    # Snowflake: select record, blob from entra_<s>_raw
    return f"""
        select json as record, filename as blob
        from read_json_objects('{glob}', format = 'newline_delimited', compression = 'auto', filename = true)
    """


def dedup_sql(records: str, time_field: str) -> str:
    # The generic shape of every view of section 4.
    return f"""
        select record->>'$.id' as id,
               cast(record->>'$.{time_field}' as timestamptz) as event_time,
               record, blob
        from ({records})
        qualify row_number() over (partition by record->>'$.id' order by blob desc) = 1
    """


def detect_layout(container_dir: Path) -> str | None:
    for p in data_blobs(container_dir):
        raw = p.read_bytes()
        text = (gzip.decompress(raw) if p.name.endswith(".gz") else raw).decode()
        first = text.lstrip().split("\n", 1)[0]
        try:
            doc = json.loads(first)
        except json.JSONDecodeError:
            return "graph-page"  # a multi-line document
        return "graph-page" if isinstance(doc, dict) and isinstance(doc.get("value"), list) else "ndjson"
    return None


def python_parse(container_dir: Path, layout: str) -> list[tuple[str, dict]]:
    out = []
    for p in data_blobs(container_dir):
        raw = p.read_bytes()
        text = (gzip.decompress(raw) if p.name.endswith(".gz") else raw).decode()
        rel = p.relative_to(container_dir).as_posix()
        if layout == "graph-page":
            out.extend((rel, r) for r in json.loads(text)["value"])
        else:
            out.extend((rel, json.loads(line)) for line in text.splitlines() if line.strip())
    return out


def check_container(con, container_dir: Path, layout: str, time_field: str, label: str,
                    expected: dict | None) -> None:
    # Parsed once into a table; the queries below read it (the shapes are the same as reading the
    # files each time, only faster).
    con.execute(f"create or replace temp table container_rows as {records_sql(container_dir, layout)}")
    records = "select * from container_rows"
    raw = con.execute(f"select count(*) from ({records})").fetchone()[0]
    distinct = con.execute(f"select count(distinct record->>'$.id') from ({records})").fetchone()[0]
    deduped = con.execute(f"select count(*) from ({dedup_sql(records, time_field)})").fetchone()[0]
    no_id = con.execute(f"select count(*) from ({records}) where record->>'$.id' is null").fetchone()[0]
    odata = con.execute(f"select count(*) from ({records}) where json_exists(record, '$.\"@odata.nextLink\"') "
                        f"or json_exists(record, '$.\"@odata.context\"')").fetchone()[0]
    bad_time = con.execute(
        f"select count(*) from ({records}) where try_cast(record->>'$.{time_field}' as timestamptz) is null"
    ).fetchone()[0]
    parsed = python_parse(container_dir, layout)
    files = data_blobs(container_dir)
    gz = sum(1 for p in files if p.name.endswith(".gz"))
    print(f"info: {label}: {len(files)} blobs ({gz} gzip), {raw} rows, {distinct} ids, {deduped} after dedup")

    check(f"{label}: row count matches an independent parse", raw == len(parsed), f"{raw} != {len(parsed)}")
    check(f"{label}: dedup leaves one row per id", deduped == distinct, f"{deduped} != {distinct}")
    check(f"{label}: every record has an id", no_id == 0, str(no_id))
    check(f"{label}: no @odata keys inside records", odata == 0, str(odata))
    check(f"{label}: every {time_field} casts to a timestamp", bad_time == 0, str(bad_time))

    names_ok = all(NAME_RE.search(p.relative_to(container_dir).as_posix()) for p in files)
    check(f"{label}: blob names follow y=/m=/d=/h=/<start>_<end>_<seq>.json[.gz]", names_ok)
    outside = []
    windows = {}  # blob -> (start, end, hour folder right), parsed once per blob
    for rel, r in parsed:
        if rel not in windows:
            m = NAME_RE.search(rel)
            if m:
                start, end = parse_compact(m[5]), parse_compact(m[6])
                folder_ok = (m[1], m[2], m[3], m[4]) == (f"{start:%Y}", f"{start:%m}", f"{start:%d}", f"{start:%H}")
                windows[rel] = (start, end, folder_ok)
            else:
                windows[rel] = None
        if windows[rel] is None:
            continue
        start, end, folder_ok = windows[rel]
        t = parse_graph_time(r[time_field])
        if not (start <= t < end) or not folder_ok:
            outside.append(rel)
    check(f"{label}: every record lies in its blob's window and hour folder", not outside, ", ".join(outside[:3]))

    if expected:
        check(f"{label}: {expected['raw']} rows incl. {expected['dups']} duplicates", raw == expected["raw"], str(raw))
        check(f"{label}: {expected['unique']} unique ids after dedup", deduped == expected["unique"], str(deduped))
        rep = con.execute(f"select record->>'$._republished' from ({dedup_sql(records, time_field)}) where id = ?",
                          [expected["republished_id"]]).fetchone()
        check(f"{label}: dedup keeps the later (republished) version", rep is not None and rep[0] == "true", str(rep))
        hourly = con.execute(f"select cast(date_trunc('hour', event_time) as varchar) h, count(*) "
                             f"from ({dedup_sql(records, time_field)}) group by h order by h").fetchall()
        check(f"{label}: hourly counts add up", sum(c for _, c in hourly) == expected["unique"] and len(hourly) == 3,
              str(hourly))


# --- docs/snowflake.md: its SQL, its objects, its views ---------------------------------------

def doc_statements(doc: Path) -> list[str]:
    """Every SQL statement of the doc's ```sql blocks, `--` comments removed, whitespace folded."""
    text = doc.read_text()
    statements = []
    for block in re.findall(r"```sql\n(.*?)```", text, re.S):
        lines = []
        for line in block.splitlines():
            out, quoted = [], False
            i = 0
            while i < len(line):
                if line[i] == "'":
                    quoted = not quoted
                elif not quoted and line.startswith("--", i):
                    break
                out.append(line[i])
                i += 1
            lines.append("".join(out))
        for stmt in " ".join(lines).split(";"):
            stmt = re.sub(r"\s+", " ", stmt).strip()
            if stmt:
                statements.append(stmt)
    return statements


def translate(sql: str) -> str:
    """A Snowflake view of section 4 as DuckDB SQL (see the module doc)."""
    def path(m: re.Match) -> str:
        steps = re.findall(r":([A-Za-z_@][A-Za-z0-9_]*)|\[(\d+)\]", m[1])
        json_path = "$" + "".join(f".{k}" if k else f"[{i}]" for k, i in steps)
        cast = (m[2] or "").lower()
        if cast == "":
            return f"json_extract(record, '{json_path}')"
        text = f"json_extract_string(record, '{json_path}')"
        if cast in ("string", "varchar", "text"):
            return text
        target = {"timestamp_tz": "timestamptz", "timestamp_ntz": "timestamp", "number": "double",
                  "boolean": "boolean", "float": "double", "int": "bigint"}.get(cast)
        if target is None:
            raise ValueError(f"no DuckDB stand-in for ::{cast}")
        return f"cast({text} as {target})"

    sql = re.sub(r"\brecord((?::[A-Za-z_@][A-Za-z0-9_]*|\[\d+\])+)(?:::([a-z_]+))?", path, sql)
    sql = re.sub(r"try_parse_json\((json_extract_string\(record, '[^']*'\))\)",
                 r"(case when json_valid(\1) then cast(\1 as json) end)", sql)
    sql = re.sub(r"\bblob_last_modified desc,\s*", "", sql)
    return sql


@dataclass
class DocObjects:
    stages: dict = field(default_factory=dict)        # stage -> container
    copies: list = field(default_factory=list)        # (table, stage, pattern, columns)
    records_views: dict = field(default_factory=dict)  # view -> set of tables it reads
    flatten_ok: dict = field(default_factory=dict)     # pages-table view -> flattens page:value
    dedup_views: dict = field(default_factory=dict)    # view -> (records view, partition, statement)
    other_views: dict = field(default_factory=dict)    # view -> statement (e.g. entra_signins_all)


def doc_objects(statements: list[str]) -> DocObjects:
    o = DocObjects()
    for s in statements:
        m = re.match(r"create or replace stage (\S+) url = 'azure://[^/]+/([^/']+)/'", s, re.I)
        if m:
            o.stages.setdefault(m[1].split(".")[-1].lower(), m[2])
            continue
        m = re.match(r"copy into (\w+) \(([^)]*)\) from \(select (.*?) from @(\S+)\) pattern = '([^']*)'", s, re.I)
        if m:
            o.copies.append((m[1].lower(), m[4].lower(), m[5], m[2]))
            continue
        m = re.match(r"create or replace view (\w+) as select (.*) from (\w+)( p, lateral flatten\(input => p\.page:value\) f)?$",
                     s, re.I)
        if m and m[1].endswith("_records"):
            o.records_views.setdefault(m[1].lower(), set()).add(m[3].lower())
            if m[3].endswith("_pages"):
                o.flatten_ok[m[1].lower()] = bool(m[4]) and m[2].startswith("f.value as record")
            continue
        m = re.match(r"create or replace view (\w+) as select .* from (\w+) qualify row_number\(\) over "
                     r"\( partition by (.*?) order by (.*?)\) = 1$", s, re.I)
        if m:
            o.dedup_views[m[1].lower()] = (m[2].lower(), m[3], s)
            continue
        m = re.match(r"create or replace view (\w+) as ", s, re.I)
        if m:
            o.other_views[m[1].lower()] = s
    return o


def check_doc(o: DocObjects) -> None:
    print(f"info: docs/snowflake.md: {len(o.stages)} stages, {len(o.copies)} copies, "
          f"{len(o.records_views)} records views, {len(o.dedup_views)} deduplicated views, "
          f"{len(o.other_views)} other views")
    sample = "y=2026/m=11/d=01/h=10/20261101T100000.0000000Z_20261101T110000.0000000Z_00000.json"
    for container, s in STREAMS.items():
        p = s.prefix
        stage, pages, raw, records = f"entra_{p}_stage", f"entra_{p}_pages", f"entra_{p}_raw", f"entra_{p}_records"
        check(f"doc: {s.job}: stage {stage} on container {container}", o.stages.get(stage) == container,
              repr(o.stages.get(stage)))
        for table in (pages, raw):
            copies = [c for c in o.copies if c[0] == table]
            ok = bool(copies) and all(c[1] == stage for c in copies)
            check(f"doc: {s.job}: copy into {table} from @{stage}", ok, str(copies))
            for _, _, pattern, _ in copies:
                rx = re.compile(pattern)
                check(f"doc: {s.job}: {table}'s pattern takes the y=/m= data blobs (plain and gzip), not quarantine/",
                      bool(rx.fullmatch(sample)) and bool(rx.fullmatch(sample + ".gz"))
                      and not rx.fullmatch("quarantine/0123456789abcdef.json"), pattern)
        check(f"doc: {s.job}: records view {records} over {pages} (graph-page) and {raw} (ndjson)",
              o.records_views.get(records) == {pages, raw}, str(o.records_views.get(records)))
        check(f"doc: {s.job}: {records} flattens page:value for graph-page", o.flatten_ok.get(records, False))
        view = o.dedup_views.get(s.view)
        if check(f"doc: {s.job}: deduplicated view {s.view} over {records}", view is not None and view[0] == records,
                 str(view[:2] if view else None)):
            check(f"doc: {s.job}: {s.view} partitions by record:id::string", view[1] == "record:id::string", view[1])
    known = {s.view for s in STREAMS.values()}
    extra = sorted(set(o.dedup_views) - known)
    check("doc: every deduplicated view belongs to a stream", not extra, ", ".join(extra))


def view_columns(statement: str) -> list[str]:
    """The output column names of a `create view ... as select <expr> as <col>, ... from` statement."""
    select = re.match(r"create or replace view \w+ as select (.*?) from \w+ ", statement, re.I | re.S)
    if not select:
        return []
    cols, depth, cur = [], 0, ""
    for ch in select[1]:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            cols.append(cur.strip())
            cur = ""
        else:
            cur += ch
    cols.append(cur.strip())
    return [re.split(r"\s+as\s+", c, flags=re.I)[-1].strip() if re.search(r"\s+as\s+", c, re.I) else c.split(".")[-1]
            for c in cols]


def check_views(con, o: DocObjects, root: Path, layout: str, label: str, expected: dict | None) -> None:
    """Creates the records views as DuckDB stand-ins over the blobs under root/<container>, then
    every view of section 4, translated, and checks them."""
    present = {}
    for container, s in STREAMS.items():
        d = root / container
        if d.is_dir() and data_blobs(d):
            # A table, not a view: every view below reads it, and the JSON is parsed once.
            con.execute(f"create or replace table entra_{s.prefix}_records as {records_sql(d, layout)}")
            present[container] = s
    for container, s in present.items():
        if s.view not in o.dedup_views:
            continue
        statement = o.dedup_views[s.view][2]
        name = f"{label} {container}: view {s.view}"
        try:
            con.execute(translate(statement))
            con.execute(f"create or replace temp table view_rows as select * from {s.view}")
            rows, ids = con.execute("select count(*), count(distinct id) from view_rows").fetchone()
        except duckdb.Error as e:
            check(f"{name} runs", False, f"{type(e).__name__}: {str(e)[:300]}")
            continue
        check(f"{name} runs (every cast succeeds)", True)
        check(f"{name}: one row per id ({rows})", rows == ids and rows > 0, f"{rows} rows, {ids} ids")
        columns = [c for c in view_columns(statement) if c not in ("record", "blob")]
        filled = con.execute("select " + ", ".join(f'count("{c}")' for c in columns) + " from view_rows").fetchone()
        empty = [c for c, n in zip(columns, filled) if n == 0]
        if expected is not None:
            exp = expected[(layout, container)]
            check(f"{name}: {exp['unique']} rows after dedup", rows == exp["unique"], str(rows))
            rep = con.execute("select json_extract_string(record, '$._republished') from view_rows where id = ?",
                              [exp["republished_id"]]).fetchone()
            check(f"{name}: keeps the republished version", rep is not None and rep[0] == "true", str(rep))
            check(f"{name}: each of its {len(columns)} columns is filled in some sample record (no misspelt field)",
                  not empty, "always NULL: " + ", ".join(empty))
        elif empty:
            print(f"info: {name}: NULL in every record here: {', '.join(empty)}")
    # Views over the views (entra_signins_all), once every view they read exists.
    existing = {r[0] for r in con.execute("select view_name from duckdb_views()").fetchall()}
    for view, statement in o.other_views.items():
        reads = set(re.findall(r"\bfrom (\w+)", statement, re.I))
        if not reads <= existing:
            print(f"info: {label}: view {view} skipped: reads {', '.join(sorted(reads - existing))}, not here")
            continue
        try:
            con.execute(translate(statement))
            rows = con.execute(f"select count(*) from {view}").fetchone()[0]
            parts = sum(con.execute(f"select count(*) from {r}").fetchone()[0] for r in reads)
        except duckdb.Error as e:
            check(f"{label}: view {view} runs", False, f"{type(e).__name__}: {str(e)[:300]}")
            continue
        check(f"{label}: view {view} runs: {rows} rows, the sum of the views it reads", rows == parts, f"{rows} != {parts}")
        if view == "entra_signins_all":
            dup = con.execute(f"select count(*) - count(distinct (sign_in_event_type, id)) from {view}").fetchone()[0]
            check(f"{label}: {view} has one row per (sign_in_event_type, id)", dup == 0, str(dup))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--blobs", type=Path, help="check real blobs in this folder instead of generated samples")
    ap.add_argument("--fixtures", type=Path, default=ROOT / "tests" / "fixtures" / "graph",
                    help="Graph fixtures for the generated samples (default: the repository's tests/fixtures/graph)")
    ap.add_argument("--keep", type=Path, help="write the generated samples here and keep them")
    args = ap.parse_args()

    print(f"info: duckdb {duckdb.__version__}")
    objects = doc_objects(doc_statements(DOC))
    check_doc(objects)
    if args.blobs:
        root = args.blobs
        containers = [d for d in sorted(root.iterdir()) if d.is_dir() and d.name in STREAMS] or [root]
        con = duckdb.connect()
        for d in containers:
            name = d.name if d.name in STREAMS else None
            layout = detect_layout(d)
            if layout is None:
                check(f"{d}: has data blobs (y=/m=/...)", False)
                continue
            if name:
                field_ = STREAMS[name].time_field
            else:
                # a single container folder of unknown stream: guess from the records
                first = python_parse(d, layout)[0][1]
                field_ = next((f for f in ("createdDateTime", "activityDateTime", "detectedDateTime") if f in first),
                              "createdDateTime")
            check_container(con, d, layout, field_, f"{d.name} ({layout})", None)
        if containers != [root]:
            layouts = {detect_layout(d) for d in containers} - {None}
            if len(layouts) == 1:
                check_views(con, objects, root, layouts.pop(), "blobs", None)
            else:
                print(f"info: views not run: the containers mix layouts {sorted(layouts)}")
    else:
        if not args.fixtures.is_dir():
            print(f"fixtures not found at {args.fixtures} (set --fixtures)", file=sys.stderr)
            return 2
        tmp = None
        if args.keep:
            root = args.keep
            root.mkdir(parents=True, exist_ok=True)
        else:
            tmp = tempfile.TemporaryDirectory()
            root = Path(tmp.name)
        expected = build_samples(root, args.fixtures)
        for layout in ("graph-page", "ndjson"):
            con = duckdb.connect()
            for container, stream in STREAMS.items():
                check_container(con, root / layout / container, layout, stream.time_field,
                                f"{container} ({layout})", expected[(layout, container)])
            check_views(con, objects, root / layout, layout, layout, expected)
        if tmp:
            tmp.cleanup()
    print(f"check-snowflake-sql: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
