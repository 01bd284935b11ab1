#!/usr/bin/env python3
"""Local check of the query shapes in docs/snowflake.md, with DuckDB standing in for Snowflake.

Snowflake reads each staged JSON document into a VARIANT ($1); DuckDB's read_json_objects() does
the same into a JSON value. The doc's queries map one to one:

  Snowflake                                          DuckDB (below)
  $1 (one row per blob, graph-page)                  read_json_objects(..., format='auto')
  lateral flatten(input => $1:value) f, f.value      unnest(from_json(json->'$.value', '["json"]'))
  $1 (one row per line, ndjson)                      read_json_objects(..., format='newline_delimited')
  metadata$filename                                  filename=true
  record:id::string                                  record->>'$.id'
  qualify row_number() over (partition by id        the same
          order by ... desc) = 1
  compression = auto (.gz)                           compression='auto' (.gz)

Without --blobs it builds a small blob tree from the repository's Graph fixtures
(tests/fixtures/graph) in both layouts (graph-page and ndjson), plain and gzip, laid out like
entra-export's blob names, with duplicates (a re-run over an overlapping window) and one
republished record, and asserts exact counts. With --blobs DIR it checks real blobs (for example
the output of the demo): DIR holds container folders (logs-audit/, logs-signin/) or is one
container folder; counts are compared with an independent Python parse, and every record must lie
inside the window its blob name gives.
"""

from __future__ import annotations

import argparse
import copy
import gzip
import json
import re
import sys
import tempfile
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb

NAME_RE = re.compile(
    r"y=(\d{4})/m=(\d\d)/d=(\d\d)/h=(\d\d)/"
    r"(\d{8}T\d{6}\.\d{7}Z)_(\d{8}T\d{6}\.\d{7}Z)_(\d{5})\.json(\.gz)?$"
)
JOBS = {
    # container: (time field, fixture files)
    "logs-audit": ("activityDateTime", ["directoryAudits-list-v1.json", "directoryAudits-list-v1-filter-initiatedBy.json"]),
    "logs-signin": ("createdDateTime", ["signIns-list-v1.json", "signIns-list-v1-filter-startswith.json",
                                        "signIns-list-beta-example2-password.json"]),
}

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


