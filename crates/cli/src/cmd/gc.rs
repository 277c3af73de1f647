//! `kvgit gc` and `kvgit sweep`, through the facade's `Db::rebase` and
//! `Db::sweep_with`.

use anyhow::{bail, Result};
use kvgit::{RebaseStatus, SweepOptions, Watermarks};

use crate::progress;
use crate::store::Ctx;

/// High/low-water rebase of the `--branch` branch.
pub fn gc(ctx: &Ctx, high: u64, low: Option<u64>) -> Result<()> {
    let db = ctx.open()?;
    let branch = ctx.branch(&db)?;
    let pb = progress::busy(format!("rebasing {}", branch.name()));
    let report = db.rebase(branch.name(), high, low)?;
    pb.finish_and_clear();
    let low = low.unwrap_or_else(|| Watermarks::new(high).low());
    let name = branch.name();
    match report.status {
        RebaseStatus::BelowHighWater => crate::outln!(
            "{name} holds {} value bytes in {} keys, not above the high water of {high}: \
             nothing to do",
            report.bytes_before,
            report.kept,
        )?,
        RebaseStatus::NothingDroppable => crate::outln!(
            "{name} holds {} value bytes, above the high water of {high}, but every key is \
             protected: nothing dropped",
            report.bytes_before,
        )?,
        RebaseStatus::Rebased => {
            let commit = report
                .commit
                .map(|c| c.to_hex())
                .unwrap_or_else(|| "?".to_string());
            crate::outln!(
                "rebased {name} onto a fresh root commit {commit}: dropped {} keys ({} value \
                 bytes), kept {} keys; value bytes {} -> {}",
                report.dropped.len(),
                report.dropped_bytes,
                report.kept,
                report.bytes_before,
                report.bytes_after
            )?;
            if !report.reached_low {
                crate::outln!("protected keys alone hold more than the low water of {low}")?;
            }
            crate::outln!("the old history stays until `kvgit sweep` frees it")?;
        }
        RebaseStatus::Raced => bail!(
            "another writer moved {name} during each of {} attempts; nothing was changed",
            report.attempts
        ),
    }
    Ok(())
}

/// Deletes every object no ref reaches.
pub fn sweep(ctx: &Ctx, dry_run: bool, grace: Option<u64>) -> Result<()> {
    let db = ctx.open()?;
    let pb = progress::busy(if dry_run { "marking" } else { "sweeping" });
    let options = SweepOptions {
        dry_run,
        grace: grace.map(std::time::Duration::from_secs),
        ..SweepOptions::default()
    };
    let report = db.sweep_with(options)?;
    pb.finish_and_clear();
    let (verb, objects, bytes) = match dry_run {
        true => (
            "would free",
            report.objects_unreachable,
            report.bytes_unreachable,
        ),
        false => ("freed", report.objects_freed, report.bytes_freed),
    };
    crate::outln!(
        "{verb} {objects} unreachable objects ({bytes} bytes); {} reachable objects ({} bytes) \
         from {} refs kept",
        report.objects_marked,
        report.bytes_marked,
        report.refs
    )?;
    if report.objects_kept_young > 0 {
        crate::outln!(
            "{} more unreachable objects ({} bytes) kept: written within the grace period \
             (another process may be about to use them)",
            report.objects_kept_young,
            report.bytes_kept_young
        )?;
    }
    if !dry_run {
        crate::outln!(
            "size on disk {} -> {} bytes (the store reclaims freed space gradually)",
            report.size_before,
            report.size_after
        )?;
    }
    Ok(())
}
