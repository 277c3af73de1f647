//! The garbage-collection workloads (kvgit-gc): the sweep of a store with
//! 1,000 commits on 10 branches, and the high/low-water rebase of the
//! N-key branch.

use std::time::Instant;

use kvgit_core::{CasOutcome, CommitSpec, ObjectId};
use kvgit_gc::{
    rebase, sweep, AccessOptions, AccessTracker, RebaseOptions, RebaseReport, SweepOptions,
    SweepReport, Watermarks,
};

use crate::facade::BRANCH;
use crate::{key, size_label, KvStore, XorShift, REF, TAG};

/// Branches the sweep's store has besides `main`.
pub const SWEEP_BRANCHES: usize = 10;

/// Single-key commits on each of them (1,000 in all).
pub const SWEEP_COMMITS_PER_BRANCH: usize = 100;

/// The share of the branch's value bytes a rebase drops, in percent.
pub const REBASE_DROP_PERCENT: u64 = 10;

/// The sweep's store: `main` plus [`SWEEP_BRANCHES`] branches `gc-<i>`
/// forked from it, each with [`SWEEP_COMMITS_PER_BRANCH`] single-key
/// commits.
pub struct SweepCase {
    /// Objects one sweep marks (every object of the store is reachable).
    pub marked: u64,
}

impl SweepCase {
    /// Makes the branches and commits through `store`'s repo, then sweeps
    /// once (untimed) to count what is reachable.
    pub fn new(store: &KvStore, seed: u64) -> Self {
        let repo = &store.repo;
        let mut rng = XorShift::new(seed);
        let start = Instant::now();
        for b in 0..SWEEP_BRANCHES {
            let name = format!("heads/gc-{b}");
            let mut head = store.head;
            let mut tree = store.tree;
            let outcome = repo
                .backend()
                .cas_ref(&name, None, Some(&head))
                .expect("cas");
            assert_eq!(outcome, CasOutcome::Swapped, "{name} exists already");
            for _ in 0..SWEEP_COMMITS_PER_BRANCH {
                let _fence = repo.write_fence();
                let i = rng.below(store.len());
                tree = repo
                    .apply(&tree, [(key(i).to_vec(), Some(rng.value()))])
                    .expect("apply");
                let spec = CommitSpec {
                    parents: vec![head],
                    message: "bench sweep".into(),
                    ..CommitSpec::default()
                };
                let (id, outcome) = repo
                    .commit(&name, Some(&head), &tree, &spec)
                    .expect("commit");
                assert_eq!(outcome, CasOutcome::Swapped);
                head = id;
            }
        }
        let made = start.elapsed();
        let report = sweep(repo, &SweepOptions::default()).expect("sweep");
        eprintln!(
            "{TAG} sweep/{}/{}: {} commits on {SWEEP_BRANCHES} branches made in {:.3} s; \
             the first sweep marked {} objects ({:.2} MB) and freed {}",
            store.kind.name(),
            size_label(store.len() as usize),
            SWEEP_BRANCHES * SWEEP_COMMITS_PER_BRANCH,
            made.as_secs_f64(),
            report.objects_marked,
            report.bytes_marked as f64 / 1e6,
            report.objects_freed
        );
        SweepCase {
            marked: report.objects_marked,
        }
    }

    /// One sweep; checks that it marked everything and freed nothing.
    pub fn sweep(&self, store: &KvStore) -> SweepReport {
        let report = sweep(&store.repo, &SweepOptions::default()).expect("sweep");
        assert_eq!(report.objects_marked, self.marked);
        assert_eq!(report.objects_freed, 0);
        report
    }
}

/// The rebase of `main` on a store whose every key was touched once, in a
/// pseudo-random order, with the high water just under the branch's value
/// bytes and the low water [`REBASE_DROP_PERCENT`] under them: a rebase
/// drops the coldest 10% of the bytes and commits the other 90% as a fresh
/// root commit. [`RebaseCase::reset`] moves `main` back (untimed).
pub struct RebaseCase {
    access: AccessTracker,
    watermarks: Watermarks,
    options: RebaseOptions,
}

impl RebaseCase {
    /// Touches every key of `store` once (in a pseudo-random order) and
    /// sets the water marks.
    pub fn new(store: &KvStore, seed: u64) -> Self {
        let access =
            AccessTracker::open(&store.repo, AccessOptions::default()).expect("access tracker");
        let n = store.len();
        let mut order: Vec<u64> = (0..n).collect();
        let mut rng = XorShift::new(seed);
        for i in (1..order.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            order.swap(i, j);
        }
        let start = Instant::now();
        for chunk in order.chunks(4096) {
            let keys: Vec<_> = chunk.iter().map(|&i| key(i)).collect();
            access
                .touch_many(BRANCH, keys.iter().map(|k| &k[..]))
                .expect("touch");
        }
        access.flush().expect("flush access");
        let bytes = store.tree.value_bytes();
        let watermarks = Watermarks::with_low(bytes - 1, bytes - bytes * REBASE_DROP_PERCENT / 100)
            .expect("water marks");
        eprintln!(
            "{TAG} rebase/{}/{}: every key touched in {:.3} s; high water {}, low water {}",
            store.kind.name(),
            size_label(n as usize),
            start.elapsed().as_secs_f64(),
            watermarks.high(),
            watermarks.low()
        );
        RebaseCase {
            access,
            watermarks,
            options: RebaseOptions::default(),
        }
    }

    /// Moves `main` back to the store's head (from wherever a rebase left
    /// it).
    pub fn reset(&self, store: &KvStore) {
        let current: ObjectId = store.repo.get_ref(REF).expect("ref").expect("main exists");
        if current != store.head {
            let outcome = store
                .repo
                .backend()
                .cas_ref(REF, Some(&current), Some(&store.head))
                .expect("cas");
            assert_eq!(outcome, CasOutcome::Swapped);
        }
    }

    /// One rebase of `main`; checks that it dropped about 10% of the bytes.
    pub fn rebase(&self, store: &KvStore) -> RebaseReport {
        let report = rebase(
            &store.repo,
            BRANCH,
            &self.watermarks,
            &self.access,
            &self.options,
        )
        .expect("rebase");
        assert!(report.performed(), "{report:?}");
        assert!(report.bytes_after <= self.watermarks.low());
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BackendKind, Fixtures};

    #[test]
    fn sweep_and_rebase_cases_run() {
        let fx = Fixtures::new(2_000);
        let store = fx.kv(BackendKind::Memory);
        let sweep_case = SweepCase::new(store, 1);
        assert!(sweep_case.marked > (SWEEP_BRANCHES * SWEEP_COMMITS_PER_BRANCH) as u64);
        sweep_case.sweep(store);
        let rebase_case = RebaseCase::new(store, 2);
        for _ in 0..2 {
            rebase_case.reset(store);
            let report = rebase_case.rebase(store);
            assert_eq!(report.dropped.len(), 200);
        }
        rebase_case.reset(store);
        fx.close();
    }
}
