//! The sled backend: the embedded default store.
//!
//! # Layout
//!
//! A store is a directory holding one sled 0.34 database with three trees
//! (`objects`: 32-byte id -> object bytes; `refs`: ref name -> 32-byte
//! commit id; `meta`: key -> bytes). On disk (measured on sled 0.34.7):
//!
//! ```text
//! <path>/kvgit.store       kvgit's marker: "kvgit store\nformat 1\n",
//!                          written last when the store is created
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
//! # What is a store; creating one
//!
//! A directory is a store only if it holds the marker (see the `layout`
//! module). Creation ([`SledBackend::create`], then
//! [`SledBackend::complete_init`] once the first branch is written) writes
//! the marker's text to `kvgit.init` first and renames it to `kvgit.store`
//! last, after a durable flush, so a store is complete or absent whatever
//! happens to the process; a directory holding only `kvgit.init` and files
//! of the layout is what an interrupted creation left, and creating again
//! clears it. No open ever creates or changes anything in a directory that
//! holds other files ([`Error::NotAStore`]); a store made by a build
//! without markers is recognised strictly and gets its marker when opened
//! for writing.
//!
//! # Reading only
//!
//! [`SledBackend::open_read_only`] refuses every write. sled 0.34 cannot
//! open a database without writing: it opens `db` read-write (which sets
//! its modification time, though no byte changes), and it writes a fresh
//! page-table snapshot (`snap.*`) whenever its log is ahead of the newest
//! one. A handle that wrote refreshes that snapshot when it is dropped (it
//! opens sled once more, under kvgit's lock), so a read-only open after a
//! clean close creates no file. Where the store is writable with room
//! to spare, sled opens it in place (the close record is checked but
//! kept); on a read-only mount, without write permission or
//! on a full disk, the store is copied under its lock into a private
//! directory (`/dev/shm` where there is one, else the temporary
//! directory) that sled opens instead and that is removed on drop. That
//! costs a copy of the store per open, only in those cases.
//!
//! # A full disk
//!
//! sled 0.34 hangs forever in every later flush (including the ones its
//! handles make when dropped) once it failed to write a page file for want
//! of space: the write's log buffer never completes, and no error is
//! returned. So kvgit never asks it to write without room: each write
//! checks the free space first (the write's bytes twice, plus 4 MiB) and
//! fails with [`Error::NoSpace`] without writing. Should the disk fill
//! anyway (another program), a flush on a nearly full disk (under 64 MiB
//! free) runs on a helper thread and is abandoned as [`Error::NoSpace`]
//! when it has not returned after 1 s while under 4 MiB are free; after
//! any failed write the backend refuses writes and, when dropped, leaks
//! its sled handles instead of letting them flush. The log on disk is then
//! a prefix without the failed write (refs unchanged), and the next open,
//! once there is room, recovers it.
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
//! A commit's objects are written as single inserts, not as a `Batch`:
//! their order in the log already puts them before the swap, a partial set
//! without the swap is only garbage, and a `Batch` seals sled's log buffer
//! before and after itself, so that the commit's flush would write and
//! sync two or three buffers instead of one (measured: 2.4 `pwrite` +
//! `sync_file_range` pairs per single-key commit with a batch, 1.1
//! without).
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
mod compact;
pub(crate) mod layout;

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{MappedRwLockReadGuard, Mutex, RwLock, RwLockReadGuard};

use self::layout::{io_at, not_a_store, DirState};
use super::{Backend, CasOutcome, Compaction, Durability};
use crate::error::{Error, Result};
use crate::id::ObjectId;

/// The name of kvgit's lock file inside a store directory.
pub(crate) const LOCK_FILE: &str = "kvgit.lock";

/// sled's data file inside a store directory.
const DATA_FILE: &str = "db";

/// sled's directory of page files too large for the log.
const BLOBS_DIR: &str = "blobs";

/// The text of the I/O error sled 0.34 returns when its `flock` on `db`
/// fails.
const SLED_LOCK_MESSAGE: &str = "could not acquire lock";

/// Objects to write: ids and bytes.
type Objects = Vec<(ObjectId, Vec<u8>)>;

/// How many bytes of entries a compaction copies per sled batch.
const COMPACT_BATCH_BYTES: usize = 4 << 20;

/// Free space a write keeps in reserve beyond its own bytes (see
/// [`SledBackend::check_space`]): sled appends to its log in segments of
/// 512 KiB and rewrites pages into new page files as it consolidates them.
const WRITE_RESERVE: u64 = 4 << 20;

/// Free space below which [`SledBackend::flush_log`] guards sled's flush
/// against hanging.
const GUARDED_FLUSH_BELOW: u64 = 64 << 20;

/// How long a flush may take on a nearly full disk before it is taken for
/// one that sled lost track of (see [`SledBackend::flush_log`]).
const STUCK_FLUSH: Duration = Duration::from_secs(1);

/// Free space below which a read-only open does not open the store in
/// place (sled writes a snapshot there) but reads a private copy.
const READ_IN_PLACE_RESERVE: u64 = 8 << 20;

/// What [`SledBackend::open_read_only`] says about an interrupted init.
const INTERRUPTED: &str = "a kvgit init was interrupted here before the store was complete \
     (nothing was stored in it); run kvgit init again to create it";

/// What a store made by an earlier build without any ref is.
const INCOMPLETE_LEGACY: &str = "the store is incomplete (damaged): it has no branch, most \
     likely because the kvgit init that made it (an earlier kvgit version) was interrupted; \
     nothing was stored in it: delete the directory and run kvgit init again";

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

/// How a backend has its store open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// For reading and writing.
    Write,
    /// For reading, sled opened in the store directory.
    ReadInPlace,
    /// For reading, sled opened on a private copy of the store.
    ReadCopy,
}

/// The sled handles of a backend.
struct Handles {
    objects: ::sled::Tree,
    refs: ::sled::Tree,
    meta: ::sled::Tree,
    db: ::sled::Db,
    /// A descriptor of sled's data file, for the durable flush's fsync
    /// (`None` when reading).
    data_file: Option<File>,
}

