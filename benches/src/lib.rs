//! Data, stores and workloads for kvgit's benchmarks (the targets under
//! `benches/benches/`: `core`, `merge`, `history`, `facade`, `gc`, and
//! `defaults`, whose workloads in [`defaults`] go through the public
//! `kvgit` facade only, with default options).
//!
//! The criterion harness only decides what to time and how often; the work
//! itself lives here so that every benchmark id does exactly what
//! `README.md` says it does, and so that the setup (which at 1M keys takes
//! seconds) is written once.
//!
//! - Data (DESIGN.md, "Benchmarks and figures"): key `i` is `k` followed by
//!   `i` in 8 zero-padded decimal digits (`k00000042`); values are 100
//!   pseudo-random bytes from a fixed-seed xorshift, so every run and every
//!   backend sees the same bytes.
//! - Stores: a [`KvStore`] is a kvgit repo (in memory or on sled) holding a
//!   tree of the N entries committed on `heads/main`; a [`RawSled`] is a
//!   plain sled database holding the same entries, for the "nearest
//!   equivalent work" beside each kvgit figure. [`Fixtures`] builds each at
//!   most once per N, on first use, and reports on-disk size and close time.
//! - Workloads: single-key commits ([`CommitRunner`], [`RawCommitRunner`])
//!   here; the three-way merge in [`merge`], the history walk in
//!   [`history`], the `kvgit` facade (durable commits, group commit,
//!   `Branch::update`) in [`facade`], sweep and rebase in [`gc`]. Workloads
//!   that commit put the store back to a [`baseline::Baseline`] now and
//!   then, untimed.

use std::cell::OnceCell;
use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kvgit_core::{
    CasOutcome, CommitSpec, Durability, MemoryBackend, ObjectId, Repo, RepoOptions, SledBackend,
    SledOptions, Tree,
};
use tempfile::TempDir;

pub mod baseline;
pub mod defaults;
pub mod facade;
pub mod gc;
pub mod history;
pub mod merge;

/// Length of every value, in bytes.
pub const VALUE_LEN: usize = 100;

/// Length of every key: `k` and 8 digits.
pub const KEY_LEN: usize = 9;

/// The ref the commit workloads move.
pub const REF: &str = "heads/main";

/// Entries per sled `Batch` when raw sled bulk-loads.
pub const RAW_BATCH: usize = 10_000;

/// Seed of the data set's values.
pub const DATA_SEED: u64 = 0x6b76_6769_7421;

/// The commit workloads put the store back to its base state (delete the
/// objects they wrote, move the ref back) after this many commits, outside
/// the timed region, so that a long measurement does not grow the store
/// without bound (at 50k commits/s, several GB).
pub const RESET_EVERY: usize = 2_000;

/// Prefix of every line the suite prints besides criterion's own.
const TAG: &str = "kvgit-benches:";

/// A xorshift64 generator: deterministic, tiny and fast enough to sit inside
/// a timed loop.
#[derive(Clone, Debug)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator for `seed` (any value; zero is remapped).
    pub fn new(seed: u64) -> Self {
        // One splitmix64 step, so that nearby seeds give unrelated streams.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        XorShift(if z == 0 { 1 } else { z })
    }

    /// The next 64 pseudo-random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Fills `out` with pseudo-random bytes.
    pub fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let word = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }

    /// A fresh [`VALUE_LEN`]-byte value.
    pub fn value(&mut self) -> Vec<u8> {
        let mut v = vec![0; VALUE_LEN];
        self.fill(&mut v);
        v
    }
}

