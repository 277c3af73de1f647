//! `kvgit diff`.

use std::io::Write;

use anyhow::Result;
use kvgit::ChangeKind;
use serde_json::{json, Value};

use crate::output::{json_bytes, lossy, stdout, write_json};
use crate::store::{resolve, Ctx};

/// Lists the keys that differ from revision `a` to revision `b`.
pub fn run(ctx: &Ctx, a: &str, b: &str, json: bool) -> Result<()> {
    let db = ctx.open_read_only()?;
    let (a, b) = (resolve(&db, a)?, resolve(&db, b)?);
    let mut out = stdout();
    if json {
        let listed: Vec<Value> = db
            .diff(&a, &b)?
            .iter()
            .map(|c| {
                json!({
                    "change": match c.kind {
                        ChangeKind::Added => "added",
                        ChangeKind::Removed => "removed",
                        ChangeKind::Modified => "modified",
                    },
                    "key": json_bytes(&c.key),
                    "old": c.old.as_deref().map(json_bytes),
                    "new": c.new.as_deref().map(json_bytes),
                })
            })
            .collect();
        write_json(&mut out, &Value::Array(listed))?;
    } else {
        // Keys only: the tree diff, without loading any value.
        let (sa, sb) = (db.checkout(&a)?, db.checkout(&b)?);
        for change in sa.changed_keys(&sb) {
            let (kind, key) = change?;
            let letter = match kind {
                ChangeKind::Added => 'A',
                ChangeKind::Removed => 'D',
                ChangeKind::Modified => 'M',
            };
            writeln!(out, "{letter} {}", lossy(&key))?;
        }
    }
    out.flush()?;
    Ok(())
}
