//! Workloads through the `kvgit` facade (`Db`, `Branch`, `Transaction`):
//! a durable single-key commit beside raw sled writing the same objects,
//! group commit across threads, and `Branch::update` in eventual mode.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use kvgit::{Branch, Db, Durability};
use kvgit_core::Backend;

use crate::baseline::Baseline;
use crate::{key, size_label, KvStore, RawSled, XorShift, KEY_LEN, REF, RESET_EVERY, TAG};

/// The facade's name of [`REF`].
pub const BRANCH: &str = "main";

/// A `Db` over `store`'s backend (sharing the objects and refs, with its
/// own node cache) with the default options (access recency tracked, no
/// water marks) but `durability`.
pub fn db_over(store: &KvStore, durability: Durability) -> Db {
    Db::builder()
        .durability(durability)
        .backend(store.repo.backend().clone())
        .expect("open a Db over the store's backend")
}

fn backend(db: &Db) -> &Arc<dyn Backend> {
    kvgit::advanced::repo(db).backend()
}

/// What one single-key commit writes, as observed on a kvgit store.
#[derive(Clone, Debug)]
pub struct CommitShape {
    /// Tree nodes (and blobs) written per commit.
    pub nodes: usize,
    /// Their mean size in bytes.
    pub node_bytes: usize,
    /// The commit object's mean size in bytes.
    pub commit_bytes: usize,
}

/// Single-key commits through the facade: `Branch::put` of one random key
/// to a fresh 100-byte value on branch `main` (a transaction on the head,
/// `Repo::apply`, the commit object, the ref's compare-and-swap, then the
/// durability barrier). Each commit builds on the previous one; the store
/// goes back to its base every [`RESET_EVERY`] commits, untimed.
pub struct FacadeCommitRunner<'a> {
    store: &'a KvStore,
    db: Db,
    branch: Branch,
    baseline: Baseline,
    rng: XorShift,
    since_reset: usize,
}

impl<'a> FacadeCommitRunner<'a> {
    /// A runner over `store` whose commits wait for `durability`.
    pub fn new(store: &'a KvStore, durability: Durability, seed: u64) -> Self {
        let db = db_over(store, durability);
        let branch = db.get_branch(BRANCH).expect("branch").expect("main exists");
        assert_eq!(branch.head().expect("head"), store.head);
        let baseline = Baseline::capture(backend(&db));
        FacadeCommitRunner {
            store,
            db,
            branch,
            baseline,
            rng: XorShift::new(seed),
            since_reset: 0,
        }
    }

    fn edit(&mut self) -> ([u8; KEY_LEN], Vec<u8>) {
        (key(self.rng.below(self.store.len())), self.rng.value())
    }

    /// Makes `commits` commits (untimed) and reports what they wrote on
    /// average; then puts the store back.
    pub fn probe(&mut self, commits: usize) -> CommitShape {
        self.reset();
        let mut heads = Vec::new();
        for _ in 0..commits {
            let (k, v) = self.edit();
            heads.push(self.branch.put(k, v).expect("put"));
        }
        let new = self.baseline.new_objects(backend(&self.db));
        let (mut nodes, mut node_bytes, mut commit_bytes) = (0usize, 0u64, 0u64);
        for (id, size) in &new {
            if heads.contains(id) {
                commit_bytes += size;
            } else {
                nodes += 1;
                node_bytes += size;
            }
        }
        self.since_reset = commits;
        self.reset();
        let shape = CommitShape {
            nodes: (nodes as f64 / commits as f64).round() as usize,
            node_bytes: (node_bytes / nodes.max(1) as u64) as usize,
            commit_bytes: (commit_bytes / commits as u64) as usize,
        };
        eprintln!(
            "{TAG} facade {}/{}: a single-key commit writes {:.2} nodes of {} bytes on average and a commit of {} bytes",
            self.store.kind.name(),
            size_label(self.store.len() as usize),
            nodes as f64 / commits as f64,
            shape.node_bytes,
            shape.commit_bytes
        );
        shape
    }

