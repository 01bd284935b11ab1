#!/usr/bin/env bash
# Builds the entra-export Linux x86_64 binary and assembles the Azure Functions package:
#
#   dist/entra-export.zip
#     host.json                   customHandler -> entra-export serve
#     entra-export                mode 0755, stored with Unix attributes
#     AuditTimer/function.json
#     SignInTimer/function.json
#
# Nothing else goes in (never local.settings.json). Next to the zip (same folder):
#
#   entra-export.cdx.json         CycloneDX 1.5 SBOM (JSON): the crates linked into the binary, made
#                                 by `cargo cyclonedx` (the CycloneDX project's Cargo plugin, pinned,
#                                 from crates.io) for the build target, normal dependencies only;
#                                 package.sh makes the zip (name, SHA-256, its four files with their
#                                 hashes) the SBOM's subject, with the crate inside it
#   SHA256SUMS                    sha256sum -c format: the zip and the SBOM
#
# Then scripts/test-package.sh checks all three. --no-sbom skips the SBOM (never for a release).
#
# Why cargo-cyclonedx and not our own generator: it is the CycloneDX project's tool, maintained
# with the specification, and resolves features and target-specific dependencies the way Cargo
# does. Its one cost is a one-time `cargo install` (7 min 11 s of CPU, 15 min 55 s of wall
# time on the shared 2-core build machine under load, so about 4 to 5 minutes on an idle one), like cargo-zigbuild's.
#
# Build modes (--mode, or PACKAGE_MODE):
#   zigbuild (default)  cargo zigbuild --release --target x86_64-unknown-linux-gnu.2.17: a release
#                       binary that needs glibc >= 2.17 only, so it runs on every Functions Linux
#                       image. Installs cargo-zigbuild (crates.io) and ziglang (PyPI), pinned.
#   musl                cargo zigbuild --release --target x86_64-unknown-linux-musl: fully static.
#                       Needs the musl Rust std (rustup target add x86_64-unknown-linux-musl).
#   native              cargo build --release with the host toolchain (needs the host's glibc or
#                       newer: fine on Debian 12 images, not a portable artefact).
#   debug               cargo build (dev profile): fast, for CI to test the packaging itself.
#                       Never deploy it.
#   prebuilt            package the binary given with --binary as is.
set -euo pipefail

readonly CARGO_ZIGBUILD_VERSION='0.24.1'
readonly ZIGLANG_VERSION='0.15.1'
readonly GLIBC_TARGET='2.17'
readonly CARGO_CYCLONEDX_VERSION='0.5.9'

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mode="${PACKAGE_MODE:-zigbuild}"
app_dir="$root"
out="$root/dist/entra-export.zip"
binary=''
locked='--locked'
sbom=1
venv="${INFRA_VENV:-$root/.venv-infra}"

usage() {
  cat <<'EOF'
Usage: scripts/package.sh [--mode zigbuild|musl|native|debug|prebuilt] [options]

Builds entra-export for Linux x86_64 and writes dist/entra-export.zip for
"az functionapp deployment source config-zip" or a run-from-package URL.

Options:
  --mode MODE        build mode (default zigbuild; env PACKAGE_MODE). See the header of this script.
  --binary PATH      with --mode prebuilt: the binary to package
  --app-dir DIR      where host.json, AuditTimer/ and SignInTimer/ are (default: the repo root)
  --out PATH         output zip (default dist/entra-export.zip)
  --no-locked        do not pass --locked to cargo (Cargo.lock may be updated)
  --no-sbom          do not write the CycloneDX SBOM (SHA256SUMS then covers the zip only)
  -h, --help         this text
EOF
}

die() {
  echo "package: error: $*" >&2
  exit 1
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --mode) mode="${2:?--mode needs a value}"; shift 2 ;;
    --binary) binary="${2:?--binary needs a value}"; shift 2 ;;
    --app-dir) app_dir="${2:?--app-dir needs a value}"; shift 2 ;;
    --out) out="${2:?--out needs a value}"; shift 2 ;;
    --no-locked) locked=''; shift ;;
    --no-sbom) sbom=0; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

for f in host.json AuditTimer/function.json SignInTimer/function.json; do
  [[ -f "$app_dir/$f" ]] || die "$app_dir/$f is missing"
done

