//! The journal backend: an embedded store of kvgit's own, one append-only
//! file of records with the index in memory.
//!
//! # Why
//!
//! kvgit's objects are immutable and named by their hash, and a commit
//! adds a few of them (a single-key commit at 1M keys: four tree nodes of
//! about 4 KiB and the commit) and moves one ref. sled stores each object
//! as a value in a B-tree page of up to 16 values, rewrites whole pages as
//! it consolidates them and relocates live pages as it cleans segments:
//! measured here, one such commit made sled write about 400 KB and cost
//! 500 µs with its fsync, and a store took 2-3x its logical size. An
//! append-only file writes each object once, where it will stay: a commit
//! appends its ~18 KB and syncs once (group commit: one fdatasync covers
//! every commit appended before it); a clone streams objects to the end of
//! the file. This is git's layout too (objects in packs, refs beside).
//!
//! # Layout
//!
//! ```text
//! <path>/kvgit.store     the marker, "kvgit store\nformat 2\n" (written last
//!                        at creation, as for sled stores: see `layout`)
//! <path>/kvgit.lock      kvgit's lock file (flock'ed while open)
//! <path>/journal         the records: a 32-byte header, then records
//! <path>/journal.index   a checkpoint of the index (see below); optional
//! ```
//!
//! The journal starts with `kvgit journal 1\n` and a 16-byte generation
//! (new for each file, so a checkpoint names the file it indexes). Each
//! record is a frame (payload length, u32 LE; CRC-32 of the kind byte and
//! the payload, u32 LE; the kind byte) and its payload:
//!
//! - object (1): the 32-byte id, then the object's bytes;
//! - ref (2): name length (u16 LE), name, then 0 (deleted) or 1 and the
//!   32-byte id;
//! - metadata (3): entry count (u32 LE), then for each: key length (u32
//!   LE), key, then 0 (deleted) or 1, value length (u32 LE) and value;
//! - delete objects (4): id count (u32 LE), then the ids (garbage
//!   collection).
//!
//! Opening reads the checkpoint (ids with their places, refs and metadata
//! as of a journal length it covers) and replays the records after it, or
//! replays the whole journal when there is no usable checkpoint. A clean
//! close writes a checkpoint covering everything, so the next open reads
//! no record.
//!
//! # Crashes
//!
//! Records are appended in order, under one lock, with positional writes,
//! so the file is always its records in the order their calls returned,
//! then possibly a partly written one. After a process crash (SIGKILL)
//! every record written before is in the operating system's cache, and
//! the file is complete up to it. After a power loss, everything before
//! the last fdatasync is on disk, and what came after may be missing or
//! torn in any way: replay stops at the first record whose frame or CRC
//! does not check, and opening for writing cuts the file there. A store
//! therefore always recovers to a prefix of its records: objects before
//! the ref that needs them, as the commit protocol wrote them ("Ordering
//! contract" in the `store` module), so no ref ever points at a missing
//! object.
//!
//! - [`Durability::Durable`]: the barrier fdatasyncs the journal (one
//!   call serves every writer waiting: group commit).
//! - [`Durability::Eventual`]: records reach the operating system when
//!   their call returns; a power loss may lose the newest, as a suffix.
//!
//! Damage at rest is found: a checkpoint records the journal length it
//! covers, and a journal shorter than that, or a record before that point
//! failing its CRC when replayed, is [`Error::Corrupt`], never a silent
//! loss. Every object read is checked against its id by the caller.
//!
//! # Space
//!
//! Deleting objects (garbage collection) appends their ids and drops them
//! from the index; their bytes stay in the file until
//! [`JournalBackend::compact`] copies what is live into a fresh journal
//! and renames it over the old one (a crash at any point leaves one whole
//! journal). The index holds about 60 bytes per object in memory (45,000
//! objects for a million keys of 100-byte values).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};

use super::sled::layout::{self, io_at, not_a_store, DirState};
use super::sled::{
    check_space, fault_point, no_space, store_exists, sync_dir, write_error, StoreLock,
};
use super::{Backend, CasOutcome, Compaction, Durability};
use crate::error::{Error, Result};
use crate::id::ObjectId;

/// The journal file inside a store directory.
pub(crate) const JOURNAL_FILE: &str = "journal";
/// The checkpoint of the index.
pub(crate) const INDEX_FILE: &str = "journal.index";
/// The checkpoint while it is written.
pub(crate) const INDEX_TMP_FILE: &str = "journal.index.tmp";
/// The fresh journal a compaction writes.
pub(crate) const COMPACT_FILE: &str = "journal.compact";

/// The journal's first 16 bytes.
const MAGIC: &[u8; 16] = b"kvgit journal 1\n";
/// The checkpoint's first 16 bytes.
const INDEX_MAGIC: &[u8; 16] = b"kvgit jindex 1\n\0";
/// Magic and generation.
const HEADER_LEN: u64 = 32;
/// A record's frame: payload length, CRC, kind.
const FRAME: usize = 9;
/// The largest payload a record may have (a metadata batch is split into
/// records below this).
const MAX_PAYLOAD: usize = 256 << 20;
/// Bytes a compaction copies per write.
const COPY_BATCH: usize = 8 << 20;
/// Ids per delete record.
const DELETE_BATCH: usize = 1 << 20;
/// How many index entries [`Backend::for_each_object`] takes per hold of
/// the lock.
const VISIT_BATCH: usize = 4096;

const KIND_OBJECT: u8 = 1;
const KIND_REF: u8 = 2;
const KIND_META: u8 = 3;
const KIND_DELETE: u8 = 4;

/// Options of a [`JournalBackend`].
#[derive(Clone, Debug)]
pub struct JournalOptions {
    /// After the journal has grown by this many bytes since the last
    /// checkpoint, a durable flush writes a new one (so that reopening
    /// after a crash replays at most about this much). Default: 64 MiB.
    pub checkpoint_every: u64,
}

impl Default for JournalOptions {
    fn default() -> Self {
        JournalOptions {
            checkpoint_every: 64 << 20,
        }
    }
}