    /// Runs `iters` commits and returns the time they took, leaving out
    /// generating keys and values and the periodic resets.
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
                self.branch.put(k, v).expect("put");
            }
            total += start.elapsed();
            self.since_reset += chunk;
            left -= chunk;
        }
        total
    }

    /// Puts the store back to its base state.
    pub fn reset(&mut self) {
        if self.since_reset > 0 {
            self.baseline.restore(
                backend(&self.db),
                &[kvgit::advanced::repo(&self.db), &self.store.repo],
            );
            self.since_reset = 0;
        }
    }
}

impl Drop for FacadeCommitRunner<'_> {
    fn drop(&mut self) {
        self.reset();
    }
}

/// Raw sled writing what a kvgit single-key commit writes: the
/// [`CommitShape`]'s nodes (fresh pseudo-random bytes under fresh 32-byte
/// keys) as one `Batch` into the data tree, the commit object as one more
/// `insert`, a compare-and-swap of the 32-byte ref, then sled's `flush()`
/// and, when durable, an fsync of sled's data file: kvgit's write path
/// without the tree logic. The keys written are removed every
/// [`RESET_EVERY`] commits and when the runner is dropped, untimed.
pub struct RawObjectsCommitRunner<'a> {
    raw: &'a RawSled,
    shape: CommitShape,
    durable: bool,
    current: [u8; 32],
    written: Vec<[u8; 32]>,
    rng: XorShift,
}

type RawCommit = (Vec<([u8; 32], Vec<u8>)>, [u8; 32], Vec<u8>);

impl<'a> RawObjectsCommitRunner<'a> {
    /// A runner over `raw` writing `shape`'s objects per commit.
    pub fn new(raw: &'a RawSled, shape: CommitShape, durable: bool, seed: u64) -> Self {
        let stored = raw.refs.get(REF).expect("get").expect("the ref exists");
        let mut current = [0u8; 32];
        current.copy_from_slice(&stored);
        RawObjectsCommitRunner {
            raw,
            shape,
            durable,
            current,
            written: Vec::new(),
            rng: XorShift::new(seed),
        }
    }

    fn id(&mut self) -> [u8; 32] {
        let mut id = [0u8; 32];
        self.rng.fill(&mut id);
        id
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut v = vec![0; len];
        self.rng.fill(&mut v);
        v
    }

    fn prepare(&mut self) -> RawCommit {
        let nodes = (0..self.shape.nodes)
            .map(|_| (self.id(), self.bytes(self.shape.node_bytes)))
            .collect();
        let commit_id = self.id();
        (nodes, commit_id, self.bytes(self.shape.commit_bytes))
    }

    fn commit(&mut self, (nodes, commit_id, commit): RawCommit) {
        let mut batch = sled::Batch::default();
        for (id, bytes) in nodes {
            batch.insert(&id[..], bytes);
            self.written.push(id);
        }
        self.raw.kv.apply_batch(batch).expect("apply batch");
        self.raw.kv.insert(commit_id, commit).expect("insert");
        self.written.push(commit_id);
        self.raw
            .refs
            .compare_and_swap(REF, Some(&self.current[..]), Some(&commit_id[..]))
            .expect("cas")
            .expect("the ref holds the expected value");
        self.current = commit_id;
        self.raw.db.flush().expect("flush");
        if self.durable {
            self.raw.sync_data();
        }
    }

    /// Runs `iters` commits and returns the time they took, leaving out
    /// generating their bytes and the periodic removals.
    pub fn run(&mut self, iters: u64) -> Duration {
        let mut total = Duration::ZERO;
        let mut left = iters as usize;
        while left > 0 {
            let chunk = left.min(RESET_EVERY);
            let commits: Vec<_> = (0..chunk).map(|_| self.prepare()).collect();
            let start = Instant::now();
            for c in commits {
                self.commit(c);
            }
            total += start.elapsed();
            left -= chunk;
            self.reset();
        }
        total
    }

