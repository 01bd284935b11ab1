#!/usr/bin/env bash
# Fails if a tracked file refers to a path outside the repository, so that a fresh clone, with
# nothing beside it, builds and passes its own tests (CI: .ci/run; self-test:
# scripts/test-check-self-contained.sh).
#
#   scripts/check-self-contained.sh              check this repository
#   scripts/check-self-contained.sh --repo DIR   check the git work tree at DIR
#
# Checked: every tracked text file (`git ls-files`; binary files and Cargo.lock are skipped) and
# every tracked symlink. Each finding is printed as `file:line: why`; the exit status is 1 if there
# is any, 0 otherwise. A line is flagged when it has
#
#   1. the sibling-checkout fixture folder: `..` + `/shared`;
#   2. an absolute path into the development machine's work folder: `[/]work` followed by `/` or
#      the end of the path;
#   3. a relative path that climbs above the repository root. Only path-like tokens are looked
#      at: maximal runs of `A-Z a-z 0-9 _ . ~ @ + { } $ / -` that contain a `/` and a `..`
#      segment (so Rust ranges like `0..n`, `..Default::default()` and an ellipsis like
#      `.../auditLogs` are not paths). A token is resolved segment by segment against every
#      directory it may be relative to, and flagged if it leaves the root from any of them:
#        - a token that starts with a name or `..`: the file's own directory; for Rust files
#          also the package directory (the nearest tracked Cargo.toml: CARGO_MANIFEST_DIR,
#          cargo's working directory for tests and build scripts); for scripts (*.sh, *.bash,
#          *.py, .ci/*) also the repository root, where they run;
#          (Rust lines with include_str!, include_bytes!, include! or #[path] are relative to
#          the file only);
#        - a token whose first segment is a variable (such as `$root`, `${dir}` or `{root}`), or
#          that comes right after `)` or `]` (as in `$(dirname "$0")/..`): the variable is taken
#          as the package directory in Rust files, as the file's directory if the line uses
#          dirname, BASH_SOURCE, `$0` or `__file__`, and as the repository root otherwise;
#        - absolute paths, URLs and `~/...` are not resolved (only rule 2 applies to them);
#   4. in Python, `__file__` with `.parents[N]` that reaches above the root (`parents[0]` is
#      the file's directory);
#
# and a tracked symlink is flagged if its target resolves outside the repository.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --repo)
      [[ $# -ge 2 ]] || { echo "--repo needs a directory" >&2; exit 2; }
      repo="$(cd "$2" && pwd)"
      shift 2
      ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "unknown argument: $1 (see --help)" >&2
      exit 2
      ;;
  esac
done
cd "$(git -C "$repo" rev-parse --show-toplevel)"

findings=()

# Symlinks (mode 120000): their target must stay inside the work tree.
top="$(pwd -P)"
while IFS= read -r -d '' entry; do
  mode="${entry%% *}"
  path="${entry#*$'\t'}"
  [[ "$mode" == 120000 && -L "$path" ]] || continue
  target="$(readlink "$path")"
  case "$target" in
    /*) resolved="$(realpath -m -- "$target")" ;;
    *) resolved="$(realpath -m -- "$(dirname "$path")/$target")" ;;
  esac
  if [[ "$resolved" != "$top" && "$resolved" != "$top/"* ]]; then
    findings+=("$path:0: symlink to $target leaves the repository")
  fi
done < <(git ls-files -s -z)

# Text files: tracked, present, not symlinks, not Cargo.lock; `grep -I` drops binary files (and
# empty ones, which have nothing to check).
candidates=()
while IFS= read -r -d '' path; do
  [[ -f "$path" && ! -L "$path" ]] || continue
  [[ "$(basename "$path")" == Cargo.lock ]] && continue
  candidates+=("./$path")
done < <(git ls-files -z)
texts=()
if [[ ${#candidates[@]} -gt 0 ]]; then
  while IFS= read -r -d '' path; do
    texts+=("$path")
  done < <(printf '%s\0' "${candidates[@]}" | xargs -0 grep -IlZ -e '' -- 2>/dev/null || true)
fi

# Package directories (where a tracked Cargo.toml is), newline-separated, "." for the root.
pkg_dirs="$(git ls-files -- 'Cargo.toml' '*/Cargo.toml' | sed -e 's#^Cargo\.toml$#.#' -e 's#/Cargo\.toml$##')"

if [[ ${#texts[@]} -gt 0 ]]; then
  while IFS= read -r line; do
    findings+=("$line")
  done < <(PKG_DIRS="$pkg_dirs" awk '
    function dirof(p,   i) {
      i = match(p, /\/[^\/]*$/)
      return i ? substr(p, 1, i - 1) : ""
    }
    function depth(d,   t) {
      if (d == "") return 0
      t = d
      return gsub(/\//, "/", t) + 1
    }
    # The package directory of file f, or NONE.
    function pkgof(f,   d) {
      d = dirof(f)
      while (1) {
        if (d in pkg) return d
        if (d == "") return NONE
        d = dirof(d)
      }
    }
    # 1 if the segments of tok, from the first+1-th on, leave the root when started at depth d.
    function leaves(tok, first, d,   n, seg, i) {
      n = split(tok, seg, "/")
      for (i = first + 1; i <= n; i++) {
        if (seg[i] == "..") {
          if (--d < 0) return 1
        } else if (seg[i] != "" && seg[i] != ".") {
          d++
        }
      }
      return 0
    }
    function report(why) {
      print file ":" FNR ": " why
    }
    BEGIN {
      NONE = "\001"
      n = split(ENVIRON["PKG_DIRS"], p, "\n")
      for (i = 1; i <= n; i++) pkg[p[i] == "." ? "" : p[i]] = 1
      up = ".."
      shared = up "/shared"
      work_re = "(^|[^A-Za-z0-9_.~-])/wor[k](/|[^A-Za-z0-9_.-]|$)"
      token_re = "[A-Za-z0-9_.~@+{}$/-]+"
    }
    FNR == 1 {
      file = FILENAME
      sub(/^\.\//, "", file)
      filedir = dirof(file)
      fd = depth(filedir)
      is_rust = file ~ /\.rs$/
      is_script = file ~ /\.(sh|bash|py)$/ || file ~ /^\.ci\//
      is_python = file ~ /\.py$/
      pk = is_rust ? pkgof(file) : NONE
      pd = (pk == NONE) ? -1 : depth(pk)
    }
    {
      line = $0
      if (index(line, shared)) report("refers to the sibling folder " shared)
      if (line ~ work_re) report("absolute path into the machine'"'"'s work folder")
      if (is_python && index(line, "__file__")) {
        s = line
        while (match(s, /parents\[[0-9]+\]/)) {
          k = substr(s, RSTART + 8, RLENGTH - 9) + 0
          if (k > fd) report("__file__ parents[" k "] is above the repository root")
          s = substr(s, RSTART + RLENGTH)
        }
      }
      if (index(line, up) == 0) next
      anchored = line ~ /dirname|BASH_SOURCE|\$0|__file__/
      file_relative = is_rust && line ~ /include(_str|_bytes)?!|#\[path/
      s = line
      while (match(s, token_re)) {
        tok = substr(s, RSTART, RLENGTH)
        prev = RSTART > 1 ? substr(s, RSTART - 1, 1) : ""
        s = substr(s, RSTART + RLENGTH)
        if (index(tok, "/") == 0 || ("/" tok "/") !~ /\/\.\.\//) continue
        first_seg = tok
        sub(/\/.*/, "", first_seg)
        if (first_seg ~ /^~/) continue
        if (substr(tok, 1, 1) == "/" && prev != ")" && prev != "]") continue
        out = 0
        if (substr(tok, 1, 1) == "/" || first_seg ~ /[$}{]/) {
          # A variable or computed prefix stands for a directory of the project.
          skip = (substr(tok, 1, 1) == "/") ? 0 : 1
          if (is_rust && pd >= 0) base = pd
          else if (anchored) base = fd
          else base = 0
          out = leaves(tok, skip, base)
        } else {
          out = leaves(tok, 0, fd)
          if (!out && pd >= 0 && !file_relative) out = leaves(tok, 0, pd)
          if (!out && is_script) out = leaves(tok, 0, 0)
        }
        if (out) report(tok " climbs above the repository root")
      }
    }
  ' "${texts[@]}")
fi

if [[ ${#findings[@]} -gt 0 ]]; then
  echo "check-self-contained: ${#findings[@]} reference(s) to paths outside the repository:" >&2
  printf '  %s\n' "${findings[@]}" >&2
  exit 1
fi
echo "check-self-contained: ${#texts[@]} text files clean (nothing refers outside the repository)"