/// Where an object's bytes are in the journal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Loc {
    offset: u64,
    len: u32,
}

/// What is in memory: the open journal and its index.
struct State {
    file: Arc<File>,
    generation: [u8; 16],
    /// Where the next record goes: the end of the last record.
    end: u64,
    /// The journal file's length: from `end` on it holds zeros (written
    /// ahead, so that a durable commit overwrites allocated blocks and its
    /// fdatasync has no file size to record) or what a crash left after
    /// the last whole record, which the chained CRCs keep out.
    alloc_end: u64,
    /// The CRC of the last record (the chain's seed for a journal without
    /// records): each record's CRC covers its predecessor's.
    last_crc: u32,
    objects: BTreeMap<ObjectId, Loc>,
    refs: BTreeMap<String, ObjectId>,
    meta: BTreeMap<Vec<u8>, Vec<u8>>,
    /// The journal length the newest checkpoint covers (0: none).
    checkpointed: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Write,
    Read,
}

/// Why writes are refused after a failed one.
const FAILED_NO_SPACE: u8 = 1;
const FAILED_OTHER: u8 = 2;

/// The journal backend (see the module docs).
pub struct JournalBackend {
    path: PathBuf,
    options: JournalOptions,
    state: RwLock<State>,
    /// The journal length known to be on disk; held while syncing, so
    /// that concurrent barriers share one fdatasync.
    synced: Mutex<u64>,
    mode: Mode,
    failed: AtomicU8,
    pending_init: AtomicBool,
    ref_version: AtomicU64,
    _lock: Option<StoreLock>,
}

