//! Backend calls per commit, counted (not timed): on a networked store
//! (PostgreSQL) each call is a round trip, so this is the commit's latency
//! floor there.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use kvgit::advanced::{Backend, CasOutcome, MemoryBackend, ObjectId};
use kvgit::{Db, Durability};
use kvgit_core::Result;

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
    // The new nodes and the commit object: one batch.
    assert_eq!(per_commit[2], 1.0, "write batches: {per_commit:?}");
    assert_eq!(per_commit[3], 1.0, "swaps: {per_commit:?}");
    assert_eq!(per_commit[4], 1.0, "barriers: {per_commit:?}");
}

/// The new nodes of a commit travel with its commit object, so until then
/// only the node cache holds them. With no cache at all, the steps that
/// read the new tree before the swap (a validator's diff, and the merge
/// after a lost race) must find it in the store.
#[test]
fn unwritten_nodes_are_stored_before_anything_reads_them() {
    let db = Db::builder().cache_bytes(0).memory();
    db.merge_fns().set("n", kvgit::merge::Counter);
    let main = db.branch("main").unwrap();
    for i in 0..2000u32 {
        main.put(format!("k{i:05}"), [b'v'; 40]).unwrap();
    }
    main.put("n", "0").unwrap();

    // A lost race: b merges its tree onto a's commit.
    let mut a = main.transaction().unwrap();
    let mut b = main.transaction().unwrap();
    a.put("n", "1").put("k00010", "a");
    b.put("n", "2").put("k01990", "b");
    a.commit().unwrap();
    let outcome = b.commit().unwrap();
    assert!(outcome.committed);
    assert_eq!(main.get("n").unwrap().as_deref(), Some(&b"3"[..]));
    assert_eq!(main.get("k01990").unwrap().as_deref(), Some(&b"b"[..]));
    assert_eq!(main.get("k00010").unwrap().as_deref(), Some(&b"a"[..]));

    // A validator diffs the head against the new tree before the swap.
    db.add_validator("no-x", |check| {
        match check.changes.iter().any(|c| c.key.starts_with(b"x")) {
            true => Err("no x keys".to_string()),
            false => Ok(()),
        }
    });
    main.put("k00500", "checked").unwrap();
    assert!(main.put("x", "1").is_err());
    assert_eq!(
        main.get("k00500").unwrap().as_deref(),
        Some(&b"checked"[..])
    );
    assert_eq!(main.get("x").unwrap(), None);
}

/// A large value (a blob) is fetched from the store once; the node cache
/// serves it after that, and its writer never fetches it at all.
#[test]
fn a_large_value_is_fetched_once() {
    let backend = Arc::new(Counting::default());
    let writer = Db::builder().backend(backend.clone()).unwrap();
    let big = vec![b'x'; 10_000];
    writer.branch("main").unwrap().put("big", &big).unwrap();
    let reads = || backend.calls()[0];

    let before = reads();
    assert_eq!(
        writer.branch("main").unwrap().get("big").unwrap(),
        Some(big.clone())
    );
    assert_eq!(reads(), before, "the writer cached what it wrote");

    let reader = Db::builder().backend(backend.clone()).unwrap();
    let main = reader.branch("main").unwrap();
    assert_eq!(main.get("big").unwrap(), Some(big.clone()));
    let first = reads();
    for _ in 0..10 {
        assert_eq!(main.get("big").unwrap(), Some(big.clone()));
    }
    assert_eq!(reads(), first, "later reads come from the cache");
}
