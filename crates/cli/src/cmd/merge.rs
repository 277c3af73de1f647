//! `kvgit merge`.

use std::io::Write;

use anyhow::{bail, Result};
use kvgit::merge::{Counter, LastWriterWins, MergeFn};
use kvgit::Db;
use kvgit::Strategy;

use crate::output::{json_bytes, lossy, stdout, write_json};
use crate::store::{existing_branch, resolve, Ctx};

/// Merges revision `from` into a branch, with the merge functions given
/// on the command line.
pub fn run(
    ctx: &Ctx,
    from: &str,
    into: Option<String>,
    counters: &[String],
    lww: &[String],
    json: bool,
) -> Result<()> {
    let db = ctx.open()?;
    for key in counters {
        register(&db, key, Counter);
    }
    for key in lww {
        register(&db, key, LastWriterWins);
    }
    let into = into.unwrap_or_else(|| ctx.branch.clone());
    let branch = existing_branch(&db, &into)?;
    let theirs = resolve(&db, from)?;
    let outcome = match branch.merge_commit(&theirs) {
        Ok(outcome) => outcome,
        Err(kvgit::Error::Conflicts(conflicts)) => {
            let keys: Vec<String> = conflicts
                .iter()
                .map(|c| match &c.reason {
                    Some(reason) => format!("{} ({reason})", lossy(&c.key)),
                    None => lossy(&c.key).into_owned(),
                })
                .collect();
            bail!(
                "merge of {from} into {into} stopped by {} conflicting key{}: {} (no merge \
                 function resolved them; see --counter and --lww)",
                keys.len(),
                if keys.len() == 1 { "" } else { "s" },
                keys.join(", ")
            );
        }
        Err(e) => return Err(e.into()),
    };
    let mut out = stdout();
    if json {
        let strategy = match outcome.strategy {
            Strategy::NoOp => "up-to-date",
            Strategy::FastForward => "fast-forward",
            _ => "merge",
        };
        let resolved: Vec<_> = outcome.resolved.iter().map(|k| json_bytes(k)).collect();
        write_json(
            &mut out,
            &serde_json::json!({
                "into": into,
                "from": from,
                "strategy": strategy,
                "head": outcome.head.to_hex(),
                "resolved": resolved,
            }),
        )?;
        out.flush()?;
        return Ok(());
    }
    match outcome.strategy {
        Strategy::NoOp => writeln!(
            out,
            "{into} is already up to date with {from} at {}",
            outcome.head
        )?,
        Strategy::FastForward => writeln!(out, "fast-forwarded {into} to {}", outcome.head)?,
        _ => writeln!(out, "merged {from} into {into}: {}", outcome.head)?,
    }
    for key in &outcome.resolved {
        writeln!(out, "resolved {}", lossy(key))?;
    }
    out.flush()?;
    Ok(())
}

/// Registers `f` for an exact key, or for a prefix when `key` ends in `/`.
pub fn register(db: &Db, key: &str, f: impl MergeFn + 'static) {
    if key.ends_with('/') {
        db.merge_fns().set_prefix(key, f);
    } else {
        db.merge_fns().set(key, f);
    }
}