impl std::fmt::Debug for JournalBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalBackend")
            .field("path", &self.path)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl JournalBackend {
    /// Opens the journal store at `path`, creating it if the directory is
    /// missing or empty (or holds what an interrupted creation left).
    ///
    /// Fails with [`Error::NotAStore`] if the directory holds anything
    /// else (nothing is created or changed there),
    /// [`Error::Unavailable`] for a sled store, [`Error::Locked`] at once
    /// if another handle has the store open, [`Error::ReadOnly`] if it
    /// cannot be written here, and [`Error::NoSpace`] on a full disk.
    pub fn open(path: impl AsRef<Path>, options: JournalOptions) -> Result<Self> {
        let path = path.as_ref();
        match layout::probe(path)? {
            DirState::Missing | DirState::Empty | DirState::Interrupted => {
                let backend = Self::create(path, options)?;
                backend.complete_init()?;
                Ok(backend)
            }
            DirState::Store => Self::open_existing(path, options, Mode::Write),
            DirState::Legacy => Err(not_journal(path)),
        }
    }

    /// Starts creating a store at `path`, like `SledBackend::create`: the
    /// backend works, but the directory becomes a store only when
    /// [`JournalBackend::complete_init`] returns.
    pub fn create(path: impl AsRef<Path>, options: JournalOptions) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        match layout::probe(&path)? {
            DirState::Store => return Err(store_exists(&path)),
            DirState::Legacy => return Err(not_journal(&path)),
            DirState::Missing => {
                fs::create_dir_all(&path)
                    .map_err(|e| write_error(&path, "create the directory", e))?;
                fault_point("init:dir");
            }
            DirState::Empty | DirState::Interrupted => {}
        }
        check_space(&path, 0)?;
        let lock = StoreLock::acquire(&path, Duration::ZERO)?;
        fault_point("init:lock");
        match layout::probe(&path)? {
            DirState::Store => return Err(store_exists(&path)),
            DirState::Legacy => return Err(not_journal(&path)),
            DirState::Missing | DirState::Empty | DirState::Interrupted => {}
        }
        layout::write_init_file(&path, layout::JOURNAL_MARKER_TEXT)?;
        fault_point("init:begun");
        layout::clear_leftovers(&path)?;
        let journal = path.join(JOURNAL_FILE);
        let generation = new_generation(&path);
        let file = write_new_journal(&journal, &generation)?;
        sync_dir(&path)?;
        fault_point("init:journal");
        Ok(JournalBackend {
            state: RwLock::new(State {
                file: Arc::new(file),
                generation,
                end: HEADER_LEN,
                alloc_end: HEADER_LEN,
                last_crc: chain_seed(&generation),
                objects: BTreeMap::new(),
                refs: BTreeMap::new(),
                meta: BTreeMap::new(),
                checkpointed: 0,
            }),
            synced: Mutex::new(HEADER_LEN),
            mode: Mode::Write,
            failed: AtomicU8::new(0),
            pending_init: AtomicBool::new(true),
            ref_version: AtomicU64::new(0),
            _lock: Some(lock),
            options,
            path,
        })
    }

    /// Completes a [`JournalBackend::create`]: makes everything written
    /// durable, then writes the marker. A no-op on a complete store.
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

    /// Opens the existing journal store at `path` for reading only: every
    /// write fails with [`Error::ReadOnly`], and nothing in the directory
    /// is created or changed (a torn last record is skipped, not cut).
    pub fn open_read_only(path: impl AsRef<Path>, options: JournalOptions) -> Result<Self> {
        let path = path.as_ref();
        match layout::probe(path)? {
            DirState::Store => Self::open_existing(path, options, Mode::Read),
            DirState::Missing | DirState::Empty | DirState::Interrupted => Err(not_a_store(
                path,
                "there is no complete kvgit store there (no marker file kvgit.store)",
            )),
            DirState::Legacy => Err(not_journal(path)),
        }
    }

    /// True if `path` holds a journal store (its marker says format 2).
    pub fn is_journal_store(path: impl AsRef<Path>) -> bool {
        let path = path.as_ref();
        matches!(layout::probe(path), Ok(DirState::Store))
            && matches!(layout::store_format(path), Ok(layout::JOURNAL_FORMAT))
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Copies the live records (objects not deleted, refs, metadata) into
    /// a fresh journal, renames it over the old one and writes a
    /// checkpoint: the space of deleted objects goes back to the file
    /// system. Writers and readers wait meanwhile.
    pub fn compact(&self) -> Result<Compaction> {
        self.writable()?;
        let before = self.disk_bytes()?;
        let mut st = self.state.write();
        let tmp = self.path.join(COMPACT_FILE);
        let generation = new_generation(&self.path);
        let mut new_objects = BTreeMap::new();
        let mut records = Records::new(chain_seed(&generation), COPY_BATCH + (1 << 20));
        let mut live_bytes = 0u64;
        let file = create_journal_file(&tmp, &generation)?;
        let mut end = HEADER_LEN;
        let copy = (|| -> Result<()> {
            for (id, loc) in &st.objects {
                let bytes = read_at(&st.file, &self.path, *loc)?;
                let data_at = end + records.object(id, &bytes);
                new_objects.insert(
                    *id,
                    Loc {
                        offset: data_at,
                        len: loc.len,
                    },
                );
                live_bytes += u64::from(loc.len) + 32;
                if records.buf.len() >= COPY_BATCH {
                    check_space(&self.path, records.buf.len() as u64)?;
                    write_all_at(&file, &records.buf, end)
                        .map_err(|e| write_error(&tmp, "write", e))?;
                    end += records.buf.len() as u64;
                    records.buf.clear();
                }
            }
            for (name, id) in &st.refs {
                records.reference(name, Some(id));
                live_bytes += (name.len() + 32) as u64;
            }
            let entries: Vec<(Vec<u8>, Option<Vec<u8>>)> = st
                .meta
                .iter()
                .map(|(k, v)| {
                    live_bytes += (k.len() + v.len()) as u64;
                    (k.clone(), Some(v.clone()))
                })
                .collect();
            records.meta(&entries)?;
            check_space(&self.path, records.buf.len() as u64)?;
            write_all_at(&file, &records.buf, end).map_err(|e| write_error(&tmp, "write", e))?;
            end += records.buf.len() as u64;
            file.sync_all().map_err(|e| write_error(&tmp, "fsync", e))?;
            Ok(())
        })();
        if let Err(e) = copy {
            drop(file);
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        fault_point("journal:compact-written");
        let journal = self.path.join(JOURNAL_FILE);
        fs::rename(&tmp, &journal).map_err(|e| write_error(&tmp, "rename", e))?;
        sync_dir(&self.path)?;
        st.file = Arc::new(file);
        st.generation = generation;
        st.end = end;
        st.alloc_end = end;
        st.last_crc = records.chain;
        st.objects = new_objects;
        st.checkpointed = 0;
        *self.synced.lock() = end;
        self.write_checkpoint(&mut st)?;
        drop(st);
        Ok(Compaction {
            bytes_before: before,
            bytes_after: self.disk_bytes()?,
            live_bytes,
        })
    }

    fn open_existing(path: &Path, options: JournalOptions, mode: Mode) -> Result<Self> {
        let path = path.to_path_buf();
        if layout::store_format(&path)? != layout::JOURNAL_FORMAT {
            return Err(not_journal(&path));
        }
        let lock = match mode {
            Mode::Write => {
                check_space(&path, 0)?;
                Some(StoreLock::acquire(&path, Duration::ZERO)?)
            }
            Mode::Read => StoreLock::acquire_for_reading(&path, Duration::ZERO)?,
        };
        if mode == Mode::Write {
            // A compaction that did not get to its rename.
            let tmp = path.join(COMPACT_FILE);
            if tmp.exists() {
                fs::remove_file(&tmp).map_err(|e| io_at("remove", &tmp, e))?;
            }
        }
        let journal = path.join(JOURNAL_FILE);
        let file = match mode {
            Mode::Write => OpenOptions::new()
                .read(true)
                .write(true)
                .open(&journal)
                .map_err(|e| write_error(&journal, "open", e))?,
            Mode::Read => File::open(&journal).map_err(|e| io_at("open", &journal, e))?,
        };
        let len = file
            .metadata()
            .map_err(|e| io_at("look at", &journal, e))?
            .len();
        let generation = read_header(&file, &journal, len)?;
        let mut st = State {
            file: Arc::new(file),
            generation,
            end: HEADER_LEN,
            alloc_end: len,
            last_crc: chain_seed(&generation),
            objects: BTreeMap::new(),
            refs: BTreeMap::new(),
            meta: BTreeMap::new(),
            checkpointed: 0,
        };
        if let Some(covered) = load_checkpoint(&path, &mut st)? {
            if covered > len {
                return Err(Error::RolledBack {
                    path: path.display().to_string(),
                    detail: format!(
                        "its journal holds {len} bytes, and the index checkpoint written when \
                         it was last closed covers {covered}: the file lost data at rest; \
                         nothing was changed (restore the store from a backup)"
                    ),
                });
            }
            st.end = covered;
            st.checkpointed = covered;
        }
        // What follows the last whole record (zeros written ahead, or a
        // torn record and whatever a crash left after it) stays: the next
        // record overwrites it, and a stale record there can never be
        // replayed, since its CRC chains to a predecessor that is gone.
        let valid_end = replay(&journal, &mut st, len)?;
        st.end = valid_end;
        st.alloc_end = len;
        Ok(JournalBackend {
            synced: Mutex::new(valid_end),
            state: RwLock::new(st),
            mode,
            failed: AtomicU8::new(0),
            pending_init: AtomicBool::new(false),
            ref_version: AtomicU64::new(0),
            _lock: lock,
            options,
            path,
        })
    }

    fn writable(&self) -> Result<()> {
        if self.mode == Mode::Read {
            return Err(Error::ReadOnly {
                path: self.path.display().to_string(),
                detail: "it was opened for reading only".to_string(),
            });
        }
        match self.failed.load(Ordering::Acquire) {
            0 => Ok(()),
            FAILED_NO_SPACE => Err(no_space(&self.path)),
            _ => Err(Error::Storage(format!(
                "{}: an earlier write or fsync failed, so this handle refuses writes; \
                 reopen the store (it recovers to its last complete record)",
                self.path.display()
            ))),
        }
    }

    /// Appends `buf` (whole records) at the end of the journal; returns
    /// where it starts. On failure nothing was added: what part of it
    /// reached the file is cut off again, or, if that fails too, the
    /// handle refuses further writes (the next open cuts it).
    fn append(&self, st: &mut State, records: &Records) -> Result<u64> {
        self.writable()?;
        let buf = &records.buf;
        check_space(&self.path, buf.len() as u64)?;
        let start = st.end;
        let end = start + buf.len() as u64;
        if end > st.alloc_end {
            self.zero_ahead(st, end)?;
        }
        if let Err(e) = write_all_at(&st.file, buf, start) {
            // What part of it landed is not a record the chain accepts
            // after the last whole one... unless all of it did: so the
            // handle refuses writes, and the next open decides.
            let err = write_error(&self.path, "write the journal of", e);
            self.fail(&err);
            return Err(err);
        }
        st.end = end;
        st.last_crc = records.chain;
        Ok(start)
    }

    /// Extends the journal with zeros (synced, with the file's new size)
    /// to past `needed`: by an eighth of its length, at least 64 KiB and
    /// at most 64 MiB at a time.
    fn zero_ahead(&self, st: &mut State, needed: u64) -> Result<()> {
        const MIB: u64 = 1 << 20;
        const STEP_MIN: u64 = 64 << 10;
        let step = (st.end / 8).clamp(STEP_MIN, 64 * MIB);
        let target = needed.max(st.alloc_end + step).div_ceil(STEP_MIN) * STEP_MIN;
        check_space(&self.path, target - st.alloc_end)?;
        let zeros = vec![0u8; MIB as usize];
        let mut at = st.alloc_end;
        let written = (|| -> io::Result<()> {
            while at < target {
                let n = (target - at).min(MIB) as usize;
                write_all_at(&st.file, &zeros[..n], at)?;
                at += n as u64;
            }
            st.file.sync_all()
        })();
        if let Err(e) = written {
            // Give the space back; the records end where they did.
            let _ = st.file.set_len(st.alloc_end);
            return Err(write_error(&self.path, "extend the journal of", e));
        }
        st.alloc_end = target;
        Ok(())
    }

    fn fail(&self, err: &Error) {
        let why = match err {
            Error::NoSpace { .. } => FAILED_NO_SPACE,
            _ => FAILED_OTHER,
        };
        let _ = self
            .failed
            .compare_exchange(0, why, Ordering::AcqRel, Ordering::Acquire);
    }

    /// Encodes the objects of `objects` not stored yet (each once);
    /// returns the ids with their offsets relative to the buffer's start.
    fn encode_new_objects(
        st: &State,
        objects: &[(ObjectId, Vec<u8>)],
        records: &mut Records,
    ) -> Result<Vec<(ObjectId, u64, u32)>> {
        let mut placed: Vec<(ObjectId, u64, u32)> = Vec::with_capacity(objects.len());
        // A batch holds up to thousands of objects (a bulk load's 8 MiB):
        // a set, not a scan of what was placed, finds repeats in it.
        let mut in_batch = std::collections::HashSet::with_capacity(objects.len());
        for (id, bytes) in objects {
            if st.objects.contains_key(id) || !in_batch.insert(*id) {
                continue;
            }
            if bytes.len() > MAX_PAYLOAD - 32 {
                return Err(Error::Storage(format!(
                    "object {id} of {} bytes is larger than a journal record can be",
                    bytes.len()
                )));
            }
            let offset = records.object(id, bytes);
            placed.push((*id, offset, bytes.len() as u32));
        }
        Ok(placed)
    }

    fn index_objects(st: &mut State, start: u64, placed: Vec<(ObjectId, u64, u32)>) {
        for (id, offset, len) in placed {
            st.objects.insert(
                id,
                Loc {
                    offset: start + offset,
                    len,
                },
            );
        }
    }

    /// Writes the checkpoint of `st` (after making the journal durable up
    /// to what it covers).
    fn write_checkpoint(&self, st: &mut State) -> Result<()> {
        let journal = self.path.join(JOURNAL_FILE);
        st.file
            .sync_data()
            .map_err(|e| write_error(&journal, "fsync", e))?;
        {
            let mut synced = self.synced.lock();
            *synced = (*synced).max(st.end);
        }
        let mut out = Vec::with_capacity(64 + st.objects.len() * 44);
        out.extend_from_slice(INDEX_MAGIC);
        out.extend_from_slice(&st.generation);
        out.extend_from_slice(&st.end.to_le_bytes());
        out.extend_from_slice(&st.last_crc.to_le_bytes());
        out.extend_from_slice(&(st.objects.len() as u64).to_le_bytes());
        for (id, loc) in &st.objects {
            out.extend_from_slice(id.as_bytes());
            out.extend_from_slice(&loc.offset.to_le_bytes());
            out.extend_from_slice(&loc.len.to_le_bytes());
        }
        out.extend_from_slice(&(st.refs.len() as u64).to_le_bytes());
        for (name, id) in &st.refs {
            out.extend_from_slice(&(name.len() as u32).to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(id.as_bytes());
        }
        out.extend_from_slice(&(st.meta.len() as u64).to_le_bytes());
        for (k, v) in &st.meta {
            out.extend_from_slice(&(k.len() as u32).to_le_bytes());
            out.extend_from_slice(k);
            out.extend_from_slice(&(v.len() as u32).to_le_bytes());
            out.extend_from_slice(v);
        }
        let sum = blake3::hash(&out);
        out.extend_from_slice(sum.as_bytes());
        let tmp = self.path.join(INDEX_TMP_FILE);
        check_space(&self.path, out.len() as u64)?;
        let written = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(&out)?;
            f.sync_all()
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(write_error(&tmp, "write", e));
        }
        fs::rename(&tmp, self.path.join(INDEX_FILE)).map_err(|e| write_error(&tmp, "rename", e))?;
        sync_dir(&self.path)?;
        st.checkpointed = st.end;
        Ok(())
    }

    fn disk_bytes(&self) -> Result<u64> {
        let mut total = 0;
        for name in [JOURNAL_FILE, INDEX_FILE] {
            let file = self.path.join(name);
            match fs::metadata(&file) {
                Ok(m) => total += m.len(),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_at("look at", &file, e)),
            }
        }
        Ok(total)
    }

    /// fdatasyncs the journal up to at least `target` bytes, sharing the
    /// call with concurrent barriers.
    fn sync_to(&self, target: u64) -> Result<()> {
        let mut synced = self.synced.lock();
        if *synced >= target {
            return Ok(());
        }
        let (file, end) = {
            let st = self.state.read();
            (st.file.clone(), st.end)
        };
        if let Err(e) = file.sync_data() {
            // After a failed fsync the kernel may have dropped the pages:
            // nothing written since the last good one can be trusted.
            let err = write_error(&self.path, "fsync the journal of", e);
            self.fail(&err);
            return Err(err);
        }
        *synced = end;
        Ok(())
    }
}

