//! Backend calls per commit, counted (not timed): on a networked store
//! (PostgreSQL) each call is a round trip, so this is the commit's latency
//! floor there.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use kvgit::core::{Backend, CasOutcome, MemoryBackend, Result};
use kvgit::{Db, Durability, ObjectId};

/// A memory backend that counts the calls a commit makes.
#[derive(Default)]
struct Counting {
    inner: MemoryBackend,
    get_object: AtomicU64,
    get_ref: AtomicU64,
    put_objects: AtomicU64,
    cas_ref: AtomicU64,
    flush: AtomicU64,
}

fn bump(n: &AtomicU64) {
    n.fetch_add(1, Ordering::Relaxed);
}

impl Counting {
    /// (get_object, get_ref, put_objects, cas_ref, flush) so far.
    fn calls(&self) -> [u64; 5] {
        [
            &self.get_object,
            &self.get_ref,
            &self.put_objects,
            &self.cas_ref,
            &self.flush,
        ]
        .map(|n| n.load(Ordering::Relaxed))
    }
}

impl Backend for Counting {
    fn get_object(&self, id: &ObjectId) -> Result<Option<Vec<u8>>> {
        bump(&self.get_object);
        self.inner.get_object(id)
    }
    fn has_object(&self, id: &ObjectId) -> Result<bool> {
        self.inner.has_object(id)
    }
    fn put_objects(&self, objects: Vec<(ObjectId, Vec<u8>)>) -> Result<()> {
        bump(&self.put_objects);
        self.inner.put_objects(objects)
    }
    fn delete_objects(&self, ids: &[ObjectId]) -> Result<()> {
        self.inner.delete_objects(ids)
    }
    fn for_each_object(&self, visit: &mut dyn FnMut(ObjectId, u64) -> Result<bool>) -> Result<()> {
        self.inner.for_each_object(visit)
    }
    fn get_ref(&self, name: &str) -> Result<Option<ObjectId>> {
        bump(&self.get_ref);
        self.inner.get_ref(name)
    }
    fn cas_ref(
        &self,
        name: &str,
        expected: Option<&ObjectId>,
        new: Option<&ObjectId>,
    ) -> Result<CasOutcome> {
        bump(&self.cas_ref);
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
        bump(&self.flush);
        self.inner.flush(durability)
    }
    fn size_on_disk(&self) -> Result<u64> {
        self.inner.size_on_disk()
    }
}

/// A run of uncontended one-key commits on a branch reads nothing back:
/// the head, its commit and the nodes it changes are all still cached from
/// the commit before. What is left is one ref read, the writes, the swap
/// and the durability barrier.
#[test]
fn an_uncontended_commit_reads_nothing_back() {
    let backend = Arc::new(Counting::default());
    let db = Db::builder().backend(backend.clone()).unwrap();
    let main = db.branch("main").unwrap();
    for i in 0..1000u32 {
        main.put(format!("k{i:05}"), "v").unwrap();
    }
    let before = backend.calls();
    let n = 100u32;
    for i in 0..n {
        main.put(format!("k{:05}", i * 7), "w").unwrap();
    }
    let after = backend.calls();
    let per_commit: Vec<f64> = (0..5)
        .map(|j| (after[j] - before[j]) as f64 / f64::from(n))
        .collect();
    // get_object, get_ref, put_objects, cas_ref, flush
    assert_eq!(per_commit[0], 0.0, "objects read back: {per_commit:?}");
    assert!(per_commit[1] <= 1.0, "ref reads: {per_commit:?}");
    assert!(per_commit[2] <= 2.0, "write batches: {per_commit:?}");
    assert_eq!(per_commit[3], 1.0, "swaps: {per_commit:?}");
    assert_eq!(per_commit[4], 1.0, "barriers: {per_commit:?}");
}
