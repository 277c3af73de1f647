//! The workloads of the `defaults` target (criterion group `facade`):
//! kvgit measured the way a user calls it, through the public facade API
//! only (`kvgit::Db`, `Branch`, `Transaction`, `Snapshot`), with default
//! options (durable commits, no water marks and so no access recency), on a
//! store made with `Db::memory()` or `Db::open(dir)`, beside raw sled
//! opened with `sled::open(dir)` doing the nearest equivalent work.
//!
//! Nothing here reaches below the facade (no `Db::repo()`, no kvgit-core):
//! workloads that commit put the store back with `Branch::reset_to` and
//! `Db::sweep`, outside the timed region, as a user would.
//!
//! A [`DefaultStores`] holds the stores of one size, each built once by the
//! facade's one-transaction bulk load ([`FacadeStore::bulk_load`], itself a
//! measured workload) and shared by every workload of that size.

use std::cell::{Cell, OnceCell};
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use kvgit::SweepReport;
use kvgit::{Branch, CommitId, Db, MergeOutcome};
use tempfile::TempDir;

use crate::{dir_size, key, logical_bytes, size_label, temp_dir, BackendKind, XorShift, TAG};

/// The branch every store's data set is committed on.
pub const MAIN: &str = "main";

/// Commits a commit workload makes before it puts the store back (branch
/// reset to the base commit, then `Db::sweep`), untimed. At about 10 KB of
/// new nodes per single-key commit on a 1M-key tree, 10,000 commits stay
/// around 100 MB.
pub const FACADE_RESET_EVERY: usize = 10_000;

/// Keys changed by the `diff10` workload.
pub const DIFF_CHANGES: usize = 10;

/// Keys each side of the `merge` workload changes (distinct keys).
pub const MERGE_CHANGES: usize = 100;

/// Counter keys both sides of the `merge` workload change.
pub const MERGE_COUNTERS: usize = 10;

/// The prefix of the counter keys; `Counter` is registered on it.
pub const COUNTER_PREFIX: &str = "ctr/";

/// Commits the `log` workload walks.
pub const LOG_COMMITS: usize = 1_000;

/// Branches deleted before each `sweep`.
pub const SWEEP_BRANCHES: usize = 4;

/// Single-key commits on those branches, in all (spread evenly).
pub const SWEEP_COMMITS: usize = 100;

/// Threads (each on a branch of its own) of the group-commit workload.
pub const GROUP_THREADS: usize = 4;

