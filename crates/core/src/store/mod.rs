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

mod memory;
mod sled;

pub use self::memory::MemoryBackend;
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

    /// All refs whose names start with `prefix`, sorted by name.
    fn list_refs(&self, prefix: &str) -> Result<Vec<(String, ObjectId)>>;

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
}
