#!/usr/bin/env bash
# Test of scripts/check-self-contained.sh on throw-away git repositories: a clean tree (with the
# look-alikes that must not be flagged) passes, and each kind of reference to a path outside the
# repository fails with its file:line. Run by .ci/run.
#
# The offending strings are assembled at run time so that this file itself stays clean.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
check="$root/scripts/check-self-contained.sh"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

up=".."
work="/wor""k"
passed=0
failed=0

ok() { passed=$((passed + 1)); echo "ok   $1"; }
not_ok() { failed=$((failed + 1)); echo "FAIL $1" >&2; }

new_repo() { # new_repo DIR: an empty repository with a root package and one crate
  rm -rf "$1"
  mkdir -p "$1/crates/sim/tests/it" "$1/src" "$1/scripts" "$1/docs"
  git -C "$1" init -q
  printf '[package]\nname = "top"\n' >"$1/Cargo.toml"
  printf '[package]\nname = "sim"\n[dependencies]\ntop = { path = "%s/%s" }\n' "$up" "$up" \
    >"$1/crates/sim/Cargo.toml"
}

commit_all() {
  git -C "$1" add -A
  git -C "$1" -c user.name=t -c user.email=t@example.invalid commit -q -m files
}

# --- 1. a clean tree, with everything that looks like a climb but stays inside -----------------
clean="$tmp/clean"
new_repo "$clean"
cat >"$clean/scripts/run.sh" <<EOF
#!/usr/bin/env bash
root="\$(cd "\$(dirname "\${BASH_SOURCE[0]}")/$up" && pwd)"
cd "\$root" && ls tests/fixtures
EOF
cat >"$clean/scripts/tool.py" <<EOF
from pathlib import Path
ROOT = Path(__file__).resolve().parents[1]
EOF
cat >"$clean/crates/sim/tests/it/helpers.rs" <<EOF
fn fixtures_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("$up/$up/tests/fixtures/graph")
}
fn ranges(v: &[u8]) -> usize { v[1..].len() + (0..3).len() }
fn rest() -> Config { Config { a: 1, ..Default::default() } }
EOF
cat >"$clean/src/lib.rs" <<EOF
#![doc = include_str!("$up/README.md")]
// https://example.com/a/$up/b and an ellipsis: .../auditLogs/signins
EOF
cat >"$clean/docs/guide.md" <<EOF
See [the README]($up/README.md) and \`resource 'Microsoft.OperationalInsights/workspaces@2022-10-01'\`.
Config lives in ~/$up/elsewhere only on your machine (home paths are not resolved).
EOF
echo "# top" >"$clean/README.md"
# Binary files and Cargo.lock are not read.
printf 'bin\0ary %s/shared %s/x\n' "$up" "$work" >"$clean/docs/blob.bin"
printf '# %s/main/Cargo.lock\n' "$work" >"$clean/Cargo.lock"
commit_all "$clean"
if out="$("$check" --repo "$clean" 2>&1)"; then
  ok "a clean tree passes"
else
  not_ok "a clean tree passes"
  echo "$out" >&2
fi

# --- 2. each offence is reported, with its file:line, and nothing else ------------------------
bad="$tmp/bad"
new_repo "$bad"
cp "$clean/scripts/run.sh" "$bad/scripts/"
cp "$clean/README.md" "$bad/"
printf 'line one\nfixtures are in %s/shared/fixtures/graph\n' "$up" >"$bad/docs/sibling.md"
printf '#!/bin/sh\ncat %s/shared/fixtures/graph/x.json\n' "$work" >"$bad/scripts/abs.sh"
printf 'fn d() -> std::path::PathBuf {\n    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("%s/%s/%s/fixtures")\n}\n' \
  "$up" "$up" "$up" >"$bad/crates/sim/tests/it/climb.rs"
printf 'fn f() -> String {\n    let root = env!("CARGO_MANIFEST_DIR");\n    format!("{root}/%s/other/x")\n}\n' \
  "$up" >"$bad/src/var.rs"
printf 'from pathlib import Path\nX = Path(__file__).resolve().parents[2] / "fixtures"\n' >"$bad/scripts/up.py"
printf '[elsewhere](%s/%s/x.md)\n' "$up" "$up" >"$bad/docs/link.md"
ln -s "$up/$up/outside" "$bad/docs/link-out"
commit_all "$bad"
expected=(
  "docs/sibling.md:2:"
  "scripts/abs.sh:2:"
  "crates/sim/tests/it/climb.rs:2:"
  "src/var.rs:3:"
  "scripts/up.py:2:"
  "docs/link.md:1:"
  "docs/link-out:0:"
)
status=0
out="$("$check" --repo "$bad" 2>&1)" || status=$?
if [[ $status -eq 1 ]]; then
  ok "an offending tree fails (exit 1)"
else
  not_ok "an offending tree fails (exit 1), got exit $status"
fi
for where in "${expected[@]}"; do
  if grep -qF "  $where" <<<"$out"; then
    ok "reports $where"
  else
    not_ok "reports $where"
  fi
done
listed="$(grep -c '^  ' <<<"$out" || true)"
unexpected="$(grep '^  ' <<<"$out" | grep -vF -e "${expected[0]}" -e "${expected[1]}" -e "${expected[2]}" \
  -e "${expected[3]}" -e "${expected[4]}" -e "${expected[5]}" -e "${expected[6]}" || true)"
if [[ -z "$unexpected" ]]; then
  ok "nothing else is reported ($listed lines)"
else
  not_ok "nothing else is reported: $unexpected"
fi
[[ $failed -eq 0 ]] || echo "$out" >&2

# --- 3. the offences removed, the same tree passes again --------------------------------------
git -C "$bad" rm -q docs/sibling.md scripts/abs.sh crates/sim/tests/it/climb.rs src/var.rs \
  scripts/up.py docs/link.md docs/link-out
commit_all "$bad"
if out="$("$check" --repo "$bad" 2>&1)"; then
  ok "the tree passes once the offences are gone"
else
  not_ok "the tree passes once the offences are gone"
  echo "$out" >&2
fi

echo "test-check-self-contained: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
