//! `kvgit edit KEY`: a value edited in the user's editor, as `git commit`
//! without `-m` edits a message.
//!
//! The value goes to a temporary file, the editor (`$KVGIT_EDITOR`,
//! `$VISUAL`, `$EDITOR`, else `vi`, run by the shell so it may carry
//! arguments) opens it, and a changed file is committed. A failing editor
//! or an empty file aborts; the store is not held open while the editor
//! runs, and a key that another writer changed meanwhile is not
//! overwritten (the edited text is kept in a file the error names).

use std::ffi::OsString;
use std::io::Write;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::cmd::arg_bytes;
use crate::cmd::kv::in_context;
use crate::output::lossy;
use crate::store::Ctx;

/// Edits the value of `key` on the `--branch` branch.
pub fn run(ctx: &Ctx, key: OsString, message: Option<String>) -> Result<()> {
    let key = arg_bytes(key);
    let original = {
        let db = ctx.open_read_only()?;
        let snapshot = ctx.branch(&db)?.snapshot()?;
        snapshot.get(&key)?
    };
    let mut file = tempfile::Builder::new()
        .prefix("kvgit-edit-")
        .suffix(&file_suffix(&key))
        .tempfile()
        .context("cannot create a temporary file for the editor")?;
    file.write_all(original.as_deref().unwrap_or_default())
        .and_then(|()| file.flush())
        .context("cannot write the value to a temporary file for the editor")?;

    let editor = editor();
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$@\""))
        .arg("sh")
        .arg(file.path())
        .status()
        .with_context(|| format!("cannot start the editor {editor:?}"))?;
    if !status.success() {
        bail!("the editor {editor:?} failed ({status}): edit aborted, nothing changed");
    }
    let edited = std::fs::read(file.path())
        .with_context(|| format!("cannot read {} back", file.path().display()))?;
    if edited.is_empty() {
        bail!("empty value: edit aborted, nothing changed (kvgit rm deletes a key)");
    }
    if original.as_deref() == Some(edited.as_slice()) {
        crate::outln!("{} unchanged: nothing to commit", lossy(&key))?;
        return Ok(());
    }

    let db = ctx.open()?;
    let branch = ctx.branch(&db)?;
    let mut tx = branch.transaction()?;
    if tx.get(&key)? != original {
        let (_, kept) = file
            .keep()
            .context("cannot keep the edited value in its temporary file")?;
        bail!(
            "{:?} changed on branch {} while you edited it; nothing committed (your version is \
             in {})",
            lossy(&key),
            branch.name(),
            kept.display()
        );
    }
    tx.put(&key, &edited);
    let message = message.unwrap_or_else(|| format!("edit {}", lossy(&key)));
    tx.message(message);
    let outcome = in_context(tx.commit(), || {
        format!(
            "cannot commit {:?} on branch {}",
            lossy(&key),
            branch.name()
        )
    })?;
    if let Some(head) = outcome.commit {
        crate::outln!("{head}")?;
    }
    Ok(())
}

/// The editor command: `$KVGIT_EDITOR`, `$VISUAL`, `$EDITOR`, else `vi`.
fn editor() -> String {
    ["KVGIT_EDITOR", "VISUAL", "EDITOR"]
        .iter()
        .filter_map(std::env::var_os)
        .map(|v: OsString| v.to_string_lossy().into_owned())
        .find(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "vi".to_string())
}

/// The temporary file's suffix: `-` and the key's last component, made
/// safe for a file name, so an editor sees the key's extension.
fn file_suffix(key: &[u8]) -> String {
    let last = key.rsplit(|&b| b == b'/').next().unwrap_or_default();
    let safe: String = lossy(last)
        .chars()
        .map(|c| match c.is_ascii_alphanumeric() || "._-".contains(c) {
            true => c,
            false => '_',
        })
        .take(60)
        .collect();
    format!("-{safe}")
}