# ensure_zig_tools: cargo-zigbuild on PATH, ziglang in the tools venv, both pinned.
ensure_zig_tools() {
  if ! cargo-zigbuild --version 2>/dev/null | grep -qx "cargo-zigbuild $CARGO_ZIGBUILD_VERSION"; then
    echo "package: installing cargo-zigbuild $CARGO_ZIGBUILD_VERSION (crates.io)"
    cargo install --locked --quiet cargo-zigbuild --version "$CARGO_ZIGBUILD_VERSION"
  fi
  if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
  fi
  if ! "$venv/bin/python" -m ziglang version 2>/dev/null | grep -qx "$ZIGLANG_VERSION"; then
    echo "package: installing ziglang $ZIGLANG_VERSION (PyPI) into $venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "ziglang==$ZIGLANG_VERSION"
  fi
  # cargo-zigbuild runs `python3 -m ziglang` when no `zig` is on PATH.
  export PATH="$venv/bin:$PATH"
}

# ensure_cargo_cyclonedx: the pinned cargo-cyclonedx on PATH, or a loud failure.
ensure_cargo_cyclonedx() {
  # `cargo cyclonedx --version` prints "cargo-cyclonedx-cyclonedx 0.5.9".
  if ! cargo cyclonedx --version 2>/dev/null | grep -q " $CARGO_CYCLONEDX_VERSION\$"; then
    echo "package: installing cargo-cyclonedx $CARGO_CYCLONEDX_VERSION (crates.io)"
    cargo install --locked --quiet cargo-cyclonedx --version "$CARGO_CYCLONEDX_VERSION" \
      || die "could not install cargo-cyclonedx $CARGO_CYCLONEDX_VERSION (needed for the SBOM; --no-sbom skips it)"
  fi
  cargo cyclonedx --version 2>/dev/null | grep -q " $CARGO_CYCLONEDX_VERSION\$" \
    || die "cargo-cyclonedx $CARGO_CYCLONEDX_VERSION is not on PATH after installing it"
}

cd "$root"
started=$SECONDS
sbom_target="$(rustc -vV | sed -n 's/^host: //p')"
# shellcheck disable=SC2086 # $locked is empty or one flag
case "$mode" in
  zigbuild)
    ensure_zig_tools
    cargo zigbuild --release $locked --bin entra-export --target "x86_64-unknown-linux-gnu.$GLIBC_TARGET"
    binary="$root/target/x86_64-unknown-linux-gnu/release/entra-export"
    sbom_target='x86_64-unknown-linux-gnu'
    ;;
  musl)
    rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl \
      || die "the musl Rust std is not installed (rustup target add x86_64-unknown-linux-musl); use --mode zigbuild"
    ensure_zig_tools
    cargo zigbuild --release $locked --bin entra-export --target x86_64-unknown-linux-musl
    binary="$root/target/x86_64-unknown-linux-musl/release/entra-export"
    sbom_target='x86_64-unknown-linux-musl'
    ;;
  native)
    cargo build --release $locked --bin entra-export
    binary="$root/target/release/entra-export"
    ;;
  debug)
    cargo build $locked --bin entra-export
    binary="$root/target/debug/entra-export"
    ;;
  prebuilt)
    [[ -n "$binary" ]] || die "--mode prebuilt needs --binary PATH"
    ;;
  *) die "unknown mode '$mode'" ;;
esac
[[ -f "$binary" ]] || die "no binary at $binary"
build_seconds=$((SECONDS - started))

mkdir -p "$(dirname "$out")"
python3 - "$app_dir" "$binary" "$out" <<'PY'
import json, os, sys, time, zipfile

app_dir, binary, out = sys.argv[1:4]

host = json.load(open(os.path.join(app_dir, "host.json")))
desc = host.get("customHandler", {}).get("description", {})
if desc.get("defaultExecutablePath") != "entra-export":
    sys.exit(f"package: host.json customHandler.description.defaultExecutablePath is "
             f"{desc.get('defaultExecutablePath')!r}, expected 'entra-export'")
if desc.get("arguments") != ["serve"]:
    sys.exit(f"package: host.json customHandler.description.arguments is {desc.get('arguments')!r}, expected ['serve']")

# Reproducible archive: fixed order, fixed timestamps (SOURCE_DATE_EPOCH if set).
epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "315532800"))  # 1980-01-01
stamp = time.gmtime(max(epoch, 315532800))[:6]

def add(zf, arcname, path, mode):
    info = zipfile.ZipInfo(arcname, date_time=stamp)
    info.create_system = 3  # Unix, so the mode below is honoured when extracted or mounted
    info.external_attr = (0o100000 | mode) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    with open(path, "rb") as f:
        zf.writestr(info, f.read(), compresslevel=9)

