//! The sled backend: the embedded default store.
//!
//! # Layout
//!
//! A store is a directory holding one sled 0.34 database with three trees
//! (`objects`: 32-byte id -> object bytes; `refs`: ref name -> 32-byte
//! commit id; `meta`: key -> bytes). On disk (measured on sled 0.34.7):
//!
//! ```text
//! <path>/kvgit.lock        kvgit's lock file (empty; flock'ed while open)
//! <path>/conf              sled's configuration (62 bytes)
//! <path>/db                sled's log-structured data file: every tree
//! <path>/blobs/<lsn>       one file per sled page too big for the log
//!                          (a page of more than ~128 KiB: a large object,
//!                          or a page of several large-ish objects)
//! <path>/snap.<lsn hex>    sled's page-table snapshot (rebuilt from the log)
//! <path>/kvgit.closed      kvgit's close record: the refs' digest when the
//!                          store was last closed cleanly (see below)
//! ```
//!
//! # Rollback detection
//!
//! sled drops every log record after a damaged one, silently. So that a
//! store damaged at rest cannot lose commits unnoticed, dropping a
//! [`SledBackend`] writes a close record (after a durable flush) and
//! opening checks the refs against it, failing with [`Error::RolledBack`]
//! if they differ; see the `close_record` module.
//!
//! # Locking
//!
//! [`SledBackend::open`] first takes a non-blocking exclusive `flock` on
//! `kvgit.lock` and holds it for the backend's lifetime, so opening a store
//! that another process (or another live backend in this process) holds
//! fails at once with [`Error::Locked`] instead of hanging. sled itself
//! also `flock`s `db` without blocking, but it releases that lock a little
//! after a `Db` is dropped (its I/O threads hold the file; sled issues
//! #1234, #1289), so an immediate reopen could fail spuriously. kvgit's
//! own lock tells the two cases apart: once it is ours, a busy `db` can only
//! be a handle that is still closing, so `open` waits briefly for it; and
//! dropping a [`SledBackend`] waits (bounded) until sled has really let go
//! of `db` before releasing `kvgit.lock`, so a store is closed when `drop`
//! returns.
//!
//! # Durability
//!
//! sled appends every write to its log in one order (log sequence
//! numbers), and recovery replays the log as a prefix: it stops at the
//! first missing or torn record and drops everything after it. A sled
//! `Batch` is one record, applied whole or not at all. This gives the
//! ordering contract of [`Backend`]: the objects a writer
//! stored before a ref compare-and-swap are earlier in the log than the
//! swap, so no crash can keep the ref and lose them (but see the page-file
//! caveat below). That is why a single barrier after the ref CAS is enough
//! for a commit: whatever makes the CAS durable makes the objects durable.
//!
//! - [`Durability::Eventual`]: sled's `flush()`, which writes the log buffers
//!   out with `pwrite` and `sync_file_range` (not `fsync`). Once it returns,
//!   the writes survive a **process crash** (they are in the operating
//!   system). Against a **power loss** they are safe only once sled's
//!   background thread has fsynced the data file (every
//!   [`SledOptions::flush_every_ms`], 500 ms by default, or by a later
//!   durable flush): recent commits may be lost, but always as a suffix of
//!   the log, so a surviving ref never points at a missing object.
//! - [`Durability::Durable`]: the same, then an fsync of every sled page
//!   file under `blobs/` not yet synced (and of that directory if it
//!   changed), then an `fdatasync` of the data file `db` through a
//!   descriptor opened once at open time (an fsync on any descriptor of a
//!   file covers all of its written pages). Once it returns, the writes
//!   survive a **power loss** too. The extra cost is one device cache
//!   flush (plus one per new page file): `fdatasync` and `fsync` both took
//!   120-140 µs on the virtio disk this was measured on (a sled flush of a
//!   small write: 150-180 µs), and several ms when the machine was busy.
//!
//! ## The page-file caveat
//!
//! sled keeps a page larger than about 128 KiB (in practice: a page
//! holding an object of more than ~128 KiB, i.e. a large value's blob; tree
//! nodes are at most 16 KiB and stay in the log) in a file of its own under
//! `blobs/`, and never fsyncs those files: only the `db` log. It also
//! rewrites such a page into a new file whenever it consolidates the page
//! (a write to a neighbouring key can do it) and unlinks the old file soon
//! after. Both flush modes therefore fsync every page file that exists
//! when they start and was not synced yet, so a page file is durable once
//! a flush that began after it was written returns. The
//! window before that cannot be closed from outside sled: if sled's
//! periodic fsync of `db` makes a record durable that refers to a page file
//! whose data is not yet on disk, a power loss right then loses that page,
//! even one holding objects of an earlier durable commit. A process crash
//! never does (the files are in the operating system). Stores without
//! values over ~128 KiB write page files rarely if ever (none in trees of
//! up to 100k keys with values up to 1 KiB, measured).