def synthesize(fixtures: Path, container: str, count: int) -> list[dict]:
    field, files = JOBS[container]
    bases = []
    for f in files:
        p = fixtures / f
        if p.exists():
            bases.extend(json.loads(p.read_text())["value"])
    if not bases:
        sys.exit(f"no fixture records for {container} in {fixtures}")
    t0 = datetime(2026, 11, 1, 10, 0, 0, tzinfo=timezone.utc)
    out = []
    for n in range(count):
        r = copy.deepcopy(bases[n % len(bases)])
        # spread over three hours, with sub-second precision
        t = t0 + timedelta(seconds=n * 10800 // count, microseconds=123457 * (n % 7))
        r[field] = graph_time(t)
        if container == "logs-signin":
            r["id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"signin-{n}"))
        else:
            # audit ids can contain spaces (Authentication Methods_...)
            prefix = "Authentication Methods" if n % 5 == 0 else "Directory"
            r["id"] = f"{prefix}_{uuid.uuid5(uuid.NAMESPACE_URL, f'audit-{n}')}_X{n % 10}ZQ_{n}"
        out.append(r)
    return out


def build_samples(root: Path, fixtures: Path, per_blob: int = 4, count: int = 24) -> dict:
    """Writes <root>/<layout>/<container>/... and returns the expected counts."""
    expected = {}
    for layout in ("graph-page", "ndjson"):
        for container, (field, _) in JOBS.items():
            records = synthesize(fixtures, container, count)
            base = root / layout / container
            raw = 0
            t0 = datetime(2026, 11, 1, 10, tzinfo=timezone.utc)
            for hour in range(3):
                start, end = t0 + timedelta(hours=hour), t0 + timedelta(hours=hour + 1)
                inside = [r for r in records if start <= parse_graph_time(r[field]) < end]
                for seq in range(0, (len(inside) + per_blob - 1) // per_blob):
                    part = inside[seq * per_blob:(seq + 1) * per_blob]
                    write_blob(base / blob_name(start, end, seq, gz=(hour % 2 == 1)), part, layout)
                    raw += len(part)
            # A re-run over an overlapping window (what the Python sample did on every re-run):
            # the records of 10:30-11:00 are written again under another name.
            start, end = t0 + timedelta(minutes=30), t0 + timedelta(hours=1)
            again = [r for r in records if start <= parse_graph_time(r[field]) < end]
            # ...and one of them was republished with changed content (REPUBLISH_UPDATES=true).
            again = copy.deepcopy(again)
            again[0]["_republished"] = True
            write_blob(base / blob_name(start, end, 0, gz=True), again, layout)
            raw += len(again)
            expected[(layout, container)] = {
                "raw": raw, "unique": len(records), "dups": len(again), "republished_id": again[0]["id"],
            }
    return expected


# --- queries (DuckDB equivalents of docs/snowflake.md) ----------------------------------------

def records_sql(container_dir: Path, layout: str) -> str:
    glob = str(container_dir / "**" / "*.json*").replace("'", "''")
    if layout == "graph-page":
        # Snowflake: select f.value as record, metadata$filename as blob
        #            from @stage (file_format => entra_json) s, lateral flatten(input => s.$1:value) f
        return f"""
            select unnest(from_json(json->'$.value', '["json"]')) as record, filename as blob
            from read_json_objects('{glob}', format = 'auto', compression = 'auto', filename = true)
        """
    # Snowflake: select $1 as record, metadata$filename as blob from @stage (file_format => entra_json)
    return f"""
        select json as record, filename as blob
        from read_json_objects('{glob}', format = 'newline_delimited', compression = 'auto', filename = true)
    """


def dedup_sql(records: str, time_field: str) -> str:
    # Snowflake: ... qualify row_number() over (partition by record:id::string
    #                order by blob_last_modified desc, blob desc) = 1
    return f"""
        select record->>'$.id' as id,
               cast(record->>'$.{time_field}' as timestamptz) as event_time,
               record, blob
        from ({records})
        qualify row_number() over (partition by record->>'$.id' order by blob desc) = 1
    """


def detect_layout(container_dir: Path) -> str | None:
    for p in sorted(container_dir.rglob("*.json*")):
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
    for p in sorted(container_dir.rglob("*.json*")):
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
    records = records_sql(container_dir, layout)
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
    files = [p for p in container_dir.rglob("*.json*")]
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
    for rel, r in parsed:
        m = NAME_RE.search(rel)
        if not m:
            continue
        start, end = parse_compact(m[5]), parse_compact(m[6])
        t = parse_graph_time(r[time_field])
        if not (start <= t < end) or (m[1], m[2], m[3], m[4]) != (f"{start:%Y}", f"{start:%m}", f"{start:%d}", f"{start:%H}"):
            outside.append(rel)
    check(f"{label}: every record lies in its blob's window and hour folder", not outside, ", ".join(outside[:3]))

    if expected:
        check(f"{label}: {expected['raw']} rows incl. {expected['dups']} duplicates", raw == expected["raw"], str(raw))
        check(f"{label}: {expected['unique']} unique ids after dedup", deduped == expected["unique"], str(deduped))
        rep = con.execute(f"select record->>'$._republished' from ({dedup_sql(records, time_field)}) where id = ?",
                          [expected["republished_id"]]).fetchone()
        check(f"{label}: dedup keeps the later (republished) version", rep is not None and rep[0] == "true", str(rep))
        # The view in docs/snowflake.md: hourly counts add up to the unique records.
        hourly = con.execute(f"select cast(date_trunc('hour', event_time) as varchar) h, count(*) from ({dedup_sql(records, time_field)}) "
                         f"group by h order by h").fetchall()
        check(f"{label}: hourly counts add up", sum(c for _, c in hourly) == expected["unique"] and len(hourly) == 3,
              str(hourly))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--blobs", type=Path, help="check real blobs in this folder instead of generated samples")
    ap.add_argument("--fixtures", type=Path,
                    default=Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "graph",
                    help="Graph fixtures for the generated samples (default: the repository's tests/fixtures/graph)")
    ap.add_argument("--keep", type=Path, help="write the generated samples here and keep them")
    args = ap.parse_args()

    con = duckdb.connect()
    print(f"info: duckdb {duckdb.__version__}")
    if args.blobs:
        root = args.blobs
        containers = [d for d in sorted(root.iterdir()) if d.is_dir() and d.name in JOBS] or [root]
        for d in containers:
            name = d.name if d.name in JOBS else "logs-signin"
            layout = detect_layout(d)
            if layout is None:
                check(f"{d}: has blobs", False)
                continue
            field = JOBS[name][0]
            if d is root and d.name not in JOBS:
                # a single container folder of unknown job: guess from the records
                first = python_parse(d, layout)[0][1]
                field = "activityDateTime" if "activityDateTime" in first else "createdDateTime"
            check_container(con, d, layout, field, f"{d.name} ({layout})", None)
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
        for (layout, container), exp in expected.items():
            check_container(con, root / layout / container, layout, JOBS[container][0],
                            f"{container} ({layout})", exp)
        if tmp:
            tmp.cleanup()
    print(f"check-snowflake-sql: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