/// Prints one of the target's lines (`kvgit-benches: facade ...`) on stderr.
fn say(line: String) {
    eprintln!("{TAG} facade {line}");
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// A footprint line: bytes on disk against the data set's keys and values.
fn footprint(label: &str, when: &str, disk: u64, n: usize) -> String {
    let logical = logical_bytes(n);
    format!(
        "footprint {label}: {when}: {:.2} MB on disk for {:.2} MB of keys+values ({:.2} bytes per logical byte)",
        mb(disk),
        mb(logical),
        disk as f64 / logical as f64
    )
}

/// N random distinct indices below `n` (`count <= n`), in the order drawn.
fn distinct(rng: &mut XorShift, n: u64, count: usize, exclude: &[u64]) -> Vec<u64> {
    assert!(count as u64 + exclude.len() as u64 <= n, "not enough keys");
    let mut picked = Vec::with_capacity(count);
    while picked.len() < count {
        let i = rng.below(n);
        if !picked.contains(&i) && !exclude.contains(&i) {
            picked.push(i);
        }
    }
    picked
}

/// A kvgit store opened with default options: `Db::memory()`, or
/// `Db::open(dir)` on a fresh temporary directory; the data set committed
/// on [`MAIN`] by one transaction.
pub struct FacadeStore {
    /// Memory or sled.
    pub kind: BackendKind,
    /// The store.
    pub db: Db,
    /// The branch holding the data set.
    pub main: Branch,
    /// The commit the bulk load made: every workload leaves [`MAIN`] there.
    pub base: CommitId,
    /// The number of keys.
    pub n: usize,
    warmed: Cell<bool>,
    dir: Option<TempDir>,
}

impl FacadeStore {
    /// A fresh, empty store on `kind` with default options (untimed by the
    /// bulk-load workload: opening is not loading).
    fn open(kind: BackendKind) -> (Db, Option<TempDir>) {
        match kind {
            BackendKind::Memory => (Db::memory(), None),
            BackendKind::Sled => {
                let dir = temp_dir();
                let db = Db::open(dir.path()).unwrap_or_else(|e| {
                    panic!("Db::open({}): {e}", dir.path().display());
                });
                (db, Some(dir))
            }
            BackendKind::Journal => {
                let dir = temp_dir();
                let db = Db::builder()
                    .engine(kvgit::Engine::Journal)
                    .open(dir.path())
                    .unwrap_or_else(|e| panic!("Db::open({}): {e}", dir.path().display()));
                (db, Some(dir))
            }
            BackendKind::RawSled => panic!("raw sled is not a kvgit store"),
        }
    }

    /// The bulk-load workload: on a fresh store, `db.branch("main")`, one
    /// transaction putting every entry, and its commit (on sled, durable:
    /// sled's flush and an fsync). Returns the store and the time from
    /// `branch` to the end of `commit`.
    pub fn bulk_load(kind: BackendKind, entries: &[(Vec<u8>, Vec<u8>)]) -> (Self, Duration) {
        let (db, dir) = Self::open(kind);
        let start = Instant::now();
        let main = db.branch(MAIN).expect("branch main");
        let mut tx = main.transaction().expect("transaction");
        for (k, v) in entries {
            tx.put(k, v);
        }
        let outcome = tx.commit().expect("commit the bulk load");
        let took = start.elapsed();
        let base = outcome.commit.expect("a committed bulk load has a head");
        let store = FacadeStore {
            kind,
            db,
            main,
            base,
            n: entries.len(),
            warmed: Cell::new(false),
            dir,
        };
        (store, took)
    }

    /// The store's label in ids and lines: `sled/1M`.
    pub fn label(&self) -> String {
        format!("{}/{}", self.kind.name(), size_label(self.n))
    }

    /// Prints how long the bulk load took and, on sled, the footprint.
    pub fn report_built(&self, took: Duration, how: &str) {
        say(format!(
            "{}: {how}: {:.3} s ({:.0} keys/s)",
            self.label(),
            took.as_secs_f64(),
            self.n as f64 / took.as_secs_f64()
        ));
        if let Some(disk) = self.size_on_disk() {
            say(footprint(
                &self.label(),
                "after the bulk load",
                disk,
                self.n,
            ));
        }
    }

    /// Builds a store (when the bulk-load benchmark did not keep one).
    pub fn build(kind: BackendKind, entries: &[(Vec<u8>, Vec<u8>)]) -> Self {
        let (store, took) = Self::bulk_load(kind, entries);
        store.report_built(took, "bulk load (one transaction)");
        store
    }

    /// The bytes under the store's directory (sled), `None` in memory.
    pub fn size_on_disk(&self) -> Option<u64> {
        self.dir.as_ref().map(|d| dir_size(d.path()))
    }

    /// Reads every entry of `main` once through a snapshot (untimed, before
    /// the read workloads), so that they measure cached reads.
    pub fn warm(&self) {
        if self.warmed.replace(true) {
            return;
        }
        let snapshot = self.main.snapshot().expect("snapshot");
        let mut n = 0usize;
        for item in snapshot.range(..) {
            std::hint::black_box(item.expect("scan"));
            n += 1;
        }
        assert_eq!(n, self.n);
    }

    /// Puts `main` back at the base commit (if it moved) and sweeps.
    pub fn restore(&self) -> SweepReport {
        if self.main.head().expect("head") != self.base {
            self.main.reset_to(&self.base).expect("reset main");
        }
        self.db.sweep().expect("sweep")
    }

    /// A random key of the data set.
    fn random_key(&self, rng: &mut XorShift) -> [u8; crate::KEY_LEN] {
        key(rng.below(self.n as u64))
    }

    /// Forks `name` from the base commit.
    fn fork(&self, name: &str) -> Branch {
        self.db
            .create_branch(name, &self.base)
            .unwrap_or_else(|e| panic!("create branch {name}: {e}"))
    }

    /// Sweeps once more and prints the footprint, then closes the store
    /// (prints how long dropping the `Db` took on sled).
    pub fn close(self) {
        let label = self.label();
        let report = self.restore();
        if let Some(disk) = self.size_on_disk() {
            say(footprint(
                &label,
                &format!(
                    "after the workloads and a final sweep ({} objects, {:.2} MB reachable)",
                    report.objects_marked,
                    mb(report.bytes_marked)
                ),
                disk,
                self.n,
            ));
            let start = Instant::now();
            let compaction = self.db.compact().expect("compact");
            let took = start.elapsed();
            if let (Some(c), Some(disk)) = (compaction, self.size_on_disk()) {
                say(footprint(
                    &label,
                    &format!(
                        "after Db::compact ({:.0} ms; {:.2} MB of live objects, refs and metadata)",
                        took.as_secs_f64() * 1e3,
                        mb(c.live_bytes)
                    ),
                    disk,
                    self.n,
                ));
            }
        }
        let FacadeStore { db, main, dir, .. } = self;
        drop(main);
        let start = Instant::now();
        drop(db);
        if dir.is_some() {
            say(format!(
                "{label}: close (drop of the Db) took {:.1} ms",
                start.elapsed().as_secs_f64() * 1e3
            ));
        }
        drop(dir);
    }
}

/// Raw sled opened with `sled::open(dir)` (sled's defaults), holding the
/// data set in its default tree.
pub struct RawDefaultSled {
    /// The database (its default tree holds the entries).
    pub db: sled::Db,
    /// The number of keys.
    pub n: usize,
    data_file: File,
    dir: TempDir,
}

impl RawDefaultSled {
    /// The bulk-load equivalent: on a fresh `sled::open`, an `insert` of
    /// every entry, `flush()`, then an fsync of sled's data file (what the
    /// durable facade commit ends with). Returns the store and the time of
    /// the inserts, flush and fsync.
    pub fn bulk_load(entries: &[(Vec<u8>, Vec<u8>)]) -> (Self, Duration) {
        let dir = temp_dir();
        let db = sled::open(dir.path()).expect("sled::open");
        let data_file = open_data_file(dir.path());
        let start = Instant::now();
        for (k, v) in entries {
            db.insert(&k[..], &v[..]).expect("insert");
        }
        db.flush().expect("flush");
        data_file.sync_data().expect("fsync");
        let took = start.elapsed();
        let raw = RawDefaultSled {
            db,
            n: entries.len(),
            data_file,
            dir,
        };
        (raw, took)
    }

    /// Prints how long the load took and the footprint.
    pub fn report_built(&self, took: Duration, how: &str) {
        let label = format!("raw_sled/{}", size_label(self.n));
        say(format!(
            "{label}: {how}: {:.3} s ({:.0} keys/s)",
            took.as_secs_f64(),
            self.n as f64 / took.as_secs_f64()
        ));
        say(footprint(
            &label,
            "after the bulk load",
            dir_size(self.dir.path()),
            self.n,
        ));
    }

    /// Builds the store (when the bulk-load benchmark did not keep one).
    pub fn build(entries: &[(Vec<u8>, Vec<u8>)]) -> Self {
        let (raw, took) = Self::bulk_load(entries);
        raw.report_built(took, "bulk load (inserts, flush, fsync)");
        raw
    }

    /// Reads every entry once (untimed, before `get`).
    pub fn warm(&self) {
        let mut n = 0;
        for item in self.db.iter() {
            std::hint::black_box(item.expect("scan"));
            n += 1;
        }
        assert_eq!(n, self.n);
    }

    /// Prints the footprint, then closes the database.
    pub fn close(self) {
        let label = format!("raw_sled/{}", size_label(self.n));
        self.db.flush().expect("flush");
        say(footprint(
            &label,
            "after the workloads",
            dir_size(self.dir.path()),
            self.n,
        ));
        let RawDefaultSled {
            db, data_file, dir, ..
        } = self;
        drop(data_file);
        let start = Instant::now();
        drop(db);
        say(format!(
            "{label}: close (drop of the db) took {:.1} ms",
            start.elapsed().as_secs_f64() * 1e3
        ));
        drop(dir);
    }
}

/// sled's data file (`db` in its directory), for the fsync kvgit's durable
/// barrier adds after sled's flush.
fn open_data_file(dir: &Path) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(dir.join("db"))
        .expect("open sled's data file")
}

