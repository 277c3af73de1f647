//! The history workload: walk 1,000 commits of first-parent history.

use std::hint::black_box;
use std::time::Instant;

use kvgit_core::{CasOutcome, CommitSpec, ObjectId, Repo};

use crate::{key, size_label, KvStore, RawSled, XorShift, TAG};

/// Commits walked per iteration (and made on the history branch).
pub const HISTORY_COMMITS: usize = 1_000;

/// The branch the history workload commits to.
pub const HISTORY_REF: &str = "heads/history";

/// A branch of [`HISTORY_COMMITS`] single-key commits on top of a store's
/// N-key head.
pub struct HistoryCase {
    /// The last commit.
    pub head: ObjectId,
}

impl HistoryCase {
    /// Makes the commits on [`HISTORY_REF`] (starting at the store's head)
    /// through the store's repo, and prints what it took.
    pub fn new(store: &KvStore, seed: u64) -> Self {
        let repo = &store.repo;
        let mut rng = XorShift::new(seed);
        let mut tree = store.tree;
        let mut head = store.head;
        let outcome = repo
            .backend()
            .cas_ref(HISTORY_REF, None, Some(&head))
            .expect("cas");
        assert_eq!(outcome, CasOutcome::Swapped, "{HISTORY_REF} exists already");
        let start = Instant::now();
        for _ in 0..HISTORY_COMMITS {
            let i = rng.below(store.len());
            tree = repo
                .apply(&tree, [(key(i).to_vec(), Some(rng.value()))])
                .expect("apply");
            let spec = CommitSpec {
                parents: vec![head],
                message: "bench history".into(),
                ..CommitSpec::default()
            };
            let (id, outcome) = repo
                .commit(HISTORY_REF, Some(&head), &tree, &spec)
                .expect("commit");
            assert_eq!(outcome, CasOutcome::Swapped);
            head = id;
        }
        eprintln!(
            "{TAG} history/{}/{}: {HISTORY_COMMITS} commits made in {:.3} s",
            store.kind.name(),
            size_label(store.len() as usize),
            start.elapsed().as_secs_f64()
        );
        HistoryCase { head }
    }

    /// Walks [`HISTORY_COMMITS`] commits of first-parent history from the
    /// head, reading (decoding, or taking from the commit cache) each
    /// commit; returns how many.
    pub fn walk(&self, repo: &Repo) -> usize {
        let mut n = 0;
        for item in repo.first_parent_log(self.head).take(HISTORY_COMMITS) {
            black_box(item.expect("history"));
            n += 1;
        }
        n
    }
}

/// Raw sled's nearest equivalent of a history walk: [`HISTORY_COMMITS`]
/// point reads one after another (`Tree::get`), of keys at pseudo-random
/// positions (a commit's parent is named by a hash, so the commits of a
/// chain lie scattered through kvgit's `objects` tree). The keys are chosen
/// once.
pub struct RawHistoryCase {
    keys: Vec<[u8; crate::KEY_LEN]>,
}

impl RawHistoryCase {
    /// Chooses the keys.
    pub fn new(raw: &RawSled, seed: u64) -> Self {
        let mut rng = XorShift::new(seed);
        let n = raw.len();
        RawHistoryCase {
            keys: (0..HISTORY_COMMITS).map(|_| key(rng.below(n))).collect(),
        }
    }

    /// Reads the keys in turn; returns how many were present.
    pub fn walk(&self, raw: &RawSled) -> usize {
        let mut n = 0;
        for k in &self.keys {
            if black_box(raw.kv.get(k).expect("get")).is_some() {
                n += 1;
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BackendKind, Fixtures};

    #[test]
    fn history_walks_its_commits() {
        let fx = Fixtures::new(2_000);
        let store = fx.kv(BackendKind::Memory);
        let case = HistoryCase::new(store, 1);
        assert_eq!(case.walk(&store.repo), HISTORY_COMMITS);
        let cold = store.repo_with(kvgit_core::Durability::Eventual);
        assert_eq!(case.walk(&cold), HISTORY_COMMITS);
        let raw = RawHistoryCase::new(fx.raw(), 1);
        assert_eq!(raw.walk(fx.raw()), HISTORY_COMMITS);
        fx.close();
    }
}