/// Key `i`: `k` followed by `i` in 8 zero-padded decimal digits.
pub fn key(i: u64) -> [u8; KEY_LEN] {
    assert!(i < 100_000_000, "key index {i} does not fit in 8 digits");
    let mut k = *b"k00000000";
    let mut rest = i;
    for pos in (1..KEY_LEN).rev() {
        k[pos] = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    k
}

/// The data set of `n` entries, sorted by key.
pub fn entries(n: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut rng = XorShift::new(DATA_SEED);
    (0..n as u64)
        .map(|i| (key(i).to_vec(), rng.value()))
        .collect()
}

/// Bytes of keys and values in a data set of `n` entries.
pub fn logical_bytes(n: usize) -> u64 {
    (n * (KEY_LEN + VALUE_LEN)) as u64
}

/// Parses a size: `10k`, `100k`, `1M`, or a plain number.
pub fn parse_size(s: &str) -> Option<usize> {
    let s = s.trim();
    let (digits, scale) = match s.char_indices().last()? {
        (i, 'k' | 'K') => (&s[..i], 1_000),
        (i, 'm' | 'M') => (&s[..i], 1_000_000),
        _ => (s, 1),
    };
    digits
        .parse::<usize>()
        .ok()
        .and_then(|d| d.checked_mul(scale))
        .filter(|&n| n > 0 && n <= 100_000_000)
}

/// The label of a size in benchmark ids: `10k`, `100k`, `1M`.
pub fn size_label(n: usize) -> String {
    if n % 1_000_000 == 0 {
        format!("{}M", n / 1_000_000)
    } else if n % 1_000 == 0 {
        format!("{}k", n / 1_000)
    } else {
        n.to_string()
    }
}

/// The sizes to run: `KVGIT_BENCH_SIZES` (comma-separated, e.g. `10k,100k`)
/// if set; otherwise 10k, 100k and 1M, or only 10k in criterion's test mode
/// (`--test`, or a run by `cargo test`), which exists to check that the
/// benchmarks still run.
pub fn sizes_from_env(test_mode: bool) -> Vec<usize> {
    match std::env::var("KVGIT_BENCH_SIZES") {
        Ok(list) if !list.trim().is_empty() => list
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|s| {
                parse_size(s).unwrap_or_else(|| {
                    panic!("KVGIT_BENCH_SIZES: {s:?} is not a size like 10k, 100k, 1M or 5000")
                })
            })
            .collect(),
        _ if test_mode => vec![10_000],
        _ => vec![10_000, 100_000, 1_000_000],
    }
}

/// Where a benchmark's data lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    /// kvgit on [`MemoryBackend`].
    Memory,
    /// kvgit on [`SledBackend`].
    Sled,
    /// sled used directly: the same entries as plain keys and values.
    RawSled,
    /// kvgit on its journal store (`Engine::Journal`); the `defaults`
    /// target only.
    Journal,
}

impl BackendKind {
    /// Every backend, in report order.
    pub const ALL: [BackendKind; 3] =
        [BackendKind::Memory, BackendKind::Sled, BackendKind::RawSled];

    /// The name in benchmark ids.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Memory => "memory",
            BackendKind::Sled => "sled",
            BackendKind::RawSled => "raw_sled",
            BackendKind::Journal => "journal",
        }
    }
}

/// The backends to run: `KVGIT_BENCH_BACKENDS` (comma-separated names, e.g.
/// `memory,raw_sled`) if set, otherwise all.
pub fn backends_from_env() -> Vec<BackendKind> {
    backends_from_env_or(&BackendKind::ALL)
}

/// Like [`backends_from_env`], with `default` when the variable is unset.
pub fn backends_from_env_or(default: &[BackendKind]) -> Vec<BackendKind> {
    const NAMED: [BackendKind; 4] = [
        BackendKind::Memory,
        BackendKind::Sled,
        BackendKind::RawSled,
        BackendKind::Journal,
    ];
    match std::env::var("KVGIT_BENCH_BACKENDS") {
        Ok(list) if !list.trim().is_empty() => list
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|s| {
                NAMED
                    .into_iter()
                    .find(|k| k.name() == s.trim())
                    .unwrap_or_else(|| {
                        panic!(
                            "KVGIT_BENCH_BACKENDS: unknown backend {s:?} \
                             (memory, sled, raw_sled, journal)"
                        )
                    })
            })
            .collect(),
        _ => default.to_vec(),
    }
}

/// Repo options with the default cache and the given durability.
pub fn repo_options(durability: Durability) -> RepoOptions {
    RepoOptions {
        durability,
        ..RepoOptions::default()
    }
}

/// A fresh in-memory repo.
pub fn memory_repo() -> Repo {
    Repo::new(
        Arc::new(MemoryBackend::new()),
        repo_options(Durability::Eventual),
    )
}