/// The stores of one size, each built on first use (or kept from the
/// bulk-load benchmark) and shared by the workloads of that size.
pub struct DefaultStores {
    /// The number of keys.
    pub n: usize,
    entries: OnceCell<Vec<(Vec<u8>, Vec<u8>)>>,
    memory: OnceCell<FacadeStore>,
    sled: OnceCell<FacadeStore>,
    journal: OnceCell<FacadeStore>,
    raw: OnceCell<RawDefaultSled>,
}

impl DefaultStores {
    /// Nothing built yet.
    pub fn new(n: usize) -> Self {
        DefaultStores {
            n,
            entries: OnceCell::new(),
            memory: OnceCell::new(),
            sled: OnceCell::new(),
            journal: OnceCell::new(),
            raw: OnceCell::new(),
        }
    }

    /// The data set.
    pub fn entries(&self) -> &[(Vec<u8>, Vec<u8>)] {
        self.entries.get_or_init(|| crate::entries(self.n))
    }

    fn cell(&self, kind: BackendKind) -> &OnceCell<FacadeStore> {
        match kind {
            BackendKind::Memory => &self.memory,
            BackendKind::Sled => &self.sled,
            BackendKind::Journal => &self.journal,
            BackendKind::RawSled => panic!("raw sled is not a kvgit store"),
        }
    }

    /// The kvgit store on `kind` (memory or sled).
    pub fn kv(&self, kind: BackendKind) -> &FacadeStore {
        self.cell(kind)
            .get_or_init(|| FacadeStore::build(kind, self.entries()))
    }

    /// Keeps `store` (a bulk load the benchmark made) as the store of its
    /// backend, unless one exists.
    pub fn keep_kv(&self, store: FacadeStore, took: Duration) {
        let cell = self.cell(store.kind);
        if cell.get().is_none() {
            store.report_built(took, "kept the last measured bulk load");
            let _ = cell.set(store);
        }
    }

