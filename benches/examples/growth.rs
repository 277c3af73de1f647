//! Probe: why facade workloads grow with N on sled. Counts backend calls
//! per operation (a counting Backend wrapper) and times them, at each N
//! given on the command line (default 10k and 1M).
//!
//! `cargo run --release -p kvgit-benches --example growth -- 10k 1M`

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kvgit::Db;
use kvgit_benches::{entries, key, parse_size, XorShift};
use kvgit_core::{Backend, CasOutcome, Durability, ObjectId, SledBackend, SledOptions};

#[derive(Default)]
struct Counts {
    get_object: AtomicU64,
    put_objects: AtomicU64,
    put_bytes: AtomicU64,
    get_meta: AtomicU64,
    put_meta: AtomicU64,
    scan_meta: AtomicU64,
    refs: AtomicU64,
    flush: AtomicU64,
}

impl Counts {
    fn snap(&self) -> [u64; 8] {
        [
            self.get_object.load(Relaxed),
            self.put_objects.load(Relaxed),
            self.put_bytes.load(Relaxed),
            self.get_meta.load(Relaxed),
            self.put_meta.load(Relaxed),
            self.scan_meta.load(Relaxed),
            self.refs.load(Relaxed),
            self.flush.load(Relaxed),
        ]
    }
}

struct Counting {
    inner: Arc<dyn Backend>,
    c: Arc<Counts>,
}

impl Backend for Counting {
    fn get_object(&self, id: &ObjectId) -> kvgit_core::Result<Option<Vec<u8>>> {
        self.c.get_object.fetch_add(1, Relaxed);
        self.inner.get_object(id)
    }
    fn has_object(&self, id: &ObjectId) -> kvgit_core::Result<bool> {
        self.c.get_object.fetch_add(1, Relaxed);
        self.inner.has_object(id)
    }
    fn put_objects(&self, objects: Vec<(ObjectId, Vec<u8>)>) -> kvgit_core::Result<()> {
        self.c.put_objects.fetch_add(objects.len() as u64, Relaxed);
        let b: usize = objects.iter().map(|o| o.1.len()).sum();
        self.c.put_bytes.fetch_add(b as u64, Relaxed);
        self.inner.put_objects(objects)
    }
    fn delete_objects(&self, ids: &[ObjectId]) -> kvgit_core::Result<()> {
        self.inner.delete_objects(ids)
    }
    fn for_each_object(
        &self,
        visit: &mut dyn FnMut(ObjectId, u64) -> kvgit_core::Result<bool>,
    ) -> kvgit_core::Result<()> {
        self.inner.for_each_object(visit)
    }
    fn get_ref(&self, name: &str) -> kvgit_core::Result<Option<ObjectId>> {
        self.c.refs.fetch_add(1, Relaxed);
        self.inner.get_ref(name)
    }
    fn cas_ref(
        &self,
        name: &str,
        expected: Option<&ObjectId>,
        new: Option<&ObjectId>,
    ) -> kvgit_core::Result<CasOutcome> {
        self.c.refs.fetch_add(1, Relaxed);
        self.inner.cas_ref(name, expected, new)
    }
    fn list_refs(&self, prefix: &str) -> kvgit_core::Result<Vec<(String, ObjectId)>> {
        self.c.refs.fetch_add(1, Relaxed);
        self.inner.list_refs(prefix)
    }
    fn get_meta(&self, key: &[u8]) -> kvgit_core::Result<Option<Vec<u8>>> {
        self.c.get_meta.fetch_add(1, Relaxed);
        self.inner.get_meta(key)
    }
    fn put_meta(&self, entries: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> kvgit_core::Result<()> {
        self.c.put_meta.fetch_add(entries.len() as u64, Relaxed);
        self.inner.put_meta(entries)
    }
    fn scan_meta(&self, prefix: &[u8]) -> kvgit_core::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.c.scan_meta.fetch_add(1, Relaxed);
        self.inner.scan_meta(prefix)
    }
    fn flush(&self, durability: Durability) -> kvgit_core::Result<()> {
        self.c.flush.fetch_add(1, Relaxed);
        self.inner.flush(durability)
    }
    fn size_on_disk(&self) -> kvgit_core::Result<u64> {
        self.inner.size_on_disk()
    }
}

