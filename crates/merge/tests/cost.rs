//! The cost of a merge follows the changes, not the tree: counted in node
//! reads, not timed.

use std::sync::Arc;

use kvgit_core::{Repo, Tree};
use kvgit_merge::{merge_trees, tree, Counter, Registry, Strategy};

mod common;

fn key(i: u64) -> Vec<u8> {
    format!("k{i:08}").into_bytes()
}

/// 100 pseudo-random bytes for key `i`, version `v`.
fn value(i: u64, v: u64) -> Vec<u8> {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ v.wrapping_mul(0xD1B5_4A32_D192_ED03);
    (0..100)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}

/// Distinct keys spread over the tree: `n` picks with stride `step`.
fn picks(n: u64, start: u64, step: u64, modulo: u64) -> impl Iterator<Item = u64> {
    (0..n).map(move |j| (start + j * step) % modulo)
}

struct Setup {
    backend: Arc<common::Counting>,
    base: Tree,
    ours: Tree,
    theirs: Tree,
    registry: Registry,
}

/// A tree of `n` keys plus 10 counters, and two branches that each change
/// 100 distinct keys (disjoint between the branches) and all 10 counters.
fn setup(n: u64) -> Setup {
    let backend = Arc::new(common::Counting::default());
    let repo = common::repo_over(&backend, 256 << 20);
    let counters = |v: i64| {
        (0..10u64).map(move |c| {
            (
                format!("ctr/{c:03}").into_bytes(),
                v.to_string().into_bytes(),
            )
        })
    };
    let mut entries: Vec<(Vec<u8>, Vec<u8>)> = counters(100).collect();
    entries.extend((0..n).map(|i| (key(i), value(i, 0))));
    entries.sort();
    let base = repo.build_tree(entries).expect("test setup");
    let edit = |start: u64, v: i64| {
        let mut e: Vec<(Vec<u8>, Option<Vec<u8>>)> = picks(100, start, 7919, n)
            .map(|i| (key(i), Some(value(i, start + 1))))
            .collect();
        e.extend(counters(v).map(|(k, v)| (k, Some(v))));
        repo.apply(&base, e).expect("test setup")
    };
    let ours = edit(0, 115);
    let theirs = edit(3, 120);
    let registry = Registry::new();
    registry.set_prefix("ctr/", Counter);
    Setup {
        backend,
        base,
        ours,
        theirs,
        registry,
    }
}

/// Node reads of a full scan and of the merge, each on a cold repo.
fn measure(s: &Setup, cache_bytes: usize) -> (u64, u64, Tree) {
    let cold = common::repo_over(&s.backend, cache_bytes);
    let before = s.backend.reads();
    let scanned = cold.range_raw(&s.base, ..).count();
    assert_eq!(scanned as u64, s.base.len());
    let scan = s.backend.reads() - before;

    let cold = common::repo_over(&s.backend, cache_bytes);
    let before = s.backend.reads();
    let out = merge_trees(
        &cold,
        &s.base,
        &s.ours,
        &s.theirs,
        &s.registry,
        &tree::Options::default(),
    )
    .expect("test setup");
    let merge = s.backend.reads() - before;
    assert_eq!(out.strategy, Strategy::ThreeWay);
    assert_eq!(out.resolved.len(), 10);
    assert_eq!(out.from_theirs.len(), 100);
    (scan, merge, out.tree)
}

#[test]
fn merge_reads_only_the_changed_paths() {
    let s = setup(50_000);
    let repo = Repo::new(s.backend.clone(), kvgit_core::RepoOptions::default());
    // With a cache (each node read once) and without (every visit reads).
    let (scan, merge, merged) = measure(&s, 256 << 20);
    let (_, merge_uncached, _) = measure(&s, 0);
    eprintln!(
        "50k keys, {} levels: full scan reads {scan} nodes; merge of 2 x 100 changes + 10 counters reads {merge} ({merge_uncached} without cache)",
        s.base.level() + 1
    );
    // 220 changed keys touch at most 220 leaves of each of base, ours and
    // theirs, plus their internal nodes: far fewer than the tree holds.
    assert!(merge * 3 < scan, "merge read {merge} nodes of {scan}");
    assert!(merge <= 3 * 220 + 100, "merge read {merge} nodes");
    assert_eq!(
        repo.get(&merged, b"ctr/000").unwrap(),
        Some(b"135".to_vec())
    );
}

#[test]
fn merge_reads_grow_with_changes_not_with_size() {
    // The same 2 x 100 changes over 10x more keys read about the same
    // number of nodes (one level more at most), not 10x more.
    let small = measure(&setup(20_000), 256 << 20).1;
    let large = measure(&setup(200_000), 256 << 20).1;
    eprintln!("merge node reads: {small} at 20k keys, {large} at 200k keys");
    assert!(large < small * 2, "{small} at 20k, {large} at 200k");
}
