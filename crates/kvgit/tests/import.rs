//! JSON lines import (`kvgit::jsonl`): the fuzz target's regressions
//! (`fuzz/regressions/import/*`) replayed, a property over random bytes
//! and lines, and the cases of issue #15 (an over-long line).

#![cfg(feature = "json")]

#[path = "import/check.rs"]
mod check;

use std::io::Read;
use std::path::Path;

use kvgit::jsonl::{self, ImportError, ImportOptions};
use kvgit::Db;
use proptest::prelude::*;

#[test]
fn fuzz_regressions_replay() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/import");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("fuzz/regressions/import") {
        let path = entry.expect("a directory entry").path();
        let input = std::fs::read(&path).expect("a regression input");
        let name = path.display().to_string();
        let outcome = std::panic::catch_unwind(|| check::check(&input));
        assert!(outcome.is_ok(), "{name} fails the import check");
        seen += 1;
    }
    assert!(seen >= 5, "regression inputs found: {seen}");
}

#[test]
fn a_line_longer_than_the_limit_is_refused_with_its_number_unread() {
    let db = Db::memory();
    let main = db.branch("main").expect("branch");
    let mut tx = main.transaction().expect("tx");
    // Line 2 goes on for 4 GiB; only the first max_line_len bytes of it
    // may be read.
    let head = &b"{\"key\": \"a\", \"value\": \"1\"}\n{\"key\": \"b\", \"value\": \""[..];
    let endless = std::io::repeat(b'x').take(4 << 30);
    let mut input = std::io::BufReader::new(head.chain(endless));
    let options = ImportOptions {
        max_line_len: 1000,
        ..ImportOptions::default()
    };
    let err = jsonl::import(&mut tx, &mut input, options).expect_err("refused");
    assert!(
        matches!(err, ImportError::LineTooLong { line: 2, max: 1000 }),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "line 2: longer than the largest valid entry (1000 bytes)"
    );
    assert!(!tx.has_changes(), "nothing staged");
    let mut rest = Vec::new();
    let left = input.take(1 << 20).read_to_end(&mut rest).expect("read");
    assert_eq!(left, 1 << 20, "the rest of the line was never read");
}

#[test]
fn the_default_line_limit_fits_the_largest_entry_as_export_writes_it() {
    // Control bytes are the worst case: 6 bytes each (\u0001) in a string.
    let (key, value) = ("\u{1}".repeat(4096), "\u{1}".repeat(1000));
    let line = serde_json::to_vec(&serde_json::json!({"key": key, "value": value})).expect("json");
    let overhead = line.len() - 6 * (4096 + 1000);
    let largest = 6 * (kvgit::MAX_KEY_LEN + kvgit::MAX_VALUE_LEN as usize) + overhead;
    assert!(
        jsonl::MAX_LINE_LEN >= largest,
        "{} < {largest}",
        jsonl::MAX_LINE_LEN
    );
    // And that line imports.
    let db = Db::memory();
    let main = db.branch("main").expect("branch");
    let mut tx = main.transaction().expect("tx");
    jsonl::import(&mut tx, &line[..], ImportOptions::default()).expect("imports");
    assert_eq!(
        tx.get(&key).expect("staged").as_deref(),
        Some(value.as_bytes())
    );
}

#[test]
fn bad_lines_say_which_and_why_and_stage_nothing() {
    let cases: &[(&str, &str)] = &[
        (
            "{\"key\": \"a\", \"value\": \"1\"}\nnot json\n",
            "line 2: not valid JSON",
        ),
        ("\n\n[1]\n", "line 3: expected an object"),
        ("{\"value\": \"1\"}", "line 1: no \"key\" field"),
        (
            "{\"key\": 3, \"value\": \"1\"}",
            "line 1: key: must be a string",
        ),
        (
            "{\"key\": \"\", \"value\": \"1\"}",
            "line 1: key of 0 bytes: keys must be 1 to 4096 bytes",
        ),
        (
            "{\"key\": {\"base64\": \"!\"}, \"value\": \"1\"}",
            "line 1: key: bad base64",
        ),
    ];
    for (input, want) in cases {
        let db = Db::memory();
        let main = db.branch("main").expect("branch");
        let mut tx = main.transaction().expect("tx");
        let err =
            jsonl::import(&mut tx, input.as_bytes(), ImportOptions::default()).expect_err(input);
        assert!(err.to_string().starts_with(want), "{input:?}: {err}");
        assert!(!tx.has_changes());
    }
    let long_key = format!("{{\"key\": \"{}\", \"value\": \"1\"}}", "k".repeat(4097));
    check::check(long_key.as_bytes());
}

#[test]
fn progress_is_reported_per_line() {
    let db = Db::memory();
    let main = db.branch("main").expect("branch");
    let mut tx = main.transaction().expect("tx");
    let mut seen = Vec::new();
    let input = "{\"key\": \"a\", \"value\": \"1\"}\n\n{\"key\": \"b\", \"value\": \"2\"}";
    let report = jsonl::import(
        &mut tx,
        input.as_bytes(),
        ImportOptions {
            progress: Some(Box::new(|r: &jsonl::ImportReport| {
                seen.push((r.lines, r.entries))
            })),
            ..ImportOptions::default()
        },
    )
    .expect("import");
    assert_eq!(seen, [(1, 1), (2, 1), (3, 2)]);
    assert_eq!(report.bytes, input.len() as u64);
}

/// One line of an import: mostly valid entries over a few keys, with
/// hostile ones mixed in.
fn line() -> impl Strategy<Value = Vec<u8>> {
    let key = prop_oneof![
        "[a-c]{1,2}".prop_map(|k| serde_json::json!(k)),
        proptest::collection::vec(any::<u8>(), 0..4).prop_map(|b| jsonl::to_json(&b)),
        Just(serde_json::json!("")),
    ];
    let value = prop_oneof![
        "[ -~]{0,8}".prop_map(|v| serde_json::json!(v)),
        proptest::collection::vec(any::<u8>(), 0..8).prop_map(|b| jsonl::to_json(&b)),
        Just(serde_json::json!({"base64": "not base64"})),
        Just(serde_json::json!(7)),
    ];
    prop_oneof![
        8 => (key, value).prop_map(|(k, v)| {
            serde_json::to_vec(&serde_json::json!({"key": k, "value": v})).expect("json")
        }),
        1 => proptest::collection::vec(any::<u8>(), 0..12),
        1 => Just(b"   \r".to_vec()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_import_or_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        check::check(&bytes);
    }

    #[test]
    fn random_lines_import_or_fail_cleanly(
        lines in proptest::collection::vec(line(), 0..8),
        newline_at_end in any::<bool>(),
    ) {
        let mut input = lines.join(&b'\n');
        if newline_at_end {
            input.push(b'\n');
        }
        check::check(&input);
    }
}