fn line(what: &str, n: usize, iters: usize, took: Duration, before: [u64; 8], after: [u64; 8]) {
    let per = |i: usize| (after[i] - before[i]) as f64 / iters as f64;
    println!(
        "{what:>8} {n:>8}: {:>10.1} us/op | gets {:>8.1} puts {:>7.1} ({:>9.0} B) meta get {:>6.1} put {:>7.1} scan {:>4.1} refs {:>4.1} flush {:>4.1}",
        took.as_secs_f64() * 1e6 / iters as f64,
        per(0),
        per(1),
        per(2),
        per(3),
        per(4),
        per(5),
        per(6),
        per(7)
    );
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .map(|a| parse_size(&a).expect("size"))
        .collect();
    let sizes = if sizes.is_empty() {
        vec![10_000, 1_000_000]
    } else {
        sizes
    };
    let only = std::env::var("PROBE").unwrap_or_default();
    let want = |w: &str| only.is_empty() || only.split(',').any(|o| o == w);
    let memory = std::env::var("PROBE_MEMORY").is_ok();
    for n in sizes {
        let dir = tempfile::tempdir().expect("dir");
        let counts = Arc::new(Counts::default());
        let inner: Arc<dyn Backend> = if memory {
            Arc::new(kvgit_core::MemoryBackend::new())
        } else {
            Arc::new(SledBackend::open(dir.path(), SledOptions::default()).expect("sled"))
        };
        let backend = Arc::new(Counting {
            inner,
            c: counts.clone(),
        });
        let db = Db::builder().backend(backend).expect("db");
        let data = entries(n);
        let start = Instant::now();
        let main = db.branch("main").expect("main");
        let mut tx = main.transaction().expect("tx");
        for (k, v) in &data {
            tx.put(k, v);
        }
        let base = tx.commit().expect("commit").commit.expect("head");
        println!("n={n}: bulk load {:.2} s", start.elapsed().as_secs_f64());
        drop(data);
        let mut rng = XorShift::new(23);

        if want("diff") {
            let fork = db.create_branch("d", &base).expect("fork");
            let mut tx = fork.transaction().expect("tx");
            for _ in 0..10 {
                tx.put(key(rng.below(n as u64)), rng.value());
            }
            let changed = tx.commit().expect("c").commit.expect("h");
            let first = counts.snap();
            let t = Instant::now();
            db.diff(&base, &changed).expect("diff");
            line("diff1st", n, 1, t.elapsed(), first, counts.snap());
            let iters: usize = std::env::var("DIFF_ITERS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(200);
            let b = counts.snap();
            let t = Instant::now();
            for _ in 0..iters {
                std::hint::black_box(db.diff(&base, &changed).expect("diff"));
            }
            line("diff", n, iters, t.elapsed(), b, counts.snap());
        }
        if want("merge") {
            let mb = db.create_branch("mb", &base).expect("fork");
            let ours = mb.fork("mo").expect("fork");
            let theirs = mb.fork("mt").expect("fork");
            for (br, side) in [(&ours, 0), (&theirs, 1)] {
                let mut tx = br.transaction().expect("tx");
                for _ in 0..100 {
                    tx.put(key(rng.below(n as u64 / 2) * 2 + side), rng.value());
                }
                tx.commit().expect("commit");
            }
            let ours_head = ours.head().expect("head");
            let iters: usize = std::env::var("MERGE_ITERS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(30);
            let mut took = Duration::ZERO;
            let mut before = None;
            for i in 0..=iters {
                ours.reset_to(&ours_head).expect("reset");
                let b = counts.snap();
                let t = Instant::now();
                ours.merge_from(&theirs).expect("merge");
                let e = t.elapsed();
                if i == 0 {
                    line("merge1st", n, 1, e, b, counts.snap());
                    before = Some(counts.snap());
                } else {
                    took += e;
                }
            }
            // Counts include the untimed resets (one cas + flush each).
            line("merge", n, iters, took, before.expect("ran"), counts.snap());
        }
        if want("log") {
            let lb = db.create_branch("l", &base).expect("fork");
            for _ in 0..1000 {
                lb.put(key(rng.below(n as u64)), rng.value()).expect("put");
            }
            let iters = 20;
            let b = counts.snap();
            let t = Instant::now();
            for _ in 0..iters {
                for c in lb.log().expect("log").take(1000) {
                    std::hint::black_box(c.expect("c"));
                }
            }
            line("log", n, iters, t.elapsed(), b, counts.snap());
        }
        if want("rebase") {
            let rb = db.create_branch("r", &base).expect("fork");
            let bytes = rb.snapshot().expect("s").value_bytes();
            for i in 0..2 {
                rb.reset_to(&base).expect("reset");
                let b = counts.snap();
                let t = Instant::now();
                let r = db.rebase("r", bytes - 1, Some(bytes / 2)).expect("rebase");
                assert!(r.performed());
                let e = t.elapsed();
                line(&format!("rebase{i}"), n, 1, e, b, counts.snap());
                println!(
                    "          {:.0} keys/s of the branch",
                    n as f64 / e.as_secs_f64()
                );
            }
        }
        if want("sweep") {
            let b = counts.snap();
            let t = Instant::now();
            let r = db.sweep().expect("sweep");
            let e = t.elapsed();
            line("sweep", n, 1, e, b, counts.snap());
            println!(
                "          {} objects marked, {} freed: {:.0} objects/s",
                r.objects_marked,
                r.objects_freed,
                r.objects_marked as f64 / e.as_secs_f64()
            );
        }
    }
}
