//! Every public method of the facade's main types, and every public free
//! function of its modules, carries a rustdoc example (a code block, which
//! `cargo test --doc` compiles and runs).
//!
//! The check reads the source files: a `pub fn` at the top level of a
//! module (or of a `pub mod` block in it), or inside an inherent `impl`
//! block of one of [`TYPES`], must have a doc comment containing a fenced
//! code block. Deprecated methods are exempt (their doc points to the
//! replacement, which has the example).

use std::collections::BTreeMap;
use std::path::Path;

/// The source files checked, relative to `src/`.
const FILES: &[&str] = &[
    "lib.rs",
    "db.rs",
    "branch.rs",
    "tx.rs",
    "snapshot.rs",
    "namespace.rs",
    "file.rs",
    "jsonl.rs",
    "typed_merge.rs",
    "compact.rs",
    "remote.rs",
    "tx_at.rs",
    "error.rs",
    // The merge functions and their registry, in kvgit-merge.
    "../../merge/src/resolve.rs",
    "../../merge/src/builtin.rs",
];

/// The types whose inherent methods must all have examples.
const TYPES: &[&str] = &[
    "Db",
    "DbBuilder",
    "Branch",
    "Transaction",
    "Snapshot",
    "CommitInfo",
    "Namespace",
    "TxNamespace",
    "KeyFile",
    "ImportError",
    "Typed",
    "Remote",
    "Error",
    "Registry",
];

/// The type an `impl` line (at column 0) implements inherently, if it is
/// one of [`TYPES`]; `None` for trait impls and other types.
fn impl_type(line: &str) -> Option<&'static str> {
    let rest = line.strip_prefix("impl")?;
    if line.contains(" for ") {
        return None;
    }
    // Skip the generics of the impl itself: `impl<'a, T> Name<..> {`.
    let rest = match rest.strip_prefix('<') {
        Some(generics) => {
            let mut depth = 1;
            let mut end = generics.len();
            for (i, c) in generics.char_indices() {
                match c {
                    '<' => depth += 1,
                    '>' => {
                        depth -= 1;
                        if depth == 0 {
                            end = i + 1;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            &generics[end..]
        }
        None => rest,
    };
    let name: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    TYPES.iter().copied().find(|t| *t == name)
}

/// One public function found: where it is, and whether its doc has an
/// example.
struct Found {
    owner: String,
    name: String,
    line: usize,
    has_example: bool,
}

/// The doc comment and attributes right above line `at`.
fn doc_above(lines: &[&str], at: usize) -> (String, bool) {
    let mut doc = String::new();
    let mut deprecated = false;
    let mut i = at;
    while i > 0 {
        let above = lines[i - 1].trim_start();
        if above.starts_with("///") {
            doc.insert_str(0, &format!("{above}\n"));
        } else if above.starts_with("#[") {
            deprecated |= above.starts_with("#[deprecated");
        } else {
            break;
        }
        i -= 1;
    }
    (doc, deprecated)
}

/// The public functions of one source file that must have examples.
fn scan(file: &str, source: &str) -> Vec<Found> {
    let module = file.trim_end_matches(".rs");
    let lines: Vec<&str> = source.lines().collect();
    let mut found = Vec::new();
    // The owner of the block open at column 0: a checked type's impl or a
    // `pub mod`; `Some("")` for a block whose functions are not checked.
    let mut block: Option<String> = None;
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with('}') {
            block = None;
            continue;
        }
        if block.is_none() && line.ends_with('{') {
            if line.starts_with("impl") {
                block = Some(impl_type(line).unwrap_or_default().to_string());
            } else if let Some(rest) = line.strip_prefix("pub mod ") {
                block = Some(format!("{module}::{}", rest.trim_end_matches(" {")));
            } else if !line.starts_with(' ') && !line.starts_with("pub fn") {
                block = Some(String::new());
            }
        }
        let (owner, signature) = if let Some(sig) = line.strip_prefix("pub fn ") {
            (format!("{module}::"), sig)
        } else if let Some(sig) = line.strip_prefix("    pub fn ") {
            match &block {
                Some(owner) if !owner.is_empty() => (format!("{owner}::"), sig),
                _ => continue,
            }
        } else {
            continue;
        };
        let (doc, deprecated) = doc_above(&lines, i);
        if deprecated {
            continue;
        }
        let name: String = signature
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        found.push(Found {
            owner: owner.trim_end_matches("::").to_string(),
            name,
            line: i + 1,
            has_example: doc.contains("```"),
        });
    }
    found
}

#[test]
fn every_public_method_has_an_example() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut missing = Vec::new();
    let mut coverage: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for file in FILES {
        let source = std::fs::read_to_string(src.join(file)).expect("the source file is there");
        for f in scan(file, &source) {
            let entry = coverage.entry(f.owner.clone()).or_default();
            entry.1 += 1;
            if f.has_example {
                entry.0 += 1;
            } else {
                missing.push(format!("src/{file}:{}: {}::{}", f.line, f.owner, f.name));
            }
        }
    }
    for (owner, (with, total)) in &coverage {
        println!("{owner}: {with}/{total} with an example");
    }
    assert!(
        missing.is_empty(),
        "public functions without a rustdoc example:\n{}",
        missing.join("\n")
    );
    // The scan itself must find the types it is about.
    for t in ["Db", "Branch", "Transaction", "Snapshot", "Namespace"] {
        assert!(coverage.contains_key(t), "no method of {t} found");
    }
}

#[test]
fn the_scan_finds_methods_free_functions_and_skips_the_rest() {
    let source = "\
impl Db {
    /// Documented.
    ///
    /// ```
    /// x
    /// ```
    pub fn with(&self) {}

    /// No example.
    #[cfg(feature = \"x\")]
    pub fn without(&self) {}

    pub(crate) fn internal(&self) {}

    /// Old.
    #[deprecated]
    pub fn old(&self) {}
}

impl std::fmt::Debug for Db {
    pub fn fmt(&self) {}
}

impl<'a> TxNamespace<'a> {
    pub fn get(&self) {}
}

struct Other;

impl Other {
    pub fn skipped(&self) {}
}

/// Free.
pub fn free() {}

pub mod advanced {
    /// Inner.
    pub fn repo() {}
}
";
    let found: Vec<(String, String, bool)> = scan("db.rs", source)
        .into_iter()
        .map(|f| (f.owner, f.name, f.has_example))
        .collect();
    let expected = [
        ("Db", "with", true),
        ("Db", "without", false),
        ("TxNamespace", "get", false),
        ("db", "free", false),
        ("db::advanced", "repo", false),
    ];
    let expected: Vec<(String, String, bool)> = expected
        .iter()
        .map(|(o, n, e)| (o.to_string(), n.to_string(), *e))
        .collect();
    assert_eq!(found, expected);
}