    /// The raw sled store.
    pub fn raw(&self) -> &RawDefaultSled {
        self.raw
            .get_or_init(|| RawDefaultSled::build(self.entries()))
    }

    /// Keeps `raw` as the raw sled store, unless one exists.
    pub fn keep_raw(&self, raw: RawDefaultSled, took: Duration) {
        if self.raw.get().is_none() {
            raw.report_built(took, "kept the last measured bulk load");
            let _ = self.raw.set(raw);
        }
    }

    /// Closes every store built, printing the footprints.
    pub fn close(self) {
        let DefaultStores {
            memory,
            sled,
            journal,
            raw,
            ..
        } = self;
        for store in [memory.into_inner(), sled.into_inner(), journal.into_inner()]
            .into_iter()
            .flatten()
        {
            store.close();
        }
        if let Some(raw) = raw.into_inner() {
            raw.close();
        }
    }
}

/// Runs `iters` operations in chunks of at most `chunk_max`, preparing each
/// chunk's inputs with `prepare` and running `before` between chunks, both
/// untimed; returns the time `op` took over every input.
fn chunked<T>(
    iters: u64,
    chunk_max: usize,
    mut prepare: impl FnMut(usize) -> Vec<T>,
    mut op: impl FnMut(T),
    mut before: impl FnMut(),
) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters as usize;
    while left > 0 {
        before();
        let chunk = left.min(chunk_max);
        let inputs = prepare(chunk);
        let start = Instant::now();
        for input in inputs {
            op(input);
        }
        total += start.elapsed();
        left -= chunk;
    }
    total
}

/// `Branch::put` of one random key to a fresh 100-byte value on `main`
/// (a transaction, the commit, the branch's compare-and-swap, the
/// durability barrier: on sled an fsync). Each commit builds on the last;
/// every [`FACADE_RESET_EVERY`] commits, and when dropped, `main` goes back
/// to the base commit and the store is swept, untimed.
pub struct PutRunner<'a> {
    store: &'a FacadeStore,
    rng: XorShift,
    since_reset: usize,
}

impl<'a> PutRunner<'a> {
    /// A runner on `store`.
    pub fn new(store: &'a FacadeStore, seed: u64) -> Self {
        PutRunner {
            store,
            rng: XorShift::new(seed),
            since_reset: 0,
        }
    }

    /// Makes `iters` commits; returns the time they took.
    pub fn run(&mut self, iters: u64) -> Duration {
        let mut total = Duration::ZERO;
        let mut left = iters as usize;
        while left > 0 {
            if self.since_reset >= FACADE_RESET_EVERY {
                self.reset();
            }
            let chunk = left.min(FACADE_RESET_EVERY - self.since_reset);
            let store = self.store;
            let rng = &mut self.rng;
            total += chunked(
                chunk as u64,
                chunk,
                |c| {
                    (0..c)
                        .map(|_| (store.random_key(rng), rng.value()))
                        .collect()
                },
                |(k, v)| {
                    store.main.put(k, v).expect("put");
                },
                || {},
            );
            self.since_reset += chunk;
            left -= chunk;
        }
        total
    }

    /// Puts `main` back and sweeps.
    pub fn reset(&mut self) {
        if self.since_reset > 0 {
            self.store.restore();
            self.since_reset = 0;
        }
    }
}

impl Drop for PutRunner<'_> {
    fn drop(&mut self) {
        self.reset();
    }
}

/// Random reads made before the reads are timed (see [`GetRunner::new`]).
pub const GET_WARM_READS: usize = 300_000;

/// Point reads of random keys of `main`: `Branch::get` (a snapshot of the
/// head per call, recency recorded), or `Snapshot::get` on one snapshot
/// taken beforehand.
pub struct GetRunner<'a> {
    store: &'a FacadeStore,
    snapshot: Option<kvgit::Snapshot>,
    rng: XorShift,
}

impl<'a> GetRunner<'a> {
    /// Reads through `Branch::get`, or through one `Snapshot` if
    /// `snapshot`; warms the store first (untimed): a scan, then as many
    /// random reads as the store has keys (at most [`GET_WARM_READS`]),
    /// so that the node cache holds what random reads keep in it whichever
    /// of `get` and `snapshot_get` runs first (a scan alone leaves the
    /// tree's last nodes in a cache smaller than the tree, and the first
    /// runner paid for filling it: `Branch::get` measured 2.8x
    /// `Snapshot::get` at 1M in memory, the same reads run after it 1x).
    pub fn new(store: &'a FacadeStore, snapshot: bool, seed: u64) -> Self {
        store.warm();
        let snapshot = snapshot.then(|| store.main.snapshot().expect("snapshot"));
        let mut warm_rng = XorShift::new(seed ^ 0x5eed);
        for _ in 0..store.n.min(GET_WARM_READS) {
            let k = store.random_key(&mut warm_rng);
            let v = match &snapshot {
                Some(s) => s.get(k),
                None => store.main.get(k),
            };
            std::hint::black_box(v.expect("get"));
        }
        GetRunner {
            store,
            snapshot,
            rng: XorShift::new(seed),
        }
    }

