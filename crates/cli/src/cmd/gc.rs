//! `kvgit gc` and `kvgit sweep`, through the facade's `Db::rebase` and
//! `Db::sweep_with`.
//!
//! `gc` never drops keys by surprise: a validation hook sees the planned
//! rebase (the keys it removes) before the branch moves, and lists it
//! (`--dry-run`), asks on a terminal, or refuses without `--yes`. After a
//! rebase it prints the `kvgit reset` that undoes it.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Result};
use indicatif::HumanBytes;
use kvgit::{ChangeKind, MoveKind, RebaseStatus, SweepOptions, Watermarks};
use serde_json::json;

use crate::output::{json_bytes, lossy, stdout, write_json};
use crate::progress;
use crate::store::{display, Ctx};

/// `--dry-run` and `--yes`.
#[derive(Debug, Clone, Copy)]
pub struct Confirm {
    /// List what would be dropped; change nothing.
    pub dry_run: bool,
    /// Drop without asking.
    pub yes: bool,
}

/// The name of gc's validation hook.
const HOOK: &str = "kvgit gc";
/// The hook's refusals, told apart after the rebase returns.
const DRY_RUN: &str = "dry run";
const NEEDS_YES: &str = "needs --yes";
const DECLINED: &str = "declined";

/// The keys a planned rebase drops, with their value sizes.
type Planned = Arc<Mutex<Vec<(Vec<u8>, u64)>>>;

/// High/low-water rebase of the `--branch` branch.
pub fn gc(ctx: &Ctx, high: u64, low: Option<u64>, confirm: Confirm, json: bool) -> Result<()> {
    let db = ctx.open()?;
    let branch = ctx.branch(&db)?;
    let name = branch.name().to_string();
    let before = branch.snapshot()?;
    let (keys_before, bytes_before) = (before.len(), before.value_bytes());
    drop(before);
    let pb = progress::busy(format!(
        "gc {name}: {keys_before} keys, {} of values; planning against the high water of {}",
        HumanBytes(bytes_before),
        HumanBytes(high)
    ));
    let planned: Planned = Arc::default();
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    {
        let planned = Arc::clone(&planned);
        let pb = pb.clone();
        let name = name.clone();
        db.add_validator(HOOK, move |check| {
            if check.kind != MoveKind::Rebase {
                return Ok(());
            }
            let dropped: Vec<(Vec<u8>, u64)> = check
                .changes
                .iter()
                .filter(|c| c.kind == ChangeKind::Removed)
                .map(|c| (c.key.clone(), c.old.as_ref().map_or(0, |v| v.len() as u64)))
                .collect();
            let (n, bytes) = (dropped.len(), dropped.iter().map(|d| d.1).sum::<u64>());
            if let Ok(mut p) = planned.lock() {
                *p = dropped;
            }
            if confirm.dry_run {
                return Err(DRY_RUN.into());
            }
            if confirm.yes || n == 0 {
                return Ok(());
            }
            if !interactive {
                return Err(NEEDS_YES.into());
            }
            let question = format!(
                "gc will drop {n} of {keys_before} keys ({} of values) from branch {name}, \
                 keeping {} keys; `kvgit gc --dry-run` lists them. Drop them? [y/N] ",
                HumanBytes(bytes),
                keys_before.saturating_sub(n as u64)
            );
            match pb.suspend(|| ask(&question)) {
                true => {
                    pb.set_message(format!("gc {name}: dropping {n} keys"));
                    Ok(())
                }
                false => Err(DECLINED.into()),
            }
        });
    }
    let result = db.rebase(&name, high, low);
    pb.finish_and_clear();
    db.remove_validator(HOOK);
    let dropped = planned.lock().map(|p| p.clone()).unwrap_or_default();
    let dropped_bytes: u64 = dropped.iter().map(|d| d.1).sum();
    let report = match result {
        Ok(report) => report,
        Err(kvgit::Error::Rejected { hook, message, .. }) if hook == HOOK => {
            return match message.as_str() {
                DRY_RUN => dry_run_report(&name, keys_before, &dropped, json),
                NEEDS_YES => bail!(
                    "gc would drop {} keys ({} of values) from branch {name}; nothing was \
                     changed. Pass --yes to drop them (standard input is not a terminal, so \
                     kvgit cannot ask), or --dry-run to list them",
                    dropped.len(),
                    HumanBytes(dropped_bytes)
                ),
                _ => bail!("gc not confirmed: nothing was dropped"),
            };
        }
        Err(e) => return Err(e.into()),
    };
    let low = low.unwrap_or_else(|| Watermarks::new(high).low());
    let undo = format!(
        "kvgit{} --branch {name} reset {}",
        store_arg(ctx),
        report.previous
    );
    if json {
        let status = match report.status {
            RebaseStatus::BelowHighWater => "below_high_water",
            RebaseStatus::NothingDroppable => "nothing_droppable",
            RebaseStatus::Rebased => "rebased",
            RebaseStatus::Raced => "raced",
        };
        let mut out = stdout();
        write_json(
            &mut out,
            &json!({
                "branch": name,
                "status": status,
                "previous": report.previous.to_hex(),
                "commit": report.commit.map(|c| c.to_hex()),
                "dropped": report.dropped.iter().map(|k| json_bytes(k)).collect::<Vec<_>>(),
                "dropped_bytes": report.dropped_bytes,
                "kept": report.kept,
                "bytes_before": report.bytes_before,
                "bytes_after": report.bytes_after,
                "reached_low": report.reached_low,
                "high": high,
                "low": low,
                "undo": report.performed().then_some(&undo),
            }),
        )?;
        out.flush()?;
        if report.status == RebaseStatus::Raced {
            bail!("another writer moved {name} during each attempt; nothing was changed");
        }
        return Ok(());
    }
    match report.status {
        RebaseStatus::BelowHighWater => crate::outln!(
            "{name} holds {} of values in {} keys, not above the high water of {}: \
             nothing to do",
            HumanBytes(report.bytes_before),
            report.kept,
            HumanBytes(high),
        )?,
        RebaseStatus::NothingDroppable => crate::outln!(
            "{name} holds {} of values, above the high water of {}, but every key is \
             protected: nothing dropped",
            HumanBytes(report.bytes_before),
            HumanBytes(high),
        )?,
        RebaseStatus::Rebased => {
            let commit = report
                .commit
                .map(|c| c.to_hex())
                .unwrap_or_else(|| "?".to_string());
            crate::outln!(
                "rebased {name} onto a fresh root commit {commit}: dropped {} keys ({} of \
                 values), kept {} keys; values {} -> {}",
                report.dropped.len(),
                HumanBytes(report.dropped_bytes),
                report.kept,
                HumanBytes(report.bytes_before),
                HumanBytes(report.bytes_after)
            )?;
            if !report.reached_low {
                crate::outln!(
                    "protected keys alone hold more than the low water of {}",
                    HumanBytes(low)
                )?;
            }
            crate::outln!(
                "the old history stays until `kvgit sweep` frees it; to undo before then:"
            )?;
            crate::outln!("  {undo}")?;
        }
        RebaseStatus::Raced => bail!(
            "another writer moved {name} during each of {} attempts; nothing was changed",
            report.attempts
        ),
    }
    Ok(())
}

