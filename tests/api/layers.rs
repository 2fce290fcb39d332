//! The house's dependencies run one way: a test that reads the imports of every file in `src/`
//! and fails on an edge that points up the layer table below, or on two top-level modules that
//! reach each other. See ARCHITECTURE.md for what each layer owns.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The top-level modules of `src/`, bottom to top. A module may import from its own layer and
/// the layers below it, never from above; modules in one layer must not form a circle.
const LAYERS: &[&[&str]] = &[
    // Leaves: values, settings from the environment, signing, logging, the names of moderation
    // actions and who took them, sanitised HTML (Markdown, comment text, identicons).
    &["config", "text", "crypto", "telemetry", "actions", "render"],
    // The connection pool, the schema, migrations.
    &["db"],
    &["error"],
    // Records kept in the database that every feature reads: site-wide settings, staff
    // accounts, the moderation log; and the cache of rendered comment threads.
    &["site", "users", "audit", "thread_cache"],
    // What every handler and background task can reach, and the clock.
    &["state"],
    // HTTP helpers (responses, redirects, form decoding, field errors) and the shared page
    // layout.
    &["http", "views"],
    // Mail: the outbox, its worker, tokens and email templates; knows no feature.
    &["notify"],
    // What operators' machines ask of a running server: /healthz and /metrics.
    &["ops"],
    // Sessions, login, CSRF, password reset.
    &["auth"],
    // The media library: pictures, their files in the database, the /media/ route, and the
    // lookup that gives a post's pictures their sizes when it is rendered.
    &["media"],
    &["posts"],
    // Comments may use posts, never the reverse; the post page (a post with its thread) lives
    // in comments.
    &["comments"],
    // The admin layout every staff page shares (it shows the pending count).
    &["staff"],
    &["moderation"],
    // Pages over the features: feeds, the admin's own pages, and privacy (a commenter's data:
    // export and erasure across comments, moderation and mail; the privacy page).
    &["feeds", "admin", "privacy", "import", "archive"],
    // Wiring: only these build the application and know every feature (the welcome post
    // writes a post and a comment on a new site).
    &["startup", "cli", "check", "lib", "main", "welcome"],
];

