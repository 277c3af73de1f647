//! [`Db::compact`]: giving the space of swept objects back to the file
//! system.

use crate::db::Db;
use crate::error::Result;

impl Db {
    /// Rewrites the store's files to hold only live data, giving the space
    /// of deleted and rewritten objects back to the file system. Run it
    /// after [`Db::sweep`]: a sweep deletes unreachable objects, but sled
    /// keeps their space in its log until the store is compacted.
    ///
    /// On sled, the live objects, branches and bookkeeping are copied into
    /// a fresh database inside the store directory, made durable, and
    /// swapped in; a crash at any point leaves the store as it was or
    /// compacted (the next open finishes or discards an interrupted
    /// compaction). Every other call on the store waits while it runs. It
    /// needs free space for the copy (about the live data, twice):
    /// [`kvgit_core::Error::NoSpace`] otherwise, with the store unchanged.
    ///
    /// Returns the sizes before and after (see
    /// [`kvgit::core::Compaction`](kvgit_core::Compaction)), or `None` for a
    /// store with nothing to compact this way (in memory, PostgreSQL).
    pub fn compact(&self) -> Result<Option<kvgit_core::Compaction>> {
        Ok(self.inner.repo.backend().compact()?)
    }
}