/// The embedded default backend: one sled database with an `objects`, a
/// `refs` and a `meta` tree in a store directory marked by a `kvgit.store`
/// file.
///
/// - **Opening**: [`SledBackend::open`] opens a store for writing,
///   creating it in a missing or empty directory;
///   [`SledBackend::open_read_only`] opens an existing store for reading
///   and creates or changes nothing in it that a later open depends on
///   (it also works on a read-only mount, without write permission, and
///   on a full disk). Neither ever touches a directory that holds
///   anything but a kvgit store: [`Error::NotAStore`].
/// - **Locking**: one open handle per store. Opening a store that another
///   process, or another live `SledBackend` in this process, holds fails at
///   once with [`Error::Locked`]. Dropping the backend closes the store:
///   when `drop` returns, it can be opened again.
/// - **Full disk**: a write that would leave less than a few MiB free
///   fails at once with [`Error::NoSpace`], writing nothing; if the disk
///   fills anyway, the write fails with [`Error::NoSpace`] and the backend
///   refuses every later write (reopen the store once space is freed).
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
    /// `None` while dropping, and if a compaction could not reopen the
    /// store. Dropped first (see `Drop`): every sled handle must be gone
    /// before `_copy` and `lock`. Every operation holds it shared (a
    /// recursive read: a scan's callback may call back in); only
    /// [`SledBackend::compact`] takes it exclusively, to swap the database.
    handles: RwLock<Option<Handles>>,
    mode: Mode,
    /// The options the store was opened with (a compaction opens its copy
    /// with them).
    options: SledOptions,
    /// Page files under `blobs/` already fsynced.
    synced_blobs: Mutex<HashSet<OsString>>,
    /// 0: fine; [`FAILED`] or [`FAILED_NO_SPACE`] once a write failed
    /// (sled may then hang in any later flush: see `Drop`).
    failed: AtomicU8,
    /// True from [`SledBackend::create`] until
    /// [`SledBackend::complete_init`].
    pending_init: AtomicBool,
    /// True once anything was written through this handle: then sled's
    /// page-table snapshot is behind its log, and dropping refreshes it
    /// (see `Drop`).
    wrote: AtomicBool,
    path: PathBuf,
    /// The private copy a [`Mode::ReadCopy`] backend reads; removed on
    /// drop, after sled.
    _copy: Option<TempCopy>,
    /// kvgit's lock on the store (`None` for a copy, released once copied,
    /// or a store without a lock file on a read-only open).
    lock: Option<StoreLock>,
    /// See [`Backend::ref_version`]: the lock makes this process the only
    /// writer, so every ref move passes through `cas_ref` here.
    ref_version: std::sync::atomic::AtomicU64,
}

/// [`SledBackend::failed`]: a write failed.
const FAILED: u8 = 1;
/// [`SledBackend::failed`]: a write failed for want of space.
const FAILED_NO_SPACE: u8 = 2;

