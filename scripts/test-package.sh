#!/usr/bin/env bash
# Checks an entra-export Functions package (default dist/entra-export.zip):
#   - exactly host.json, entra-export, AuditTimer/function.json, SignInTimer/function.json;
#     no local.settings.json, nothing else;
#   - entra-export is a regular file stored with Unix mode 0755;
#   - host.json: customHandler.description.defaultExecutablePath names a file inside the zip,
#     arguments ["serve"], no extension bundle; functionTimeout, if set, fits Linux Consumption;
#   - function.json: one timerTrigger named "timer" reading %AUDIT_SCHEDULE% / %SIGNIN_SCHEDULE%;
#   - the binary is ELF x86-64 and needs at most glibc $MAX_GLIBC (or none: static);
#   - extracted with its stored mode, `entra-export --version` and `--help` exit 0 in an empty
#     environment, and --version prints the Cargo.toml version;
#   - `entra-export config check` accepts infra/main.bicep's default app settings of each hosting
#     plan (FlexConsumption, Dedicated, Consumption) in both clouds;
#   - SHA256SUMS next to the zip: every line verifies, and it covers the zip and the SBOM;
#   - the SBOM <zip name without .zip>.cdx.json next to the zip: CycloneDX 1.5 JSON (valid against
#     the CycloneDX schema with cyclonedx-python-lib from .venv-infra; required when CI=true),
#     its subject is the zip with the zip's SHA-256 and its four files with theirs, and it lists
#     every crate the binary links (`cargo metadata` for the build target, normal dependencies
#     of entra-export), each with a pkg:cargo purl and, for crates.io crates, Cargo.lock's checksum.
#     NO_SBOM=1 skips the SBOM checks (a package made with --no-sbom).
#
# Optional: OLD_GLIBC_CHROOT=DIR also runs `--version` and `config check` inside that root file
# system (as root), e.g. Debian 11 (glibc 2.31), made once with:
#   debootstrap --variant=minbase bullseye DIR http://deb.debian.org/debian      (about 30 s)
#
# Usage: scripts/test-package.sh [ZIP]      (MAX_GLIBC=2.28 by default)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
zip="${1:-$root/dist/entra-export.zip}"
max_glibc="${MAX_GLIBC:-2.28}"
[[ -f "$zip" ]] || { echo "test-package: no package at $zip (run scripts/package.sh)" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

expected_version="$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$root/Cargo.toml" | head -n1)"

venv="${INFRA_VENV:-$root/.venv-infra}"
python3 - "$zip" "$work/app" "$max_glibc" "$expected_version" "$root" "$venv" <<'PY'
import hashlib, json, os, re, socket, stat, subprocess, sys, time, urllib.error, urllib.request, zipfile

zip_path, dest, max_glibc, expected_version, root, venv = sys.argv[1:7]
passed = failed = 0

def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok: {name}")
    else:
        failed += 1
        print(f"FAILED: {name}{': ' + detail if detail else ''}")
    return ok

zf = zipfile.ZipFile(zip_path)
infos = {i.filename: i for i in zf.infolist()}
expected = {"host.json", "entra-export", "AuditTimer/function.json", "SignInTimer/function.json"}
check("zip holds exactly the four expected entries", set(infos) == expected, f"got {sorted(infos)}")
check("no local.settings.json", not any(n.endswith("local.settings.json") for n in infos))
check("zip test (CRC) passes", zf.testzip() is None)

exe = infos.get("entra-export")
mode = (exe.external_attr >> 16) if exe else 0
check("entra-export stored with Unix attributes", exe is not None and exe.create_system == 3,
      f"create_system={exe.create_system if exe else None}")
check("entra-export is a regular file, mode 0755", stat.S_ISREG(mode) and stat.S_IMODE(mode) == 0o755, oct(mode))

host = json.loads(zf.read("host.json"))
desc = host.get("customHandler", {}).get("description", {})
path = desc.get("defaultExecutablePath")
check("host.json version 2.0", host.get("version") == "2.0", str(host.get("version")))
check("host.json defaultExecutablePath is inside the zip", path in infos, repr(path))
check("host.json defaultExecutablePath is the executable", path == "entra-export", repr(path))
check("host.json arguments are [\"serve\"]", desc.get("arguments") == ["serve"], repr(desc.get("arguments")))
check("host.json has no extensionBundle (timers are built in)", "extensionBundle" not in host)
timeout = host.get("functionTimeout")
if timeout is not None:
    m = re.fullmatch(r"(\d+):(\d\d):(\d\d)", timeout)
    secs = int(m[1]) * 3600 + int(m[2]) * 60 + int(m[3]) if m else None
    check("functionTimeout fits Linux Consumption (<= 00:10:00)", secs is not None and 0 < secs <= 600, timeout)

