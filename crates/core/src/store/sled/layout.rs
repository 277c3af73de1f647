//! What a directory holds, as far as kvgit is concerned: a store (by its
//! marker), a store made before markers existed, what an interrupted
//! `create` left, or something else that kvgit must leave alone.
//!
//! A store is recognised by its marker file `kvgit.store`, whose whole
//! content is [`MARKER_TEXT`] (a magic line and the format version). The
//! marker is the last thing creation writes: creation first writes the
//! same text to `kvgit.init` (synced), builds the store, and renames
//! `kvgit.init` to `kvgit.store` once everything else is durable. So a
//! directory is either a complete store or not a store at all; the
//! leftovers of an interrupted creation (`kvgit.init` and files of the
//! store layout, nothing else) are recognised as such, and creating a
//! store there again clears them first.
//!
//! Stores made by earlier builds have no marker. One is recognised only
//! strictly: every entry is a name of the store layout, and `conf`, `db`
//! and `kvgit.lock` are there (a sled database kvgit has opened); opening
//! it then also checks that it holds kvgit's trees and at least one ref.
//! Opening such a store for writing upgrades it by writing the marker.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use crate::error::{Error, Result};

/// The marker file that makes a directory a kvgit store.
pub(crate) const MARKER_FILE: &str = "kvgit.store";

/// The marker's name while the store is being created.
pub(crate) const INIT_FILE: &str = "kvgit.init";

/// The whole content of a marker (and of `kvgit.init`) of a sled store.
pub(crate) const MARKER_TEXT: &str = "kvgit store\nformat 1\n";

/// The whole content of a marker of a journal store (format 2: the
/// `journal` backend, see `store::journal`).
pub(crate) const JOURNAL_MARKER_TEXT: &str = "kvgit store\nformat 2\n";

/// The store formats this build reads: 1 (sled) and 2 (journal).
pub(crate) const SLED_FORMAT: u64 = 1;
/// See [`SLED_FORMAT`].
pub(crate) const JOURNAL_FORMAT: u64 = 2;

/// The first line of every marker, whatever its format.
const MARKER_MAGIC: &str = "kvgit store\n";

/// sled's configuration file.
pub(crate) const CONF_FILE: &str = "conf";

/// The content of `conf` for every store kvgit makes (sled 0.34's default
/// segment size, no compression), without sled's trailing CRC-32.
const CONF_TEXT: &str = "segment_size: 524288\nuse_compression: false\nversion: 0.34\n";

/// What a path holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DirState {
    /// Nothing: the path does not exist.
    Missing,
    /// An empty directory.
    Empty,
    /// A kvgit store (its marker is there).
    Store,
    /// A store made by a build without markers (see the module docs).
    Legacy,
    /// What an interrupted creation left: no marker, `kvgit.init` or only
    /// `kvgit.lock`, and nothing but names of the store layout.
    Interrupted,
}

/// True for the names a store directory may hold.
fn is_layout_name(name: &str) -> bool {
    matches!(
        name,
        "conf"
            | "db"
            | "blobs"
            | MARKER_FILE
            | INIT_FILE
            | "kvgit.store.tmp"
            | super::LOCK_FILE
            | super::close_record::CLOSE_FILE
            | "kvgit.closed.tmp"
            | super::compact::COMPACT_DIR
            | crate::store::journal::JOURNAL_FILE
            | crate::store::journal::INDEX_FILE
            | crate::store::journal::INDEX_TMP_FILE
            | crate::store::journal::COMPACT_FILE
    ) || name.starts_with("snap.")
}

/// An [`Error::IoAt`] on `path`.
pub(crate) fn io_at(op: &str, path: &Path, cause: io::Error) -> Error {
    Error::IoAt {
        op: op.to_string(),
        path: path.display().to_string(),
        cause,
    }
}

/// Examines `path`. A directory holding anything else than the states of
/// [`DirState`] (someone else's files, a damaged marker, a store of a
/// newer format) is an [`Error::NotAStore`]; one that cannot be listed is
/// an [`Error::IoAt`].
pub(crate) fn probe(path: &Path) -> Result<DirState> {
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(DirState::Missing),
        Err(e) => return Err(io_at("look at", path, e)),
    };
    if !meta.is_dir() {
        return Err(not_a_store(path, "it is a file, not a directory"));
    }
    let mut names: Vec<OsString> = Vec::new();
    for entry in fs::read_dir(path).map_err(|e| io_at("list the directory", path, e))? {
        names.push(
            entry
                .map_err(|e| io_at("list the directory", path, e))?
                .file_name(),
        );
    }
    if names.is_empty() {
        return Ok(DirState::Empty);
    }
    let has = |name: &str| names.iter().any(|n| n == name);
    if has(MARKER_FILE) {
        check_marker(path)?;
        return Ok(DirState::Store);
    }
    let foreign: Vec<String> = names
        .iter()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !is_layout_name(n))
        .collect();
    if foreign.is_empty() {
        if has(INIT_FILE) || names.iter().all(|n| n == super::LOCK_FILE) {
            return Ok(DirState::Interrupted);
        }
        if has(CONF_FILE) && has(super::DATA_FILE) && has(super::LOCK_FILE) {
            return Ok(DirState::Legacy);
        }
    }
    let mut shown: Vec<String> = if foreign.is_empty() {
        names
            .iter()
            .map(|n| n.to_string_lossy().into_owned())
            .collect()
    } else {
        foreign
    };
    shown.sort();
    let more = shown.len().saturating_sub(5);
    shown.truncate(5);
    let list = match more {
        0 => shown.join(", "),
        n => format!("{} and {n} more", shown.join(", ")),
    };
    Err(not_a_store(
        path,
        &format!(
            "the directory holds other files ({list}) and no kvgit marker file {MARKER_FILE}; \
             kvgit leaves it alone (run kvgit init with an empty or missing directory)"
        ),
    ))
}