/// Lists what a rebase would drop.
fn dry_run_report(name: &str, keys: u64, dropped: &[(Vec<u8>, u64)], json: bool) -> Result<()> {
    let bytes: u64 = dropped.iter().map(|d| d.1).sum();
    let mut out = stdout();
    if json {
        let listed: Vec<_> = dropped
            .iter()
            .map(|(k, n)| json!({"key": json_bytes(k), "bytes": n}))
            .collect();
        write_json(
            &mut out,
            &json!({
                "branch": name,
                "dry_run": true,
                "dropped": listed,
                "dropped_bytes": bytes,
                "kept": keys.saturating_sub(dropped.len() as u64),
            }),
        )?;
    } else {
        writeln!(
            out,
            "gc would drop {} of {keys} keys ({} of values) from branch {name}, coldest first \
             (dry run: nothing changed):",
            dropped.len(),
            HumanBytes(bytes)
        )?;
        for (key, n) in dropped {
            writeln!(out, "{}\t{n}", lossy(key))?;
        }
    }
    out.flush()?;
    Ok(())
}

/// ` --store PATH` when the store is not the default, quoted for a shell.
fn store_arg(ctx: &Ctx) -> String {
    let shown = display(&ctx.store);
    if shown == "./.kvgit" {
        return String::new();
    }
    let plain = shown
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-:@".contains(c));
    match plain {
        true => format!(" --store {shown}"),
        false => format!(" --store '{}'", shown.replace('\'', "'\\''")),
    }
}