mod close_record;

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fs2::FileExt;
use parking_lot::Mutex;

use super::{Backend, CasOutcome, Durability};
use crate::error::{Error, Result};
use crate::id::ObjectId;

/// The name of kvgit's lock file inside a store directory.
const LOCK_FILE: &str = "kvgit.lock";

/// sled's data file inside a store directory.
const DATA_FILE: &str = "db";

/// sled's directory of page files too large for the log.
const BLOBS_DIR: &str = "blobs";

/// The text of the I/O error sled 0.34 returns when its `flock` on `db`
/// fails.
const SLED_LOCK_MESSAGE: &str = "could not acquire lock";

/// Options for opening a sled store.
#[derive(Clone, Debug)]
pub struct SledOptions {
    /// sled's page cache size in bytes.
    pub cache_capacity: u64,
    /// How often sled's background thread flushes and fsyncs its log, in
    /// milliseconds (`None`: never; only [`Backend::flush`] writes it out).
    pub flush_every_ms: Option<u64>,
    /// How long [`SledBackend::open`] waits, once it holds kvgit's lock,
    /// for a previous handle on the same store to finish closing (sled
    /// releases its own lock shortly after a drop). This is never spent
    /// when another live backend holds the store: that fails at once.
    pub close_wait: Duration,
}

impl Default for SledOptions {
    fn default() -> Self {
        SledOptions {
            cache_capacity: 256 << 20,
            flush_every_ms: Some(500),
            close_wait: Duration::from_secs(2),
        }
    }
}

/// The embedded default backend: one sled database with an `objects`, a
/// `refs` and a `meta` tree in a store directory.
///
/// - **Locking**: one open handle per store. Opening a store that another
///   process, or another live `SledBackend` in this process, holds fails at
///   once with [`Error::Locked`]. Dropping the backend closes the store:
///   when `drop` returns, it can be opened again.
/// - **[`Durability::Eventual`]**: a flush hands the log to the operating
///   system: the writes survive a process crash. A power loss may lose
///   those since sled's last periodic fsync (every
///   [`SledOptions::flush_every_ms`]), but only as a suffix of the log, so
///   a surviving ref never points at a lost object.
/// - **[`Durability::Durable`]**: a flush also fsyncs sled's files; once it
///   returns the writes survive a power loss.
/// - Caveat: sled keeps a page holding an object over ~128 KiB in a file of
///   its own that sled never fsyncs. Every flush fsyncs the new ones, but a
///   power loss between sled writing one and the next flush can lose it.
pub struct SledBackend {
    // Field order is drop order: every sled handle must be dropped before
    // `_lock`, whose drop waits for sled to release the data file.
    objects: ::sled::Tree,
    refs: ::sled::Tree,
    meta: ::sled::Tree,
    db: ::sled::Db,
    /// A descriptor of sled's data file, for the durable flush's fsync.
    data_file: File,
    /// Page files under `blobs/` already fsynced.
    synced_blobs: Mutex<HashSet<OsString>>,
    path: PathBuf,
    /// See [`Backend::ref_version`]: the lock makes this process the only
    /// writer, so every ref move passes through `cas_ref` here.
    ref_version: std::sync::atomic::AtomicU64,
    _lock: StoreLock,
}

