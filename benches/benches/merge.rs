//! kvgit's merge benchmark: `merge_trees` of two trees forked from the
//! N-key tree, 100 distinct changed keys on each side plus 10 counter keys
//! (`ctr/000` .. `ctr/009`) changed on both and merged by `Counter`, on the
//! in-memory and sled backends. Ids `merge/backend/N`; see
//! `benches/README.md`. (Raw sled keeps no versions: no equivalent.)

mod common;

use criterion::Criterion;
use kvgit_benches::merge::MergeCase;
use kvgit_benches::{backends_from_env, sizes_from_env, BackendKind, Fixtures};

use common::{id, small_group, test_mode};

/// Seed of the merge's random choices (the data set has its own).
const MERGE_SEED: u64 = 4;

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let backends = backends_from_env();
    for n in sizes_from_env(test_mode()) {
        let fx = Fixtures::new(n);
        merge(&mut c, &fx, &backends);
        fx.close();
    }
    c.final_summary();
}

/// `merge/*/N`: the three trees are built once (untimed); each iteration is
/// one `merge_trees(base, ours, theirs)`, which writes the merged tree's new
/// nodes (already present after the first iteration, so later puts are
/// no-ops) and returns it. Nodes are cached after the first iteration.
fn merge(c: &mut Criterion, fx: &Fixtures, backends: &[BackendKind]) {
    let mut group = small_group(c, "merge");
    for &kind in backends {
        if kind == BackendKind::RawSled {
            continue;
        }
        let mut case = None;
        group.bench_function(id(kind, fx.n), |b| {
            let store = fx.kv(kind);
            let case = case.get_or_insert_with(|| MergeCase::new(store, MERGE_SEED));
            b.iter(|| case.merge(&store.repo))
        });
    }
    group.finish();
}