/// A kvgit sled store at `path` with default [`SledOptions`].
pub fn sled_repo(path: &Path, durability: Durability) -> Repo {
    let backend = SledBackend::open(path, SledOptions::default())
        .unwrap_or_else(|e| panic!("cannot open a kvgit sled store in {}: {e}", path.display()));
    Repo::new(Arc::new(backend), repo_options(durability))
}

/// A temporary directory for a store.
pub fn temp_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("kvgit-bench-")
        .tempdir()
        .expect("cannot create a temporary directory")
}

/// The sum of the sizes of the files under `dir`.
pub fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => dir_size(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// A kvgit repo holding the data set committed on [`REF`].
pub struct KvStore {
    /// Which backend.
    pub kind: BackendKind,
    /// The repo, in [`Durability::Eventual`] mode.
    pub repo: Repo,
    /// The tree of the data set.
    pub tree: Tree,
    /// The commit [`REF`] points at.
    pub head: ObjectId,
    dir: Option<TempDir>,
}

impl KvStore {
    /// Builds the store (`kind` is [`BackendKind::Memory`] or
    /// [`BackendKind::Sled`]) and prints what it cost.
    pub fn build(kind: BackendKind, entries: &[(Vec<u8>, Vec<u8>)]) -> Self {
        let (repo, dir) = match kind {
            BackendKind::Memory => (memory_repo(), None),
            BackendKind::Sled => {
                let dir = temp_dir();
                (sled_repo(dir.path(), Durability::Eventual), Some(dir))
            }
            BackendKind::RawSled | BackendKind::Journal => {
                panic!("{} is not a store of the core benchmarks", kind.name())
            }
        };
        let start = Instant::now();
        let tree = repo.build_tree(entries.iter().cloned()).expect("bulk load");
        let spec = CommitSpec {
            message: "base".into(),
            ..CommitSpec::default()
        };
        let (head, outcome) = repo.commit(REF, None, &tree, &spec).expect("commit");
        assert_eq!(outcome, CasOutcome::Swapped);
        repo.backend().flush(Durability::Durable).expect("flush");
        let built = start.elapsed();
        let label = format!("{}/{}", kind.name(), size_label(entries.len()));
        let logical = logical_bytes(entries.len());
        let mut line = format!(
            "{TAG} {label}: built in {:.3} s; tree level {} (depth {})",
            built.as_secs_f64(),
            tree.level(),
            u32::from(tree.level()) + 1
        );
        if kind == BackendKind::Sled {
            let disk = repo.backend().size_on_disk().expect("size on disk");
            line += &format!(
                "; keys+values {:.2} MB, on disk {:.2} MB ({:.2}x)",
                mb(logical),
                mb(disk),
                disk as f64 / logical as f64
            );
        }
        eprintln!("{line}");
        KvStore {
            kind,
            repo,
            tree,
            head,
            dir,
        }
    }

    /// The number of keys.
    pub fn len(&self) -> u64 {
        self.tree.len()
    }

    /// True if the store holds no key.
    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    /// Another repo over the same backend (a separate node cache) whose
    /// commits wait for `durability`.
    pub fn repo_with(&self, durability: Durability) -> Repo {
        Repo::new(self.repo.backend().clone(), repo_options(durability))
    }

    /// Reads every node of the tree once, through the node cache.
    pub fn warm(&self) {
        let mut n = 0u64;
        for item in self.repo.range_raw(&self.tree, ..) {
            item.expect("scan");
            n += 1;
        }
        assert_eq!(n, self.tree.len());
    }

    /// A point read of key `i` at the head.
    pub fn get(&self, i: u64) -> Option<Vec<u8>> {
        self.repo.get(&self.tree, &key(i)).expect("get")
    }

    /// Two trees for the diff workload: the base tree and the base tree
    /// with 10 random keys given new values.
    pub fn diff_pair(&self, seed: u64) -> (Tree, Tree) {
        let mut rng = XorShift::new(seed);
        let mut picked = HashSet::new();
        while picked.len() < 10 {
            picked.insert(rng.below(self.len()));
        }
        let edits: Vec<_> = picked
            .into_iter()
            .map(|i| (key(i).to_vec(), Some(rng.value())))
            .collect();
        let b = self.repo.apply(&self.tree, edits).expect("apply");
        (self.tree, b)
    }

    /// Closes the store: drops the repo (and its node cache), then times
    /// dropping the backend, which for sled flushes and waits until the
    /// store can be opened again.
    pub fn close(self) {
        let KvStore {
            kind,
            repo,
            tree,
            dir,
            ..
        } = self;
        let backend = repo.backend().clone();
        drop(repo);
        let start = Instant::now();
        drop(backend);
        let took = start.elapsed();
        if kind == BackendKind::Sled {
            eprintln!(
                "{TAG} {}/{}: close (drop of the backend) took {:.1} ms",
                kind.name(),
                size_label(tree.len() as usize),
                took.as_secs_f64() * 1e3
            );
        }
        drop(dir);
    }
}

/// Diffs `a` against `b` and returns the number of changes.
pub fn diff_count(repo: &Repo, a: &Tree, b: &Tree) -> usize {
    let mut n = 0;
    for change in repo.diff(a, b) {
        std::hint::black_box(change.expect("diff"));
        n += 1;
    }
    n
}

/// The single-key commit workload on a [`KvStore`]: put one random key to a
/// fresh value (`Repo::apply`), then commit it on [`REF`] with the previous
/// head as parent and expected value (`Repo::commit`, which ends with the
/// repo's durability barrier). Each commit builds on the previous one.
pub struct CommitRunner<'a> {
    store: &'a KvStore,
    repo: Repo,
    tree: Tree,
    head: ObjectId,
    base_objects: HashSet<ObjectId>,
    rng: XorShift,
    since_reset: usize,
}

