//! The import property, shared by the fuzz target (`fuzz/fuzz_targets/
//! import.rs`) and the tests (`crates/kvgit/tests/import.rs`): any bytes
//! fed to `kvgit::jsonl::import` give an error or a store that reads back
//! exactly what a model parse of the same bytes says, and never a panic.
//! The model is written here separately (split on `\n`, parse each line
//! with serde_json), so it checks the bounded reader and the entry rules.

use std::collections::BTreeMap;

use base64::Engine;
use kvgit::jsonl::{self, ExportOptions, ImportOptions};
use kvgit::Db;
use serde_json::Value;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// Entries on the branch before the import, which it must keep unless
/// the input replaces them.
const BASE: &[(&str, &str)] = &[("a", "base"), ("keep", "me")];

/// Imports `input` into a branch holding [`BASE`] and checks the outcome
/// against [`model`]; then exports the result and imports that into a
/// fresh store, which must hold the same tree.
pub fn check(input: &[u8]) {
    let db = Db::memory();
    let main = db.branch("main").expect("a branch");
    for (k, v) in BASE {
        main.put(k, v).expect("base entries");
    }
    let before = main.head().expect("head");
    let mut tx = main.transaction().expect("a transaction");
    let result = jsonl::import(&mut tx, input, ImportOptions::default());
    match (result, model(input)) {
        (Ok(report), Ok((expected, entries))) => {
            assert_eq!(report.entries, entries, "entries staged");
            assert_eq!(report.bytes, input.len() as u64, "bytes read");
            tx.commit().expect("an import that parsed commits");
            let snapshot = main.snapshot().expect("snapshot");
            let mut want: Model = BASE
                .iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
                .collect();
            want.extend(expected);
            let got: Model = snapshot
                .range::<std::ops::RangeFull>(..)
                .map(|e| e.expect("read back"))
                .collect();
            assert_eq!(got, want, "the store holds what the input says");
            round_trip(&snapshot);
        }
        (Err(err), Err(line)) => {
            assert_eq!(err.line(), line, "the first bad line: {err}");
            assert!(!tx.has_changes(), "a refused import stages nothing");
            drop(tx);
            assert_eq!(main.head().expect("head"), before);
        }
        (Ok(_), Err(line)) => panic!("import accepted what the model refuses at line {line}"),
        (Err(err), Ok(_)) => panic!("import refused what the model accepts: {err}"),
    }
}

/// Export then import into a fresh store gives the same tree.
fn round_trip(snapshot: &kvgit::Snapshot) {
    let mut text = Vec::new();
    let report = jsonl::export(snapshot, &mut text, ExportOptions::default()).expect("export");
    assert_eq!(report.entries, snapshot.len());
    assert_eq!(report.bytes, text.len() as u64);
    let db = Db::memory();
    let main = db.branch("main").expect("a branch");
    let mut tx = main.transaction().expect("a transaction");
    jsonl::import(&mut tx, &text[..], ImportOptions::default()).expect("an export imports");
    tx.commit().expect("commit");
    assert_eq!(
        kvgit::advanced::tree(&main.snapshot().expect("snapshot")).root(),
        kvgit::advanced::tree(snapshot).root(),
        "export then import keeps every entry"
    );
}

/// The entries `input` holds (later lines win) and how many lines held
/// one, or the number of the first line that is not a valid entry.
pub fn model(input: &[u8]) -> Result<(Model, u64), u64> {
    let mut model = Model::new();
    let mut entries = 0;
    let mut lines: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    for (i, line) in lines.iter().enumerate() {
        let number = i as u64 + 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let (key, value) = model_entry(line).ok_or(number)?;
        model.insert(key, value);
        entries += 1;
    }
    Ok((model, entries))
}

fn model_entry(line: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let Value::Object(map) = serde_json::from_slice::<Value>(line).ok()? else {
        return None;
    };
    let bytes = |v: &Value| -> Option<Vec<u8>> {
        match v {
            Value::String(s) => Some(s.clone().into_bytes()),
            Value::Object(o) if o.len() == 1 => base64::engine::general_purpose::STANDARD
                .decode(o.get("base64")?.as_str()?)
                .ok(),
            _ => None,
        }
    };
    let key = bytes(map.get("key")?)?;
    let value = bytes(map.get("value")?)?;
    let key_ok = !key.is_empty() && key.len() <= kvgit::MAX_KEY_LEN;
    let value_ok = value.len() as u64 <= kvgit::MAX_VALUE_LEN;
    (key_ok && value_ok).then_some((key, value))
}
