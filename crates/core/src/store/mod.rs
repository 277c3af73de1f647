//! Storage backends: where objects, refs and metadata live.
//!
//! A [`Backend`] is deliberately small so that a networked store can
//! implement it without the tree, merge or GC code changing:
//!
//! - **objects**: id -> bytes. Writes are idempotent (an id always names the
//!   same bytes), batched, and never overwrite anything meaningful.
//! - **refs**: name -> commit id, changed only by compare-and-swap, which
//!   reports the actual current value when it loses.
//! - **metadata**: a small key -> bytes space for bookkeeping outside the
//!   content-addressed objects (GC access recency, format markers).
//! - **a durability barrier**: [`Backend::flush`].
//!
//! **Ordering contract.** Everything a thread wrote before a call returned is
//! recovered after a crash before anything it writes after: in particular a
//! ref update never survives a crash that loses the objects written before
//! it. This is what lets the commit protocol (objects first, then the ref)
//! need a single barrier at the end.

#[cfg(feature = "sled")]
pub(crate) mod journal;
mod memory;
#[cfg(feature = "sled")]
pub(crate) mod sled;

#[cfg(feature = "sled")]
pub use self::journal::{JournalBackend, JournalOptions};
pub use self::memory::MemoryBackend;
#[cfg(feature = "sled")]
pub use self::sled::{SledBackend, SledOptions};

use crate::error::Result;
use crate::id::ObjectId;

/// The outcome of a compare-and-swap on a ref.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CasOutcome {
    /// The ref held the expected value and now holds the new one.
    Swapped,
    /// The ref did not hold the expected value; nothing changed.
    Mismatch {
        /// What the ref actually holds (`None`: it does not exist).
        actual: Option<ObjectId>,
    },
}

/// What a [`Backend::compact`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Compaction {
    /// Bytes the store occupied on disk before.
    pub bytes_before: u64,
    /// Bytes it occupies after.
    pub bytes_after: u64,
    /// Bytes of live keys and values (objects, refs, metadata) copied.
    pub live_bytes: u64,
}

/// How durable a commit is when it returns, and how far
/// [`Backend::flush`] must go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Durability {
    /// Survive a process crash and a power loss once the barrier returns
    /// (for sled: write the log out and fsync the data file).
    #[default]
    Durable,
    /// Hand the writes to the operating system: they survive a process
    /// crash once the barrier returns; a power loss may lose the most
    /// recent commits, newest first, never leaving a ref that points at a
    /// missing object (for sled: its flush, without fsync).
    Eventual,
}