impl Drop for JournalBackend {
    /// A clean close: makes the journal durable and writes a checkpoint
    /// covering it, so the next open reads no record.
    fn drop(&mut self) {
        if self.mode != Mode::Write
            || self.failed.load(Ordering::Acquire) != 0
            || self.pending_init.load(Ordering::Acquire)
        {
            return;
        }
        let mut st = self.state.write();
        if st.checkpointed == st.end {
            return;
        }
        let _ = self.write_checkpoint(&mut st);
    }
}

impl Backend for JournalBackend {
    fn get_object(&self, id: &ObjectId) -> Result<Option<Vec<u8>>> {
        let (file, loc) = {
            let st = self.state.read();
            match st.objects.get(id) {
                Some(loc) => (st.file.clone(), *loc),
                None => return Ok(None),
            }
        };
        read_at(&file, &self.path, loc).map(Some)
    }

    fn has_object(&self, id: &ObjectId) -> Result<bool> {
        Ok(self.state.read().objects.contains_key(id))
    }

    fn put_objects(&self, objects: Vec<(ObjectId, Vec<u8>)>) -> Result<()> {
        self.writable()?;
        let mut st = self.state.write();
        let mut records = Records::new(st.last_crc, objects.iter().map(|o| o.1.len() + 48).sum());
        let placed = Self::encode_new_objects(&st, &objects, &mut records)?;
        if placed.is_empty() {
            return Ok(());
        }
        let start = self.append(&mut st, &records)?;
        Self::index_objects(&mut st, start, placed);
        Ok(())
    }