    /// Removes the keys written so far.
    pub fn reset(&mut self) {
        if self.written.is_empty() {
            return;
        }
        let mut batch = sled::Batch::default();
        for id in self.written.drain(..) {
            batch.remove(&id[..]);
        }
        self.raw.kv.apply_batch(batch).expect("apply batch");
    }
}

impl Drop for RawObjectsCommitRunner<'_> {
    fn drop(&mut self) {
        self.reset();
    }
}

/// Group commit: durable single-key commits (`Branch::put`) by several
/// threads at once, each on a branch of its own forked from `main`. One
/// iteration is one commit, whichever thread makes it, so the mean time is
/// wall time per commit and the throughput is commits per second.
pub struct GroupCommit<'a> {
    store: &'a KvStore,
    db: Db,
    branches: Vec<Branch>,
    baseline: Baseline,
    rng: XorShift,
    since_reset: usize,
}

impl<'a> GroupCommit<'a> {
    /// Forks `max_threads` branches `bench-g<i>` from `main` on a durable
    /// `Db` over `store`.
    pub fn new(store: &'a KvStore, max_threads: usize, seed: u64) -> Self {
        let db = db_over(store, Durability::Durable);
        let main = db.get_branch(BRANCH).expect("branch").expect("main exists");
        let branches = (0..max_threads)
            .map(|i| main.fork(&format!("bench-g{i}")).expect("fork"))
            .collect();
        let baseline = Baseline::capture(backend(&db));
        GroupCommit {
            store,
            db,
            branches,
            baseline,
            rng: XorShift::new(seed),
            since_reset: 0,
        }
    }

    /// `iters` commits spread evenly over `threads` threads (each making
    /// `ceil(iters / threads)`); returns the wall time from the moment all
    /// threads are released until the last one is done, scaled to `iters`
    /// commits. Spawning the threads and generating the data are untimed.
    pub fn run(&mut self, threads: usize, iters: u64) -> Duration {
        assert!(threads >= 1 && threads <= self.branches.len());
        let mut total = Duration::ZERO;
        let mut left = iters as usize;
        while left > 0 {
            if self.since_reset >= RESET_EVERY {
                self.reset();
            }
            let chunk = left.min(RESET_EVERY - self.since_reset);
            let per_thread = chunk.div_ceil(threads);
            let n = self.store.len();
            let work: Vec<Vec<_>> = (0..threads)
                .map(|_| {
                    (0..per_thread)
                        .map(|_| (key(self.rng.below(n)), self.rng.value()))
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
                let start = Instant::now();
                // Returning joins every thread first: the scope ends after
                // the last commit.
                start
            })
            .elapsed();
            let made = per_thread * threads;
            total += elapsed.mul_f64(chunk as f64 / made as f64);
            self.since_reset += made;
            left -= chunk;
        }
        total
    }

    /// Puts the store back to its base state (the branches at `main`).
    pub fn reset(&mut self) {
        if self.since_reset > 0 {
            self.baseline.restore(
                backend(&self.db),
                &[kvgit::advanced::repo(&self.db), &self.store.repo],
            );
            self.since_reset = 0;
        }
    }
}

impl Drop for GroupCommit<'_> {
    fn drop(&mut self) {
        self.reset();
        for branch in self.branches.drain(..) {
            branch.delete_branch().expect("delete branch");
        }
    }
}

/// `Branch::update` of one random key on `main` in eventual mode: the
/// closure reads the key's value, changes its first byte, and puts it back;
/// `update` commits (one attempt: nothing else writes). The store goes
/// back to its base every [`RESET_EVERY`] updates, untimed.
pub struct UpdateRunner<'a> {
    store: &'a KvStore,
    db: Db,
    branch: Branch,
    baseline: Baseline,
    rng: XorShift,
    since_reset: usize,
}