for fn, setting in (("AuditTimer", "%AUDIT_SCHEDULE%"), ("SignInTimer", "%SIGNIN_SCHEDULE%")):
    doc = json.loads(zf.read(f"{fn}/function.json"))
    b = doc.get("bindings", [])
    ok = (len(b) == 1 and b[0].get("type") == "timerTrigger" and b[0].get("direction") == "in"
          and b[0].get("name") == "timer" and b[0].get("schedule") == setting
          and b[0].get("runOnStartup", False) is False)
    check(f"{fn}/function.json: timerTrigger 'timer' on {setting}, runOnStartup false", ok, json.dumps(b))

# Extract with the stored modes, as the run-from-package mount presents them.
os.makedirs(dest)
for name, info in infos.items():
    if name.endswith("/"):
        continue  # directory entry
    target = os.path.join(dest, name)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target, "wb") as f:
        f.write(zf.read(name))
    os.chmod(target, stat.S_IMODE(info.external_attr >> 16) or 0o644)
binary = os.path.join(dest, path or "entra-export")

with open(binary, "rb") as f:
    head = f.read(20)
check("binary is ELF 64-bit x86-64", head[:4] == b"\x7fELF" and head[4] == 2 and head[18:20] == b"\x3e\x00")

# glibc symbol versions the binary needs (none for a static build).
try:
    dyn = subprocess.run(["readelf", "--dyn-syms", "--wide", "-l", binary], capture_output=True, text=True, check=True).stdout
    versions = sorted({tuple(int(x) for x in v.split(".")) for v in re.findall(r"GLIBC_(\d+(?:\.\d+)+)", dyn)})
    interp = re.search(r"Requesting program interpreter: ([^\]]+)", dyn)
    need = ".".join(map(str, versions[-1])) if versions else "none"
    print(f"info: interpreter {interp[1] if interp else 'none (static)'}; highest glibc symbol version {need}")
    limit = tuple(int(x) for x in max_glibc.split("."))
    check(f"binary needs glibc <= {max_glibc}", not versions or versions[-1] <= limit, need)
except FileNotFoundError:
    print("info: readelf not found, glibc check skipped")

env = {"PATH": "/usr/bin:/bin"}
for args in (["--version"], ["--help"]):
    try:
        r = subprocess.run([binary, *args], cwd=dest, env=env, capture_output=True, text=True, timeout=30)
    except OSError as e:  # e.g. not executable
        r = subprocess.CompletedProcess([binary, *args], 126, "", str(e))
    check(f"entra-export {' '.join(args)} exits 0", r.returncode == 0, f"exit {r.returncode}: {r.stderr.strip()[:300]}")
    if args == ["--version"]:
        check(f"--version prints {expected_version}", expected_version in r.stdout, r.stdout.strip()[:200])

# The app settings main.bicep sets by default must satisfy the service's own configuration check.
try:
    help_text = subprocess.run([binary, "--help"], capture_output=True, text=True, env=env).stdout
except OSError:
    help_text = ""
if re.search(r"^\s+config\b", help_text, re.M):
    for plan in ("FlexConsumption", "Dedicated", "Consumption"):
        for cloud in ("AzureUSGovernment", "AzurePublic"):
            lines = subprocess.run([sys.executable, os.path.join(root, "scripts", "check_infra.py"),
                                    "--print-settings-env", cloud, "--plan", plan],
                                   capture_output=True, text=True, check=True).stdout
            settings = dict(line.split("=", 1) for line in lines.splitlines() if "=" in line)
            r = subprocess.run([binary, "config", "check"], cwd=dest, capture_output=True, text=True, timeout=30,
                               env={**env, **settings, "IDENTITY_ENDPOINT": "http://127.0.0.1:9/msi/token",
                                    "IDENTITY_HEADER": "test"})
            check(f"`entra-export config check` accepts main.bicep's default app settings ({plan}, {cloud}; "
                  f"FUNCTION_TIMEOUT {settings.get('FUNCTION_TIMEOUT')}, RUN_TIME_BUDGET {settings.get('RUN_TIME_BUDGET')})",
                  r.returncode == 0, (r.stdout + r.stderr).strip()[-400:])
else:
    print("info: no `config` subcommand: app-settings check skipped")