    /// Makes `iters` reads; returns the time they took.
    pub fn run(&mut self, iters: u64) -> Duration {
        let store = self.store;
        let rng = &mut self.rng;
        let snapshot = self.snapshot.as_ref();
        chunked(
            iters,
            FACADE_RESET_EVERY,
            |c| (0..c).map(|_| store.random_key(rng)).collect(),
            |k| {
                let v = match snapshot {
                    Some(s) => s.get(k),
                    None => store.main.get(k),
                };
                std::hint::black_box(v.expect("get").expect("every key is present"));
            },
            || {},
        )
    }
}

/// `Db::diff` of two commits [`DIFF_CHANGES`] changes apart: the base
/// commit and one transaction on a fork (`bench-diff`) giving 10 random
/// keys new values. The fork is deleted when the case is dropped.
pub struct DiffCase<'a> {
    store: &'a FacadeStore,
    branch: Option<Branch>,
    changed: CommitId,
}

impl<'a> DiffCase<'a> {
    /// Makes the fork and its commit (untimed).
    pub fn new(store: &'a FacadeStore, seed: u64) -> Self {
        let mut rng = XorShift::new(seed);
        let branch = store.fork("bench-diff");
        let mut tx = branch.transaction().expect("transaction");
        for i in distinct(&mut rng, store.n as u64, DIFF_CHANGES, &[]) {
            tx.put(key(i), rng.value());
        }
        let changed = tx.commit().expect("commit").commit.expect("committed");
        DiffCase {
            store,
            branch: Some(branch),
            changed,
        }
    }

    /// One diff; returns the number of changes (10).
    pub fn diff(&self) -> usize {
        self.store
            .db
            .diff(&self.store.base, &self.changed)
            .expect("diff")
            .len()
    }
}

impl Drop for DiffCase<'_> {
    fn drop(&mut self) {
        if let Some(b) = self.branch.take() {
            b.delete_branch().expect("delete branch");
        }
    }
}

/// `Branch::merge_from` of two branches forked from a common base: the
/// base (`bench-merge-base`) is the data set plus [`MERGE_COUNTERS`]
/// counter keys `ctr/000`.. (decimal `1000`, `Counter` registered on
/// `ctr/` through `Db::merge_fns`); `bench-merge-ours` changes
/// [`MERGE_CHANGES`] random keys and adds `i + 1` to counter `i`,
/// `bench-merge-theirs` changes 100 other keys and adds `2 (i + 1)`, each
/// in one transaction. Each merge is a three-way merge of `theirs` into
/// `ours` (a merge commit, the compare-and-swap, the durability barrier);
/// before each, `ours` is reset to its own commit, untimed.
pub struct MergeCase<'a> {
    store: &'a FacadeStore,
    branches: Vec<Branch>,
    ours_head: CommitId,
}

impl<'a> MergeCase<'a> {
    /// Makes the three branches and their commits (untimed).
    pub fn new(store: &'a FacadeStore, seed: u64) -> Self {
        let mut rng = XorShift::new(seed);
        store
            .db
            .merge_fns()
            .set_prefix(COUNTER_PREFIX, kvgit::merge::Counter);
        let counter = |i: usize| format!("{COUNTER_PREFIX}{i:03}");
        let base = store.fork("bench-merge-base");
        let mut tx = base.transaction().expect("transaction");
        for i in 0..MERGE_COUNTERS {
            tx.put(counter(i), "1000");
        }
        tx.commit().expect("commit");
        let ours = base.fork("bench-merge-ours").expect("fork");
        let theirs = base.fork("bench-merge-theirs").expect("fork");
        let ours_keys = distinct(&mut rng, store.n as u64, MERGE_CHANGES, &[]);
        let theirs_keys = distinct(&mut rng, store.n as u64, MERGE_CHANGES, &ours_keys);
        for (branch, keys, step) in [(&ours, &ours_keys, 1), (&theirs, &theirs_keys, 2)] {
            let mut tx = branch.transaction().expect("transaction");
            for &i in keys {
                tx.put(key(i), rng.value());
            }
            for i in 0..MERGE_COUNTERS {
                tx.put(counter(i), (1000 + step * (i + 1)).to_string());
            }
            tx.commit().expect("commit");
        }
        let ours_head = ours.head().expect("head");
        MergeCase {
            store,
            branches: vec![base, ours, theirs],
            ours_head,
        }
    }

    /// Puts `ours` back at its own commit (untimed, before each merge).
    pub fn reset(&self) {
        self.branches[1]
            .reset_to(&self.ours_head)
            .expect("reset ours");
    }

