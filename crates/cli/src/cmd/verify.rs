//! `kvgit verify`: walks every ref, every commit they reach, every tree
//! node and blob, and checks each object exists, decodes, hashes to its id
//! and agrees with what points at it.
//!
//! The checks are kvgit-core's (`Db::verify`, the same rules every read
//! applies); this prints the report.

use std::io::Write;

use anyhow::{bail, Result};

use crate::output::stdout;
use crate::progress;
use crate::store::Ctx;

/// Checks the store; lists each problem on standard error.
pub fn run(ctx: &Ctx, json: bool) -> Result<()> {
    let db = ctx.open_read_only()?;
    let pb = progress::spinner("objects");
    pb.set_message("verifying");
    let shown = pb.clone();
    let report =
        db.verify_with_progress(kvgit::Progress::new(move |_, n| shown.set_position(n)))?;
    pb.finish_and_clear();

    if json {
        let mut out = stdout();
        crate::output::write_json(
            &mut out,
            &serde_json::json!({
                "ok": report.problems.is_empty(),
                "problems": report.problems.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
                "refs": report.refs,
                "commits": report.commits,
                "nodes": report.nodes,
                "blobs": report.blobs,
                "bytes": report.bytes,
                "unreachable": report.unreachable,
            }),
        )?;
        out.flush()?;
    }
    if !report.problems.is_empty() {
        if !json {
            let mut err = std::io::stderr().lock();
            for problem in &report.problems {
                writeln!(err, "{problem}")?;
            }
        }
        bail!(
            "verify found {} problem{} in {}",
            report.problems.len(),
            if report.problems.len() == 1 { "" } else { "s" },
            crate::store::display(&ctx.store)
        );
    }
    if json {
        return Ok(());
    }
    let mut out = stdout();
    writeln!(
        out,
        "ok: {} refs, {} commits, {} tree nodes, {} blobs ({} bytes) verified; \
         {} unreachable objects (kvgit sweep deletes them)",
        report.refs, report.commits, report.nodes, report.blobs, report.bytes, report.unreachable
    )?;
    out.flush()?;
    Ok(())
}