tmp = out + ".tmp"
with zipfile.ZipFile(tmp, "w") as zf:
    add(zf, "host.json", os.path.join(app_dir, "host.json"), 0o644)
    add(zf, "entra-export", binary, 0o755)
    for fn in ("AuditTimer", "SignInTimer"):
        add(zf, f"{fn}/function.json", os.path.join(app_dir, fn, "function.json"), 0o644)
os.replace(tmp, out)
PY

size=$(stat -c %s "$out")
sha=$(sha256sum "$out" | cut -d' ' -f1)
echo "package: mode=$mode build=${build_seconds}s binary=$(stat -c %s "$binary") bytes"
echo "package: wrote $out ($size bytes, sha256 $sha)"

out_dir="$(cd "$(dirname "$out")" && pwd)"
zip_name="$(basename "$out")"
sbom_name="${zip_name%.zip}.cdx.json"
rm -f "$out_dir/$sbom_name" "$out_dir/SHA256SUMS"
if [[ $sbom -eq 1 ]]; then
  ensure_cargo_cyclonedx
  sbom_started=$SECONDS
  raw="$(mktemp -d)"
  # cargo cyclonedx writes <name>.cdx.json next to Cargo.toml: give it a unique name, move it out.
  raw_name="entra-export-sbom-$$"
  cargo cyclonedx --manifest-path "$root/Cargo.toml" --format json --spec-version 1.5 \
    --target "$sbom_target" --no-build-deps --override-filename "$raw_name" --quiet \
    || die "cargo cyclonedx failed"
  mv "$root/$raw_name.json" "$raw/raw.cdx.json" || die "cargo cyclonedx wrote no $root/$raw_name.json"
  # It writes one for every workspace member: only the root crate's is the package's.
  rm -f "$root"/crates/*/"$raw_name.json"
  python3 - "$raw/raw.cdx.json" "$out" "$out_dir/$sbom_name" "$sbom_target" <<'PY'
import hashlib, json, os, sys, time, uuid, zipfile

raw_path, zip_path, sbom_path, target = sys.argv[1:5]
bom = json.load(open(raw_path))
crate = bom["metadata"]["component"]

def sha256(data):
    return hashlib.sha256(data).hexdigest()

zip_bytes = open(zip_path, "rb").read()
files = []
with zipfile.ZipFile(zip_path) as zf:
    for info in sorted(zf.infolist(), key=lambda i: i.filename):
        files.append({
            "type": "file",
            "bom-ref": f"file:{info.filename}",
            "name": info.filename,
            "hashes": [{"alg": "SHA-256", "content": sha256(zf.read(info.filename))}],
        })
zip_name = os.path.basename(zip_path)
zip_ref = f"package:{zip_name}"
subject = {
    "type": "application",
    "bom-ref": zip_ref,
    "name": zip_name,
    "version": crate.get("version", ""),
    "description": "Azure Functions package of entra-export (custom handler): host.json, the binary, "
                   f"AuditTimer/function.json, SignInTimer/function.json; binary built for {target}",
    "hashes": [{"alg": "SHA-256", "content": sha256(zip_bytes)}],
    "components": files + [crate],
}
bom["metadata"]["component"] = subject
# Reproducible with SOURCE_DATE_EPOCH; the serial number is derived from the zip's hash.
epoch = int(os.environ.get("SOURCE_DATE_EPOCH", time.time()))
bom["metadata"]["timestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
bom["serialNumber"] = "urn:uuid:" + str(uuid.uuid5(uuid.NAMESPACE_URL, "entra-export:" + sha256(zip_bytes)))
props = bom["metadata"].setdefault("properties", [])
props.append({"name": "entra-export:build-target", "value": target})
deps = bom.setdefault("dependencies", [])
deps.append({"ref": zip_ref, "dependsOn": [crate["bom-ref"]]})
with open(sbom_path + ".tmp", "w") as f:
    json.dump(bom, f, indent=2, sort_keys=False)
    f.write("\n")
os.replace(sbom_path + ".tmp", sbom_path)
print(f"package: SBOM {sbom_path}: {len(bom.get('components', []))} crates, subject {zip_name}")
PY
  rm -rf "$raw"
  echo "package: sbom=$((SECONDS - sbom_started))s"
fi
(
  cd "$out_dir"
  if [[ -f "$sbom_name" ]]; then
    sha256sum "$zip_name" "$sbom_name" >SHA256SUMS
  else
    sha256sum "$zip_name" >SHA256SUMS
  fi
)
echo "package: wrote $out_dir/SHA256SUMS"