# Release files next to the zip: SHA256SUMS and the CycloneDX SBOM.
out_dir = os.path.dirname(os.path.abspath(zip_path))
zip_name = os.path.basename(zip_path)
sbom_name = re.sub(r"\.zip$", "", zip_name) + ".cdx.json"
want_sbom = os.environ.get("NO_SBOM") != "1"
sums_path = os.path.join(out_dir, "SHA256SUMS")

def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()

if check("SHA256SUMS next to the zip", os.path.isfile(sums_path), sums_path):
    entries = {}
    for line in open(sums_path).read().splitlines():
        m = re.fullmatch(r"([0-9a-f]{64}) [ *](.+)", line)
        if check(f"SHA256SUMS line is in sha256sum format: {line[:80]}", m is not None):
            entries[m[2]] = m[1]
    for name, digest in entries.items():
        path = os.path.join(out_dir, name)
        check(f"SHA256SUMS: {name} verifies", os.path.isfile(path) and sha256_file(path) == digest)
    check("SHA256SUMS covers the zip", zip_name in entries, str(sorted(entries)))
    if want_sbom:
        check("SHA256SUMS covers the SBOM", sbom_name in entries, str(sorted(entries)))
    r = subprocess.run(["sha256sum", "--check", "--strict", "SHA256SUMS"], cwd=out_dir, capture_output=True, text=True)
    check("`sha256sum --check SHA256SUMS` passes", r.returncode == 0, (r.stdout + r.stderr).strip()[-300:])

sbom_path = os.path.join(out_dir, sbom_name)
if not want_sbom:
    print("info: NO_SBOM=1: SBOM checks skipped")
elif check(f"SBOM {sbom_name} next to the zip", os.path.isfile(sbom_path), sbom_path):
    bom = json.load(open(sbom_path))
    check("SBOM is CycloneDX 1.5 JSON", bom.get("bomFormat") == "CycloneDX" and bom.get("specVersion") == "1.5",
          f"{bom.get('bomFormat')} {bom.get('specVersion')}")
    check("SBOM has a urn:uuid serial number", re.fullmatch(r"urn:uuid:[0-9a-f-]{36}", bom.get("serialNumber", "")) is not None)
    validator_python = os.path.join(venv, "bin", "python")
    if os.path.exists(validator_python):
        code = ("import sys\nfrom cyclonedx.validation.json import JsonStrictValidator\n"
                "from cyclonedx.schema import SchemaVersion\n"
                "e = JsonStrictValidator(SchemaVersion.V1_5).validate_str(open(sys.argv[1]).read())\n"
                "print(e or 'valid'); sys.exit(1 if e else 0)\n")
        r = subprocess.run([validator_python, "-c", code, sbom_path], capture_output=True, text=True)
        check("SBOM is valid against the CycloneDX 1.5 JSON schema (cyclonedx-python-lib)", r.returncode == 0,
              (r.stdout + r.stderr).strip()[-600:])
    elif os.environ.get("CI") == "true":
        check("SBOM schema validation: the tools venv with cyclonedx-python-lib exists (scripts/check-infra.sh builds it)",
              False, validator_python)
    else:
        print(f"info: no {validator_python}: CycloneDX schema validation skipped (run scripts/check-infra.sh once)")
    subject = bom.get("metadata", {}).get("component", {})
    hashes = {h.get("alg"): h.get("content") for h in subject.get("hashes", [])}
    check("SBOM subject is the zip", subject.get("name") == zip_name, repr(subject.get("name")))
    check("SBOM subject's SHA-256 is the zip's", hashes.get("SHA-256") == sha256_file(zip_path))
    inner = {c.get("name"): c for c in subject.get("components", []) if c.get("type") == "file"}
    for name in sorted(infos):
        h = {x.get("alg"): x.get("content") for x in inner.get(name, {}).get("hashes", [])}
        check(f"SBOM lists {name} with its SHA-256", h.get("SHA-256") == hashlib.sha256(zf.read(name)).hexdigest())
    crate = [c for c in subject.get("components", []) if c.get("type") != "file"]
    check("SBOM subject contains the entra-export crate at the Cargo.toml version",
          any(c.get("name") == "entra-export" and c.get("version") == expected_version for c in crate),
          json.dumps([(c.get("name"), c.get("version")) for c in crate]))
    components = bom.get("components", [])
    listed = {(c.get("name"), c.get("version")) for c in components}
    check("every SBOM component has a pkg:cargo purl",
          bool(components) and all(str(c.get("purl", "")).startswith("pkg:cargo/") for c in components))
    # What the binary links: entra-export's normal dependencies for the build target.
    target = next((p.get("value") for p in bom["metadata"].get("properties", [])
                   if p.get("name") == "entra-export:build-target"), None)
    check("SBOM names its build target", bool(target))
    try:
        meta = json.loads(subprocess.run(["cargo", "metadata", "--format-version", "1", "--locked",
                                          "--filter-platform", target or "x86_64-unknown-linux-gnu",
                                          "--manifest-path", os.path.join(root, "Cargo.toml")],
                                         capture_output=True, text=True, check=True).stdout)
    except (OSError, subprocess.CalledProcessError) as e:
        check("cargo metadata runs (to check the SBOM's crates)", False, str(e)[:300])
    else:
        pkgs = {p["id"]: p for p in meta["packages"]}
        nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
        root_id = next(i for i, p in pkgs.items() if p["name"] == "entra-export"
                       and os.path.dirname(p["manifest_path"]) == os.path.abspath(root))
        seen, todo = set(), [root_id]
        while todo:
            node = nodes[todo.pop()]
            for dep in node.get("deps", []):
                if any(k.get("kind") is None for k in dep.get("dep_kinds", [])) and dep["pkg"] not in seen:
                    seen.add(dep["pkg"])
                    todo.append(dep["pkg"])
        linked = {(pkgs[i]["name"], pkgs[i]["version"]) for i in seen}
        missing = sorted(linked - listed)
        check(f"SBOM lists every crate the binary links ({len(linked)} from cargo metadata, {len(listed)} listed)",
              not missing, ", ".join(f"{n} {v}" for n, v in missing[:10]))
        lock = open(os.path.join(root, "Cargo.lock")).read()
        checksums = dict(((m[1], m[2]), m[3]) for m in re.finditer(
            r'name = "([^"]+)"\nversion = "([^"]+)"\nsource = "registry[^"]*"\nchecksum = "([0-9a-f]{64})"', lock))
        wrong = []
        for c in components:
            key = (c.get("name"), c.get("version"))
            if key in checksums:
                h = {x.get("alg"): x.get("content") for x in c.get("hashes", [])}
                if h.get("SHA-256") != checksums[key]:
                    wrong.append(f"{key[0]} {key[1]}")
        check("SBOM crates.io components carry Cargo.lock's SHA-256 checksum", not wrong, ", ".join(wrong[:10]))