    fn put_objects_and_cas(
        &self,
        objects: Vec<(ObjectId, Vec<u8>)>,
        _refs: &[ObjectId],
        name: &str,
        expected: Option<&ObjectId>,
        new: Option<&ObjectId>,
    ) -> Result<CasOutcome> {
        self.writable()?;
        let mut st = self.state.write();
        let mut records = Records::new(
            st.last_crc,
            objects.iter().map(|o| o.1.len() + 48).sum::<usize>() + 64,
        );
        let placed = Self::encode_new_objects(&st, &objects, &mut records)?;
        let actual = st.refs.get(name).copied();
        let swap = actual.as_ref() == expected;
        if swap {
            records.reference(name, new);
        }
        if !records.buf.is_empty() {
            let start = self.append(&mut st, &records)?;
            Self::index_objects(&mut st, start, placed);
        }
        if !swap {
            return Ok(CasOutcome::Mismatch { actual });
        }
        set_ref(&mut st.refs, name, new);
        drop(st);
        self.ref_version.fetch_add(1, Ordering::AcqRel);
        Ok(CasOutcome::Swapped)
    }

    fn delete_objects(&self, ids: &[ObjectId]) -> Result<()> {
        self.writable()?;
        let mut st = self.state.write();
        let present: Vec<ObjectId> = ids
            .iter()
            .filter(|id| st.objects.contains_key(id))
            .copied()
            .collect();
        if present.is_empty() {
            return Ok(());
        }
        let mut records = Records::new(st.last_crc, present.len() * 32 + 16);
        for chunk in present.chunks(DELETE_BATCH) {
            records.delete(chunk);
        }
        self.append(&mut st, &records)?;
        for id in &present {
            st.objects.remove(id);
        }
        Ok(())
    }

    fn for_each_object(&self, visit: &mut dyn FnMut(ObjectId, u64) -> Result<bool>) -> Result<()> {
        self.visit_from(None, None, visit)
    }

    fn for_each_object_in(
        &self,
        start: &ObjectId,
        end: Option<&ObjectId>,
        visit: &mut dyn FnMut(ObjectId, u64) -> Result<bool>,
    ) -> Result<()> {
        self.visit_from(Some(*start), end.copied(), visit)
    }

    fn get_ref(&self, name: &str) -> Result<Option<ObjectId>> {
        Ok(self.state.read().refs.get(name).copied())
    }

    fn cas_ref(
        &self,
        name: &str,
        expected: Option<&ObjectId>,
        new: Option<&ObjectId>,
    ) -> Result<CasOutcome> {
        self.put_objects_and_cas(Vec::new(), &[], name, expected, new)
    }

    fn list_refs(&self, prefix: &str) -> Result<Vec<(String, ObjectId)>> {
        let st = self.state.read();
        Ok(st
            .refs
            .range(prefix.to_string()..)
            .take_while(|(name, _)| name.starts_with(prefix))
            .map(|(name, id)| (name.clone(), *id))
            .collect())
    }

    fn ref_version(&self) -> Option<u64> {
        Some(self.ref_version.load(Ordering::Acquire))
    }