    /// One merge of `theirs` into `ours`.
    pub fn merge(&self) -> MergeOutcome {
        self.branches[1]
            .merge_from(&self.branches[2])
            .expect("merge")
    }

    /// The value of counter `i` on `ours`.
    pub fn counter(&self, i: usize) -> Option<Vec<u8>> {
        self.branches[1]
            .get(format!("{COUNTER_PREFIX}{i:03}"))
            .expect("get")
    }

    /// The store.
    pub fn store(&self) -> &FacadeStore {
        self.store
    }
}

impl Drop for MergeCase<'_> {
    fn drop(&mut self) {
        for b in self.branches.drain(..) {
            b.delete_branch().expect("delete branch");
        }
    }
}

/// `Branch::log` of a fork (`bench-log`) holding `commits` single-key
/// commits (`Branch::put`, made untimed) on top of the base: each walk
/// reads the newest `commits` commits.
pub struct LogCase {
    branch: Option<Branch>,
    commits: usize,
}

impl LogCase {
    /// Makes the fork and its commits; prints how long they took.
    pub fn new(store: &FacadeStore, commits: usize, seed: u64) -> Self {
        let mut rng = XorShift::new(seed);
        let branch = store.fork("bench-log");
        let start = Instant::now();
        for _ in 0..commits {
            branch
                .put(store.random_key(&mut rng), rng.value())
                .expect("put");
        }
        say(format!(
            "{}: {commits} commits for log took {:.3} s",
            store.label(),
            start.elapsed().as_secs_f64()
        ));
        LogCase {
            branch: Some(branch),
            commits,
        }
    }

    /// One walk; returns the number of commits read.
    pub fn walk(&self) -> usize {
        let branch = self.branch.as_ref().expect("the branch lives");
        let mut n = 0;
        for commit in branch.log().expect("log").take(self.commits) {
            std::hint::black_box(commit.expect("commit"));
            n += 1;
        }
        n
    }
}

impl Drop for LogCase {
    fn drop(&mut self) {
        if let Some(b) = self.branch.take() {
            b.delete_branch().expect("delete branch");
        }
    }
}

/// `Db::sweep` after deleting branches holding [`SWEEP_COMMITS`] commits:
/// before each sweep (untimed) [`SWEEP_BRANCHES`] branches are forked from
/// the base, given `SWEEP_COMMITS / SWEEP_BRANCHES` single-key commits each
/// (`Branch::put`) and deleted; the sweep marks the whole store and frees
/// their objects.
pub struct SweepRunner<'a> {
    store: &'a FacadeStore,
    rng: XorShift,
    /// The last sweep's report.
    pub last: Option<SweepReport>,
}

impl<'a> SweepRunner<'a> {
    /// A runner on `store`; sweeps once first (untimed) so that each
    /// measured sweep frees only what its own branches left.
    pub fn new(store: &'a FacadeStore, seed: u64) -> Self {
        store.restore();
        SweepRunner {
            store,
            rng: XorShift::new(seed),
            last: None,
        }
    }

    /// Makes and deletes the branches (untimed).
    pub fn prepare(&mut self) {
        let per_branch = SWEEP_COMMITS / SWEEP_BRANCHES;
        for b in 0..SWEEP_BRANCHES {
            let branch = self.store.fork(&format!("bench-sweep-{b}"));
            for _ in 0..per_branch {
                branch
                    .put(self.store.random_key(&mut self.rng), self.rng.value())
                    .expect("put");
            }
            branch.delete_branch().expect("delete branch");
        }
    }

    /// `iters` rounds of prepare (untimed) and sweep (timed).
    pub fn run(&mut self, iters: u64) -> Duration {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            self.prepare();
            let start = Instant::now();
            let report = self.store.db.sweep().expect("sweep");
            total += start.elapsed();
            self.last = Some(report);
        }
        total
    }
}

/// `Db::rebase` to half the size: a fork (`bench-rebase`) of the base
/// holding the data set, rebased with the high water one byte under its
/// value bytes and the low water at half of them, so the coldest half of
/// its keys is dropped and the rest committed as a fresh root commit.
/// Before each rebase the fork is reset to the base, untimed.
pub struct RebaseCase<'a> {
    store: &'a FacadeStore,
    branch: Option<Branch>,
    high: u64,
    low: u64,
}

impl<'a> RebaseCase<'a> {
    /// Makes the fork.
    pub fn new(store: &'a FacadeStore) -> Self {
        let branch = store.fork("bench-rebase");
        let bytes = branch.snapshot().expect("snapshot").value_bytes();
        RebaseCase {
            store,
            branch: Some(branch),
            high: bytes - 1,
            low: bytes / 2,
        }
    }

    fn branch(&self) -> &Branch {
        self.branch.as_ref().expect("the branch lives")
    }