impl std::fmt::Debug for SledBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledBackend")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SledBackend {
    /// Opens (creating if missing) the store at `path`.
    ///
    /// Fails at once with [`Error::Locked`] if another process, or another
    /// live `SledBackend` in this process, has the store open.
    pub fn open(path: impl AsRef<Path>, options: SledOptions) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        fs::create_dir_all(&path)?;
        let lock = StoreLock::acquire(&path, options.close_wait)?;
        remove_partial_snapshots(&path)?;

        let config = ::sled::Config::new()
            .path(&path)
            .cache_capacity(options.cache_capacity)
            .flush_every_ms(options.flush_every_ms);
        let db = open_waiting(&config, &path, options.close_wait)?;
        let objects = db.open_tree("objects").map_err(sled_err)?;
        let refs = db.open_tree("refs").map_err(sled_err)?;
        let meta = db.open_tree("meta").map_err(sled_err)?;
        // Before anything is written: did sled lose records since the
        // store was last closed?
        close_record::check_and_clear(&path, close_record::RefsDigest::of(&refs)?)?;

        let data_file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path.join(DATA_FILE))
            .map_err(|e| {
                Error::Storage(format!(
                    "cannot open sled's data file in {}: {e}",
                    path.display()
                ))
            })?;
        // Make the store's directory entries (a new `db`, `conf`, `blobs`)
        // durable once, so the first durable flush covers a new store.
        sync_dir(&path)?;

        Ok(SledBackend {
            objects,
            refs,
            meta,
            db,
            data_file,
            synced_blobs: Mutex::new(HashSet::new()),
            path,
            ref_version: std::sync::atomic::AtomicU64::new(0),
            _lock: lock,
        })
    }

    /// True if `path` holds a sled store (its data file exists), so a
    /// caller can refuse to create one by accident.
    pub fn exists(path: impl AsRef<Path>) -> bool {
        path.as_ref().join(DATA_FILE).is_file()
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The names of the page files under `blobs/`.
    fn blob_names(&self) -> Result<Vec<OsString>> {
        match fs::read_dir(self.path.join(BLOBS_DIR)) {
            Ok(entries) => entries.map(|entry| Ok(entry?.file_name())).collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    /// fsyncs the page files among `names` not synced yet, then the
    /// directory if any was new. `names` must have been listed before a
    /// sled flush that has since returned: sled claims a page file's log
    /// position before it creates the file and its flush waits for every
    /// claimed position, so every listed file is complete by now. Files
    /// sled removed meanwhile are skipped.
    fn sync_blobs(&self, names: Vec<OsString>) -> Result<()> {
        let dir = self.path.join(BLOBS_DIR);
        let mut synced = self.synced_blobs.lock();
        let mut any_new = false;
        for name in &names {
            if synced.contains(name) {
                continue;
            }
            match File::open(dir.join(name)) {
                Ok(file) => file.sync_all()?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            }
            any_new = true;
        }
        if any_new {
            sync_dir(&dir)?;
        }
        // Forget files sled has removed. (A file created after `names` was
        // listed by a concurrent flush may be forgotten too; it is then
        // synced again, which is harmless.)
        *synced = names.into_iter().collect();
        Ok(())
    }
}

impl Drop for SledBackend {
    fn drop(&mut self) {
        // sled flushes on drop too, but an error there is only logged; a
        // failure here cannot be reported either, so this is best effort.
        // The close record is written only once what it describes is
        // durable: a store without one is simply not checked.
        if self.flush(Durability::Durable).is_ok() {
            if let Ok(refs) = close_record::RefsDigest::of(&self.refs) {
                let _ = close_record::write(&self.path, refs);
            }
        }
    }
}

/// Opens the sled database, waiting up to `close_wait` while sled's own
/// lock on `db` is held: with kvgit's lock ours, that can only be a handle
/// that is still closing (or a program using sled directly).
/// Deletes the `snap.*.generating` files a crash can leave: sled 0.34
/// writes its snapshot under that name and renames it when complete, but on
/// the next open it reads a partial one as the newest snapshot and refuses
/// to open, every time (sled issues #1527 and #1533). The log it was made
/// from is still there, so the file holds nothing that would be lost. Only
/// called with the store's lock held, so no live sled is writing one.
fn remove_partial_snapshots(path: &Path) -> Result<()> {
    let entries = match fs::read_dir(path) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.") && name.ends_with(".generating") {
            fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// Opens sled, turning a panic inside sled (it panics on some damaged
/// logs) into an error.
fn open_guarded(config: &::sled::Config) -> std::result::Result<::sled::Db, OpenFailure> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| config.open())) {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(e)) => Err(OpenFailure::Sled(e)),
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            Err(OpenFailure::Panicked(message))
        }
    }
}

enum OpenFailure {
    Sled(::sled::Error),
    Panicked(String),
}

fn open_waiting(config: &::sled::Config, path: &Path, close_wait: Duration) -> Result<::sled::Db> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        let result = match open_guarded(config) {
            Ok(db) => Ok(db),
            Err(OpenFailure::Sled(e)) => Err(e),
            Err(OpenFailure::Panicked(message)) => {
                return Err(Error::Storage(format!(
                    "the sled store at {} is damaged: sled failed while reading it ({message})",
                    path.display()
                )))
            }
        };
        match result {
            Ok(db) => return Ok(db),
            Err(::sled::Error::Io(e)) if is_sled_lock_error(&e) => {
                if start.elapsed() >= close_wait {
                    return Err(Error::Locked {
                        path: path.display().to_string(),
                        detail: format!("sled's data file stayed locked for {close_wait:?}: {e}"),
                    });
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Err(e) => return Err(sled_err(e)),
        }
    }
}