    fn get_meta(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.state.read().meta.get(key).cloned())
    }

    fn put_meta(&self, entries: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<()> {
        self.writable()?;
        if entries.is_empty() {
            return Ok(());
        }
        let mut st = self.state.write();
        let mut records = Records::new(st.last_crc, 64);
        records.meta(&entries)?;
        self.append(&mut st, &records)?;
        for (k, v) in entries {
            match v {
                Some(v) => st.meta.insert(k, v),
                None => st.meta.remove(&k),
            };
        }
        Ok(())
    }

    fn scan_meta(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let st = self.state.read();
        Ok(st
            .meta
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn flush(&self, durability: Durability) -> Result<()> {
        if self.mode != Mode::Write {
            return Ok(());
        }
        self.writable()?;
        if durability == Durability::Eventual {
            // Every record is in the operating system's hands already.
            return Ok(());
        }
        let target = self.state.read().end;
        self.sync_to(target)?;
        let due = {
            let st = self.state.read();
            st.end.saturating_sub(st.checkpointed.max(HEADER_LEN)) >= self.options.checkpoint_every
        };
        if due {
            let mut st = self.state.write();
            if st.end.saturating_sub(st.checkpointed.max(HEADER_LEN))
                >= self.options.checkpoint_every
            {
                self.write_checkpoint(&mut st)?;
            }
        }
        Ok(())
    }

    fn size_on_disk(&self) -> Result<u64> {
        self.disk_bytes()
    }

    fn compact(&self) -> Result<Option<Compaction>> {
        JournalBackend::compact(self).map(Some)
    }
}

impl JournalBackend {
    fn visit_from(
        &self,
        start: Option<ObjectId>,
        end: Option<ObjectId>,
        visit: &mut dyn FnMut(ObjectId, u64) -> Result<bool>,
    ) -> Result<()> {
        use std::ops::Bound;
        let mut from = match start {
            Some(s) => Bound::Included(s),
            None => Bound::Unbounded,
        };
        loop {
            let batch: Vec<(ObjectId, u64)> = {
                let st = self.state.read();
                st.objects
                    .range((from, Bound::Unbounded))
                    .take_while(|(id, _)| end.is_none_or(|e| **id < e))
                    .take(VISIT_BATCH)
                    .map(|(id, loc)| (*id, u64::from(loc.len)))
                    .collect()
            };
            let Some(last) = batch.last().map(|(id, _)| *id) else {
                return Ok(());
            };
            let full = batch.len() == VISIT_BATCH;
            for (id, size) in batch {
                if !visit(id, size)? {
                    return Ok(());
                }
            }
            if !full {
                return Ok(());
            }
            from = Bound::Excluded(last);
        }
    }
}

/// The error for a journal or checkpoint that is not what kvgit wrote.
fn damaged(file: &Path, detail: String) -> Error {
    Error::Unavailable {
        store: file.display().to_string(),
        detail: format!("{detail}; nothing was changed"),
    }
}

/// Reads `buf.len()` bytes at `offset` (a positional read: no shared
/// file position).
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
    }
    #[cfg(windows)]
    {
        let (mut buf, mut offset) = (buf, offset);
        while !buf.is_empty() {
            match std::os::windows::fs::FileExt::seek_read(file, buf, offset) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Writes all of `buf` at `offset` (a positional write).
fn write_all_at(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::write_all_at(file, buf, offset)
    }
    #[cfg(windows)]
    {
        let (mut buf, mut offset) = (buf, offset);
        while !buf.is_empty() {
            match std::os::windows::fs::FileExt::seek_write(file, buf, offset) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    buf = &buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

fn not_journal(path: &Path) -> Error {
    Error::Unavailable {
        store: path.display().to_string(),
        detail: "it is a sled store (format 1), not a journal store: open it with Db::open or \
                 SledBackend::open"
            .to_string(),
    }
}

/// A fresh generation: a hash of the time, the process and the path.
fn new_generation(path: &Path) -> [u8; 16] {
    let mut h = blake3::Hasher::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    h.update(&now.to_le_bytes());
    h.update(&std::process::id().to_le_bytes());
    h.update(path.as_os_str().as_encoded_bytes());
    let mut g = [0u8; 16];
    g.copy_from_slice(&h.finalize().as_bytes()[..16]);
    g
}

/// Creates `file` holding only the header (fails if it exists).
fn create_journal_file(file: &Path, generation: &[u8; 16]) -> Result<File> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(file)
        .map_err(|e| write_error(file, "create", e))?;
    let mut header = Vec::with_capacity(HEADER_LEN as usize);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(generation);
    write_all_at(&f, &header, 0).map_err(|e| write_error(file, "write", e))?;
    Ok(f)
}

/// Creates `file` holding only the header, synced.
fn write_new_journal(file: &Path, generation: &[u8; 16]) -> Result<File> {
    let f = create_journal_file(file, generation)?;
    f.sync_all().map_err(|e| write_error(file, "fsync", e))?;
    Ok(f)
}

fn read_header(file: &File, path: &Path, len: u64) -> Result<[u8; 16]> {
    let mut header = [0u8; HEADER_LEN as usize];
    if len < HEADER_LEN {
        return Err(damaged(
            path,
            format!("the journal is {len} bytes long, shorter than its header"),
        ));
    }
    read_exact_at(file, &mut header, 0).map_err(|e| io_at("read", path, e))?;
    if &header[..16] != MAGIC {
        return Err(damaged(
            path,
            "the journal does not start with kvgit's journal header".to_string(),
        ));
    }
    let mut generation = [0u8; 16];
    generation.copy_from_slice(&header[16..]);
    Ok(generation)
}

fn read_at(file: &File, store: &Path, loc: Loc) -> Result<Vec<u8>> {
    let mut bytes = vec![0u8; loc.len as usize];
    read_exact_at(file, &mut bytes, loc.offset)
        .map_err(|e| io_at("read", &store.join(JOURNAL_FILE), e))?;
    Ok(bytes)
}

/// The chain's seed for a journal: the CRC of its generation.
fn chain_seed(generation: &[u8; 16]) -> u32 {
    crc32fast::hash(generation)
}

/// The CRC of a record: over its predecessor's CRC, its kind and payload.
fn record_crc(prev: u32, kind_and_payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&prev.to_le_bytes());
    h.update(kind_and_payload);
    h.finalize()
}

/// Records being encoded for one append, their CRCs chained from `chain`.
struct Records {
    buf: Vec<u8>,
    /// The CRC of the last record encoded (or the predecessor's).
    chain: u32,
}

impl Records {
    fn new(chain: u32, capacity: usize) -> Self {
        Records {
            buf: Vec::with_capacity(capacity),
            chain,
        }
    }

    /// Starts a record of `kind`; returns where its frame is.
    fn begin(&mut self, kind: u8) -> usize {
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0u8; 8]);
        self.buf.push(kind);
        at
    }

    /// Fills in the frame of the record started at `at`.
    fn finish(&mut self, at: usize) {
        let len = (self.buf.len() - at - FRAME) as u32;
        let crc = record_crc(self.chain, &self.buf[at + 8..]);
        self.buf[at..at + 4].copy_from_slice(&len.to_le_bytes());
        self.buf[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
        self.chain = crc;
    }

    /// An object record; returns where its bytes start in the buffer.
    fn object(&mut self, id: &ObjectId, bytes: &[u8]) -> u64 {
        let at = self.begin(KIND_OBJECT);
        self.buf.extend_from_slice(id.as_bytes());
        let data = self.buf.len() as u64;
        self.buf.extend_from_slice(bytes);
        self.finish(at);
        data
    }

    fn reference(&mut self, name: &str, id: Option<&ObjectId>) {
        let at = self.begin(KIND_REF);
        // Ref names are short (checked above the backend); a longer one
        // is cut to what the frame holds.
        let name = &name.as_bytes()[..name.len().min(u16::MAX as usize)];
        self.buf
            .extend_from_slice(&(name.len() as u16).to_le_bytes());
        self.buf.extend_from_slice(name);
        match id {
            Some(id) => {
                self.buf.push(1);
                self.buf.extend_from_slice(id.as_bytes());
            }
            None => self.buf.push(0),
        }
        self.finish(at);
    }

    fn delete(&mut self, ids: &[ObjectId]) {
        let at = self.begin(KIND_DELETE);
        self.buf
            .extend_from_slice(&(ids.len() as u32).to_le_bytes());
        for id in ids {
            self.buf.extend_from_slice(id.as_bytes());
        }
        self.finish(at);
    }

    /// Metadata entries, as records of at most [`MAX_PAYLOAD`] bytes.
    fn meta(&mut self, entries: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<()> {
        let mut i = 0;
        while i < entries.len() {
            let at = self.begin(KIND_META);
            let count_at = self.buf.len();
            self.buf.extend_from_slice(&0u32.to_le_bytes());
            let mut count = 0u32;
            while i < entries.len() {
                let (k, v) = &entries[i];
                let size = 9 + k.len() + v.as_ref().map_or(0, |v| v.len());
                if size > MAX_PAYLOAD - 4 {
                    return Err(Error::Storage(format!(
                        "a metadata entry of {size} bytes is larger than a journal record can be"
                    )));
                }
                if count > 0 && self.buf.len() - at - FRAME + size > MAX_PAYLOAD {
                    break;
                }
                self.buf.extend_from_slice(&(k.len() as u32).to_le_bytes());
                self.buf.extend_from_slice(k);
                match v {
                    Some(v) => {
                        self.buf.push(1);
                        self.buf.extend_from_slice(&(v.len() as u32).to_le_bytes());
                        self.buf.extend_from_slice(v);
                    }
                    None => self.buf.push(0),
                }
                count += 1;
                i += 1;
            }
            self.buf[count_at..count_at + 4].copy_from_slice(&count.to_le_bytes());
            self.finish(at);
        }
        Ok(())
    }
}

fn set_ref(refs: &mut BTreeMap<String, ObjectId>, name: &str, id: Option<&ObjectId>) {
    match id {
        Some(id) => {
            refs.insert(name.to_string(), *id);
        }
        None => {
            refs.remove(name);
        }
    }
}

/// A bounds-checked reader of a record's payload or a checkpoint.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], &'static str> {
        let s = self
            .buf
            .get(self.pos..self.pos.checked_add(n).ok_or("length overflows")?)
            .ok_or("truncated")?;
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self) -> std::result::Result<u8, &'static str> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> std::result::Result<u16, &'static str> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().map_err(|_| "truncated")?,
        ))
    }
    fn u32(&mut self) -> std::result::Result<u32, &'static str> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().map_err(|_| "truncated")?,
        ))
    }
    fn u64(&mut self) -> std::result::Result<u64, &'static str> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().map_err(|_| "truncated")?,
        ))
    }
    fn id(&mut self) -> std::result::Result<ObjectId, &'static str> {
        ObjectId::from_slice(self.take(32)?).ok_or("truncated id")
    }
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    /// A count of items of at least `min_size` bytes each: never more
    /// than the rest of the buffer could hold.
    fn count(&mut self, n: u64, min_size: usize) -> std::result::Result<usize, &'static str> {
        if n > (self.remaining() / min_size.max(1)) as u64 {
            return Err("a count larger than the bytes that follow");
        }
        Ok(n as usize)
    }
}

