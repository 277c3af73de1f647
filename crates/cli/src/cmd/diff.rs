//! `kvgit diff`.

use std::io::Write;

use anyhow::Result;
use kvgit::ChangeKind;
use serde_json::{json, Value};

use crate::output::{json_bytes, lossy, paint, painted, stdout, write_json};
use crate::store::{resolve, Ctx};

/// Lists the keys that differ from revision `a` to revision `b`; with
/// `patch`, their old and new values too.
pub fn run(ctx: &Ctx, a: &str, b: &str, json: bool, patch: bool) -> Result<()> {
    let db = ctx.open_read_only()?;
    let (a, b) = (resolve(&db, a)?, resolve(&db, b)?);
    let mut out = stdout();
    if json {
        let listed: Vec<Value> = db
            .diff(&a, &b)?
            .iter()
            .map(|c| {
                json!({
                    "change": kind_word(c.kind),
                    "key": json_bytes(&c.key),
                    "old": c.old.as_deref().map(json_bytes),
                    "new": c.new.as_deref().map(json_bytes),
                })
            })
            .collect();
        write_json(&mut out, &Value::Array(listed))?;
    } else if patch {
        for change in db.diff(&a, &b)? {
            writeln!(out, "{}", header(change.kind, &change.key))?;
            if let Some(old) = &change.old {
                value_lines(&mut out, '-', paint::REMOVED, old)?;
            }
            if let Some(new) = &change.new {
                value_lines(&mut out, '+', paint::ADDED, new)?;
            }
        }
    } else {
        // Keys only: the tree diff, without loading any value.
        let (sa, sb) = (db.checkout(&a)?, db.checkout(&b)?);
        for change in sa.changed_keys(&sb) {
            let (kind, key) = change?;
            writeln!(out, "{}", header(kind, &key))?;
        }
    }
    out.flush()?;
    Ok(())
}

/// The word `--json` uses for a change.
fn kind_word(kind: ChangeKind) -> &'static str {
    match kind {
        ChangeKind::Added => "added",
        ChangeKind::Removed => "removed",
        ChangeKind::Modified => "modified",
    }
}

/// `A key`, `D key` (removed) or `M key`, git's letters, coloured.
fn header(kind: ChangeKind, key: &[u8]) -> String {
    let (letter, style) = match kind {
        ChangeKind::Added => ("A", paint::ADDED),
        ChangeKind::Removed => ("D", paint::REMOVED),
        ChangeKind::Modified => ("M", paint::MODIFIED),
    };
    format!("{} {}", painted(style, letter), lossy(key))
}

/// A value as `-`/`+` lines: text line by line, other bytes as their size.
fn value_lines(
    out: &mut impl Write,
    sign: char,
    style: anstyle::Style,
    value: &[u8],
) -> Result<()> {
    let text = match std::str::from_utf8(value) {
        Ok(text) if !text.contains('\0') => text,
        _ => {
            let line = format!("{sign}(binary value, {} bytes)", value.len());
            writeln!(out, "{}", painted(style, &line))?;
            return Ok(());
        }
    };
    if text.is_empty() {
        writeln!(out, "{}", painted(style, &format!("{sign}(empty value)")))?;
        return Ok(());
    }
    for line in text.lines() {
        writeln!(out, "{}", painted(style, &format!("{sign}{line}")))?;
    }
    Ok(())
}
