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
    /// Returns the sizes before and after (see [`Compaction`](crate::Compaction)),
    /// or `None` for a store with nothing to compact this way (in memory,
    /// PostgreSQL).
    ///
    /// ```
    /// let dir = tempfile::tempdir().expect("a temporary directory");
    /// let db = kvgit::Db::open(dir.path().join("store"))?;
    /// let main = db.branch("main")?;
    /// main.put("k", "v")?;
    /// db.sweep()?;
    /// let report = db.compact()?.expect("sled compacts");
    /// assert!(report.live_bytes > 0);
    /// assert_eq!(main.get("k")?.as_deref(), Some(&b"v"[..]));
    /// assert!(kvgit::Db::memory().compact()?.is_none());
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn compact(&self) -> Result<Option<kvgit_core::Compaction>> {
        Ok(self.inner.repo.backend().compact()?)
    }
}

#[cfg(test)]
mod tests {
    use crate::Db;

    /// As a user calls it: a branch of 2,000 values is deleted and swept;
    /// `Db::compact` then gives the space back and keeps `main`, also
    /// across a reopen. A store in memory has nothing to compact.
    #[test]
    fn compact_after_sweep_gives_space_back_and_keeps_the_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        let db = Db::open(&path).unwrap();
        let main = db.branch("main").unwrap();
        main.put("kept", "value").unwrap();
        let scratch = db.branch("scratch").unwrap();
        let mut tx = scratch.transaction().unwrap();
        for i in 0..2_000u32 {
            tx.put(format!("k{i:05}"), vec![i as u8; 1_000]);
        }
        tx.commit().unwrap();
        drop(scratch);
        db.delete_branch("scratch").unwrap();
        db.sweep().unwrap();
        let c = db.compact().unwrap().expect("sled compacts");
        assert!(c.bytes_after < c.bytes_before / 2, "{c:?}");
        assert_eq!(main.get("kept").unwrap().as_deref(), Some(&b"value"[..]));
        main.put("after", "compaction").unwrap();
        drop(main);
        drop(db);
        let db = Db::open(&path).unwrap();
        let main = db.branch("main").unwrap();
        assert_eq!(main.get("kept").unwrap().as_deref(), Some(&b"value"[..]));
        assert_eq!(
            main.get("after").unwrap().as_deref(),
            Some(&b"compaction"[..])
        );
        assert_eq!(Db::memory().compact().unwrap(), None);
    }
}
