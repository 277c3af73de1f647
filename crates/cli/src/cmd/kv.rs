//! `kvgit put`, `get`, `rm` and `ls`: single keys.

use std::ffi::OsString;
use std::io::{Read, Write};

use anyhow::{bail, Context, Result};

use crate::cmd::arg_bytes;
use crate::output::{json_bytes, lossy, stdout, write_json};
use crate::store::Ctx;

/// Sets a key in one commit and prints the new head.
pub fn put(
    ctx: &Ctx,
    key: OsString,
    value: Option<OsString>,
    message: Option<String>,
) -> Result<()> {
    let key = arg_bytes(key);
    // Read standard input before opening: the store stays unlocked while
    // the user types.
    let value = match value {
        Some(v) => arg_bytes(v),
        None => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .context("reading the value from standard input")?;
            buf
        }
    };
    let db = ctx.open()?;
    let branch = ctx.branch(&db)?;
    let mut tx = branch.transaction()?;
    tx.put(&key, &value);
    let message = message.unwrap_or_else(|| format!("put {}", lossy(&key)));
    tx.message(message);
    let outcome = in_context(tx.commit(), || {
        format!("cannot put {:?} on branch {}", lossy(&key), branch.name())
    })?;
    if let Some(head) = outcome.commit {
        crate::outln!("{head}")?;
    }
    Ok(())
}

/// Writes a key's raw value to standard output.
pub fn get(ctx: &Ctx, key: OsString, at: Option<String>) -> Result<()> {
    let key = arg_bytes(key);
    let db = ctx.open_read_only()?;
    // A read at the head goes through the branch, which records it for
    // garbage collection's recency; one at a revision does not.
    let value = match &at {
        Some(_) => ctx.snapshot_at(&db, at.as_deref())?.get(&key)?,
        None => ctx.branch(&db)?.get(&key)?,
    };
    match value {
        Some(value) => {
            let mut out = stdout();
            out.write_all(&value)?;
            out.flush()?;
            Ok(())
        }
        None => bail!(
            "key {:?} not found at {}",
            lossy(&key),
            at.as_deref().unwrap_or(&ctx.branch)
        ),
    }
}

/// Deletes a key in one commit and prints the new head.
pub fn rm(ctx: &Ctx, key: OsString, message: Option<String>) -> Result<()> {
    let key = arg_bytes(key);
    let db = ctx.open()?;
    let branch = ctx.branch(&db)?;
    let mut tx = branch.transaction()?;
    if !tx.contains(&key)? {
        bail!(
            "key {:?} not found on branch {}",
            lossy(&key),
            branch.name()
        );
    }
    tx.delete(&key);
    let message = message.unwrap_or_else(|| format!("rm {}", lossy(&key)));
    tx.message(message);
    let outcome = in_context(tx.commit(), || {
        format!(
            "cannot delete {:?} on branch {}",
            lossy(&key),
            branch.name()
        )
    })?;
    if let Some(head) = outcome.commit {
        crate::outln!("{head}")?;
    }
    Ok(())
}

/// Lists keys, one per line (or as a JSON array), in order; `wait`:
/// seconds to wait for another process that holds the store.
pub fn ls(
    ctx: &Ctx,
    prefix: Option<OsString>,
    at: Option<String>,
    json: bool,
    wait: Option<u64>,
) -> Result<()> {
    let prefix = prefix.map(arg_bytes).unwrap_or_default();
    let db = ctx.open_read_only_waiting(wait.map(std::time::Duration::from_secs))?;
    let snapshot = ctx.snapshot_at(&db, at.as_deref())?;
    let mut out = stdout();
    if json {
        let keys = snapshot
            .keys_with_prefix(&prefix)
            .map(|k| k.map(|k| json_bytes(&k)))
            .collect::<kvgit::Result<Vec<_>>>()?;
        write_json(&mut out, &serde_json::Value::Array(keys))?;
    } else {
        for key in snapshot.keys_with_prefix(&prefix) {
            writeln!(out, "{}", lossy(&key?))?;
        }
    }
    out.flush()?;
    Ok(())
}

/// `result` with `context` added to its error, unless the error is about
/// the whole store (no space, a read-only store, an I/O error naming the
/// path): that one line says all there is, as `kvgit: no space left on
/// device (writing to <path>)`.
pub(crate) fn in_context<T>(
    result: kvgit::Result<T>,
    context: impl FnOnce() -> String,
) -> anyhow::Result<T> {
    use kvgit::Error as E;
    match result {
        Ok(v) => Ok(v),
        Err(e @ (E::NoSpace { .. } | E::ReadOnly { .. } | E::IoAt { .. })) => Err(e.into()),
        Err(e) => Err(anyhow::Error::new(e).context(context())),
    }
}