/// Applies one record (already checked by its CRC) to the index; `data_at`
/// is where its payload starts in the journal.
fn apply_record(
    st: &mut State,
    kind: u8,
    payload: &[u8],
    data_at: u64,
) -> std::result::Result<(), &'static str> {
    let mut c = Cursor {
        buf: payload,
        pos: 0,
    };
    match kind {
        KIND_OBJECT => {
            let id = c.id()?;
            let len = u32::try_from(c.remaining()).map_err(|_| "object too large")?;
            c.take(len as usize)?;
            st.objects.insert(
                id,
                Loc {
                    offset: data_at + 32,
                    len,
                },
            );
        }
        KIND_REF => {
            let n = c.u16()? as usize;
            let name = std::str::from_utf8(c.take(n)?).map_err(|_| "ref name not UTF-8")?;
            match c.u8()? {
                0 => {
                    st.refs.remove(name);
                }
                1 => {
                    let id = c.id()?;
                    st.refs.insert(name.to_string(), id);
                }
                _ => return Err("unknown ref tag"),
            }
        }
        KIND_META => {
            let n = c.u32()?;
            let n = c.count(u64::from(n), 5)?;
            for _ in 0..n {
                let klen = c.u32()? as usize;
                let key = c.take(klen)?.to_vec();
                match c.u8()? {
                    0 => {
                        st.meta.remove(&key);
                    }
                    1 => {
                        let vlen = c.u32()? as usize;
                        let value = c.take(vlen)?.to_vec();
                        st.meta.insert(key, value);
                    }
                    _ => return Err("unknown metadata tag"),
                }
            }
        }
        KIND_DELETE => {
            let n = c.u32()?;
            let n = c.count(u64::from(n), 32)?;
            for _ in 0..n {
                let id = c.id()?;
                st.objects.remove(&id);
            }
        }
        _ => return Err("unknown record kind"),
    }
    if c.remaining() != 0 {
        return Err("trailing bytes in a record");
    }
    Ok(())
}

