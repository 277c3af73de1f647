//! The close record of a sled store: what its refs were when it was last
//! closed cleanly, so that opening it can tell when sled has lost records.
//!
//! sled 0.34 recovers its log as a prefix: after a damaged record it drops
//! that record and everything written after it, without an error. For a
//! store damaged at rest (a flipped bit on disk, a bad copy) that is a
//! silent rollback: refs fall back to older commits, or vanish. kvgit
//! cannot see inside sled's log, so it keeps its own record outside it:
//!
//! - when a [`SledBackend`](super::SledBackend) is dropped, after a durable
//!   flush, it writes `kvgit.closed`: the number of refs and a BLAKE3
//!   digest of every ref name and value, with a checksum of the record;
//! - when a store is opened and the record is there, the refs must match
//!   it, or the open fails with [`Error::RolledBack`] and changes nothing
//!   (the record stays, so the next open fails the same way). When they
//!   match, the record is removed (durably) before anything is written, so
//!   a crash later can never leave a stale record behind.
//!
//! What it covers: a store closed cleanly whose refs have changed since,
//! through damage or through another program writing sled. What it does
//! not cover: a process that crashed (it left no record), and damage that
//! leaves every ref intact (reads of damaged or missing objects are errors
//! anyway).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use crate::error::{Error, Result};
use crate::id::ObjectId;

/// The record's file in a store directory.
pub(crate) const CLOSE_FILE: &str = "kvgit.closed";

/// The first line of a record.
const HEADER: &str = "kvgit close record 1";

/// What a record says: how many refs there were and their digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RefsDigest {
    count: u64,
    digest: ObjectId,
}

impl RefsDigest {
    /// The digest of a sled `refs` tree, read raw (names and values as
    /// stored, whether or not they decode).
    pub(crate) fn of(refs: &::sled::Tree, dir: &Path) -> Result<Self> {
        let mut hasher = blake3::Hasher::new();
        let mut count = 0u64;
        for item in refs.iter() {
            let (name, value) = item.map_err(|e| super::sled_error(dir, e))?;
            for part in [&name[..], &value[..]] {
                hasher.update(&(part.len() as u64).to_be_bytes());
                hasher.update(part);
            }
            count += 1;
        }
        Ok(RefsDigest {
            count,
            digest: ObjectId(*hasher.finalize().as_bytes()),
        })
    }

    fn encode(&self) -> String {
        let body = format!("{HEADER}\nrefs {}\ndigest {}\n", self.count, self.digest);
        let check = ObjectId::hash(body.as_bytes());
        format!("{body}check {check}\n")
    }

    fn decode(text: &str) -> Option<Self> {
        let (body, check) = text.rsplit_once("check ")?;
        let check: ObjectId = check.strip_suffix('\n')?.parse().ok()?;
        if ObjectId::hash(body.as_bytes()) != check {
            return None;
        }
        let mut lines = body.lines();
        if lines.next()? != HEADER {
            return None;
        }
        let count = lines.next()?.strip_prefix("refs ")?.parse().ok()?;
        let digest = lines.next()?.strip_prefix("digest ")?.parse().ok()?;
        match lines.next() {
            None => Some(RefsDigest { count, digest }),
            Some(_) => None,
        }
    }
}

/// Writes the close record of a store whose refs are `refs` (their state
/// must be durable already): to a temporary file, synced, renamed into
/// place, and the directory synced.
pub(crate) fn write(dir: &Path, refs: RefsDigest) -> io::Result<()> {
    let tmp = dir.join(format!("{CLOSE_FILE}.tmp"));
    let mut file = File::create(&tmp)?;
    file.write_all(refs.encode().as_bytes())?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, dir.join(CLOSE_FILE))?;
    super::sync_dir(dir).map_err(|e| io::Error::other(e.to_string()))
}

/// On open for writing: if a close record is there, checks `now` (the
/// refs as sled recovered them) against it, then removes it durably. A
/// record that is damaged, or refs that differ from it, give
/// [`Error::RolledBack`] and leave the record in place.
pub(crate) fn check_and_clear(dir: &Path, now: RefsDigest) -> Result<()> {
    let _ = fs::remove_file(dir.join(format!("{CLOSE_FILE}.tmp")));
    if check(dir, now)? {
        let path = dir.join(CLOSE_FILE);
        fs::remove_file(&path).map_err(|e| super::write_error(&path, "remove", e))?;
        super::sync_dir(dir)?;
    }
    Ok(())
}

/// On any open: if a close record is there, checks `now` against it, as
/// [`check_and_clear`] does, changing nothing. True if there was one.
pub(crate) fn check(dir: &Path, now: RefsDigest) -> Result<bool> {
    let path = dir.join(CLOSE_FILE);
    let text = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(super::layout::io_at("read", &path, e)),
    };
    let rolled_back = |detail: String| Error::RolledBack {
        path: dir.display().to_string(),
        detail: format!(
            "{detail}. Nothing was changed; restore the store from a backup, or delete {} to \
             open it as it is now",
            path.display()
        ),
    };
    let Some(then) = std::str::from_utf8(&text).ok().and_then(RefsDigest::decode) else {
        return Err(rolled_back(format!(
            "its close record {CLOSE_FILE} is damaged, so whether sled lost records cannot be told"
        )));
    };
    if then != now {
        return Err(rolled_back(format!(
            "its refs differ from what they were when it was last closed ({} refs then, {} \
             now): records were lost, most likely dropped by sled after damage in its data file",
            then.count, now.count
        )));
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_and_damage_is_seen() {
        let r = RefsDigest {
            count: 3,
            digest: ObjectId::hash(b"refs"),
        };
        let text = r.encode();
        assert_eq!(RefsDigest::decode(&text), Some(r));
        for at in 0..text.len() {
            let mut bytes = text.clone().into_bytes();
            bytes[at] ^= 0x04;
            if let Ok(damaged) = std::str::from_utf8(&bytes) {
                assert_ne!(RefsDigest::decode(damaged), Some(r), "byte {at}");
            }
        }
        assert_eq!(RefsDigest::decode(""), None);
        assert_eq!(RefsDigest::decode(&text[..text.len() - 1]), None);
    }
}