impl<'a> CommitRunner<'a> {
    /// A runner committing through a repo over `store`'s backend with
    /// `durability`.
    pub fn new(store: &'a KvStore, durability: Durability, seed: u64) -> Self {
        let repo = match durability {
            Durability::Eventual => store.repo.clone(),
            Durability::Durable => store.repo_with(durability),
        };
        let mut base_objects = HashSet::new();
        repo.backend()
            .for_each_object(&mut |id, _| {
                base_objects.insert(id);
                Ok(true)
            })
            .expect("list objects");
        assert_eq!(repo.get_ref(REF).expect("ref"), Some(store.head));
        CommitRunner {
            store,
            repo,
            tree: store.tree,
            head: store.head,
            base_objects,
            rng: XorShift::new(seed),
            since_reset: 0,
        }
    }

    fn edit(&mut self) -> (Vec<u8>, Vec<u8>) {
        let i = self.rng.below(self.store.len());
        (key(i).to_vec(), self.rng.value())
    }

    /// One commit, as the facade makes it: the new nodes, the commit object
    /// and the ref swap in one backend call. Returns how many objects it
    /// wrote (nodes and commit; a single-key change never fills a batch, so
    /// every new node is still unwritten when the commit goes).
    pub fn commit(&mut self, key: Vec<u8>, value: Vec<u8>) -> usize {
        let (tree, unwritten) = self
            .repo
            .apply_unwritten(&self.tree, [(key, Some(value))])
            .expect("apply");
        let written = unwritten.len();
        let spec = CommitSpec {
            parents: vec![self.head],
            message: "bench".into(),
            ..CommitSpec::default()
        };
        let (id, outcome) = self
            .repo
            .commit_with(REF, Some(&self.head), &tree, unwritten, &spec)
            .expect("commit");
        assert_eq!(outcome, CasOutcome::Swapped);
        self.tree = tree;
        self.head = id;
        self.since_reset += 1;
        written + 1
    }

    /// One untimed commit; prints how many objects it wrote against the
    /// tree's depth (the figure is "at most depth + 2").
    pub fn probe(&mut self) {
        let (k, v) = self.edit();
        let written = self.commit(k, v);
        eprintln!(
            "{TAG} {}/{}: a single-key commit wrote {written} objects (tree depth {})",
            self.store.kind.name(),
            size_label(self.store.len() as usize),
            u32::from(self.tree.level()) + 1
        );
    }