/// Asks `question` on standard error; true for an answer starting with y.
fn ask(question: &str) -> bool {
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "{question}");
    let _ = err.flush();
    let mut answer = String::new();
    match std::io::stdin().lock().read_line(&mut answer) {
        Ok(_) => answer.trim().to_ascii_lowercase().starts_with('y'),
        Err(_) => false,
    }
}

/// Deletes every object no ref reaches.
pub fn sweep(ctx: &Ctx, dry_run: bool, grace: Option<u64>, json: bool) -> Result<()> {
    let db = ctx.open()?;
    let pb = progress::busy(if dry_run { "marking" } else { "sweeping" });
    let options = SweepOptions {
        dry_run,
        grace: grace.map(std::time::Duration::from_secs),
        ..SweepOptions::default()
    };
    let report = db.sweep_with(options)?;
    pb.finish_and_clear();
    if json {
        let mut out = stdout();
        write_json(
            &mut out,
            &json!({
                "dry_run": dry_run,
                "refs": report.refs,
                "objects_marked": report.objects_marked,
                "bytes_marked": report.bytes_marked,
                "objects_unreachable": report.objects_unreachable,
                "bytes_unreachable": report.bytes_unreachable,
                "objects_freed": report.objects_freed,
                "bytes_freed": report.bytes_freed,
                "objects_kept_young": report.objects_kept_young,
                "bytes_kept_young": report.bytes_kept_young,
                "size_before": report.size_before,
                "size_after": report.size_after,
            }),
        )?;
        out.flush()?;
        return Ok(());
    }
    let (verb, objects, bytes) = match dry_run {
        true => (
            "would free",
            report.objects_unreachable,
            report.bytes_unreachable,
        ),
        false => ("freed", report.objects_freed, report.bytes_freed),
    };
    crate::outln!(
        "{verb} {objects} unreachable objects ({}); kept {} reachable objects ({}) from {} refs",
        HumanBytes(bytes),
        report.objects_marked,
        HumanBytes(report.bytes_marked),
        report.refs
    )?;
    if report.objects_kept_young > 0 {
        crate::outln!(
            "{} more unreachable objects ({}) kept: written within the grace period \
             (another process may be about to use them)",
            report.objects_kept_young,
            HumanBytes(report.bytes_kept_young)
        )?;
    }
    if !dry_run {
        let (before, after) = (report.size_before, report.size_after);
        let change = match after.cmp(&before) {
            std::cmp::Ordering::Less => format!("{} smaller", HumanBytes(before - after)),
            std::cmp::Ordering::Equal => "unchanged so far".to_string(),
            std::cmp::Ordering::Greater => format!("{} larger", HumanBytes(after - before)),
        };
        let why = match kvgit::Engine::of(&ctx.store) {
            Some(kvgit::Engine::Journal) => {
                "the freed space stays in the store's journal file until it is compacted; \
                 `kvgit compact` gives it back now (it copies what is live into a fresh \
                 file)"
            }
            _ => {
                "the embedded store reuses the freed space for new writes and returns it \
                 to the file system gradually, as it rewrites its files; `kvgit compact` \
                 gives it back now"
            }
        };
        crate::outln!(
            "size on disk {} -> {} ({change}): {why}",
            HumanBytes(before),
            HumanBytes(after)
        )?;
    }
    Ok(())
}

/// Rewrites the store to hold only live data (`Db::compact`).
pub fn compact(ctx: &Ctx, json: bool) -> Result<()> {
    let db = ctx.open()?;
    let pb = progress::busy("compacting");
    let report = db.compact()?;
    pb.finish_and_clear();
    let mut out = stdout();
    match (report, json) {
        (Some(c), true) => write_json(
            &mut out,
            &json!({
                "compacted": true,
                "bytes_before": c.bytes_before,
                "bytes_after": c.bytes_after,
                "live_bytes": c.live_bytes,
            }),
        )?,
        (None, true) => write_json(&mut out, &json!({ "compacted": false }))?,
        (Some(c), false) => writeln!(
            out,
            "size on disk {} -> {} ({} of live data)",
            HumanBytes(c.bytes_before),
            HumanBytes(c.bytes_after),
            HumanBytes(c.live_bytes)
        )?,
        (None, false) => writeln!(
            out,
            "nothing to compact: this store gives freed space back by itself"
        )?,
    }
    out.flush()?;
    Ok(())
}