# The binary on an older distribution (optional).
chroot_dir = os.environ.get("OLD_GLIBC_CHROOT")
if chroot_dir:
    import shutil
    inside = "/tmp/entra-export-package-test"
    chroot = shutil.which("chroot", path="/usr/sbin:/sbin:/usr/bin:/bin") or "chroot"
    shutil.copy2(binary, chroot_dir + inside)
    try:
        libc = subprocess.run([chroot, chroot_dir, "/usr/bin/ldd", "--version"], capture_output=True, text=True)
        print(f"info: chroot {chroot_dir}: {(libc.stdout.splitlines() or ['?'])[0]}")
        r = subprocess.run([chroot, chroot_dir, inside, "--version"], capture_output=True, text=True, env=env)
        check(f"entra-export --version runs in {chroot_dir}", r.returncode == 0, r.stderr.strip()[:300])
        lines = subprocess.run([sys.executable, os.path.join(root, "scripts", "check_infra.py"),
                                "--print-settings-env", "AzureUSGovernment"], capture_output=True, text=True).stdout
        settings = dict(line.split("=", 1) for line in lines.splitlines() if "=" in line)
        r = subprocess.run([chroot, chroot_dir, inside, "config", "check"], capture_output=True, text=True,
                           env={**env, **settings})
        check(f"entra-export config check runs in {chroot_dir}", r.returncode == 0, (r.stdout + r.stderr).strip()[-300:])
    finally:
        os.remove(chroot_dir + inside)

# The host's readiness probe: `entra-export serve` must answer GET / on FUNCTIONS_CUSTOMHANDLER_PORT.
if re.search(r"^\s+serve\b", help_text, re.M):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([binary, "serve"], cwd=dest, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**env, "FUNCTIONS_CUSTOMHANDLER_PORT": str(port)})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, never a proxy
    answered, deadline = None, time.monotonic() + 10
    try:
        while time.monotonic() < deadline and answered is None and proc.poll() is None:
            try:
                with opener.open(f"http://127.0.0.1:{port}/", timeout=2) as resp:
                    answered = resp.status
            except urllib.error.HTTPError as e:
                answered = e.code  # any HTTP answer counts as ready for the host
            except OSError:
                time.sleep(0.05)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
    check("`entra-export serve` answers the readiness probe GET / within 10 s", answered is not None,
          f"exit {proc.returncode}")

print(f"test-package: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
