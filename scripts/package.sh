#!/usr/bin/env bash
# Builds the entra-export Linux x86_64 binary and assembles the Azure Functions package:
#
#   dist/entra-export.zip
#     host.json                   customHandler -> entra-export serve
#     entra-export                mode 0755, stored with Unix attributes
#     AuditTimer/function.json
#     SignInTimer/function.json
#
# Nothing else goes in (never local.settings.json). Then scripts/test-package.sh checks it.
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

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mode="${PACKAGE_MODE:-zigbuild}"
app_dir="$root"
out="$root/dist/entra-export.zip"
binary=''
locked='--locked'
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

cd "$root"
started=$SECONDS
# shellcheck disable=SC2086 # $locked is empty or one flag
case "$mode" in
  zigbuild)
    ensure_zig_tools
    cargo zigbuild --release $locked --bin entra-export --target "x86_64-unknown-linux-gnu.$GLIBC_TARGET"
    binary="$root/target/x86_64-unknown-linux-gnu/release/entra-export"
    ;;
  musl)
    rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl \
      || die "the musl Rust std is not installed (rustup target add x86_64-unknown-linux-musl); use --mode zigbuild"
    ensure_zig_tools
    cargo zigbuild --release $locked --bin entra-export --target x86_64-unknown-linux-musl
    binary="$root/target/x86_64-unknown-linux-musl/release/entra-export"
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