#[test]
fn imports_between_the_top_level_modules_of_src_point_down_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let rank: BTreeMap<&str, usize> = LAYERS
        .iter()
        .enumerate()
        .flat_map(|(i, layer)| layer.iter().map(move |m| (*m, i)))
        .collect();

    // (from, to) -> the places that make the edge, for the failure message.
    let mut edges: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut unknown = BTreeSet::new();
    for file in rust_files(&src) {
        let from = top_level_module(&src, &file);
        let text = std::fs::read_to_string(&file).unwrap();
        let code = strip_comments_and_literals(&text);
        for (line, to) in crate_imports(&code) {
            for module in [&from, &to] {
                if !rank.contains_key(module.as_str()) {
                    unknown.insert(module.clone());
                }
            }
            if to != from {
                let place = format!("{}:{line}", file.strip_prefix(&src).unwrap().display());
                edges.entry((from.clone(), to)).or_default().push(place);
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "modules missing from the layer table in tests/api/layers.rs: {unknown:?}"
    );

    // Upward edges, and edges inside one layer that lead back to where they started.
    let mut violations = Vec::new();
    for ((from, to), places) in &edges {
        let (rank_from, rank_to) = (rank[from.as_str()], rank[to.as_str()]);
        let why = if rank_from < rank_to {
            "upward"
        } else if rank_from == rank_to && reaches(&edges, &rank, to, from) {
            "circular within its layer"
        } else {
            continue;
        };
        violations.push(format!("{from} -> {to} ({why}): {}", places.join(", ")));
    }
    assert!(
        violations.is_empty(),
        "{} import edges break the layers:\n{}",
        violations.len(),
        violations.join("\n")
    );
}

#[test]
fn the_import_reader_sees_grouped_nested_and_inline_paths_but_not_comments_or_strings() {
    let code = strip_comments_and_literals(
        "use crate::{db::{DbConn, schema}, posts::Post, self as _};\n\
         // use crate::startup;\n\
         /* crate::admin */ let s = \"crate::notify\"; let c = '\"'; let q = '\\'';\n\
         let r = r#\"crate::auth \"# ;\n\
         fn f<'a>(x: &'a str) { crate::render::render(x); }\n\
         use crate::comments;\n",
    );
    let found: Vec<(usize, String)> = crate_imports(&code);
    let found: Vec<(usize, &str)> = found.iter().map(|(l, m)| (*l, m.as_str())).collect();
    assert_eq!(
        found,
        [(1, "db"), (1, "posts"), (5, "render"), (6, "comments")]
    );
}

/// Whether `from` leads to `to` through edges that stay inside one layer.
fn reaches(
    edges: &BTreeMap<(String, String), Vec<String>>,
    rank: &BTreeMap<&str, usize>,
    from: &str,
    to: &str,
) -> bool {
    let mut seen = BTreeSet::from([from.to_string()]);
    let mut stack = vec![from.to_string()];
    while let Some(at) = stack.pop() {
        if at == to {
            return true;
        }
        for (a, b) in edges.keys() {
            if *a == at && rank[a.as_str()] == rank[b.as_str()] && seen.insert(b.clone()) {
                stack.push(b.clone());
            }
        }
    }
    false
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// `src/posts/admin.rs` belongs to `posts`, `src/views.rs` to `views`.
fn top_level_module(src: &Path, file: &Path) -> String {
    let first = file.strip_prefix(src).unwrap().components().next().unwrap();
    let name = first.as_os_str().to_string_lossy();
    name.trim_end_matches(".rs").to_string()
}

/// The code with comments and the contents of string and character literals blanked out
/// (newlines kept, so line numbers still match).
fn strip_comments_and_literals(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == 'r'
            && matches!(next, Some('#' | '"'))
            && !chars
                .get(i.wrapping_sub(1))
                .is_some_and(|p| p.is_alphanumeric() || *p == '_')
        {
            // A raw string: r"…", r#"…"#, …
            let mut j = i + 1;
            while chars.get(j) == Some(&'#') {
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            let hashes = j - i - 1;
            let closing: String = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            out.push('"');
            let mut k = j + 1;
            while k < chars.len() && !chars[k..].starts_with(&closing.chars().collect::<Vec<_>>()) {
                out.push(blank(chars[k]));
                k += 1;
            }
            out.push('"');
            i = k + closing.chars().count();
        } else if c == '"' {
            out.push('"');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if let Some(&ch) = chars.get(i) {
                    out.push(blank(ch));
                }
                i += 1;
            }
            out.push('"');
            i += 1;
        } else if c == '\'' && (next == Some('\\') || chars.get(i + 2) == Some(&'\'')) {
            // A character literal ('x', '\n', '\''), not a lifetime.
            out.push('\'');
            i += 1;
            if chars.get(i) == Some(&'\\') {
                // The backslash and the character it escapes, which may be a quote.
                out.push_str("  ");
                i += 2;
            }
            while i < chars.len() && chars[i] != '\'' {
                out.push(' ');
                i += 1;
            }
            out.push('\'');
            i += 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Every `crate::x` path in the code, grouped `use crate::{a, b::{c, d}}` imports included, as
/// (line, top-level module) pairs.
fn crate_imports(code: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let bytes = code.as_bytes();
    let mut from = 0;
    while let Some(at) = code[from..].find("crate::") {
        let start = from + at;
        from = start + "crate::".len();
        // `lectern_crate::` or `$crate::` are not this crate's paths.
        if start > 0
            && (bytes[start - 1].is_ascii_alphanumeric() || b"_$".contains(&bytes[start - 1]))
        {
            continue;
        }
        let line = code[..start].matches('\n').count() + 1;
        let rest = code[from..].trim_start();
        if let Some(group) = rest.strip_prefix('{') {
            for module in group_heads(group) {
                found.push((line, module));
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.push((line, name));
            }
        }
    }
    found
}

/// The first segment of every item of a `{…}` group (the text after its opening brace).
fn group_heads(group: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut at_item_start = true;
    let mut chars = group.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => at_item_start = true,
            c if c.is_whitespace() => {}
            c if at_item_start && depth == 0 => {
                at_item_start = false;
                let mut name = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_alphanumeric() || n == '_' {
                        name.push(n);
                        chars.next();
                    } else {
                        break;
                    }
                }
                if name != "self" && name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                    heads.push(name);
                }
            }
            _ => {}
        }
    }
    heads
}