/// Replays the records of the journal at `path` from `st.end` to `len`;
/// returns the end of the last whole record (less than `len` if the file
/// ends in a torn one).
fn replay(path: &Path, st: &mut State, len: u64) -> Result<u64> {
    let mut pos = st.end;
    if pos >= len {
        return Ok(pos);
    }
    let file = st.file.try_clone().map_err(|e| io_at("open", path, e))?;
    let mut r = BufReader::with_capacity(1 << 20, file);
    r.seek(SeekFrom::Start(pos))
        .map_err(|e| io_at("read", path, e))?;
    let mut payload = Vec::new();
    loop {
        if len - pos < FRAME as u64 {
            return Ok(pos);
        }
        let mut frame = [0u8; FRAME];
        r.read_exact(&mut frame)
            .map_err(|e| io_at("read", path, e))?;
        let plen = u32::from_le_bytes(frame[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(frame[4..8].try_into().expect("4 bytes"));
        let kind = frame[8];
        if plen > MAX_PAYLOAD || (len - pos - FRAME as u64) < plen as u64 {
            return Ok(pos);
        }
        payload.resize(plen, 0);
        r.read_exact(&mut payload)
            .map_err(|e| io_at("read", path, e))?;
        let mut h = crc32fast::Hasher::new();
        h.update(&st.last_crc.to_le_bytes());
        h.update(&[kind]);
        h.update(&payload);
        if h.finalize() != crc {
            return Ok(pos);
        }
        st.last_crc = crc;
        let data_at = pos + FRAME as u64;
        apply_record(st, kind, &payload, data_at).map_err(|reason| {
            damaged(
                path,
                format!("the record at byte {pos} of the journal is invalid: {reason}"),
            )
        })?;
        pos = data_at + plen as u64;
    }
}

/// Loads the checkpoint into `st` if there is one for this journal;
/// returns the journal length it covers. A checkpoint of another
/// generation (the journal was compacted after it) or a damaged one is
/// ignored: the whole journal is replayed instead.
fn load_checkpoint(path: &Path, st: &mut State) -> Result<Option<u64>> {
    let file = path.join(INDEX_FILE);
    let bytes = match fs::read(&file) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_at("read", &file, e)),
    };
    if bytes.len() < 32 + 40 {
        return Ok(None);
    }
    let (body, sum) = bytes.split_at(bytes.len() - 32);
    if blake3::hash(body).as_bytes() != sum {
        return Ok(None);
    }
    let parsed = (|| -> std::result::Result<Option<(u64, State)>, &'static str> {
        let mut c = Cursor { buf: body, pos: 0 };
        if c.take(16)? != INDEX_MAGIC {
            return Err("not a journal index");
        }
        if c.take(16)? != st.generation {
            return Ok(None);
        }
        let covered = c.u64()?;
        let last_crc = c.u32()?;
        let mut next = State {
            file: st.file.clone(),
            generation: st.generation,
            end: covered,
            alloc_end: st.alloc_end,
            last_crc,
            objects: BTreeMap::new(),
            refs: BTreeMap::new(),
            meta: BTreeMap::new(),
            checkpointed: covered,
        };
        let n = c.u64()?;
        let n = c.count(n, 44)?;
        for _ in 0..n {
            let id = c.id()?;
            let offset = c.u64()?;
            let len = c.u32()?;
            if offset.saturating_add(u64::from(len)) > covered {
                return Err("an object beyond the part of the journal it covers");
            }
            next.objects.insert(id, Loc { offset, len });
        }
        let n = c.u64()?;
        let n = c.count(n, 36)?;
        for _ in 0..n {
            let len = c.u32()? as usize;
            let name = std::str::from_utf8(c.take(len)?).map_err(|_| "ref name not UTF-8")?;
            let id = c.id()?;
            next.refs.insert(name.to_string(), id);
        }
        let n = c.u64()?;
        let n = c.count(n, 8)?;
        for _ in 0..n {
            let klen = c.u32()? as usize;
            let key = c.take(klen)?.to_vec();
            let vlen = c.u32()? as usize;
            let value = c.take(vlen)?.to_vec();
            next.meta.insert(key, value);
        }
        if c.remaining() != 0 {
            return Err("trailing bytes");
        }
        Ok(Some((covered, next)))
    })();
    match parsed {
        Ok(Some((covered, next))) => {
            *st = next;
            Ok(Some(covered))
        }
        Ok(None) => Ok(None),
        Err(reason) => Err(damaged(
            &file,
            format!(
                "the journal's index checkpoint is invalid ({reason}) though its checksum matches"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_meta_batch_round_trips_through_records() {
        let mut records = Records::new(7, 0);
        let entries = vec![(b"a".to_vec(), Some(b"1".to_vec())), (b"b".to_vec(), None)];
        records.meta(&entries).unwrap();
        let buf = &records.buf;
        let kind = buf[8];
        assert_eq!(kind, KIND_META);
        let plen = u32::from_le_bytes(buf[..4].try_into().unwrap()) as usize;
        assert_eq!(plen, buf.len() - FRAME);
        let crc = u32::from_le_bytes(buf[4..8].try_into().unwrap());
        assert_eq!(crc, record_crc(7, &buf[8..]));
        assert_eq!(records.chain, crc);
    }
}
