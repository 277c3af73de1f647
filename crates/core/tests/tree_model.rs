//! The prolly tree against a `BTreeMap` model: build, apply, get, range,
//! prefix, len, value bytes and diff; and history independence: applying a
//! batch gives exactly the root id of building the resulting content.

use std::collections::BTreeMap;
use std::ops::Bound;

use kvgit_core::tree::Change;
use kvgit_core::{Repo, Tree};
use proptest::prelude::*;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;
type Batch = Vec<(Vec<u8>, Option<Vec<u8>>)>;
/// (key, old value, new value) for each changed key.
type Diffs = Vec<(Vec<u8>, Option<Vec<u8>>, Option<Vec<u8>>)>;

fn key() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => (0u32..6000).prop_map(|n| format!("k{n:05}").into_bytes()),
        1 => proptest::collection::vec(any::<u8>(), 1..10),
    ]
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        12 => proptest::collection::vec(any::<u8>(), 0..48),
        1 => proptest::collection::vec(any::<u8>(), 257..700),
    ]
}

fn model() -> impl Strategy<Value = Model> {
    prop_oneof![
        1 => proptest::collection::btree_map(key(), value(), 0..40),
        3 => proptest::collection::btree_map(key(), value(), 0..2500),
    ]
}

fn batch() -> impl Strategy<Value = Batch> {
    proptest::collection::vec((key(), proptest::option::weighted(0.7, value())), 0..120)
}

fn apply_model(model: &mut Model, batch: &Batch) {
    for (k, v) in batch {
        match v {
            Some(v) => model.insert(k.clone(), v.clone()),
            None => model.remove(k),
        };
    }
}

fn build(repo: &Repo, model: &Model) -> Tree {
    repo.build_tree(model.iter().map(|(k, v)| (k.clone(), v.clone())))
        .expect("build")
}

/// Checks every read of `tree` against `model`.
fn check_reads(repo: &Repo, tree: &Tree, model: &Model) {
    assert_eq!(tree.len(), model.len() as u64);
    let bytes: u64 = model.values().map(|v| v.len() as u64).sum();
    assert_eq!(tree.value_bytes(), bytes);
    let all: Vec<(Vec<u8>, Vec<u8>)> = repo
        .range(tree, ..)
        .collect::<Result<_, _>>()
        .expect("range");
    let expected: Vec<(Vec<u8>, Vec<u8>)> =
        model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(all, expected);
    for (k, v) in model.iter().step_by(7) {
        assert_eq!(repo.get(tree, k).expect("get").as_ref(), Some(v));
    }
    assert_eq!(
        repo.get(tree, b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff")
            .expect("get"),
        None
    );
}

fn check_range(repo: &Repo, tree: &Tree, model: &Model, lo: &[u8], hi: &[u8], prefix: &[u8]) {
    let got: Vec<Vec<u8>> = repo
        .range(tree, (Bound::Included(lo), Bound::Excluded(hi)))
        .map(|r| r.expect("range").0)
        .collect();
    let want: Vec<Vec<u8>> = if lo < hi {
        model
            .range::<[u8], _>((Bound::Included(lo), Bound::Excluded(hi)))
            .map(|(k, _)| k.clone())
            .collect()
    } else {
        Vec::new()
    };
    assert_eq!(got, want, "range {lo:?}..{hi:?}");
    let got: Vec<Vec<u8>> = repo
        .range(tree, (Bound::Excluded(lo), Bound::Included(hi)))
        .map(|r| r.expect("range").0)
        .collect();
    let want: Vec<Vec<u8>> = if lo < hi {
        model
            .range::<[u8], _>((Bound::Excluded(lo), Bound::Included(hi)))
            .map(|(k, _)| k.clone())
            .collect()
    } else {
        Vec::new()
    };
    assert_eq!(got, want, "range ({lo:?}, {hi:?}]");
    let got: Vec<Vec<u8>> = repo
        .prefix(tree, prefix)
        .map(|r| r.expect("prefix").0)
        .collect();
    let want: Vec<Vec<u8>> = model
        .keys()
        .filter(|k| k.starts_with(prefix))
        .cloned()
        .collect();
    assert_eq!(got, want, "prefix {prefix:?}");
}

/// The model's diff from `a` to `b`, as (key, old, new).
fn model_diff(a: &Model, b: &Model) -> Diffs {
    let mut keys: Vec<&Vec<u8>> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| (k.clone(), a.get(k).cloned(), b.get(k).cloned()))
        .collect()
}