    /// Puts the fork back at the base (untimed, before each rebase).
    pub fn reset(&self) {
        self.branch()
            .reset_to(&self.store.base)
            .expect("reset the rebase branch");
    }

    /// One rebase; returns the keys kept.
    pub fn rebase(&self) -> u64 {
        let report = self
            .store
            .db
            .rebase(self.branch().name(), self.high, Some(self.low))
            .expect("rebase");
        assert!(report.performed(), "the rebase did not run: {report:?}");
        report.kept
    }
}

impl Drop for RebaseCase<'_> {
    fn drop(&mut self) {
        if let Some(b) = self.branch.take() {
            b.delete_branch().expect("delete branch");
        }
    }
}

/// Group commit: `Branch::put`s of random keys by [`GROUP_THREADS`] threads
/// at once, each on a branch of its own (`bench-group-<i>`, forked from the
/// base). One iteration is one commit, whichever thread makes it: the mean
/// is wall time per commit (compare with `put`, one thread). Every
/// [`FACADE_RESET_EVERY`] commits, and when dropped, the branches go back
/// to the base and the store is swept, untimed.
pub struct GroupRunner<'a> {
    store: &'a FacadeStore,
    branches: Vec<Branch>,
    rng: XorShift,
    since_reset: usize,
}

impl<'a> GroupRunner<'a> {
    /// Forks the branches.
    pub fn new(store: &'a FacadeStore, seed: u64) -> Self {
        let branches = (0..GROUP_THREADS)
            .map(|i| store.fork(&format!("bench-group-{i}")))
            .collect();
        GroupRunner {
            store,
            branches,
            rng: XorShift::new(seed),
            since_reset: 0,
        }
    }

    /// `iters` commits spread evenly over the threads (each making
    /// `ceil(iters / threads)`); returns the wall time from releasing the
    /// threads to the last commit, scaled to `iters` commits.
    pub fn run(&mut self, iters: u64) -> Duration {
        let threads = self.branches.len();
        let mut total = Duration::ZERO;
        let mut left = iters as usize;
        while left > 0 {
            if self.since_reset >= FACADE_RESET_EVERY {
                self.reset();
            }
            let chunk = left.min(FACADE_RESET_EVERY - self.since_reset);
            let per_thread = chunk.div_ceil(threads);
            let work: Vec<Vec<_>> = (0..threads)
                .map(|_| {
                    (0..per_thread)
                        .map(|_| (self.store.random_key(&mut self.rng), self.rng.value()))
                        .collect()
                })
                .collect();
            let barrier = Barrier::new(threads + 1);
            let elapsed = std::thread::scope(|s| {
                for (branch, edits) in self.branches.iter().zip(work) {
                    let barrier = &barrier;
                    s.spawn(move || {
                        barrier.wait();
                        for (k, v) in edits {
                            branch.put(k, v).expect("put");
                        }
                    });
                }
                barrier.wait();
                // Returning joins every thread first: the scope ends after
                // the last commit.
                Instant::now()
            })
            .elapsed();
            let made = per_thread * threads;
            total += elapsed.mul_f64(chunk as f64 / made as f64);
            self.since_reset += made;
            left -= chunk;
        }
        total
    }

    /// Puts the branches back at the base and sweeps.
    pub fn reset(&mut self) {
        if self.since_reset > 0 {
            for b in &self.branches {
                b.reset_to(&self.store.base).expect("reset");
            }
            self.store.restore();
            self.since_reset = 0;
        }
    }
}

impl Drop for GroupRunner<'_> {
    fn drop(&mut self) {
        for b in self.branches.drain(..) {
            b.delete_branch().expect("delete branch");
        }
        self.since_reset = 0;
        self.store.restore();
    }
}

/// What raw sled does per operation in [`RawRunner`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawOp {
    /// `get` of a random key.
    Get,
    /// `insert` of a random key with a fresh 100-byte value.
    Put,
    /// `insert`, then `flush()` (sled's flush: written, not fsynced).
    PutFlush,
    /// `insert`, `flush()`, then an fsync of sled's data file (what kvgit's
    /// durable barrier does after sled's flush).
    PutFsync,
}

/// Raw sled's operations on random keys of its data set.
pub struct RawRunner<'a> {
    raw: &'a RawDefaultSled,
    op: RawOp,
    rng: XorShift,
}

impl<'a> RawRunner<'a> {
    /// A runner of `op` on `raw` (warmed first for [`RawOp::Get`], as
    /// [`GetRunner::new`] warms kvgit: a scan, then random reads).
    pub fn new(raw: &'a RawDefaultSled, op: RawOp, seed: u64) -> Self {
        if op == RawOp::Get {
            raw.warm();
            let mut warm_rng = XorShift::new(seed ^ 0x5eed);
            for _ in 0..raw.n.min(GET_WARM_READS) {
                let k = key(warm_rng.below(raw.n as u64));
                std::hint::black_box(raw.db.get(k).expect("get"));
            }
        }
        RawRunner {
            raw,
            op,
            rng: XorShift::new(seed),
        }
    }