impl std::fmt::Debug for SledBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledBackend")
            .field("path", &self.path)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl SledBackend {
    /// Opens the store at `path` for reading and writing, creating it if
    /// the directory is missing or empty (or holds what an interrupted
    /// creation left). A store made by an earlier kvgit without a marker
    /// file gets one.
    ///
    /// Fails with [`Error::NotAStore`] if the directory holds anything
    /// else (nothing is created or changed there), [`Error::Locked`] at
    /// once if another process, or another live `SledBackend` in this
    /// process, has the store open, [`Error::ReadOnly`] if it cannot be
    /// written here, and [`Error::NoSpace`] on a full disk.
    pub fn open(path: impl AsRef<Path>, options: SledOptions) -> Result<Self> {
        let path = path.as_ref();
        match layout::probe(path)? {
            DirState::Missing | DirState::Empty | DirState::Interrupted => {
                let backend = Self::create(path, options)?;
                backend.complete_init()?;
                Ok(backend)
            }
            DirState::Store => Self::open_writable(path, &options, false),
            DirState::Legacy => Self::open_writable(path, &options, true),
        }
    }

    /// Starts creating a store at `path` (a missing or empty directory, or
    /// one holding what an interrupted creation left): the returned
    /// backend works, but the store is not one yet. Write what a new store
    /// must hold (a first branch), then call
    /// [`SledBackend::complete_init`], which makes it a store atomically;
    /// until then (or if the process dies first) the directory is not a
    /// store, and creating one there again starts over.
    ///
    /// [`Error::StoreExists`] if a store is there already;
    /// [`Error::NotAStore`] if the directory holds anything else.
    pub fn create(path: impl AsRef<Path>, options: SledOptions) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        match layout::probe(&path)? {
            DirState::Store => return Err(store_exists(&path)),
            DirState::Missing => {
                fs::create_dir_all(&path)
                    .map_err(|e| write_error(&path, "create the directory", e))?;
                fault_point("init:dir");
            }
            DirState::Empty | DirState::Interrupted | DirState::Legacy => {}
        }
        check_space(&path, 0)?;
        let lock = StoreLock::acquire(&path, options.close_wait)?;
        fault_point("init:lock");
        // Again under the lock: another creation may have finished.
        match layout::probe(&path)? {
            DirState::Store => return Err(store_exists(&path)),
            DirState::Legacy => {
                if !legacy_is_incomplete(&path, &options)? {
                    return Err(store_exists(&path));
                }
            }
            DirState::Missing | DirState::Empty | DirState::Interrupted => {}
        }
        layout::write_init_file(&path, layout::MARKER_TEXT)?;
        fault_point("init:begun");
        layout::clear_leftovers(&path)?;
        let db = open_waiting(&config(&path, &options), &path, options.close_wait)?;
        fault_point("init:sled");
        let mut handles = Handles::open(db, &path)?;
        handles.data_file = Some(open_data_file(&path)?);
        sync_dir(&path)?;
        Ok(SledBackend {
            handles: RwLock::new(Some(handles)),
            mode: Mode::Write,
            options: options.clone(),
            synced_blobs: Mutex::new(HashSet::new()),
            failed: AtomicU8::new(0),
            pending_init: AtomicBool::new(true),
            wrote: AtomicBool::new(false),
            path,
            _copy: None,
            lock: Some(lock),
            ref_version: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Completes a [`SledBackend::create`]: makes everything written so
    /// far durable, then writes the store's marker (a rename, then an
    /// fsync of the directory). A no-op on a store that is complete.
    pub fn complete_init(&self) -> Result<()> {
        if !self.pending_init.load(Ordering::Acquire) {
            return Ok(());
        }
        fault_point("init:complete");
        self.flush(Durability::Durable)?;
        fault_point("init:flushed");
        layout::finish_init_file(&self.path)?;
        self.pending_init.store(false, Ordering::Release);
        Ok(())
    }

    /// Opens the existing store at `path` for reading only: every write
    /// fails with [`Error::ReadOnly`], and nothing a later open depends on
    /// is created or changed.
    ///
    /// Where the store can be written (permissions, mount, at least
    /// 8 MiB free), sled is opened in place, which creates no file after a
    /// clean close (a handle that wrote refreshes sled's page-table
    /// snapshot when dropped); after a crash, sled writes a fresh snapshot
    /// (`snap.*`, equivalent to the one it replaces). Elsewhere (a read-only mount, no write permission,
    /// a full disk) the store is copied, under its lock, to a private
    /// temporary directory (under `/dev/shm` where there is one, else the
    /// system's temporary directory), which is read and removed on drop:
    /// nothing in the store directory is touched.
    ///
    /// Fails with [`Error::NotAStore`] if there is no complete store at
    /// `path`, and [`Error::Locked`] if another handle has it open.
    pub fn open_read_only(path: impl AsRef<Path>, options: SledOptions) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let legacy = match layout::probe(&path)? {
            DirState::Missing => {
                return Err(not_a_store(
                    &path,
                    "the directory does not exist (run kvgit init to create a store)",
                ))
            }
            DirState::Empty => {
                return Err(not_a_store(
                    &path,
                    "the directory is empty (run kvgit init to create a store)",
                ))
            }
            DirState::Interrupted => return Err(not_a_store(&path, INTERRUPTED)),
            DirState::Store => {
                expect_sled_format(&path)?;
                false
            }
            DirState::Legacy => true,
        };
        layout::check_conf(&path)?;
        let lock = StoreLock::acquire_for_reading(&path, options.close_wait)?;
        if compact::pending(&path) {
            return Err(Error::Unavailable {
                store: path.display().to_string(),
                detail: "a compaction of it was interrupted after its copy was complete; \
                         open the store for writing once (any kvgit command that writes) to \
                         finish it"
                    .to_string(),
            });
        }
        if can_write_in_place(&path) {
            match Self::open_read_in_place(&path, &options, legacy) {
                Err(e) if is_cannot_write(&e) => {}
                result => {
                    let mut backend = result?;
                    backend.lock = lock;
                    return Ok(backend);
                }
            }
        }
        let copy = TempCopy::of(&path)?;
        // The copy is consistent: no writer had the store meanwhile.
        drop(lock);
        let config = config(&copy.dir, &options).temporary(true);
        let db = open_waiting(&config, &copy.dir, options.close_wait)
            .map_err(|e| reword_copy_error(e, &copy.dir, &path))?;
        let handles = Handles::open_existing(db, &path, legacy)?;
        close_record::check(&path, close_record::RefsDigest::of(&handles.refs, &path)?)?;
        Ok(SledBackend {
            ref_version: std::sync::atomic::AtomicU64::new(0),
            handles: RwLock::new(Some(handles)),
            mode: Mode::ReadCopy,
            options: options.clone(),
            synced_blobs: Mutex::new(HashSet::new()),
            failed: AtomicU8::new(0),
            pending_init: AtomicBool::new(false),
            wrote: AtomicBool::new(false),
            path,
            _copy: Some(copy),
            lock: None,
        })
    }

    /// True if `path` holds a kvgit store (its marker file, or a store made
    /// by an earlier build), so a caller can refuse to create one by
    /// accident. Never creates or changes anything.
    pub fn exists(path: impl AsRef<Path>) -> bool {
        matches!(
            layout::probe(path.as_ref()),
            Ok(DirState::Store | DirState::Legacy)
        )
    }

    /// `Ok` if `path` holds a kvgit store; otherwise the error saying what
    /// is there instead ([`Error::NotAStore`]: missing, empty, an
    /// interrupted creation, someone else's files; [`Error::IoAt`]: the
    /// directory cannot be read). Never creates or changes anything.
    pub fn check_exists(path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        match layout::probe(path)? {
            DirState::Store | DirState::Legacy => Ok(()),
            DirState::Missing => Err(not_a_store(
                path,
                "the directory does not exist (run kvgit init to create a store)",
            )),
            DirState::Empty => Err(not_a_store(
                path,
                "the directory is empty (run kvgit init to create a store)",
            )),
            DirState::Interrupted => Err(not_a_store(path, INTERRUPTED)),
        }
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True if the backend was opened with [`SledBackend::open_read_only`].
    pub fn is_read_only(&self) -> bool {
        self.mode != Mode::Write
    }

    /// Reclaims the space sled's log holds beyond the live data: copies
    /// every object, ref and metadata entry into a fresh sled database in
    /// the store's staging directory `kvgit.compact/`, makes it durable,
    /// and swaps it in for the store's database (see the `compact` module
    /// for why this is safe whatever happens to the process or the
    /// machine: an interrupted compaction is finished or discarded by the
    /// next writable open). Every other operation on this backend waits
    /// meanwhile. Run it after a sweep: the sweep deletes the unreachable
    /// objects, this gives their space back to the file system.
    ///
    /// Needs free space for the copy (the live bytes, twice, plus a few
    /// MiB): [`Error::NoSpace`] otherwise, with the store unchanged.
    /// [`Error::ReadOnly`] on a store opened for reading.
    pub fn compact(&self) -> Result<Compaction> {
        self.before_write(0)?;
        let mut guard = self.handles.write();
        let Some(old) = guard.as_ref() else {
            return Err(self.not_open());
        };
        let bytes_before = dir_size(&self.path)?;
        // Everything written so far goes into the copy; nothing is written
        // while the guard is held.
        self.flush_log(old)?;
        let mut live = 0u64;
        for tree in [&old.objects, &old.refs, &old.meta] {
            for item in tree.iter() {
                let (k, v) = item.map_err(|e| self.read_err(e))?;
                live += (k.len() + v.len()) as u64;
            }
        }
        self.before_write(live)?;
        let staging = self.path.join(compact::COMPACT_DIR);
        // A copy an earlier compaction left unfinished (no `ready`): the
        // backend holds the store's lock, and opening removed any other.
        compact::discard(&self.path)?;
        if let Err(e) = self.copy_into(old, &staging) {
            let _ = compact::discard(&self.path);
            return Err(e);
        }
        fault_point("compact:copied");
        compact::mark_ready(&self.path)?;
        fault_point("compact:ready");
        // From here on the copy is the store. Close the old database, swap,
        // open the new one; on any failure the handles stay closed (the
        // next open finishes the swap).
        drop(guard.take());
        let data_path = self.path.join(DATA_FILE);
        let swapped = if wait_released(&data_path, self.compact_wait()) {
            compact::finish(&self.path).and_then(|()| self.reopen())
        } else {
            Err(Error::Locked {
                path: self.path.display().to_string(),
                detail: "sled's data file stayed locked after its handles were closed for a \
                         compaction"
                    .to_string(),
            })
        };
        match swapped {
            Ok(handles) => {
                *guard = Some(handles);
                self.synced_blobs.lock().clear();
            }
            Err(e) => {
                let _ =
                    self.failed
                        .compare_exchange(0, FAILED, Ordering::AcqRel, Ordering::Acquire);
                return Err(e);
            }
        }
        drop(guard);
        Ok(Compaction {
            bytes_before,
            bytes_after: dir_size(&self.path)?,
            live_bytes: live,
        })
    }

    /// Copies the three trees of `old` into a fresh sled database at
    /// `staging`, closes it and makes every one of its files durable.
    fn copy_into(&self, old: &Handles, staging: &Path) -> Result<()> {
        fs::create_dir(staging).map_err(|e| write_error(staging, "create", e))?;
        let options = SledOptions {
            flush_every_ms: None,
            ..self.options.clone()
        };
        let db = open_waiting(&config(staging, &options), staging, options.close_wait)?;
        let new = Handles::open(db, staging)?;
        for (from, to) in [
            (&old.objects, &new.objects),
            (&old.refs, &new.refs),
            (&old.meta, &new.meta),
        ] {
            let mut batch = ::sled::Batch::default();
            let mut batch_bytes = 0usize;
            for item in from.iter() {
                let (k, v) = item.map_err(|e| self.read_err(e))?;
                batch_bytes += k.len() + v.len();
                batch.insert(k, v);
                if batch_bytes >= COMPACT_BATCH_BYTES {
                    to.apply_batch(std::mem::take(&mut batch))
                        .map_err(|e| sled_error(staging, e))?;
                    batch_bytes = 0;
                }
            }
            to.apply_batch(batch).map_err(|e| sled_error(staging, e))?;
        }
        new.db.flush().map_err(|e| sled_error(staging, e))?;
        drop(new);
        if !wait_released(&staging.join(DATA_FILE), self.compact_wait()) {
            return Err(Error::Locked {
                path: staging.display().to_string(),
                detail: "the compacted copy's data file stayed locked after it was closed"
                    .to_string(),
            });
        }
        fs::create_dir_all(staging.join(BLOBS_DIR))
            .map_err(|e| write_error(staging, "create blobs/ in", e))?;
        compact::sync_tree(staging)
    }

    /// How long a compaction waits for sled to let go of a database it
    /// closed (at least 2 s, whatever [`SledOptions::close_wait`] says: the
    /// swap cannot go on before).
    fn compact_wait(&self) -> Duration {
        self.options.close_wait.max(Duration::from_secs(2))
    }

    /// Opens the store's (new) database again after a compaction's swap.
    fn reopen(&self) -> Result<Handles> {
        let db = open_waiting(
            &config(&self.path, &self.options),
            &self.path,
            self.compact_wait(),
        )?;
        let mut handles = Handles::open_existing(db, &self.path, false)?;
        handles.data_file = Some(open_data_file(&self.path)?);
        Ok(handles)
    }

    /// Those of `objects` not stored yet, and their bytes. An id always
    /// names the same bytes, so an object already stored is skipped:
    /// rewriting it would only grow sled's log.
    fn new_objects(
        &self,
        h: &Handles,
        objects: Vec<(ObjectId, Vec<u8>)>,
    ) -> Result<(Objects, u64)> {
        let mut new = Vec::with_capacity(objects.len());
        let mut bytes = 0u64;
        for (id, object) in objects {
            let stored = h
                .objects
                .contains_key(id.as_bytes())
                .map_err(|e| self.read_err(e))?;
            if !stored {
                bytes += object.len() as u64 + 32;
                new.push((id, object));
            }
        }
        Ok((new, bytes))
    }

    /// Inserts objects one by one (the space check done). Not a sled
    /// `Batch`: a batch seals sled's current log buffer before and after
    /// it (`pin_log`), so a commit's flush would write and sync several
    /// buffers instead of one. Atomicity is not needed: objects without
    /// the ref that names them are garbage a sweep removes, and single
    /// inserts of one thread reach the log in order, before the ref's
    /// swap (see the module docs on durability).
    fn insert_objects(&self, h: &Handles, objects: Objects) -> Result<()> {
        for (id, object) in objects {
            h.objects
                .insert(&id.as_bytes()[..], object)
                .map_err(|e| self.write_failed(e))?;
        }
        Ok(())
    }

    /// The compare-and-swap of ref `name` (the space check done).
    fn swap_ref(
        &self,
        h: &Handles,
        name: &str,
        expected: Option<&ObjectId>,
        new: Option<&ObjectId>,
    ) -> Result<CasOutcome> {
        let outcome = h
            .refs
            .compare_and_swap(
                name.as_bytes(),
                expected.map(|id| &id.as_bytes()[..]),
                new.map(|id| &id.as_bytes()[..]),
            )
            .map_err(|e| self.write_failed(e))?;
        match outcome {
            Ok(()) => {
                // Every ref move of this store passes here (the lock makes
                // this process its only writer): see `Backend::ref_version`.
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

    /// The sled handles, held shared for as long as the guard lives.
    /// Fails only after a compaction that could not reopen the store.
    fn h(&self) -> Result<MappedRwLockReadGuard<'_, Handles>> {
        RwLockReadGuard::try_map(self.handles.read_recursive(), Option::as_ref)
            .map_err(|_| self.not_open())
    }

    fn not_open(&self) -> Error {
        Error::Storage(format!(
            "the store at {} is not open: a compaction could not reopen it; close the store \
             and open it again (opening finishes an interrupted compaction)",
            self.path.display()
        ))
    }

    fn open_writable(path: &Path, options: &SledOptions, legacy: bool) -> Result<Self> {
        let path = path.to_path_buf();
        if !legacy {
            expect_sled_format(&path)?;
        }
        layout::check_conf(&path)?;
        check_space(&path, 0)?;
        let lock = StoreLock::acquire(&path, options.close_wait)?;
        compact::recover(&path)?;
        remove_partial_snapshots(&path)?;
        let db = open_waiting(&config(&path, options), &path, options.close_wait)?;
        let handles = Handles::open_existing(db, &path, legacy)?;
        // Before anything is written: did sled lose records since the
        // store was last closed?
        close_record::check_and_clear(&path, close_record::RefsDigest::of(&handles.refs, &path)?)?;
        let mut handles = handles;
        handles.data_file = Some(open_data_file(&path)?);
        // Make the store's directory entries durable once, so the first
        // durable flush covers them.
        sync_dir(&path)?;
        if legacy {
            layout::write_marker(&path)?;
        }
        Ok(SledBackend {
            ref_version: std::sync::atomic::AtomicU64::new(0),
            handles: RwLock::new(Some(handles)),
            mode: Mode::Write,
            options: options.clone(),
            synced_blobs: Mutex::new(HashSet::new()),
            failed: AtomicU8::new(0),
            pending_init: AtomicBool::new(false),
            wrote: AtomicBool::new(false),
            path,
            _copy: None,
            lock: Some(lock),
        })
    }

    fn open_read_in_place(path: &Path, options: &SledOptions, legacy: bool) -> Result<Self> {
        remove_partial_snapshots(path)?;
        let db = open_waiting(&config(path, options), path, options.close_wait)?;
        let handles = Handles::open_existing(db, path, legacy)?;
        close_record::check(path, close_record::RefsDigest::of(&handles.refs, path)?)?;
        Ok(SledBackend {
            ref_version: std::sync::atomic::AtomicU64::new(0),
            handles: RwLock::new(Some(handles)),
            mode: Mode::ReadInPlace,
            options: options.clone(),
            synced_blobs: Mutex::new(HashSet::new()),
            failed: AtomicU8::new(0),
            pending_init: AtomicBool::new(false),
            wrote: AtomicBool::new(false),
            path: path.to_path_buf(),
            _copy: None,
            lock: None,
        })
    }

    /// Before a write of about `bytes`: fails if the backend is read-only,
    /// if an earlier write failed, or if the disk has not room for the
    /// write with [`WRITE_RESERVE`] to spare.
    fn before_write(&self, bytes: u64) -> Result<()> {
        if self.mode != Mode::Write {
            return Err(Error::ReadOnly {
                path: self.path.display().to_string(),
                detail: "it was opened for reading only".to_string(),
            });
        }
        if !self.wrote.load(Ordering::Relaxed) {
            self.wrote.store(true, Ordering::Relaxed);
        }
        match self.failed.load(Ordering::Acquire) {
            0 => {}
            FAILED_NO_SPACE => return Err(no_space(&self.path)),
            _ => {
                return Err(Error::Storage(format!(
                    "an earlier write to the store at {} failed, so this handle accepts no \
                     more writes; close the store and open it again",
                    self.path.display()
                )))
            }
        }
        check_space(&self.path, bytes)
    }

    /// Turns a sled error from a write into kvgit's, and marks the backend
    /// failed: sled may have lost track of the write (see `Drop`).
    fn write_failed(&self, e: ::sled::Error) -> Error {
        let error = match e {
            ::sled::Error::Io(e) => write_error(&self.path, "write to the store", e),
            other => sled_error(&self.path, other),
        };
        let state = match error {
            Error::NoSpace { .. } => FAILED_NO_SPACE,
            _ => FAILED,
        };
        let _ = self
            .failed
            .compare_exchange(0, state, Ordering::AcqRel, Ordering::Acquire);
        error
    }

    /// sled's flush, which never hangs on a full disk. sled 0.34 can lose
    /// track of a write that failed for want of space (a page file it
    /// could not write leaves its log buffer waiting forever, without an
    /// error), and then its flush waits forever. So where the disk has
    /// less than [`GUARDED_FLUSH_BELOW`] free, the flush runs on a helper
    /// thread, and if it has not returned after [`STUCK_FLUSH`] while less
    /// than [`WRITE_RESERVE`] is free, it is abandoned (the thread stays
    /// blocked) and the backend fails with [`Error::NoSpace`].
    fn flush_log(&self, h: &Handles) -> Result<()> {
        let db = &h.db;
        let plenty = available_space(&self.path).is_none_or(|free| free >= GUARDED_FLUSH_BELOW);
        if plenty {
            return db.flush().map(drop).map_err(|e| self.write_failed(e));
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let db = db.clone();
        std::thread::Builder::new()
            .name("kvgit-flush".to_string())
            .spawn(move || {
                let _ = tx.send(db.flush());
            })
            .map_err(|e| io_at("start a thread to flush", &self.path, e))?;
        let start = Instant::now();
        loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(result) => return result.map(drop).map_err(|e| self.write_failed(e)),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(self.write_failed(::sled::Error::ReportableBug(
                        "sled's flush ended without a result".to_string(),
                    )))
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    let full = available_space(&self.path).is_some_and(|f| f < WRITE_RESERVE);
                    if full && start.elapsed() >= STUCK_FLUSH {
                        let _ = self.failed.compare_exchange(
                            0,
                            FAILED_NO_SPACE,
                            Ordering::AcqRel,
                            Ordering::Acquire,
                        );
                        return Err(no_space(&self.path));
                    }
                }
            }
        }
    }

    fn read_err(&self, e: ::sled::Error) -> Error {
        sled_error(&self.path, e)
    }

    /// The names of the page files under `blobs/`.
    fn blob_names(&self) -> Result<Vec<OsString>> {
        let dir = self.path.join(BLOBS_DIR);
        let list = |e| io_at("list", &dir, e);
        match fs::read_dir(&dir) {
            Ok(entries) => entries
                .map(|entry| Ok(entry.map_err(list)?.file_name()))
                .collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(list(e)),
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
            let file = dir.join(name);
            match File::open(&file) {
                Ok(f) => f.sync_all().map_err(|e| write_error(&file, "fsync", e))?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_at("open", &file, e)),
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

impl Handles {
    /// Opens kvgit's trees in a new database.
    fn open(db: ::sled::Db, path: &Path) -> Result<Self> {
        let open = |name: &str| db.open_tree(name).map_err(|e| sled_error(path, e));
        Ok(Handles {
            objects: open("objects")?,
            refs: open("refs")?,
            meta: open("meta")?,
            db: db.clone(),
            data_file: None,
        })
    }

    /// Opens kvgit's trees in an existing store, which must have them (a
    /// store from an earlier build must also have a ref).
    fn open_existing(db: ::sled::Db, path: &Path, legacy: bool) -> Result<Self> {
        let names = db.tree_names();
        let missing: Vec<&str> = ["objects", "refs", "meta"]
            .into_iter()
            .filter(|t| !names.iter().any(|n| n == t.as_bytes()))
            .collect();
        // A store from an earlier build may lack `meta` (nothing was ever
        // written to it); `objects` and `refs` it must have.
        let required_missing = missing.iter().any(|t| *t != "meta");
        if legacy && required_missing {
            return Err(not_a_store(path, INCOMPLETE_LEGACY));
        }
        if !legacy && !missing.is_empty() {
            return Err(Error::Storage(format!(
                "the store at {} is damaged: sled's data file {} lacks kvgit's {} tree(s); \
                 restore the store from a backup",
                path.display(),
                path.join(DATA_FILE).display(),
                missing.join(", ")
            )));
        }
        let handles = Handles::open(db, path)?;
        if legacy && handles.refs.is_empty() {
            return Err(not_a_store(path, INCOMPLETE_LEGACY));
        }
        Ok(handles)
    }
}

impl Drop for SledBackend {
    fn drop(&mut self) {
        if self.handles.get_mut().is_none() {
            return;
        }
        if self.mode == Mode::Write && self.failed.load(Ordering::Acquire) == 0 {
            // sled flushes on drop too, but an error there is only logged;
            // a failure here cannot be reported either, so this is best
            // effort. The close record is written only once what it
            // describes is durable: a store without one is simply not
            // checked.
            if self.flush(Durability::Durable).is_ok() {
                if let Ok(h) = self.h() {
                    if let Ok(refs) = close_record::RefsDigest::of(&h.refs, &self.path) {
                        let _ = close_record::write(&self.path, refs);
                    }
                }
            }
        }
        if self.failed.load(Ordering::Acquire) != 0 {
            // sled 0.34 can lose track of a write that failed (a page file
            // it could not write leaves its log buffer waiting forever), and
            // then every flush, including the ones its handles make when
            // dropped, hangs. So they are leaked: their files close when the
            // process exits, and the store is as the log on disk says.
            // sled's own lock on `db` stays held until then.
            std::mem::forget(self.handles.get_mut().take());
            if let Some(lock) = self.lock.as_mut() {
                lock.close_wait = Duration::ZERO;
            }
            return;
        }
        // Every sled handle goes before the copy and the lock.
        drop(self.handles.get_mut().take());
        if self.mode == Mode::Write && *self.wrote.get_mut() {
            refresh_snapshot(&self.path, &self.options);
        }
    }
}

/// Opens the closed sled database at `path` once more and closes it, so
/// that sled writes its page-table snapshot now, under kvgit's lock, and
/// not on the next open: sled 0.34 writes one on any open that finds its
/// log ahead of the newest snapshot, and a read-only open must create
/// nothing. Best effort: a failure leaves the snapshot to the next open,
/// as before. Never waits: if sled's lock is still held (a handle of this
/// process still open), it is skipped.
fn refresh_snapshot(path: &Path, options: &SledOptions) {
    if let Ok(db) = open_guarded(&config(path, options)) {
        drop(db);
    }
}

/// sled's configuration for the store at `path`.
fn config(path: &Path, options: &SledOptions) -> ::sled::Config {
    ::sled::Config::new()
        .path(path)
        .cache_capacity(options.cache_capacity)
        .flush_every_ms(options.flush_every_ms)
}

fn open_data_file(path: &Path) -> Result<File> {
    let file = path.join(DATA_FILE);
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(&file)
        .map_err(|e| write_error(&file, "open", e))
}

/// Fails unless the store at `path` (whose marker is there) is a sled
/// store: a journal store is opened by `JournalBackend`, never by sled,
/// which would write its own files into it.
fn expect_sled_format(path: &Path) -> Result<()> {
    match layout::store_format(path)? {
        layout::SLED_FORMAT => Ok(()),
        _ => Err(Error::Unavailable {
            store: path.display().to_string(),
            detail: "it is a journal store (format 2), not a sled store: open it with \
                     Db::open or JournalBackend::open"
                .to_string(),
        }),
    }
}

pub(crate) fn store_exists(path: &Path) -> Error {
    Error::StoreExists {
        path: path.display().to_string(),
    }
}

pub(crate) fn no_space(path: &Path) -> Error {
    Error::NoSpace {
        path: path.display().to_string(),
    }
}

/// True if a store made by an earlier build (no marker) has no ref: what
/// an interrupted init of that build left. Called with the lock held.
fn legacy_is_incomplete(path: &Path, options: &SledOptions) -> Result<bool> {
    layout::check_conf(path)?;
    remove_partial_snapshots(path)?;
    let db = open_waiting(&config(path, options), path, options.close_wait)?;
    let has_refs = db.tree_names().iter().any(|n| n == b"refs");
    let incomplete = !has_refs
        || db
            .open_tree("refs")
            .map_err(|e| sled_error(path, e))?
            .is_empty();
    drop(db);
    Ok(incomplete)
}

/// The error numbers of a full disk, of a read-only file system and of
/// missing permission, as far as this platform tells them.
#[derive(PartialEq)]
enum WriteFailure {
    NoSpace,
    ReadOnlyMount,
    NoPermission,
    Other,
}

fn classify(e: &io::Error) -> WriteFailure {
    #[cfg(unix)]
    {
        use rustix::io::Errno;
        match Errno::from_io_error(e) {
            Some(Errno::NOSPC) | Some(Errno::DQUOT) => return WriteFailure::NoSpace,
            Some(Errno::ROFS) => return WriteFailure::ReadOnlyMount,
            Some(Errno::ACCESS) | Some(Errno::PERM) => return WriteFailure::NoPermission,
            _ => {}
        }
    }
    match e.kind() {
        io::ErrorKind::PermissionDenied => WriteFailure::NoPermission,
        _ => WriteFailure::Other,
    }
}

/// kvgit's error for an I/O error while writing (or opening for writing)
/// `path`: [`Error::NoSpace`], [`Error::ReadOnly`] or [`Error::IoAt`].
pub(crate) fn write_error(path: &Path, op: &str, e: io::Error) -> Error {
    let read_only = |why: String| Error::ReadOnly {
        path: path.display().to_string(),
        detail: format!("{why}; commands that only read the store still work"),
    };
    match classify(&e) {
        WriteFailure::NoSpace => no_space(path),
        WriteFailure::ReadOnlyMount => read_only("its file system is mounted read-only".into()),
        WriteFailure::NoPermission => read_only(format!(
            "this user may not write it ({e}): run as the store's owner to change it"
        )),
        WriteFailure::Other => io_at(op, path, e),
    }
}

/// True for the errors that mean "this cannot be written here".
fn is_cannot_write(e: &Error) -> bool {
    matches!(e, Error::NoSpace { .. } | Error::ReadOnly { .. })
}

/// kvgit's error for a sled error on the store at `path`.
fn sled_error(path: &Path, e: ::sled::Error) -> Error {
    match e {
        ::sled::Error::Io(e) => match classify(&e) {
            WriteFailure::Other if e.kind() == io::ErrorKind::NotFound => {
                // sled opens no file but its page files after it started.
                io_at(
                    "read a page file of the store under",
                    &path.join(BLOBS_DIR),
                    e,
                )
            }
            WriteFailure::Other => io_at("read or write the store's files in", path, e),
            _ => write_error(path, "write to the store", e),
        },
        ::sled::Error::Corruption { .. } => Error::Storage(format!(
            "the store at {} is damaged: sled found a damaged record ({e}); restore the store \
             from a backup",
            path.display()
        )),
        other => Error::Storage(format!("sled, on the store at {}: {other}", path.display())),
    }
}

/// Free bytes for an unprivileged user on the file system of `path`, if
/// the platform tells.
fn available_space(path: &Path) -> Option<u64> {
    #[cfg(unix)]
    {
        let st = rustix::fs::statvfs(path).ok()?;
        Some(st.f_bavail.saturating_mul(st.f_frsize))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// Fails with [`Error::NoSpace`] unless the disk of `path` has room for a
/// write of `bytes` (counted twice: sled may rewrite a page soon after) with
/// [`WRITE_RESERVE`] to spare. sled 0.34 can hang when a write fails for
/// want of space (see `Drop`), so kvgit avoids asking it to.
pub(crate) fn check_space(path: &Path, bytes: u64) -> Result<()> {
    if skip_space_check() {
        return Ok(());
    }
    match available_space(path) {
        Some(free) if free < bytes.saturating_mul(2).saturating_add(WRITE_RESERVE) => {
            Err(no_space(path))
        }
        _ => Ok(()),
    }
}

/// In debug builds, the environment variable `KVGIT_TEST_NO_SPACE_CHECK`
/// turns [`check_space`] off, so tests can make sled itself hit a full
/// disk. Release builds ignore it.
fn skip_space_check() -> bool {
    cfg!(debug_assertions) && std::env::var_os("KVGIT_TEST_NO_SPACE_CHECK").is_some()
}

/// True if sled can be opened in the store directory for a read-only
/// open: the file system is writable with room to spare, and so are the
/// directory and sled's files for this user.
fn can_write_in_place(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use rustix::fs::{access, statvfs, Access, StatVfsMountFlags};
        let Ok(st) = statvfs(path) else {
            return false;
        };
        if st.f_flag.contains(StatVfsMountFlags::RDONLY)
            || st.f_bavail.saturating_mul(st.f_frsize) < READ_IN_PLACE_RESERVE
        {
            return false;
        }
        [
            path.to_path_buf(),
            path.join(DATA_FILE),
            path.join(BLOBS_DIR),
        ]
        .iter()
        .all(|p| access(p, Access::WRITE_OK).is_ok())
    }
    #[cfg(not(unix))]
    {
        available_space(path).is_none_or(|free| free >= READ_IN_PLACE_RESERVE)
    }
}

/// In debug builds, if the environment variable `KVGIT_TEST_FAIL_AT` names
/// `point`, the process aborts there (as if killed): the tests of atomic
/// creation use it. Release builds ignore it.
pub(crate) fn fault_point(point: &str) {
    #[cfg(debug_assertions)]
    if std::env::var_os("KVGIT_TEST_FAIL_AT").is_some_and(|v| v == point) {
        std::process::abort();
    }
    #[cfg(not(debug_assertions))]
    let _ = point;
}

/// A private copy of a store for a read-only open, removed on drop.
struct TempCopy {
    dir: PathBuf,
}

impl TempCopy {
    /// Copies sled's files of the store at `from` (not kvgit's, not sled's
    /// partial snapshots) to a new private directory.
    fn of(from: &Path) -> Result<Self> {
        let base = match Path::new("/dev/shm") {
            shm if cfg!(target_os = "linux") && shm.is_dir() => shm.to_path_buf(),
            _ => std::env::temp_dir(),
        };
        let copy = TempCopy::new_in(&base)?;
        let result = (|| -> io::Result<()> {
            for entry in fs::read_dir(from)? {
                let entry = entry?;
                let name = entry.file_name();
                let text = name.to_string_lossy();
                let wanted = text == "conf"
                    || text == DATA_FILE
                    || (text.starts_with("snap.") && !text.ends_with(".generating"));
                if wanted {
                    fs::copy(entry.path(), copy.dir.join(&name))?;
                } else if text == BLOBS_DIR {
                    fs::create_dir(copy.dir.join(BLOBS_DIR))?;
                    for blob in fs::read_dir(entry.path())? {
                        let blob = blob?;
                        fs::copy(blob.path(), copy.dir.join(BLOBS_DIR).join(blob.file_name()))?;
                    }
                }
            }
            Ok(())
        })();
        result.map_err(|e| Error::Unavailable {
            store: from.display().to_string(),
            detail: format!(
                "it cannot be opened in place (a read-only mount, no write permission or a \
                     full disk), and copying it for reading into {} failed: {e}; free space there \
                     (or set TMPDIR to a directory with room) and try again",
                copy.dir.display()
            ),
        })?;
        Ok(copy)
    }

    fn new_in(base: &Path) -> Result<Self> {
        use std::sync::atomic::AtomicU64;
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = base.join(format!(
            "kvgit-read-{}-{nanos}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let mut builder = fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(&dir)
            .map_err(|e| io_at("create a private directory to read the store in", &dir, e))?;
        Ok(TempCopy { dir })
    }
}

impl Drop for TempCopy {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// An error opening sled on a private copy: the copy's path means nothing
/// to the user, the store's does.
fn reword_copy_error(e: Error, copy: &Path, store: &Path) -> Error {
    match e {
        Error::NoSpace { .. } => Error::Unavailable {
            store: store.display().to_string(),
            detail: format!(
                "reading it needs a private copy, and {} has no space left for one",
                copy.display()
            ),
        },
        other => other,
    }
}

/// Deletes the `snap.*.generating` files a crash can leave: sled 0.34
/// writes its snapshot under that name and renames it when complete, but on
/// the next open it reads a partial one as the newest snapshot and refuses
/// to open, every time (sled issues #1527 and #1533). The log it was made
/// from is still there, so the file holds nothing that would be lost. Only
/// called with the store's lock held, so no live sled is writing one.
fn remove_partial_snapshots(path: &Path) -> Result<()> {
    let list = |e| io_at("list", path, e);
    let entries = match fs::read_dir(path) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(list(e)),
    };
    for entry in entries {
        let entry = entry.map_err(list)?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.") && name.ends_with(".generating") {
            let p = entry.path();
            fs::remove_file(&p).map_err(|e| write_error(&p, "remove", e))?;
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

/// Opens the sled database, waiting up to `close_wait` while sled's own
/// lock on `db` is held: with kvgit's lock ours, that can only be a handle
/// that is still closing (or a program using sled directly).
fn open_waiting(config: &::sled::Config, path: &Path, close_wait: Duration) -> Result<::sled::Db> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        let result = match open_guarded(config) {
            Ok(db) => Ok(db),
            Err(OpenFailure::Sled(e)) => Err(e),
            Err(OpenFailure::Panicked(message)) => {
                return Err(Error::Storage(format!(
                    "the store at {} is damaged: sled failed while reading it ({message}); \
                     restore the store from a backup",
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
            Err(::sled::Error::Io(e)) => {
                return Err(match classify(&e) {
                    WriteFailure::Other => {
                        io_at("open sled's files (conf, db, blobs, snap.*) in", path, e)
                    }
                    _ => write_error(path, "open", e),
                })
            }
            Err(e) => return Err(sled_error(path, e)),
        }
    }
}

fn is_sled_lock_error(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Other && e.to_string().contains(SLED_LOCK_MESSAGE)
}

/// kvgit's exclusive lock on a store directory, held for a backend's
/// lifetime: an advisory `flock` through std's `File::try_lock` (Rust
/// 1.89).
pub(crate) struct StoreLock {
    file: File,
    data_path: PathBuf,
    close_wait: Duration,
}

impl StoreLock {
    /// Takes the lock of the store at `dir`, creating the lock file if
    /// missing.
    pub(crate) fn acquire(dir: &Path, close_wait: Duration) -> Result<Self> {
        let lock_path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| write_error(&lock_path, "open the lock file", e))?;
        Self::lock(file, dir, close_wait)
    }

    /// Takes the lock of the store at `dir` for a read-only open, without
    /// creating or writing anything: `None` if there is no lock file (no
    /// kvgit ever opened the store for writing) or it cannot be opened.
    pub(crate) fn acquire_for_reading(dir: &Path, close_wait: Duration) -> Result<Option<Self>> {
        let lock_path = dir.join(LOCK_FILE);
        match File::open(&lock_path) {
            Ok(file) => Self::lock(file, dir, close_wait).map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_at("open the lock file", &lock_path, e)),
        }
    }

    fn lock(file: File, dir: &Path, close_wait: Duration) -> Result<Self> {
        let lock_path = dir.join(LOCK_FILE);
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::Locked {
                    path: dir.display().to_string(),
                    detail: format!(
                        "{} is held by another open handle on the store \
                         (another process, or a live backend in this one)",
                        lock_path.display()
                    ),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_at("lock", &lock_path, e)),
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
        wait_released(&self.data_path, self.close_wait);
        let _ = self.file.unlock();
    }
}

/// Waits (at most `close_wait`) until sled's I/O threads have released
/// its lock on the data file `data_path` of a database whose handles were
/// all dropped; true once released.
fn wait_released(data_path: &Path, close_wait: Duration) -> bool {
    if close_wait.is_zero() {
        return false;
    }
    let Ok(data) = File::open(data_path) else {
        return true;
    };
    let start = Instant::now();
    loop {
        if data.try_lock().is_ok() {
            // Dropping `data` releases the probe lock.
            return true;
        }
        if start.elapsed() >= close_wait {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// fsyncs a directory, making the entries created in it durable. A no-op
/// where directories cannot be opened as files.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| write_error(dir, "fsync the directory", e))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Feeds the objects of a sled scan to `visit` (id and size) until the
/// scan ends or `visit` says stop.
fn visit_objects(
    path: &Path,
    scan: ::sled::Iter,
    visit: &mut dyn FnMut(ObjectId, u64) -> Result<bool>,
) -> Result<()> {
    for item in scan {
        let (key, value) = item.map_err(|e| sled_error(path, e))?;
        let id = decode_id(&key, || {
            format!("an object key ({:02x?})", &key[..key.len().min(40)])
        })?;
        if !visit(id, value.len() as u64)? {
            break;
        }
    }
    Ok(())
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
            .h()?
            .objects
            .get(id.as_bytes())
            .map_err(|e| self.read_err(e))?
            .map(|v| v.to_vec()))
    }

    fn has_object(&self, id: &ObjectId) -> Result<bool> {
        self.h()?
            .objects
            .contains_key(id.as_bytes())
            .map_err(|e| self.read_err(e))
    }

    fn put_objects(&self, objects: Vec<(ObjectId, Vec<u8>)>) -> Result<()> {
        let h = self.h()?;
        let (new, bytes) = self.new_objects(&h, objects)?;
        if bytes > 0 {
            self.before_write(bytes)?;
            self.insert_objects(&h, new)?;
        }
        Ok(())
    }

    fn put_objects_and_cas(
        &self,
        objects: Vec<(ObjectId, Vec<u8>)>,
        refs: &[ObjectId],
        name: &str,
        expected: Option<&ObjectId>,
        new: Option<&ObjectId>,
    ) -> Result<CasOutcome> {
        // One process owns the store: its fence keeps a sweep away.
        let _ = refs;
        let h = self.h()?;
        let (objects, bytes) = self.new_objects(&h, objects)?;
        // One space check for the objects and the swap.
        self.before_write(bytes + name.len() as u64 + 64)?;
        self.insert_objects(&h, objects)?;
        self.swap_ref(&h, name, expected, new)
    }

    fn delete_objects(&self, ids: &[ObjectId]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.before_write(ids.len() as u64 * 64)?;
        let mut batch = ::sled::Batch::default();
        for id in ids {
            batch.remove(&id.as_bytes()[..]);
        }
        self.h()?
            .objects
            .apply_batch(batch)
            .map_err(|e| self.write_failed(e))
    }

    fn for_each_object(&self, visit: &mut dyn FnMut(ObjectId, u64) -> Result<bool>) -> Result<()> {
        visit_objects(&self.path, self.h()?.objects.iter(), visit)
    }

    fn for_each_object_in(
        &self,
        start: &ObjectId,
        end: Option<&ObjectId>,
        visit: &mut dyn FnMut(ObjectId, u64) -> Result<bool>,
    ) -> Result<()> {
        let start = start.as_bytes().as_slice();
        let h = self.h()?;
        let objects = &h.objects;
        let range = match end {
            Some(end) => objects.range(start..end.as_bytes().as_slice()),
            None => objects.range(start..),
        };
        visit_objects(&self.path, range, visit)
    }

    fn get_ref(&self, name: &str) -> Result<Option<ObjectId>> {
        match self
            .h()?
            .refs
            .get(name.as_bytes())
            .map_err(|e| self.read_err(e))?
        {
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
        self.before_write(name.len() as u64 + 64)?;
        let h = self.h()?;
        self.swap_ref(&h, name, expected, new)
    }

    fn ref_version(&self) -> Option<u64> {
        Some(self.ref_version.load(std::sync::atomic::Ordering::SeqCst))
    }

    fn list_refs(&self, prefix: &str) -> Result<Vec<(String, ObjectId)>> {
        let mut out = Vec::new();
        for item in self.h()?.refs.scan_prefix(prefix.as_bytes()) {
            let (key, value) = item.map_err(|e| self.read_err(e))?;
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
        Ok(self
            .h()?
            .meta
            .get(key)
            .map_err(|e| self.read_err(e))?
            .map(|v| v.to_vec()))
    }

    fn put_meta(&self, entries: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let bytes = entries
            .iter()
            .map(|(k, v)| (k.len() + v.as_ref().map_or(0, Vec::len)) as u64)
            .sum();
        self.before_write(bytes)?;
        let mut batch = ::sled::Batch::default();
        for (key, value) in entries {
            match value {
                Some(value) => batch.insert(key, value),
                None => batch.remove(key),
            }
        }
        self.h()?
            .meta
            .apply_batch(batch)
            .map_err(|e| self.write_failed(e))
    }

    fn scan_meta(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.h()?
            .meta
            .scan_prefix(prefix)
            .map(|item| {
                let (k, v) = item.map_err(|e| self.read_err(e))?;
                Ok((k.to_vec(), v.to_vec()))
            })
            .collect()
    }

    fn flush(&self, durability: Durability) -> Result<()> {
        if self.mode != Mode::Write {
            // Nothing was written.
            return Ok(());
        }
        if self.failed.load(Ordering::Acquire) != 0 {
            // A flush after a failed write can hang inside sled.
            return self.before_write(0);
        }
        // List page files first: those are complete once sled's flush
        // returns (see `sync_blobs`); newer ones wait for the next flush.
        // Held throughout: a compaction swaps the database only between
        // flushes.
        let h = self.h()?;
        let blobs = self.blob_names()?;
        self.flush_log(&h)?;
        self.sync_blobs(blobs)?;
        if durability == Durability::Durable {
            if let Some(data) = &h.data_file {
                data.sync_data()
                    .map_err(|e| write_error(&self.path.join(DATA_FILE), "fsync", e))?;
            }
        }
        Ok(())
    }

    fn size_on_disk(&self) -> Result<u64> {
        dir_size(&self.path)
    }

    fn compact(&self) -> Result<Option<Compaction>> {
        SledBackend::compact(self).map(Some)
    }
}

/// The sum of the sizes of the files under `dir`, recursively. Files that
/// vanish while it runs (sled removing a page file) are skipped.
fn dir_size(dir: &Path) -> Result<u64> {
    let mut total = 0;
    let list = |e| io_at("list", dir, e);
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(list(e)),
    };
    for entry in entries {
        let entry = entry.map_err(list)?;
        let meta = match entry.metadata() {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_at("look at", &entry.path(), e)),
        };
        if meta.is_dir() {
            total += dir_size(&entry.path())?;
        } else {
            total += meta.len();
        }
    }
    Ok(total)
}