fn is_sled_lock_error(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Other && e.to_string().contains(SLED_LOCK_MESSAGE)
}

/// kvgit's exclusive lock on a store directory, held for a backend's
/// lifetime.
struct StoreLock {
    file: File,
    data_path: PathBuf,
    close_wait: Duration,
}

impl StoreLock {
    fn acquire(dir: &Path, close_wait: Duration) -> Result<Self> {
        let lock_path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)?;
        if let Err(e) = file.try_lock_exclusive() {
            if e.raw_os_error() == fs2::lock_contended_error().raw_os_error()
                || e.kind() == io::ErrorKind::WouldBlock
            {
                return Err(Error::Locked {
                    path: dir.display().to_string(),
                    detail: format!(
                        "{} is held by another open handle on the store \
                         (another process, or a live backend in this one): {e}",
                        lock_path.display()
                    ),
                });
            }
            return Err(Error::Storage(format!(
                "cannot lock {}: {e}",
                lock_path.display()
            )));
        }
        Ok(StoreLock {
            file,
            data_path: dir.join(DATA_FILE),
            close_wait,
        })
    }
}

impl Drop for StoreLock {
    /// Runs after every sled handle of the backend is dropped: waits
    /// (bounded) until sled's I/O threads have released `db`, then releases
    /// kvgit's lock, so that whoever takes it next finds the store closed.
    fn drop(&mut self) {
        if let Ok(data) = File::open(&self.data_path) {
            let start = Instant::now();
            while data.try_lock_exclusive().is_err() && start.elapsed() < self.close_wait {
                std::thread::sleep(Duration::from_millis(1));
            }
            // Dropping `data` releases the probe lock if it was taken.
        }
        let _ = FileExt::unlock(&self.file);
    }
}

/// fsyncs a directory, making the entries created in it durable. A no-op
/// where directories cannot be opened as files.
fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Feeds the objects of a sled scan to `visit` (id and size) until the
/// scan ends or `visit` says stop.
fn visit_objects(
    scan: ::sled::Iter,
    visit: &mut dyn FnMut(ObjectId, u64) -> Result<bool>,
) -> Result<()> {
    for item in scan {
        let (key, value) = item.map_err(sled_err)?;
        let id = decode_id(&key, || {
            format!("an object key ({:02x?})", &key[..key.len().min(40)])
        })?;
        if !visit(id, value.len() as u64)? {
            break;
        }
    }
    Ok(())
}

fn sled_err(e: ::sled::Error) -> Error {
    match e {
        ::sled::Error::Io(e) => Error::Io(e),
        other => Error::Storage(format!("sled: {other}")),
    }
}

/// Decodes a stored 32-byte id (a ref value or an object key).
fn decode_id(bytes: &[u8], what: impl FnOnce() -> String) -> Result<ObjectId> {
    ObjectId::from_slice(bytes).ok_or_else(|| {
        Error::Storage(format!(
            "malformed store: {} is {} bytes, not a 32-byte id",
            what(),
            bytes.len()
        ))
    })
}

fn decode_ref(name: &str, bytes: &[u8]) -> Result<ObjectId> {
    decode_id(bytes, || format!("the value of ref {name:?}"))
}

impl Backend for SledBackend {
    fn get_object(&self, id: &ObjectId) -> Result<Option<Vec<u8>>> {
        Ok(self
            .objects
            .get(id.as_bytes())
            .map_err(sled_err)?
            .map(|v| v.to_vec()))
    }

    fn has_object(&self, id: &ObjectId) -> Result<bool> {
        self.objects.contains_key(id.as_bytes()).map_err(sled_err)
    }

    fn put_objects(&self, objects: Vec<(ObjectId, Vec<u8>)>) -> Result<()> {
        // An id always names the same bytes, so an object already stored is
        // skipped: rewriting it would only grow sled's log.
        let mut batch = ::sled::Batch::default();
        let mut any = false;
        for (id, bytes) in objects {
            if !self.objects.contains_key(id.as_bytes()).map_err(sled_err)? {
                batch.insert(&id.as_bytes()[..], bytes);
                any = true;
            }
        }
        if any {
            self.objects.apply_batch(batch).map_err(sled_err)?;
        }
        Ok(())
    }