    /// Runs `iters` operations; returns the time they took.
    pub fn run(&mut self, iters: u64) -> Duration {
        let raw = self.raw;
        let op = self.op;
        let rng = &mut self.rng;
        let n = raw.n as u64;
        chunked(
            iters,
            FACADE_RESET_EVERY,
            |c| {
                (0..c)
                    .map(|_| {
                        let k = key(rng.below(n));
                        let v = if op == RawOp::Get {
                            Vec::new()
                        } else {
                            rng.value()
                        };
                        (k, v)
                    })
                    .collect()
            },
            |(k, v)| match op {
                RawOp::Get => {
                    std::hint::black_box(raw.db.get(k).expect("get").expect("present"));
                }
                RawOp::Put | RawOp::PutFlush | RawOp::PutFsync => {
                    raw.db.insert(k, v).expect("insert");
                    if op != RawOp::Put {
                        raw.db.flush().expect("flush");
                    }
                    if op == RawOp::PutFsync {
                        raw.data_file.sync_data().expect("fsync");
                    }
                }
            },
            || {},
        )
    }
}

/// The disk's floor: a 100-byte write at the start of a file of its own
/// (in a temporary directory on the stores' file system), then
/// `fdatasync`.
pub struct FsyncProbe {
    file: File,
    rng: XorShift,
    _dir: TempDir,
}

impl FsyncProbe {
    /// Creates the file.
    pub fn new(seed: u64) -> Self {
        let dir = temp_dir();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("fsync-probe"))
            .expect("create the fsync probe file");
        let mut probe = FsyncProbe {
            file,
            rng: XorShift::new(seed),
            _dir: dir,
        };
        // The first write allocates the block; later ones overwrite it.
        probe.run(1);
        probe
    }

    /// `iters` rounds of write + fdatasync; returns the time they took.
    pub fn run(&mut self, iters: u64) -> Duration {
        let file = &mut self.file;
        let rng = &mut self.rng;
        chunked(
            iters,
            FACADE_RESET_EVERY,
            |c| (0..c).map(|_| rng.value()).collect(),
            |v| {
                file.seek(SeekFrom::Start(0)).expect("seek");
                file.write_all(&v).expect("write");
                file.sync_data().expect("fdatasync");
            },
            || {},
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kvgit::Strategy;

    /// Every workload once at N = 1,000 on memory and sled, and raw sled's
    /// (the CI smoke test of the `defaults` target: the benchmark binary
    /// itself needs a release build).
    #[test]
    fn every_facade_workload_runs_once_at_1k() {
        let st = DefaultStores::new(1_000);
        let (raw, took) = RawDefaultSled::bulk_load(st.entries());
        st.keep_raw(raw, took);
        for kind in [BackendKind::Memory, BackendKind::Sled, BackendKind::Journal] {
            let (store, took) = FacadeStore::bulk_load(kind, st.entries());
            assert_eq!(store.main.len().unwrap(), 1_000);
            st.keep_kv(store, took);
            let store = st.kv(kind);
            let heads = store.db.branches().unwrap();
            PutRunner::new(store, 1).run(3);
            assert_eq!(store.main.head().unwrap(), store.base, "put resets on drop");
            GetRunner::new(store, false, 2).run(5);
            GetRunner::new(store, true, 3).run(5);
            assert_eq!(DiffCase::new(store, 4).diff(), DIFF_CHANGES);
            {
                let case = MergeCase::new(store, 5);
                for _ in 0..2 {
                    case.reset();
                    let outcome = case.merge();
                    assert_eq!(outcome.strategy, Strategy::ThreeWay);
                    assert!(outcome.merge_commit.is_some());
                    assert_eq!(case.counter(9).as_deref(), Some(&b"1030"[..]));
                }
                assert_eq!(case.store().n, 1_000);
            }
            assert_eq!(LogCase::new(store, 20, 6).walk(), 20);
            {
                let mut sweep = SweepRunner::new(store, 7);
                sweep.run(1);
                assert!(sweep.last.as_ref().unwrap().objects_freed > 0);
            }
            {
                let case = RebaseCase::new(store);
                for _ in 0..2 {
                    case.reset();
                    assert_eq!(case.rebase(), 500);
                }
            }
            {
                let mut group = GroupRunner::new(store, 8);
                group.run(9);
            }
            assert_eq!(store.db.branches().unwrap(), heads, "branches cleaned up");
            assert_eq!(store.main.head().unwrap(), store.base);
        }
        for op in [RawOp::Get, RawOp::Put, RawOp::PutFlush, RawOp::PutFsync] {
            RawRunner::new(st.raw(), op, 9).run(3);
        }
        FsyncProbe::new(10).run(2);
        st.close();
    }
}
