//! Compaction's on-disk protocol: how a compacted copy of a store's sled
//! database replaces the database in place, whatever happens to the
//! process or the machine meanwhile.
//!
//! sled 0.34 never gives back the space of its log: rewritten pages and
//! deleted objects leave dead bytes in `db` that its segment cleaner only
//! partly reuses. [`SledBackend::compact`](super::SledBackend::compact)
//! reclaims them by copying every live entry of the three trees into a
//! fresh database in the staging directory `kvgit.compact/` of the store,
//! then swapping it in:
//!
//! 1. the staging directory is filled (a fresh sled database: `conf`, `db`,
//!    `blobs/`, its snapshot), closed and fsynced;
//! 2. `kvgit.compact/ready` is written and fsynced: from here on, the copy
//!    is the store;
//! 3. the old database is closed, and [`finish`] moves the copy in: it
//!    removes the old snapshots (sled's page-table caches, rebuilt from the
//!    log when missing), replaces `blobs/` and `db` by the copy's (each a
//!    rename, so each is either old or new), moves the copy's snapshots
//!    in, fsyncs the store directory, and only then removes the staging
//!    directory.
//!
//! Every step of [`finish`] is conditional on what is still in the staging
//! directory, so it can run again from any point. Opening a store for
//! writing calls [`recover`] under the store's lock before sled opens:
//! with `ready` present it finishes the swap; without, the staging
//! directory is an unfinished copy and is removed (the old database was
//! never touched). A read-only open cannot finish a swap and refuses the
//! store until a writable open has ([`pending`]).

use std::fs;
use std::io;
use std::path::Path;

use super::layout::io_at;
use super::{fault_point, sync_dir, write_error, BLOBS_DIR, DATA_FILE};
use crate::error::Result;

/// The staging directory inside a store.
pub(crate) const COMPACT_DIR: &str = "kvgit.compact";

/// The file in the staging directory that says the copy is complete.
pub(crate) const READY_FILE: &str = "ready";

/// True if a compaction finished its copy but not its swap: the store must
/// be opened for writing once to finish it.
pub(crate) fn pending(path: &Path) -> bool {
    path.join(COMPACT_DIR).join(READY_FILE).exists()
}

/// Finishes or discards what an interrupted compaction left. Called with
/// the store's lock held, before sled opens the store.
pub(crate) fn recover(path: &Path) -> Result<()> {
    let staging = path.join(COMPACT_DIR);
    match fs::symlink_metadata(&staging) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_at("look at", &staging, e)),
        Ok(_) if pending(path) => finish(path),
        Ok(_) => discard(path),
    }
}

/// Removes the staging directory of a compaction that did not finish its
/// copy (the store's own files were never touched).
pub(crate) fn discard(path: &Path) -> Result<()> {
    let staging = path.join(COMPACT_DIR);
    match fs::remove_dir_all(&staging) {
        Ok(()) => sync_dir(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(write_error(&staging, "remove", e)),
    }
}

/// Makes the staging directory's complete copy the store's database (see
/// the module docs). Idempotent: safe to run again after a crash at any
/// point. Called with every sled handle on the store closed.
pub(crate) fn finish(path: &Path) -> Result<()> {
    let staging = path.join(COMPACT_DIR);
    // The old snapshots describe the old log: never leave one beside the
    // new `db`.
    remove_snapshots(path)?;
    fault_point("compact:snapshots-removed");
    let new_blobs = staging.join(BLOBS_DIR);
    if new_blobs.exists() {
        let old_blobs = path.join(BLOBS_DIR);
        match fs::remove_dir_all(&old_blobs) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(write_error(&old_blobs, "remove", e)),
        }
        fs::rename(&new_blobs, &old_blobs).map_err(|e| write_error(&new_blobs, "move", e))?;
    }
    fault_point("compact:blobs-moved");
    let new_db = staging.join(DATA_FILE);
    if new_db.exists() {
        let old_db = path.join(DATA_FILE);
        fs::rename(&new_db, &old_db).map_err(|e| write_error(&new_db, "move", e))?;
    }
    fault_point("compact:db-moved");
    for entry in fs::read_dir(&staging).map_err(|e| io_at("list", &staging, e))? {
        let entry = entry.map_err(|e| io_at("list", &staging, e))?;
        let name = entry.file_name();
        let text = name.to_string_lossy();
        if text.starts_with("snap.") && !text.ends_with(".generating") {
            fs::rename(entry.path(), path.join(&name))
                .map_err(|e| write_error(&entry.path(), "move", e))?;
        }
    }
    // Every rename durable before the staging directory (and `ready`)
    // goes.
    sync_dir(path)?;
    fault_point("compact:moved");
    discard(path)
}

/// Removes sled's snapshot files (`snap.*`) from `dir`.
pub(crate) fn remove_snapshots(dir: &Path) -> Result<()> {
    for entry in fs::read_dir(dir).map_err(|e| io_at("list", dir, e))? {
        let entry = entry.map_err(|e| io_at("list", dir, e))?;
        if entry.file_name().to_string_lossy().starts_with("snap.") {
            let p = entry.path();
            fs::remove_file(&p).map_err(|e| write_error(&p, "remove", e))?;
        }
    }
    Ok(())
}

/// fsyncs every file of a fresh sled database in `dir` (its `conf`, `db`,
/// snapshots and page files) and the directories.
pub(crate) fn sync_tree(dir: &Path) -> Result<()> {
    for entry in fs::read_dir(dir).map_err(|e| io_at("list", dir, e))? {
        let entry = entry.map_err(|e| io_at("list", dir, e))?;
        let p = entry.path();
        let meta = entry.metadata().map_err(|e| io_at("look at", &p, e))?;
        if meta.is_dir() {
            sync_tree(&p)?;
        } else {
            fs::File::open(&p)
                .and_then(|f| f.sync_all())
                .map_err(|e| write_error(&p, "fsync", e))?;
        }
    }
    sync_dir(dir)
}

/// Writes `ready` in the staging directory, durably: the copy is complete.
pub(crate) fn mark_ready(path: &Path) -> Result<()> {
    let staging = path.join(COMPACT_DIR);
    let ready = staging.join(READY_FILE);
    fs::File::create(&ready)
        .and_then(|f| f.sync_all())
        .map_err(|e| write_error(&ready, "write", e))?;
    sync_dir(&staging)?;
    sync_dir(path)
}