    fn delete_objects(&self, ids: &[ObjectId]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut batch = ::sled::Batch::default();
        for id in ids {
            batch.remove(&id.as_bytes()[..]);
        }
        self.objects.apply_batch(batch).map_err(sled_err)
    }

    fn for_each_object(&self, visit: &mut dyn FnMut(ObjectId, u64) -> Result<bool>) -> Result<()> {
        visit_objects(self.objects.iter(), visit)
    }

    fn for_each_object_in(
        &self,
        start: &ObjectId,
        end: Option<&ObjectId>,
        visit: &mut dyn FnMut(ObjectId, u64) -> Result<bool>,
    ) -> Result<()> {
        let start = start.as_bytes().as_slice();
        let range = match end {
            Some(end) => self.objects.range(start..end.as_bytes().as_slice()),
            None => self.objects.range(start..),
        };
        visit_objects(range, visit)
    }

    fn get_ref(&self, name: &str) -> Result<Option<ObjectId>> {
        match self.refs.get(name.as_bytes()).map_err(sled_err)? {
            Some(v) => Ok(Some(decode_ref(name, &v)?)),
            None => Ok(None),
        }
    }

    fn cas_ref(
        &self,
        name: &str,
        expected: Option<&ObjectId>,
        new: Option<&ObjectId>,
    ) -> Result<CasOutcome> {
        let outcome = self
            .refs
            .compare_and_swap(
                name.as_bytes(),
                expected.map(|id| &id.as_bytes()[..]),
                new.map(|id| &id.as_bytes()[..]),
            )
            .map_err(sled_err)?;
        match outcome {
            Ok(()) => {
                self.ref_version
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(CasOutcome::Swapped)
            }
            Err(mismatch) => {
                let actual = match mismatch.current {
                    Some(v) => Some(decode_ref(name, &v)?),
                    None => None,
                };
                Ok(CasOutcome::Mismatch { actual })
            }
        }
    }

    fn ref_version(&self) -> Option<u64> {
        Some(self.ref_version.load(std::sync::atomic::Ordering::SeqCst))
    }

    fn list_refs(&self, prefix: &str) -> Result<Vec<(String, ObjectId)>> {
        let mut out = Vec::new();
        for item in self.refs.scan_prefix(prefix.as_bytes()) {
            let (key, value) = item.map_err(sled_err)?;
            let name = std::str::from_utf8(&key).map_err(|_| {
                Error::Storage(format!(
                    "malformed store: ref name {:?} is not UTF-8",
                    String::from_utf8_lossy(&key)
                ))
            })?;
            let id = decode_ref(name, &value)?;
            out.push((name.to_string(), id));
        }
        Ok(out)
    }

    fn get_meta(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.meta.get(key).map_err(sled_err)?.map(|v| v.to_vec()))
    }

    fn put_meta(&self, entries: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut batch = ::sled::Batch::default();
        for (key, value) in entries {
            match value {
                Some(value) => batch.insert(key, value),
                None => batch.remove(key),
            }
        }
        self.meta.apply_batch(batch).map_err(sled_err)
    }

    fn scan_meta(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.meta
            .scan_prefix(prefix)
            .map(|item| {
                let (k, v) = item.map_err(sled_err)?;
                Ok((k.to_vec(), v.to_vec()))
            })
            .collect()
    }

    fn flush(&self, durability: Durability) -> Result<()> {
        // List page files first: those are complete once sled's flush
        // returns (see `sync_blobs`); newer ones wait for the next flush.
        let blobs = self.blob_names()?;
        self.db.flush().map_err(sled_err)?;
        self.sync_blobs(blobs)?;
        if durability == Durability::Durable {
            self.data_file.sync_data()?;
        }
        Ok(())
    }

    fn size_on_disk(&self) -> Result<u64> {
        dir_size(&self.path)
    }
}

/// The sum of the sizes of the files under `dir`, recursively. Files that
/// vanish while it runs (sled removing a page file) are skipped.
fn dir_size(dir: &Path) -> Result<u64> {
    let mut total = 0;
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    for entry in entries {
        let entry = entry?;
        let meta = match entry.metadata() {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e.into()),
        };
        if meta.is_dir() {
            total += dir_size(&entry.path())?;
        } else {
            total += meta.len();
        }
    }
    Ok(total)
}
