//! `kvgit export` and `kvgit import`: entries as JSON lines.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};

use crate::output::{bytes_from_json, json_bytes, stdout};
use crate::progress;
use crate::store::Ctx;

/// Writes every entry of a revision as `{"key": ..., "value": ...}` lines.
pub fn export(ctx: &Ctx, at: Option<String>) -> Result<()> {
    let db = ctx.open_read_only()?;
    let snapshot = ctx.snapshot_at(&db, at.as_deref())?;
    let pb = progress::bar(snapshot.len(), "keys");
    pb.set_message("exporting");
    let mut out = stdout();
    for entry in snapshot.range::<std::ops::RangeFull>(..) {
        let (key, value) = entry?;
        serde_json::to_writer(
            &mut out,
            &json!({ "key": json_bytes(&key), "value": json_bytes(&value) }),
        )?;
        writeln!(out)?;
        pb.inc(1);
    }
    out.flush()?;
    pb.finish_and_clear();
    Ok(())
}

/// Puts every entry of a JSON lines file on the branch in one commit.
pub fn import(ctx: &Ctx, file: &Path, message: Option<String>) -> Result<()> {
    let (reader, len): (Box<dyn Read>, Option<u64>) = if file == Path::new("-") {
        (Box::new(std::io::stdin().lock()), None)
    } else {
        let f = File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
        let len = f.metadata().ok().map(|m| m.len());
        (Box::new(f), len)
    };
    let name = if file == Path::new("-") {
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
    let mut reader = BufReader::new(reader);
    let mut line = Vec::new();
    let (mut line_no, mut entries) = (0u64, 0u64);
    loop {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .with_context(|| format!("reading {name}"))?;
        if read == 0 {
            break;
        }
        line_no += 1;
        pb.inc(if len.is_some() { read as u64 } else { 1 });
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let (key, value) =
            parse_entry(&line).map_err(|e| anyhow!("{name}, line {line_no}: {e}"))?;
        tx.put(key, value);
        entries += 1;
    }
    pb.finish_and_clear();

    let commit_pb = progress::spinner("entries");
    commit_pb.set_message("committing");
    commit_pb.set_position(entries);
    let message = message.unwrap_or_else(|| format!("import {entries} entries from {name}"));
    let outcome = tx.message(message).commit()?;
    commit_pb.finish_and_clear();
    if let Some(head) = outcome.commit {
        println!("{head}");
    }
    Ok(())
}

/// One line: `{"key": K, "value": V}`.
fn parse_entry(line: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    let v: Value = serde_json::from_slice(line).context("not valid JSON")?;
    let Value::Object(map) = &v else {
        bail!("expected an object {{\"key\": ..., \"value\": ...}}");
    };
    let field = |name: &str| -> Result<Vec<u8>> {
        let raw = map.get(name).ok_or_else(|| anyhow!("no {name:?} field"))?;
        match bytes_from_json(raw) {
            Some(Ok(bytes)) => Ok(bytes),
            Some(Err(e)) => bail!("{name}: {e}"),
            None => bail!("{name} must be a string or {{\"base64\": \"...\"}}"),
        }
    };
    Ok((field("key")?, field("value")?))
}