    /// Runs `iters` commits and returns the time they took, leaving out
    /// generating their keys and values and the periodic resets.
    pub fn run(&mut self, iters: u64) -> Duration {
        let mut total = Duration::ZERO;
        let mut left = iters as usize;
        while left > 0 {
            if self.since_reset >= RESET_EVERY {
                self.reset();
            }
            let chunk = left.min(RESET_EVERY - self.since_reset);
            let edits: Vec<_> = (0..chunk).map(|_| self.edit()).collect();
            let start = Instant::now();
            for (k, v) in edits {
                self.commit(k, v);
            }
            total += start.elapsed();
            left -= chunk;
        }
        total
    }

    /// Puts the store back to its base state: deletes every object written
    /// since the runner was made and moves [`REF`] back to the base head.
    pub fn reset(&mut self) {
        if self.head == self.store.head {
            return;
        }
        let backend = self.repo.backend();
        let mut new_objects = Vec::new();
        backend
            .for_each_object(&mut |id, _| {
                if !self.base_objects.contains(&id) {
                    new_objects.push(id);
                }
                Ok(true)
            })
            .expect("list objects");
        backend.delete_objects(&new_objects).expect("delete");
        for id in &new_objects {
            self.repo.cache().remove(id);
            self.store.repo.cache().remove(id);
        }
        let outcome = backend
            .cas_ref(REF, Some(&self.head), Some(&self.store.head))
            .expect("cas");
        assert_eq!(outcome, CasOutcome::Swapped);
        self.tree = self.store.tree;
        self.head = self.store.head;
        self.since_reset = 0;
    }
}

impl Drop for CommitRunner<'_> {
    fn drop(&mut self) {
        self.reset();
    }
}

/// A plain sled database holding the data set: tree `kv` with the entries,
/// tree `refs` with one 32-byte "ref" (mirroring kvgit's `objects` and
/// `refs` trees), opened with the same cache size and flush interval as
/// kvgit's sled backend.
pub struct RawSled {
    /// The database.
    pub db: sled::Db,
    /// The entries.
    pub kv: sled::Tree,
    /// The ref.
    pub refs: sled::Tree,
    data_file: File,
    dir: TempDir,
}

impl RawSled {
    /// A new, empty database in a temporary directory.
    pub fn open() -> Self {
        let dir = temp_dir();
        let options = SledOptions::default();
        let db = sled::Config::new()
            .path(dir.path())
            .cache_capacity(options.cache_capacity)
            .flush_every_ms(options.flush_every_ms)
            .open()
            .expect("open sled");
        let kv = db.open_tree("kv").expect("open tree");
        let refs = db.open_tree("refs").expect("open tree");
        let data_file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(dir.path().join("db"))
            .expect("open sled's data file");
        RawSled {
            db,
            kv,
            refs,
            data_file,
            dir,
        }
    }

    /// Inserts the entries in batches of [`RAW_BATCH`], then flushes.
    pub fn bulk_load(&self, entries: Vec<(Vec<u8>, Vec<u8>)>) {
        let mut batch = sled::Batch::default();
        let mut in_batch = 0;
        for (k, v) in entries {
            batch.insert(k, v);
            in_batch += 1;
            if in_batch == RAW_BATCH {
                self.kv
                    .apply_batch(std::mem::take(&mut batch))
                    .expect("apply batch");
                in_batch = 0;
            }
        }
        if in_batch > 0 {
            self.kv.apply_batch(batch).expect("apply batch");
        }
        self.db.flush().expect("flush");
    }

    /// Builds the fixture: the data set and the ref, flushed; prints what
    /// it cost.
    pub fn build(entries: &[(Vec<u8>, Vec<u8>)]) -> Self {
        let raw = RawSled::open();
        let start = Instant::now();
        raw.bulk_load(entries.to_vec());
        raw.refs.insert(REF, &[0u8; 32]).expect("insert");
        raw.db.flush().expect("flush");
        raw.data_file.sync_data().expect("fsync");
        let built = start.elapsed();
        let logical = logical_bytes(entries.len());
        let disk = dir_size(raw.dir.path());
        eprintln!(
            "{TAG} raw_sled/{}: built in {:.3} s; keys+values {:.2} MB, on disk {:.2} MB ({:.2}x)",
            size_label(entries.len()),
            built.as_secs_f64(),
            mb(logical),
            mb(disk),
            disk as f64 / logical as f64
        );
        raw
    }