/// An [`Error::NotAStore`].
pub(crate) fn not_a_store(path: &Path, detail: &str) -> Error {
    Error::NotAStore {
        path: path.display().to_string(),
        detail: detail.to_string(),
    }
}

/// The format of the store at `path` (whose marker is there):
/// [`SLED_FORMAT`] or [`JOURNAL_FORMAT`].
pub(crate) fn store_format(path: &Path) -> Result<u64> {
    check_marker(path)
}

/// Checks the marker of the store at `path`; returns its format.
fn check_marker(path: &Path) -> Result<u64> {
    let file = path.join(MARKER_FILE);
    let bytes = fs::read(&file).map_err(|e| io_at("read the store's marker", &file, e))?;
    if bytes == MARKER_TEXT.as_bytes() {
        return Ok(SLED_FORMAT);
    }
    if bytes == JOURNAL_MARKER_TEXT.as_bytes() {
        return Ok(JOURNAL_FORMAT);
    }
    let text = String::from_utf8_lossy(&bytes);
    if let Some(rest) = text.strip_prefix(MARKER_MAGIC) {
        if let Some(format) = rest
            .strip_prefix("format ")
            .and_then(|f| f.trim_end().parse::<u64>().ok())
        {
            return Err(Error::Unavailable {
                store: path.display().to_string(),
                detail: format!(
                    "it has store format {format}, and this kvgit reads formats 1 and 2 \
                     only (use the kvgit that made it, or a newer one)"
                ),
            });
        }
    }
    Err(Error::Unavailable {
        store: path.display().to_string(),
        detail: format!(
            "its marker file {} is damaged (it must hold the two lines `kvgit store` and \
             `format 1`); if this is a kvgit store, write those lines back into it",
            file.display()
        ),
    })
}

/// Checks sled's `conf` before sled reads it: sled silently rewrites a
/// short one and reports a damaged one as made by an old sled version.
/// Every store kvgit makes has the same `conf`, so anything else is
/// damage (or a store kvgit did not make).
pub(crate) fn check_conf(path: &Path) -> Result<()> {
    let file = path.join(CONF_FILE);
    let bytes = match fs::read(&file) {
        Ok(bytes) => bytes,
        Err(e) => return Err(io_at("read sled's configuration", &file, e)),
    };
    let mut expected = CONF_TEXT.as_bytes().to_vec();
    expected.extend_from_slice(&crc32fast::hash(CONF_TEXT.as_bytes()).to_le_bytes());
    if bytes == expected {
        return Ok(());
    }
    Err(Error::Unavailable {
        store: path.display().to_string(),
        detail: format!(
            "sled's configuration file {} is damaged ({} bytes, not the {} every kvgit store \
             has); nothing was changed. Restore it from a backup, or copy the conf file of \
             any store made by this kvgit version (e.g. a new one from kvgit init) over it",
            file.display(),
            bytes.len(),
            expected.len()
        ),
    })
}

/// Writes `kvgit.init` (the marker's text, `marker`, under its
/// in-progress name), synced, with the directory.
pub(crate) fn write_init_file(path: &Path, marker: &str) -> Result<()> {
    write_synced(&path.join(INIT_FILE), marker.as_bytes())?;
    super::sync_dir(path)
}

/// Completes a creation: renames `kvgit.init` to the marker and syncs
/// the directory.
pub(crate) fn finish_init_file(path: &Path) -> Result<()> {
    let from = path.join(INIT_FILE);
    fs::rename(&from, path.join(MARKER_FILE))
        .map_err(|e| io_at("rename the store's marker", &from, e))?;
    super::fault_point("init:renamed");
    super::sync_dir(path)
}

/// Writes the marker of a store made by an earlier build (temporary file,
/// synced, renamed into place, directory synced).
pub(crate) fn write_marker(path: &Path) -> Result<()> {
    let tmp = path.join("kvgit.store.tmp");
    write_synced(&tmp, MARKER_TEXT.as_bytes())?;
    fs::rename(&tmp, path.join(MARKER_FILE))
        .map_err(|e| io_at("rename the store's marker", &tmp, e))?;
    super::sync_dir(path)
}

fn write_synced(file: &Path, bytes: &[u8]) -> Result<()> {
    let result = (|| {
        let mut f = File::create(file)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    result.map_err(|e| super::write_error(file, "write", e))
}

/// Removes what an interrupted creation left in `path` (everything but
/// the lock file and `kvgit.init`; only called once [`probe`] said
/// [`DirState::Interrupted`], or for a marker-less store without refs,
/// with the lock held).
pub(crate) fn clear_leftovers(path: &Path) -> Result<()> {
    for entry in fs::read_dir(path).map_err(|e| io_at("list the directory", path, e))? {
        let entry = entry.map_err(|e| io_at("list the directory", path, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name == super::LOCK_FILE || name == INIT_FILE || !is_layout_name(&name) {
            continue;
        }
        let p = entry.path();
        let result = match entry.file_type() {
            Ok(t) if t.is_dir() => fs::remove_dir_all(&p),
            _ => fs::remove_file(&p),
        };
        result.map_err(|e| io_at("remove the leftover", &p, e))?;
    }
    Ok(())
}