impl<'a> UpdateRunner<'a> {
    /// A runner over `store` in [`Durability::Eventual`] mode.
    pub fn new(store: &'a KvStore, seed: u64) -> Self {
        let db = db_over(store, Durability::Eventual);
        let branch = db.get_branch(BRANCH).expect("branch").expect("main exists");
        let baseline = Baseline::capture(backend(&db));
        UpdateRunner {
            store,
            db,
            branch,
            baseline,
            rng: XorShift::new(seed),
            since_reset: 0,
        }
    }

    /// One update of key `k`; returns the value it read.
    pub fn update(&self, k: &[u8]) -> Vec<u8> {
        self.branch
            .update(|tx| {
                let old = tx.get(k)?.expect("every key is present");
                let mut new = old.clone();
                new[0] = new[0].wrapping_add(1);
                tx.put(k, new);
                Ok::<_, kvgit::Error>(old)
            })
            .expect("update")
    }

    /// Runs `iters` updates and returns the time they took, leaving out
    /// choosing the keys and the periodic resets.
    pub fn run(&mut self, iters: u64) -> Duration {
        let mut total = Duration::ZERO;
        let mut left = iters as usize;
        while left > 0 {
            if self.since_reset >= RESET_EVERY {
                self.reset();
            }
            let chunk = left.min(RESET_EVERY - self.since_reset);
            let n = self.store.len();
            let keys: Vec<_> = (0..chunk).map(|_| key(self.rng.below(n))).collect();
            let start = Instant::now();
            for k in &keys {
                std::hint::black_box(self.update(k));
            }
            total += start.elapsed();
            self.since_reset += chunk;
            left -= chunk;
        }
        total
    }

    /// Puts the store back to its base state.
    pub fn reset(&mut self) {
        if self.since_reset > 0 {
            self.baseline.restore(
                backend(&self.db),
                &[kvgit::advanced::repo(&self.db), &self.store.repo],
            );
            self.since_reset = 0;
        }
    }
}

impl Drop for UpdateRunner<'_> {
    fn drop(&mut self) {
        self.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BackendKind, Fixtures};

    fn object_count(store: &KvStore) -> usize {
        let mut n = 0;
        store
            .repo
            .backend()
            .for_each_object(&mut |_, _| {
                n += 1;
                Ok(true)
            })
            .unwrap();
        n
    }

    #[test]
    fn runners_put_the_store_back() {
        let fx = Fixtures::new(2_000);
        let store = fx.kv(BackendKind::Memory);
        let objects = object_count(store);
        {
            let mut runner = FacadeCommitRunner::new(store, Durability::Eventual, 1);
            let shape = runner.probe(4);
            assert!(shape.nodes >= 1 && shape.node_bytes > 0 && shape.commit_bytes > 0);
            runner.run(5);
            assert_ne!(store.repo.get_ref(REF).unwrap(), Some(store.head));
        }
        {
            let mut runner = UpdateRunner::new(store, 2);
            let k = key(7);
            let before = store.get(7).unwrap();
            assert_eq!(runner.update(&k), before);
            let after = runner.db.get_branch(BRANCH).unwrap().unwrap().get(k);
            assert_eq!(after.unwrap().unwrap()[0], before[0].wrapping_add(1));
            runner.since_reset = 1;
            runner.run(5);
        }
        {
            let mut group = GroupCommit::new(store, 4, 3);
            group.run(4, 9);
            group.run(1, 2);
            assert_eq!(store.repo.backend().list_refs("").unwrap().len(), 5);
        }
        assert_eq!(store.repo.get_ref(REF).unwrap(), Some(store.head));
        assert_eq!(store.repo.backend().list_refs("").unwrap().len(), 1);
        assert_eq!(object_count(store), objects);
        fx.close();
    }
}