/// An object store with CAS refs, metadata and a durability barrier.
pub trait Backend: Send + Sync + 'static {
    /// The bytes of an object, or `None` if absent.
    fn get_object(&self, id: &ObjectId) -> Result<Option<Vec<u8>>>;

    /// True if the object is present.
    fn has_object(&self, id: &ObjectId) -> Result<bool>;

    /// Writes a batch of objects. Writing an id that exists is a no-op.
    fn put_objects(&self, objects: Vec<(ObjectId, Vec<u8>)>) -> Result<()>;

    /// Deletes objects (garbage collection only). Absent ids are ignored.
    fn delete_objects(&self, ids: &[ObjectId]) -> Result<()>;

    /// Calls `visit(id, size in bytes)` for every stored object, in id
    /// order. Stops early when `visit` returns `Ok(false)`.
    fn for_each_object(&self, visit: &mut dyn FnMut(ObjectId, u64) -> Result<bool>) -> Result<()>;

    /// Like [`Backend::for_each_object`] for the ids from `start` (included)
    /// up to `end` (excluded; `None`: to the last id). The default filters
    /// a full listing; stores ordered by id (sled, PostgreSQL) read only the
    /// range, so that finding a commit by a short id prefix costs the
    /// matches, not the store.
    fn for_each_object_in(
        &self,
        start: &ObjectId,
        end: Option<&ObjectId>,
        visit: &mut dyn FnMut(ObjectId, u64) -> Result<bool>,
    ) -> Result<()> {
        self.for_each_object(&mut |id, size| {
            if end.is_some_and(|end| id >= *end) {
                return Ok(false);
            }
            match id >= *start {
                true => visit(id, size),
                false => Ok(true),
            }
        })
    }

    /// The commit a ref points at.
    fn get_ref(&self, name: &str) -> Result<Option<ObjectId>>;

    /// Sets ref `name` to `new` (or deletes it for `None`) if it currently
    /// holds `expected` (`None`: the ref must not exist).
    fn cas_ref(
        &self,
        name: &str,
        expected: Option<&ObjectId>,
        new: Option<&ObjectId>,
    ) -> Result<CasOutcome>;

    /// A commit's last step as one call: writes `objects` (as
    /// [`Backend::put_objects`]), then compare-and-swaps ref `name` (as
    /// [`Backend::cas_ref`]). The objects are written whether or not the
    /// swap succeeds, and the swap never survives a crash that loses
    /// them. The default makes the two calls; a networked store does both
    /// in one round trip and one transaction (PostgreSQL).
    ///
    /// `refs`: the ids the objects refer to without containing them (the
    /// children and blobs of the new nodes written earlier or reused, the
    /// new commit's root and parents), computed above the trait, since a
    /// backend knows nothing about object bytes. A store shared by several
    /// processes ([`Backend::shared`]) checks in the swap's transaction
    /// that every one of them is present and keeps a concurrent sweep from
    /// deleting it until the swap is committed; if one is missing it
    /// writes nothing, moves nothing and returns
    /// [`Error::MissingObject`](crate::Error::MissingObject) naming it.
    /// Stores owned by one process ignore `refs`: the in-process fence
    /// already keeps a sweep away from every writer.
    fn put_objects_and_cas(
        &self,
        objects: Vec<(ObjectId, Vec<u8>)>,
        refs: &[ObjectId],
        name: &str,
        expected: Option<&ObjectId>,
        new: Option<&ObjectId>,
    ) -> Result<CasOutcome> {
        let _ = refs;
        if !objects.is_empty() {
            self.put_objects(objects)?;
        }
        self.cas_ref(name, expected, new)
    }

    /// All refs whose names start with `prefix`, sorted by name.
    fn list_refs(&self, prefix: &str) -> Result<Vec<(String, ObjectId)>>;

    /// A number that grows whenever any ref of this store changes
    /// (incremented after the change is visible, before the call that made
    /// it returns), if the store can tell: a store owned by this process
    /// (memory, sled), which sees every ref move. `None` (the default) for
    /// a store other processes change, whose refs must be read each time.
    /// [`crate::Repo`] caches branch heads while it stays the same.
    fn ref_version(&self) -> Option<u64> {
        None
    }

    /// A metadata value.
    fn get_meta(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Writes (`Some`) or deletes (`None`) metadata entries as one batch.
    fn put_meta(&self, entries: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<()>;

    /// All metadata entries whose keys start with `prefix`, sorted by key.
    fn scan_meta(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;

    /// The durability barrier: once it returns, every write made before the
    /// call is as safe as `durability` promises.
    fn flush(&self, durability: Durability) -> Result<()>;

    /// Bytes the store occupies on disk (0 for memory).
    fn size_on_disk(&self) -> Result<u64>;

    /// Gives the space of deleted and rewritten data back to the file
    /// system, where the store keeps it (sled: see `SledBackend::compact`);
    /// `None` (the default) where there is nothing to reclaim this way.
    fn compact(&self) -> Result<Option<Compaction>> {
        Ok(None)
    }

    /// What a store shared by several processes offers for garbage
    /// collection across them (`None`, the default, for a store owned by
    /// one process, where the in-process fences protect every writer).
    fn shared(&self) -> Option<&dyn SharedStore> {
        None
    }
}

/// The extra operations of a store that several processes (or hosts) use
/// at once, such as PostgreSQL. A sweep in one process cannot see the
/// in-flight writers of another, so it relies on time instead, measured
/// by the store's own clock (no clock skew between hosts):
///
/// - **object write times**: every object remembers when it was last
///   written, and writing an object that already exists refreshes that
///   time (as git "freshens" objects). A sweep deletes an unreachable
///   object only if it was last written more than a grace period ago;
/// - **a ref log**: every successful ref change records the value the ref
///   held until then, with the time, so a sweep also keeps what refs
///   pointed at within the grace period (another process may have a
///   snapshot or a transaction based on it);
/// - **monotonic metadata writes**, so that several processes recording
///   access recency never move an entry backwards;
/// - **writer turns** ([`SharedStore::writer_turn`]), so that processes
///   that keep colliding on one branch take turns.
pub trait SharedStore: Send + Sync {
    /// The grace period a sweep uses when none is given.
    fn default_grace(&self) -> std::time::Duration;
    /// The shortest grace period a sweep may use on this store: a sweep
    /// asked for less is refused. Every commit must move its ref within it
    /// of reading its snapshot (object batches written before the swap
    /// included), and the swap's check of what it refers to
    /// ([`Backend::put_objects_and_cas`]) counts on it.
    fn min_grace(&self) -> std::time::Duration;
    /// The kind byte of each of `ids` that is present (for a sweep's
    /// deletion order: commits, then tree nodes, then blobs), in any
    /// order.
    fn object_kinds(&self, ids: &[ObjectId]) -> Result<Vec<(ObjectId, u8)>>;
    /// Deletes those of `ids` last written more than `age` ago; returns
    /// the ids it deleted, in any order. Absent ids are ignored.
    fn delete_objects_written_before(
        &self,
        ids: &[ObjectId],
        age: std::time::Duration,
    ) -> Result<Vec<ObjectId>>;
    /// Every commit some ref held within the last `within` and moved away
    /// from (the ref log), without duplicates.
    fn recent_ref_targets(&self, within: std::time::Duration) -> Result<Vec<ObjectId>>;
    /// Forgets ref-log entries older than `older_than`; returns how many.
    fn prune_ref_log(&self, older_than: std::time::Duration) -> Result<u64>;
    /// Writes each entry unless the stored value is greater (bytewise), as
    /// one batch: for big-endian counters and ticks, "keep the maximum".
    fn put_meta_max(&self, entries: Vec<(Vec<u8>, Vec<u8>)>) -> Result<()>;

    /// Waits for the caller's turn to write the ref `name` among every
    /// thread and process using the store, and holds it until the returned
    /// guard drops; `Ok(None)` if the turn did not come within the store's
    /// wait limit (the caller then goes on without it). A process that
    /// dies holding a turn gives it up.
    ///
    /// Turns are about fairness only. Refs still move by compare-and-swap
    /// alone, so a writer without a turn is never wrong, only in a hurry:
    /// a commit that lost a race takes the turn for its retries, so that
    /// writers on different hosts that keep colliding queue up instead of
    /// starving one another (threads can share a backoff; processes that
    /// see each other only through the store cannot).
    fn writer_turn(&self, name: &str) -> Result<Option<Box<dyn WriterTurn + '_>>>;
}

/// A writer's turn on a ref, from [`SharedStore::writer_turn`]; dropping
/// it lets the next writer go.
pub trait WriterTurn: Send {}
