//! The top-level modules of this crate form layers: none uses, directly or through others, a
//! module that uses it. This test reads the sources (every `crate::` path outside comment
//! lines, grouped imports included) and fails on any circle, naming a line for each step of it.
//! `docs/ARCHITECTURE.md` (code map) draws the layers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// For each top-level module, the modules it names, each with the first place it does so.
type Uses = BTreeMap<String, BTreeMap<String, String>>;

fn rust_files(dir: &Path, files: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// A line without its `//` comment (a doc comment too: a doc link is no use). A `//` inside a
/// string literal (`"https://…"`) is no comment.
fn code_of(line: &str) -> &str {
    let mut in_string = false;
    let mut escaped = false;
    let mut chars = line.char_indices();
    while let Some((i, c)) = chars.next() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
        } else if line[i..].starts_with("'\"'") {
            chars.nth(1); // the char literal `'"'`
        } else if c == '"' {
            in_string = true;
        } else if line[i..].starts_with("//") {
            return &line[..i];
        }
    }
    line
}

/// The modules a source names after `crate::`, with the line of each mention; `crate::{a, b}`
/// names `a` and `b`. Comments do not count.
fn named_modules(source: &str) -> Vec<(String, usize)> {
    let code: String = source.lines().map(code_of).collect::<Vec<_>>().join("\n");
    let line_of = |offset: usize| code[..offset].matches('\n').count() + 1;
    let ident = |text: &str| -> String {
        text.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut found = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // The first segment of each path at the group's top level.
            let mut depth = 1;
            let mut segment_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => segment_start = true,
                    c if c.is_whitespace() => {}
                    _ if segment_start && depth == 1 => {
                        segment_start = false;
                        let name = ident(&group[i..]);
                        if !name.is_empty() && name != "self" {
                            found.push((name, line_of(at)));
                        }
                    }
                    _ => {}
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                found.push((name, line_of(at)));
            }
        }
    }
    found
}

fn uses() -> Uses {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut uses = Uses::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let top = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        // The crate root declares the modules; this file names modules in its test data.
        if top == "lib" || top == "main" || top == "layers" {
            continue;
        }
        let source = std::fs::read_to_string(&file).unwrap();
        let module = uses.entry(top.clone()).or_default();
        for (name, line) in named_modules(&source) {
            if name != top {
                module
                    .entry(name)
                    .or_insert_with(|| format!("src/{}:{line}", relative.display()));
            }
        }
    }
    uses
}

/// A circle of uses, as `a -> b (where) -> … -> a`, if there is one.
fn circle(uses: &Uses) -> Option<String> {
    fn visit(
        module: &str,
        uses: &Uses,
        path: &mut Vec<String>,
        done: &mut Vec<String>,
    ) -> Option<String> {
        if let Some(start) = path.iter().position(|m| m == module) {
            let mut steps: Vec<String> = path[start..].to_vec();
            steps.push(module.to_owned());
            let described: Vec<String> = steps
                .windows(2)
                .map(|pair| format!("{} -> {} ({})", pair[0], pair[1], uses[&pair[0]][&pair[1]]))
                .collect();
            return Some(described.join(", "));
        }
        if done.iter().any(|m| m == module) {
            return None;
        }
        path.push(module.to_owned());
        for next in uses.get(module).into_iter().flat_map(|m| m.keys()) {
            if let Some(found) = visit(next, uses, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.push(module.to_owned());
        None
    }
    let mut done = Vec::new();
    uses.keys()
        .find_map(|module| visit(module, uses, &mut Vec::new(), &mut done))
}

#[test]
fn no_module_uses_a_module_that_uses_it() {
    let uses = uses();
    // The reader sees the crate: these uses exist and are the right way round.
    for (module, used) in [
        ("pipeline", "storage"),
        ("pipeline", "config"),
        ("service", "pipeline"),
        ("storage", "config"),
        ("config", "redact"),
        ("client", "auth"),
        ("graph", "client"),
        ("source", "graph"),
        ("pipeline", "source"),
    ] {
        assert!(
            uses.get(module).is_some_and(|m| m.contains_key(used)),
            "{module} should use {used}: {uses:?}"
        );
    }
    assert_eq!(circle(&uses), None, "a circle of imports");
}

/// The source seam: the pipeline reaches APIs through `crate::source` only, so a new source
/// (another Graph stream, the Azure Activity Log) never touches it.
#[test]
fn the_pipeline_names_no_api() {
    let uses = uses();
    let pipeline = &uses["pipeline"];
    if let Some(at) = pipeline.get("graph") {
        panic!("the pipeline names `graph` at {at}: reach it through crate::source");
    }
}

#[test]
fn grouped_imports_and_comments_are_read() {
    let source = "//! [`crate::service::Service`]\n\
                  use crate::{config::Config, job};\n\
                  use crate::{\n    self,\n    storage::{Storage, ETag},\n};\n\
                  let _ = crate::timestamp::format(now); // crate::graph\n\
                  let _ = (\"https://x\", '\"', crate::http::build); // crate::auth\n";
    let names: Vec<(String, usize)> = named_modules(source);
    let names: Vec<(&str, usize)> = names.iter().map(|(n, l)| (n.as_str(), *l)).collect();
    assert_eq!(
        names,
        [
            ("config", 2),
            ("job", 2),
            ("storage", 3),
            ("timestamp", 7),
            ("http", 8)
        ]
    );
    let mut uses = Uses::new();
    let edge = |uses: &mut Uses, a: &str, b: &str| {
        uses.entry(a.into())
            .or_default()
            .insert(b.into(), format!("{a}.rs:1"));
    };
    edge(&mut uses, "a", "b");
    edge(&mut uses, "b", "c");
    assert_eq!(circle(&uses), None);
    edge(&mut uses, "c", "a");
    assert_eq!(
        circle(&uses).as_deref(),
        Some("a -> b (a.rs:1), b -> c (b.rs:1), c -> a (c.rs:1)")
    );
}
