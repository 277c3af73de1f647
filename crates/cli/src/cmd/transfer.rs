//! `kvgit export` and `kvgit import`: entries as JSON lines, through
//! `kvgit::jsonl` (the format, its parsing and its limits live there).

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::Path;

use anyhow::{Context, Result};
use kvgit::jsonl::{self, ExportError, ExportOptions, ImportOptions};

use crate::output::stdout;
use crate::progress;
use crate::store::Ctx;

/// Writes every entry of a revision as `{"key": ..., "value": ...}` lines.
pub fn export(ctx: &Ctx, at: Option<String>) -> Result<()> {
    let db = ctx.open_read_only()?;
    let snapshot = ctx.snapshot_at(&db, at.as_deref())?;
    let pb = progress::bar(snapshot.len(), "keys");
    pb.set_message("exporting");
    let mut out = stdout();
    let options = ExportOptions {
        progress: Some(Box::new(|r: &jsonl::ExportReport| {
            pb.set_position(r.entries)
        })),
    };
    match jsonl::export(&snapshot, &mut out, options) {
        Ok(_) => {}
        // Standard output's own error, which says so.
        Err(ExportError::Write(e)) => return Err(e.into()),
        Err(e) => return Err(e).with_context(|| format!("exporting {}", snapshot.commit_id())),
    }
    out.flush()?;
    pb.finish_and_clear();
    Ok(())
}

/// Puts every entry of a JSON lines file on the branch in one commit.
pub fn import(ctx: &Ctx, file: &Path, message: Option<String>) -> Result<()> {
    let stdin = file == Path::new("-");
    let (reader, len): (Box<dyn Read>, Option<u64>) = if stdin {
        (Box::new(std::io::stdin().lock()), None)
    } else {
        let f = File::open(file)
            .with_context(|| format!("cannot open {} (the file to import)", file.display()))?;
        let len = f.metadata().ok().map(|m| m.len());
        (Box::new(f), len)
    };
    let name = if stdin {
        "standard input".to_string()
    } else {
        file.display().to_string()
    };
    let pb = match len {
        Some(len) => progress::byte_bar(len),
        None => progress::spinner("lines"),
    };
    pb.set_message("reading");

    let db = ctx.open()?;
    let branch = ctx.branch(&db)?;
    let mut tx = branch.transaction()?;
    let options = ImportOptions {
        progress: Some(Box::new(|r: &jsonl::ImportReport| {
            pb.set_position(if len.is_some() { r.bytes } else { r.lines });
        })),
        ..ImportOptions::default()
    };
    let report = jsonl::import(&mut tx, BufReader::with_capacity(1 << 16, reader), options)
        .with_context(|| format!("nothing imported from {name}"))?;
    pb.finish_and_clear();

    let entries = report.entries;
    let commit_pb = progress::spinner("entries");
    // The count first: setting the message draws the line, and a fast
    // commit may end before the next draw.
    commit_pb.set_position(entries);
    commit_pb.set_message("committing");
    let message = message.unwrap_or_else(|| format!("import {entries} entries from {name}"));
    tx.message(message);
    let outcome = tx.commit().with_context(|| {
        format!(
            "cannot commit the import of {name} to branch {}",
            branch.name()
        )
    })?;
    commit_pb.finish_and_clear();
    if let Some(head) = outcome.commit {
        crate::outln!("{head}")?;
    }
    Ok(())
}
