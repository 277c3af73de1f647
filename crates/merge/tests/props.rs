//! Property tests of the three-way merge against a `BTreeMap` model.

use std::collections::{BTreeMap, BTreeSet};

use kvgit_core::{Repo, Tree};
use kvgit_merge::{merge_trees, tree, Counter, LastWriterWins, Registry, Strategy as How};
use proptest::prelude::*;

mod common;

type Map = BTreeMap<Vec<u8>, Vec<u8>>;
type Edits = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

fn key(i: u16) -> Vec<u8> {
    format!("k{i:05}").into_bytes()
}

/// Values short and long (over the inline limit, so blobs are exercised).
fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => prop::collection::vec(any::<u8>(), 0..8),
        1 => (any::<u8>(), 257usize..400).prop_map(|(b, n)| vec![b; n]),
    ]
}

fn map(max_key: u16, max_len: usize) -> impl Strategy<Value = Map> {
    prop::collection::btree_map((0..max_key).prop_map(key), value(), 0..max_len)
}

fn edits(max_key: u16, max_len: usize) -> impl Strategy<Value = Edits> {
    prop::collection::btree_map(
        (0..max_key).prop_map(key),
        prop::option::of(value()),
        0..max_len,
    )
}

fn model_apply(base: &Map, edits: &Edits) -> Map {
    let mut m = base.clone();
    for (k, v) in edits {
        match v {
            Some(v) => m.insert(k.clone(), v.clone()),
            None => m.remove(k),
        };
    }
    m
}

fn tree_of(repo: &Repo, m: &Map) -> Tree {
    repo.build_tree(m.clone()).expect("build")
}

fn apply(repo: &Repo, base: &Tree, e: &Edits) -> Tree {
    repo.apply(base, e.clone()).expect("apply")
}

fn merge(
    repo: &Repo,
    base: &Tree,
    ours: &Tree,
    theirs: &Tree,
    registry: &Registry,
) -> kvgit_merge::Outcome {
    merge_trees(
        repo,
        base,
        ours,
        theirs,
        registry,
        &tree::Options::default(),
    )
    .expect("merge")
}

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(common::cases(64))
}

