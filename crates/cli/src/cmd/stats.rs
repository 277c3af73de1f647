//! `kvgit stats`.

use std::io::Write;

use anyhow::Result;
use indicatif::HumanBytes;
use serde_json::json;

use crate::output::{stdout, write_json};
use crate::progress;
use crate::store::Ctx;

/// Prints the branch's size and the store's.
pub fn run(ctx: &Ctx, json: bool) -> Result<()> {
    let db = ctx.open_read_only()?;
    let branch = ctx.branch(&db)?;
    let snapshot = branch.snapshot()?;

    let pb = progress::spinner("objects");
    pb.set_message("counting");
    let shown = pb.clone();
    let stats = db.stats(kvgit::Progress::new(move |_, n| shown.set_position(n)))?;
    pb.finish_and_clear();
    let kvgit::StoreStats {
        objects,
        object_bytes,
        commits,
        branches,
        tags,
        size_on_disk,
        ..
    } = stats;

    let mut out = stdout();
    if json {
        write_json(
            &mut out,
            &json!({
                "branch": branch.name(),
                "head": snapshot.commit_id().to_hex(),
                "keys": snapshot.len(),
                "value_bytes": snapshot.value_bytes(),
                "objects": objects,
                "object_bytes": object_bytes,
                "commits": commits,
                "branches": branches,
                "tags": tags,
                "size_on_disk": size_on_disk,
            }),
        )?;
    } else {
        writeln!(
            out,
            "branch       {} at {}",
            branch.name(),
            snapshot.commit_id()
        )?;
        writeln!(out, "keys         {}", snapshot.len())?;
        writeln!(
            out,
            "value bytes  {} ({})",
            snapshot.value_bytes(),
            HumanBytes(snapshot.value_bytes())
        )?;
        writeln!(
            out,
            "objects      {objects} ({}: values, tree nodes and commits of every branch, \
             tag and not yet swept history)",
            HumanBytes(object_bytes)
        )?;
        writeln!(
            out,
            "commits      {commits} (reachable from branches and tags)"
        )?;
        writeln!(out, "branches     {branches}")?;
        writeln!(out, "tags         {tags}")?;
        let overhead = size_on_disk.saturating_sub(object_bytes);
        writeln!(
            out,
            "size on disk {} ({} objects, {} the backend's own: metadata such as gc's access \
             recency, its index and log, and space freed but not yet returned to the file \
             system)",
            HumanBytes(size_on_disk),
            HumanBytes(object_bytes.min(size_on_disk)),
            HumanBytes(overhead)
        )?;
    }
    out.flush()?;
    Ok(())
}
