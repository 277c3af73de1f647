//! Shared test support: a backend that counts reads, small tree helpers.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use kvgit_core::{
    Backend, CasOutcome, Durability, MemoryBackend, ObjectId, Repo, RepoOptions, Result, Tree,
};

/// A memory backend that counts object reads.
#[derive(Default)]
pub struct Counting {
    inner: MemoryBackend,
    reads: AtomicU64,
}

impl Counting {
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    pub fn object_count(&self) -> u64 {
        let mut n = 0;
        self.inner
            .for_each_object(&mut |_, _| {
                n += 1;
                Ok(true)
            })
            .expect("count objects");
        n
    }
}

impl Backend for Counting {
    fn get_object(&self, id: &ObjectId) -> Result<Option<Vec<u8>>> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.inner.get_object(id)
    }
    fn has_object(&self, id: &ObjectId) -> Result<bool> {
        self.inner.has_object(id)
    }
    fn put_objects(&self, objects: Vec<(ObjectId, Vec<u8>)>) -> Result<()> {
        self.inner.put_objects(objects)
    }
    fn delete_objects(&self, ids: &[ObjectId]) -> Result<()> {
        self.inner.delete_objects(ids)
    }
    fn for_each_object(&self, visit: &mut dyn FnMut(ObjectId, u64) -> Result<bool>) -> Result<()> {
        self.inner.for_each_object(visit)
    }
    fn get_ref(&self, name: &str) -> Result<Option<ObjectId>> {
        self.inner.get_ref(name)
    }
    fn cas_ref(
        &self,
        name: &str,
        expected: Option<&ObjectId>,
        new: Option<&ObjectId>,
    ) -> Result<CasOutcome> {
        self.inner.cas_ref(name, expected, new)
    }
    fn list_refs(&self, prefix: &str) -> Result<Vec<(String, ObjectId)>> {
        self.inner.list_refs(prefix)
    }
    fn get_meta(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.inner.get_meta(key)
    }
    fn put_meta(&self, entries: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<()> {
        self.inner.put_meta(entries)
    }
    fn scan_meta(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.inner.scan_meta(prefix)
    }
    fn flush(&self, durability: Durability) -> Result<()> {
        self.inner.flush(durability)
    }
    fn size_on_disk(&self) -> Result<u64> {
        self.inner.size_on_disk()
    }
}

/// A repo over `backend` with a cache of `cache_bytes` (0: every node read
/// goes to the backend).
pub fn repo_over(backend: &Arc<Counting>, cache_bytes: usize) -> Repo {
    Repo::new(
        backend.clone(),
        RepoOptions {
            cache_bytes,
            ..RepoOptions::default()
        },
    )
}

/// Every entry of a tree, values loaded.
pub fn contents(repo: &Repo, tree: &Tree) -> Vec<(Vec<u8>, Vec<u8>)> {
    repo.range(tree, ..)
        .collect::<Result<Vec<_>>>()
        .expect("scan tree")
}

/// The proptest case count: `PROPTEST_CASES` or `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}