    /// The number of entries.
    pub fn len(&self) -> u64 {
        self.kv.len() as u64
    }

    /// True if there are no entries.
    pub fn is_empty(&self) -> bool {
        self.kv.is_empty()
    }

    /// Reads every entry once.
    pub fn warm(&self) {
        let mut n = 0u64;
        for item in self.kv.iter() {
            std::hint::black_box(item.expect("scan"));
            n += 1;
        }
        assert_eq!(n, self.len());
    }

    /// A point read of key `i`.
    pub fn get(&self, i: u64) -> Option<sled::IVec> {
        self.kv.get(key(i)).expect("get")
    }

    /// fsyncs sled's data file, as kvgit's durable flush does after sled's
    /// own `flush`.
    pub fn sync_data(&self) {
        self.data_file.sync_data().expect("fsync");
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Closes the database and prints how long dropping it took.
    pub fn close(self) {
        let n = self.len() as usize;
        let RawSled {
            db,
            kv,
            refs,
            data_file,
            dir,
        } = self;
        drop((kv, refs, data_file));
        let start = Instant::now();
        drop(db);
        eprintln!(
            "{TAG} raw_sled/{}: close (drop of the db) took {:.1} ms",
            size_label(n),
            start.elapsed().as_secs_f64() * 1e3
        );
        drop(dir);
    }
}

/// The nearest raw sled equivalent of a single-key commit: insert one
/// random key with a fresh value, compare-and-swap the ref from its current
/// value to a new 32-byte value, then sled's `flush` (what kvgit's eventual
/// barrier does) and, when durable, an fsync of sled's data file (what
/// kvgit's durable barrier adds).
pub struct RawCommitRunner<'a> {
    raw: &'a RawSled,
    durable: bool,
    current: [u8; 32],
    counter: u64,
    rng: XorShift,
}

impl<'a> RawCommitRunner<'a> {
    /// A runner over `raw`.
    pub fn new(raw: &'a RawSled, durable: bool, seed: u64) -> Self {
        let stored = raw.refs.get(REF).expect("get").expect("the ref exists");
        let mut current = [0u8; 32];
        current.copy_from_slice(&stored);
        RawCommitRunner {
            raw,
            durable,
            current,
            counter: 0,
            rng: XorShift::new(seed),
        }
    }

    /// One commit of `key` = `value`.
    pub fn commit(&mut self, key: [u8; KEY_LEN], value: Vec<u8>) {
        self.raw.kv.insert(key, value).expect("insert");
        self.counter += 1;
        let mut next = self.current;
        next[..8].copy_from_slice(&self.counter.to_le_bytes());
        self.raw
            .refs
            .compare_and_swap(REF, Some(&self.current[..]), Some(&next[..]))
            .expect("cas")
            .expect("the ref holds the expected value");
        self.current = next;
        self.raw.db.flush().expect("flush");
        if self.durable {
            self.raw.sync_data();
        }
    }

    /// Raw sled's nearest equivalent of `Branch::update` of key `i`: read
    /// its value, change the first byte, and commit it as
    /// [`RawCommitRunner::commit`] does.
    pub fn update(&mut self, i: u64) {
        let k = key(i);
        let old = self.raw.kv.get(k).expect("get").expect("present");
        let mut new = old.to_vec();
        new[0] = new[0].wrapping_add(1);
        self.commit(k, new);
    }

    /// Runs `iters` updates of random keys and returns the time they took,
    /// leaving out choosing the keys.
    pub fn run_updates(&mut self, iters: u64) -> Duration {
        let mut total = Duration::ZERO;
        let mut left = iters as usize;
        let n = self.raw.len();
        while left > 0 {
            let chunk = left.min(RESET_EVERY);
            let keys: Vec<_> = (0..chunk).map(|_| self.rng.below(n)).collect();
            let start = Instant::now();
            for i in keys {
                self.update(i);
            }
            total += start.elapsed();
            left -= chunk;
        }
        total
    }