fn tree_diff(repo: &Repo, a: &Tree, b: &Tree) -> Diffs {
    let load = |v: Option<&kvgit_core::Value>| v.map(|v| repo.read_value(v).expect("value"));
    repo.diff(a, b)
        .map(|c| {
            let c: Change = c.expect("diff");
            (c.key().to_vec(), load(c.old()), load(c.new_value()))
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(48),
        ..ProptestConfig::default()
    })]

    #[test]
    fn build_matches_model(m in model()) {
        let repo = Repo::memory();
        let tree = build(&repo, &m);
        check_reads(&repo, &tree, &m);
    }

    #[test]
    fn apply_is_history_independent(m in model(), b in batch()) {
        let repo = Repo::memory();
        let tree = build(&repo, &m);
        let applied = repo.apply(&tree, b.clone()).expect("apply");
        let mut expected = m.clone();
        apply_model(&mut expected, &b);
        let rebuilt = build(&repo, &expected);
        prop_assert_eq!(applied, rebuilt);
        check_reads(&repo, &applied, &expected);
    }

    #[test]
    fn batchings_agree(m in model(), batches in proptest::collection::vec(batch(), 1..5)) {
        let repo = Repo::memory();
        let mut tree = build(&repo, &m);
        let mut expected = m.clone();
        let mut all = Vec::new();
        for b in &batches {
            tree = repo.apply(&tree, b.clone()).expect("apply");
            apply_model(&mut expected, b);
            all.extend(b.iter().cloned());
        }
        // One edit at a time, and everything as one batch, give the same root.
        let one_batch = repo.apply(&build(&repo, &m), all.clone()).expect("apply");
        prop_assert_eq!(tree, one_batch);
        let mut single = build(&repo, &m);
        for edit in all.iter().take(60) {
            single = repo.apply(&single, vec![edit.clone()]).expect("apply");
        }
        let mut partial = m.clone();
        apply_model(&mut partial, &all.iter().take(60).cloned().collect());
        prop_assert_eq!(single, build(&repo, &partial));
        prop_assert_eq!(tree, build(&repo, &expected));
    }

    #[test]
    fn ranges_and_prefixes(m in model(), lo in key(), hi in key(), prefix in proptest::collection::vec(any::<u8>(), 0..3)) {
        let repo = Repo::memory();
        let tree = build(&repo, &m);
        check_range(&repo, &tree, &m, &lo, &hi, &prefix);
        check_range(&repo, &tree, &m, b"k0", b"k02", b"k01");
    }

    #[test]
    fn diff_matches_model(m in model(), b in batch(), other in model()) {
        let repo = Repo::memory();
        let a = build(&repo, &m);
        let mut changed = m.clone();
        apply_model(&mut changed, &b);
        let c = repo.apply(&a, b).expect("apply");
        prop_assert_eq!(tree_diff(&repo, &a, &c), model_diff(&m, &changed));
        prop_assert_eq!(tree_diff(&repo, &c, &a), model_diff(&changed, &m));
        let o = build(&repo, &other);
        prop_assert_eq!(tree_diff(&repo, &a, &o), model_diff(&m, &other));
        prop_assert!(tree_diff(&repo, &a, &a).is_empty());
    }
}

/// A larger, deterministic run: a tree several levels deep, edited in
/// batches of very different sizes, must always equal its rebuild.
#[test]
fn deep_tree_edits_equal_rebuilds() {
    let repo = Repo::memory();
    let mut model: Model = (0..60_000u32)
        .map(|i| (format!("k{i:08}").into_bytes(), vec![(i % 251) as u8; 100]))
        .collect();
    let mut tree = build(&repo, &model);
    assert!(tree.level() >= 2, "level {}", tree.level());
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..24 {
        let size = [1usize, 3, 10, 100, 2000, 20_000][round % 6];
        let mut batch = Vec::with_capacity(size);
        for _ in 0..size {
            let k = format!("k{:08}", next() % 80_000).into_bytes();
            let v = match next() % 4 {
                0 => None,
                1 => Some(vec![(next() % 256) as u8; (next() % 400) as usize]),
                _ => Some(vec![(next() % 256) as u8; 100]),
            };
            batch.push((k, v));
        }
        if round == 11 {
            // Delete a long contiguous run: whole subtrees disappear.
            batch.extend((10_000..40_000u32).map(|i| (format!("k{i:08}").into_bytes(), None)));
        }
        tree = repo.apply(&tree, batch.clone()).expect("apply");
        apply_model(&mut model, &batch);
        let rebuilt = build(&repo, &model);
        assert_eq!(tree, rebuilt, "round {round}");
    }
    check_reads(&repo, &tree, &model);
    // Deleting everything gives the empty tree.
    let all: Batch = model.keys().map(|k| (k.clone(), None)).collect();
    let empty = repo.apply(&tree, all).expect("apply");
    assert_eq!(empty, repo.empty_tree().expect("empty"));
    assert!(empty.is_empty());
}

#[test]
fn single_key_commit_writes_at_most_depth_plus_one_nodes() {
    let repo = Repo::memory();
    let model: Model = (0..50_000u32)
        .map(|i| (format!("k{i:08}").into_bytes(), vec![7u8; 100]))
        .collect();
    let tree = build(&repo, &model);
    let depth = usize::from(tree.level()) + 1;
    let mut worst = 0;
    for i in (0..50_000u32).step_by(997) {
        let (_, written) = repo
            .apply_counted(
                &tree,
                vec![(format!("k{i:08}").into_bytes(), Some(vec![9u8; 100]))],
            )
            .expect("apply");
        worst = worst.max(written);
    }
    // The commit object is the "+1" of DESIGN's depth + 2 bound; a node
    // split may add one more node now and then.
    assert!(
        worst <= depth + 1,
        "wrote {worst} objects for depth {depth}"
    );
}

#[test]
fn unsorted_build_is_an_error() {
    let repo = Repo::memory();
    let err = repo
        .build_tree(vec![(b"b".to_vec(), vec![]), (b"a".to_vec(), vec![])])
        .unwrap_err();
    assert!(
        matches!(err, kvgit_core::Error::Unsorted { index: 1 }),
        "{err}"
    );
    let err = repo.build_tree(vec![(Vec::new(), vec![])]).unwrap_err();
    assert!(matches!(err, kvgit_core::Error::InvalidKey { .. }), "{err}");
    let err = repo
        .apply(
            &repo.empty_tree().unwrap(),
            vec![(vec![0; 5000], Some(vec![]))],
        )
        .unwrap_err();
    assert!(matches!(err, kvgit_core::Error::InvalidKey { .. }), "{err}");
}