proptest! {
    #![proptest_config(config())]

    /// Changes to disjoint keys merge to the union of the changes.
    #[test]
    fn disjoint_changes_merge_to_the_union(
        base in map(600, 400),
        e1 in edits(600, 60),
        e2 in edits(600, 60),
    ) {
        // Ours keeps the even keys of its edits, theirs the odd ones.
        let parity = |e: Edits, p: u8| -> Edits {
            e.into_iter().filter(|(k, _)| k.last().map(|d| d % 2) == Some(p)).collect()
        };
        let (eo, et) = (parity(e1, 0), parity(e2, 1));
        let repo = Repo::memory();
        let b = tree_of(&repo, &base);
        let (o, t) = (apply(&repo, &b, &eo), apply(&repo, &b, &et));
        let out = merge(&repo, &b, &o, &t, &Registry::new());
        let want = model_apply(&model_apply(&base, &eo), &et);
        prop_assert_eq!(common::contents(&repo, &out.tree), want.clone().into_iter().collect::<Vec<_>>());
        prop_assert_eq!(out.tree.root(), tree_of(&repo, &want).root());
        // from_theirs: exactly theirs' effective changes.
        let changed: Vec<Vec<u8>> = et
            .iter()
            .filter(|(k, v)| base.get(*k) != v.as_ref())
            .map(|(k, _)| k.clone())
            .collect();
        prop_assert_eq!(out.from_theirs, changed);
        prop_assert!(out.resolved.is_empty());
    }

    /// merge(base, x, base) = x, merge(base, base, x) = x and
    /// merge(base, x, x) = x, whatever x is.
    #[test]
    fn merging_with_an_unchanged_or_equal_side_gives_the_other(
        base in map(300, 200),
        e in edits(300, 80),
    ) {
        let repo = Repo::memory();
        let b = tree_of(&repo, &base);
        let x = apply(&repo, &b, &e);
        let none = Registry::new();
        let r = merge(&repo, &b, &x, &b, &none);
        prop_assert_eq!(r.tree, x);
        prop_assert_eq!(r.strategy, How::NoOp);
        let r = merge(&repo, &b, &x, &x, &none);
        prop_assert_eq!(r.tree, x);
        prop_assert_eq!(r.strategy, How::NoOp);
        let r = merge(&repo, &b, &b, &x, &none);
        prop_assert_eq!(r.tree, x);
        if x != b {
            prop_assert_eq!(r.strategy, How::FastForward);
        }
    }

    /// Concurrent counter increments on two sides merge to their sum.
    #[test]
    fn concurrent_counter_increments_add_up(
        start in prop::collection::vec(-1000i64..1000, 10),
        incs in prop::collection::vec((0usize..10, -50i64..50, any::<bool>()), 0..40),
        filler in map(200, 100),
    ) {
        let counter = |i: usize| format!("ctr/{i:03}").into_bytes();
        let mut base = filler;
        for (i, v) in start.iter().enumerate() {
            base.insert(counter(i), v.to_string().into_bytes());
        }
        let (mut ours, mut theirs) = (start.clone(), start.clone());
        let mut expected = start.clone();
        for &(i, d, side) in &incs {
            if side { ours[i] += d } else { theirs[i] += d }
            expected[i] += d;
        }
        let to_edits = |vals: &[i64]| -> Edits {
            vals.iter().enumerate().map(|(i, v)| (counter(i), Some(v.to_string().into_bytes()))).collect()
        };
        let repo = Repo::memory();
        let b = tree_of(&repo, &base);
        let (o, t) = (apply(&repo, &b, &to_edits(&ours)), apply(&repo, &b, &to_edits(&theirs)));
        let registry = Registry::new();
        registry.set_prefix("ctr/", Counter);
        let out = merge(&repo, &b, &o, &t, &registry);
        for (i, want) in expected.iter().enumerate() {
            let got = repo.get(&out.tree, &counter(i)).expect("get");
            prop_assert_eq!(got, Some(want.to_string().into_bytes()));
        }
        // Only counters changed on both sides went to the function.
        let both: BTreeSet<usize> = (0..10).filter(|&i| ours[i] != start[i] && theirs[i] != start[i]).collect();
        let resolved: BTreeSet<usize> = out.resolved.iter()
            .map(|k| std::str::from_utf8(&k[4..]).expect("utf8").parse().expect("index"))
            .collect();
        prop_assert!(both.iter().all(|i| resolved.contains(i)));
        prop_assert!(resolved.iter().all(|&i| ours[i] != start[i] && theirs[i] != start[i]));
    }

    /// Random concurrent edits under last-writer-wins: the merge equals the
    /// model, and its root id is the bulk build's (history independence).
    #[test]
    fn merges_match_the_model_and_are_history_independent(
        base in map(400, 300),
        eo in edits(400, 80),
        et in edits(400, 80),
    ) {
        let repo = Repo::memory();
        let b = tree_of(&repo, &base);
        let (o, t) = (apply(&repo, &b, &eo), apply(&repo, &b, &et));
        let registry = Registry::new();
        registry.set_default(LastWriterWins);
        let out = merge(&repo, &b, &o, &t, &registry);
        // The model: theirs' effective changes win, then ours' others.
        let (mo, mt) = (model_apply(&base, &eo), model_apply(&base, &et));
        let mut want = mo.clone();
        for k in et.keys() {
            if base.get(k) != mt.get(k) {
                match mt.get(k) {
                    Some(v) => want.insert(k.clone(), v.clone()),
                    None => want.remove(k),
                };
            }
        }
        prop_assert_eq!(common::contents(&repo, &out.tree), want.clone().into_iter().collect::<Vec<_>>());
        prop_assert_eq!(out.tree.root(), tree_of(&repo, &want).root());
        let expected_strategy = if want == mo {
            How::NoOp
        } else if want == mt {
            How::FastForward
        } else {
            How::ThreeWay
        };
        prop_assert_eq!(out.strategy, expected_strategy);
    }

    /// Without merge functions, the conflicts are exactly the keys both
    /// sides changed to different states.
    #[test]
    fn conflicts_are_exactly_the_divergent_keys(
        base in map(100, 60),
        eo in edits(100, 30),
        et in edits(100, 30),
    ) {
        let repo = Repo::memory();
        let b = tree_of(&repo, &base);
        let (o, t) = (apply(&repo, &b, &eo), apply(&repo, &b, &et));
        let (mo, mt) = (model_apply(&base, &eo), model_apply(&base, &et));
        let divergent: Vec<Vec<u8>> = mo.keys().chain(mt.keys()).collect::<BTreeSet<_>>().into_iter()
            .filter(|k| base.get(*k) != mo.get(*k) && base.get(*k) != mt.get(*k) && mo.get(*k) != mt.get(*k))
            .cloned()
            .collect();
        match merge_trees(&repo, &b, &o, &t, &Registry::new(), &tree::Options::default()) {
            Ok(_) => prop_assert!(divergent.is_empty()),
            Err(kvgit_merge::Error::Conflicts(c)) => {
                let keys: Vec<Vec<u8>> = c.iter().map(|c| c.key.clone()).collect();
                prop_assert_eq!(&keys, &divergent);
                for c in &c {
                    prop_assert_eq!(c.base.as_ref(), base.get(&c.key));
                    prop_assert_eq!(c.ours.as_ref(), mo.get(&c.key));
                    prop_assert_eq!(c.theirs.as_ref(), mt.get(&c.key));
                }
            }
            Err(e) => prop_assert!(false, "{e}"),
        }
    }
}
