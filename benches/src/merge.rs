//! The merge workload: a three-way merge of two trees forked from the
//! N-key tree, each with 100 distinct changed keys, plus 10 counter keys
//! changed on both sides and merged by [`Counter`].

use std::collections::HashSet;

use kvgit_core::{Repo, Tree};
use kvgit_merge::{merge_trees, tree, Counter, Outcome, Registry, Strategy};

use crate::{key, KvStore, XorShift, TAG};

/// Keys changed on each side only.
pub const MERGE_SIDE_KEYS: usize = 100;

/// Counter keys changed on both sides (`ctr/000` .. `ctr/009`).
pub const COUNTERS: usize = 10;

/// The counters' value in the base.
const COUNTER_BASE: i64 = 1_000;

/// The counter key `i`: `ctr/` and 3 digits.
pub fn counter_key(i: usize) -> Vec<u8> {
    format!("ctr/{i:03}").into_bytes()
}

/// The three trees of the merge workload and the registry it merges with.
pub struct MergeCase {
    /// The base: the N-key tree plus the counters.
    pub base: Tree,
    /// Ours: 100 keys changed, every counter increased by `i + 1`.
    pub ours: Tree,
    /// Theirs: 100 other keys changed, every counter increased by
    /// `2 * (i + 1)`.
    pub theirs: Tree,
    /// [`Counter`] on the prefix `ctr/`.
    pub registry: Registry,
    options: tree::Options,
}

impl MergeCase {
    /// Builds the trees on `store` (their objects are written to its
    /// backend) and checks one merge of them.
    pub fn new(store: &KvStore, seed: u64) -> Self {
        let repo = &store.repo;
        let counters = |delta: i64| -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
            (0..COUNTERS)
                .map(|i| {
                    let v = COUNTER_BASE + delta * (i as i64 + 1);
                    (counter_key(i), Some(v.to_string().into_bytes()))
                })
                .collect()
        };
        let base = repo.apply(&store.tree, counters(0)).expect("apply");
        let mut rng = XorShift::new(seed);
        let mut picked = HashSet::new();
        let mut order = Vec::new();
        while order.len() < 2 * MERGE_SIDE_KEYS {
            let i = rng.below(store.len());
            if picked.insert(i) {
                order.push(i);
            }
        }
        let mut side = |keys: &[u64], delta: i64| {
            let mut edits = counters(delta);
            edits.extend(keys.iter().map(|&i| (key(i).to_vec(), Some(rng.value()))));
            repo.apply(&base, edits).expect("apply")
        };
        let ours = side(&order[..MERGE_SIDE_KEYS], 1);
        let theirs = side(&order[MERGE_SIDE_KEYS..], 2);
        let registry = Registry::new();
        registry.set_prefix("ctr/", Counter);
        let case = MergeCase {
            base,
            ours,
            theirs,
            registry,
            options: tree::Options::default(),
        };
        let outcome = case.merge(repo);
        assert_eq!(outcome.strategy, Strategy::ThreeWay);
        assert_eq!(outcome.tree.len(), base.len());
        for i in 0..COUNTERS {
            let want = COUNTER_BASE + 3 * (i as i64 + 1);
            let got = repo.get(&outcome.tree, &counter_key(i)).expect("get");
            assert_eq!(got, Some(want.to_string().into_bytes()));
        }
        for (keys, side) in [
            (&order[..MERGE_SIDE_KEYS], &ours),
            (&order[MERGE_SIDE_KEYS..], &theirs),
        ] {
            for &i in keys {
                let got = repo.get(&outcome.tree, &key(i)).expect("get");
                assert_eq!(got, repo.get(side, &key(i)).expect("get"));
            }
        }
        eprintln!(
            "{TAG} merge/{}/{}: {} keys resolved by the counter, {} taken from theirs",
            store.kind.name(),
            crate::size_label(store.len() as usize),
            outcome.resolved.len(),
            outcome.from_theirs.len()
        );
        case
    }

    /// `merge_trees(base, ours, theirs)`; checks that the 10 counters went
    /// to the merge function.
    pub fn merge(&self, repo: &Repo) -> Outcome {
        let outcome = merge_trees(
            repo,
            &self.base,
            &self.ours,
            &self.theirs,
            &self.registry,
            &self.options,
        )
        .expect("merge");
        assert_eq!(outcome.resolved.len(), COUNTERS);
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BackendKind, Fixtures};

    #[test]
    fn merge_case_merges_counters_and_both_sides() {
        let fx = Fixtures::new(2_000);
        let store = fx.kv(BackendKind::Memory);
        // `new` checks every changed key and counter of one merge.
        let case = MergeCase::new(store, 1);
        let outcome = case.merge(&store.repo);
        assert_eq!(outcome.tree.len(), 2_000 + COUNTERS as u64);
        assert_eq!(counter_key(3), b"ctr/003");
        fx.close();
    }
}