    /// Runs `iters` commits and returns the time they took, leaving out
    /// generating their keys and values.
    pub fn run(&mut self, iters: u64) -> Duration {
        let mut total = Duration::ZERO;
        let mut left = iters as usize;
        let n = self.raw.len();
        while left > 0 {
            let chunk = left.min(RESET_EVERY);
            let edits: Vec<_> = (0..chunk)
                .map(|_| (key(self.rng.below(n)), self.rng.value()))
                .collect();
            let start = Instant::now();
            for (k, v) in edits {
                self.commit(k, v);
            }
            total += start.elapsed();
            left -= chunk;
        }
        total
    }
}

/// The stores of one size, each built on first use and closed by
/// [`Fixtures::close`]. Building lazily means that a filtered run
/// (`cargo bench -- get/memory`) builds only what it measures.
pub struct Fixtures {
    /// The number of keys.
    pub n: usize,
    entries: OnceCell<Vec<(Vec<u8>, Vec<u8>)>>,
    memory: OnceCell<KvStore>,
    sled: OnceCell<KvStore>,
    raw: OnceCell<RawSled>,
}

impl Fixtures {
    /// Nothing built yet.
    pub fn new(n: usize) -> Self {
        Fixtures {
            n,
            entries: OnceCell::new(),
            memory: OnceCell::new(),
            sled: OnceCell::new(),
            raw: OnceCell::new(),
        }
    }

    /// The data set.
    pub fn entries(&self) -> &[(Vec<u8>, Vec<u8>)] {
        self.entries.get_or_init(|| entries(self.n))
    }

    /// The kvgit store on `kind` (memory or sled).
    pub fn kv(&self, kind: BackendKind) -> &KvStore {
        let cell = match kind {
            BackendKind::Memory => &self.memory,
            BackendKind::Sled => &self.sled,
            BackendKind::RawSled | BackendKind::Journal => {
                panic!("{} is not a store of the core benchmarks", kind.name())
            }
        };
        cell.get_or_init(|| KvStore::build(kind, self.entries()))
    }

    /// The raw sled store.
    pub fn raw(&self) -> &RawSled {
        self.raw.get_or_init(|| RawSled::build(self.entries()))
    }

    /// Closes every store that was built, printing close times.
    pub fn close(self) {
        let Fixtures {
            memory, sled, raw, ..
        } = self;
        if let Some(store) = memory.into_inner() {
            store.close();
        }
        if let Some(store) = sled.into_inner() {
            store.close();
        }
        if let Some(raw) = raw.into_inner() {
            raw.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_sizes() {
        assert_eq!(&key(42), b"k00000042");
        assert_eq!(&key(99_999_999), b"k99999999");
        assert_eq!(parse_size("10k"), Some(10_000));
        assert_eq!(parse_size(" 1M"), Some(1_000_000));
        assert_eq!(parse_size("2500"), Some(2_500));
        assert_eq!(parse_size("k"), None);
        assert_eq!(parse_size("0"), None);
        assert_eq!(size_label(10_000), "10k");
        assert_eq!(size_label(1_000_000), "1M");
        assert_eq!(size_label(2_500), "2500");
    }

    #[test]
    fn data_is_deterministic_and_sorted() {
        let a = entries(1_000);
        assert_eq!(a, entries(1_000));
        assert!(a.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(a.iter().all(|(_, v)| v.len() == VALUE_LEN));
        let mut rng = XorShift::new(7);
        assert!((0..1_000).all(|_| rng.below(10) < 10));
    }

    #[test]
    fn commit_runner_resets_the_store() {
        let fx = Fixtures::new(2_000);
        let store = fx.kv(BackendKind::Memory);
        let mut count = 0;
        store
            .repo
            .backend()
            .for_each_object(&mut |_, _| {
                count += 1;
                Ok(true)
            })
            .unwrap();
        {
            let mut runner = CommitRunner::new(store, Durability::Eventual, 1);
            runner.run(10);
            assert_ne!(store.repo.get_ref(REF).unwrap(), Some(store.head));
        }
        assert_eq!(store.repo.get_ref(REF).unwrap(), Some(store.head));
        let mut after = 0;
        store
            .repo
            .backend()
            .for_each_object(&mut |_, _| {
                after += 1;
                Ok(true)
            })
            .unwrap();
        assert_eq!(after, count);
        let (a, b) = store.diff_pair(3);
        assert_eq!(diff_count(&store.repo, &a, &b), 10);
        fx.close();
    }
}
