//! High/low-water and keep-set rebases: which keys go, which stay, what
//! is committed, and what happens when a writer moves the branch.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns

mod common;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use common::{commit_edits, head_tree, memory_backend, repo_over, Hooked, Store};
use kvgit_core::CasOutcome;
use kvgit_core::Repo;
use kvgit_gc::{
    is_protected_default, rebase, rebase_keep, rebase_keep_with, rebase_with, Protected,
    RebaseError, RebaseMove, RebaseOptions, RebaseStatus, Watermarks, REBASED_FROM,
};
use proptest::prelude::*;

fn opts() -> RebaseOptions {
    RebaseOptions::default()
}

fn key_strings(keys: &[Vec<u8>]) -> Vec<String> {
    keys.iter()
        .map(|k| String::from_utf8(k.clone()).unwrap())
        .collect()
}

#[test]
fn reading_a_key_makes_it_warmer() {
    let store = Store::memory();
    for key in ["a", "b", "c"] {
        store.put("main", key.as_bytes(), &[1; 40]);
    }
    // `a` was written first, but read last: `b` is now the coldest.
    assert!(store.read("main", b"a").is_some());
    let report = rebase(
        &store.repo,
        "main",
        &Watermarks::new(100),
        &store.access,
        &opts(),
    )
    .unwrap();
    assert_eq!(key_strings(&report.dropped), ["b"]);
    assert_eq!(
        store.contents("main").into_keys().collect::<Vec<_>>(),
        [b"a".to_vec(), b"c".to_vec()]
    );
}

#[test]
fn untouched_keys_are_coldest_then_largest_then_in_key_order() {
    let store = Store::memory();
    // Written without touching the tracker: all at tick 0.
    commit_edits(
        &store.repo,
        "main",
        &[
            (b"x", Some(&[0; 10])),
            (b"y", Some(&[0; 30])),
            (b"z", Some(&[0; 30])),
            (b"w", Some(&[0; 20])),
        ],
    );
    store.access.touch("main", b"w").unwrap();
    store.put("main", b"hot", &[0; 50]);
    // 140 bytes; low water 60: drop y (30, key order before z), z (30):
    // 80, then x (10, the last untouched key): 70, then w (touched before
    // hot): 50.
    let marks = Watermarks::with_low(100, 60).unwrap();
    let report = rebase(&store.repo, "main", &marks, &store.access, &opts()).unwrap();
    assert_eq!(key_strings(&report.dropped), ["y", "z", "x", "w"]);
    assert_eq!((report.bytes_before, report.bytes_after), (140, 50));
}

#[test]
fn protected_keys_are_never_dropped_even_above_low_water() {
    let store = Store::memory();
    store.put("main", b"__meta", &[0; 100]);
    store.put("main", b"agent/__state", &[0; 100]);
    store.put("main", b"plain", &[0; 10]);
    store.put("main", b"a__b", &[0; 10]);
    let report = rebase(
        &store.repo,
        "main",
        &Watermarks::new(100),
        &store.access,
        &opts(),
    )
    .unwrap();
    assert_eq!(report.status, RebaseStatus::Rebased);
    assert_eq!(key_strings(&report.dropped), ["plain", "a__b"]);
    assert_eq!(report.bytes_after, 200);
    assert!(!report.reached_low);
    // Only protected keys left: nothing more can be dropped.
    let report = rebase(
        &store.repo,
        "main",
        &Watermarks::new(100),
        &store.access,
        &opts(),
    )
    .unwrap();
    assert_eq!(report.status, RebaseStatus::NothingDroppable);
    assert!(!report.performed());
    assert_eq!(store.contents("main").len(), 2);
}

#[test]
fn a_custom_predicate_replaces_the_default() {
    let store = Store::memory();
    store.put("main", b"keep/1", &[0; 60]);
    store.put("main", b"__meta", &[0; 60]);
    let options = RebaseOptions {
        protected: Protected::new(|k| k.starts_with(b"keep/")),
        ..opts()
    };
    let report = rebase(
        &store.repo,
        "main",
        &Watermarks::new(100),
        &store.access,
        &options,
    )
    .unwrap();
    assert_eq!(key_strings(&report.dropped), ["__meta"]);
}

#[test]
fn the_new_root_commit_records_what_it_replaced() {
    let store = Store::memory();
    store.put("main", b"a", &[0; 300]); // a blob
    let old = store.put("main", b"b", &[0; 300]);
    let options = RebaseOptions {
        message: "trim".into(),
        metadata: BTreeMap::from([("who".to_string(), "test".to_string())]),
        ..opts()
    };
    let report = rebase(
        &store.repo,
        "main",
        &Watermarks::new(500),
        &store.access,
        &options,
    )
    .unwrap();
    assert_eq!(report.previous, old);
    let commit = store.repo.read_commit(&report.commit.unwrap()).unwrap();
    assert!(commit.parents.is_empty());
    assert_eq!(commit.height, 1);
    assert_eq!(commit.message, "trim");
    assert_eq!(commit.metadata[REBASED_FROM], old.to_hex());
    assert_eq!(commit.metadata["who"], "test");
    // The survivor's blob is reused, not rewritten.
    assert_eq!(store.read("main", b"b"), Some(vec![0; 300]));
}

#[test]
fn dropped_keys_lose_their_access_entries_unless_touched_again() {
    let store = Store::memory();
    store.put("main", b"a", &[0; 40]);
    store.put("main", b"b", &[0; 40]);
    store.put("main", b"c", &[0; 40]);
    store.access.flush().unwrap();
    let report = rebase(
        &store.repo,
        "main",
        &Watermarks::new(100),
        &store.access,
        &opts(),
    )
    .unwrap();
    assert_eq!(key_strings(&report.dropped), ["a"]);
    assert_eq!(store.access.tick("main", b"a").unwrap(), 0);
    let ticks = store.access.ticks("main").unwrap();
    assert_eq!(
        ticks.iter().map(|(k, _)| k.as_slice()).collect::<Vec<_>>(),
        [b"b", b"c"]
    );
}

#[test]
fn rebase_keep_keeps_the_set_and_protected_keys() {
    let store = Store::memory();
    for key in ["a", "b", "c", "d", "__meta"] {
        store.put("main", key.as_bytes(), &[7; 300]);
    }
    let keep: BTreeSet<&[u8]> = [&b"b"[..], &b"d"[..]].into();
    let report = rebase_keep(&store.repo, "main", |k| keep.contains(k), &opts()).unwrap();
    assert_eq!(report.status, RebaseStatus::Rebased);
    assert_eq!(key_strings(&report.dropped), ["a", "c"]);
    assert_eq!((report.bytes_before, report.bytes_after), (1500, 900));
    assert_eq!(report.kept, 3);
    assert_eq!(
        store.contents("main").into_keys().collect::<Vec<_>>(),
        [b"__meta".to_vec(), b"b".to_vec(), b"d".to_vec()]
    );
    assert!(store
        .repo
        .read_commit(&report.commit.unwrap())
        .unwrap()
        .parents
        .is_empty());
}

#[test]
fn rebase_keep_builds_the_same_tree_either_way() {
    // Keeping few keys builds from the survivors; keeping many deletes the
    // rest. Both must give the tree a bulk build of the survivors gives.
    for keep_below in [5u32, 395] {
        let store = Store::memory();
        let entries: Vec<(Vec<u8>, Vec<u8>)> = (0..400u32)
            .map(|i| {
                (
                    format!("k{i:04}").into_bytes(),
                    vec![i as u8; (i % 300) as usize],
                )
            })
            .collect();
        let edits: Vec<(&[u8], Option<&[u8]>)> = entries
            .iter()
            .map(|(k, v)| (k.as_slice(), Some(v.as_slice())))
            .collect();
        commit_edits(&store.repo, "main", &edits);
        let limit = format!("k{keep_below:04}").into_bytes();
        let report = rebase_keep(&store.repo, "main", |k| k < limit.as_slice(), &opts()).unwrap();
        let expected = store
            .repo
            .build_tree(entries.into_iter().filter(|(k, _)| k < &limit))
            .unwrap();
        assert_eq!(head_tree(&store.repo, "main").root(), expected.root());
        assert_eq!(report.kept, u64::from(keep_below));
    }
}

/// A branch whose head's root says its first leaf holds one key more than
/// it does (each node sound on its own); returns the leaf's id and the
/// head.
fn head_with_a_wrong_count(store: &Store) -> (kvgit_core::ObjectId, kvgit_core::ObjectId) {
    use kvgit_core::object::{ChildEntry, Node};
    let repo = &store.repo;
    let good = repo
        .build_tree((0..2000u32).map(|i| (format!("k{i:08}").into_bytes(), vec![b'v'; 40])))
        .unwrap();
    assert_eq!(good.level(), 1);
    let root = repo.node(&good.root()).unwrap();
    let mut children: Vec<ChildEntry> = root
        .children()
        .map(|c| ChildEntry {
            key: c.key.to_vec(),
            id: c.id,
            count: c.count,
            bytes: c.bytes,
        })
        .collect();
    children[0].count += 1;
    let bad = Node::from_children(root.level(), &children);
    let bad_root = kvgit_core::ObjectId::hash(bad.bytes());
    repo.backend()
        .put_objects(vec![(bad_root, bad.bytes().to_vec())])
        .unwrap();
    let tree = repo.tree(bad_root).unwrap();
    let spec = kvgit_core::CommitSpec {
        parents: Vec::new(),
        message: "crafted".into(),
        metadata: BTreeMap::new(),
        time_micros: None,
    };
    let head = repo.write_commit(&tree, &spec).unwrap();
    assert_eq!(
        repo.move_ref("heads/main", None, Some(&head)).unwrap(),
        CasOutcome::Swapped
    );
    (children[0].id, head)
}

#[test]
fn a_rebase_refuses_a_node_that_disagrees_with_its_parent() {
    // Each way of rebasing, and for `rebase_keep` both ways of making the
    // survivors' tree (few kept: a build from the scan; most kept: an edit).
    type Run = Box<dyn Fn(&Store) -> Result<kvgit_gc::RebaseReport, RebaseError>>;
    let runs: Vec<(&str, Run)> = vec![
        (
            "water marks",
            Box::new(|s: &Store| {
                let marks = Watermarks::with_low(1000, 500).unwrap();
                rebase(&s.repo, "main", &marks, &s.access, &opts())
            }),
        ),
        (
            "keep few",
            Box::new(|s: &Store| rebase_keep(&s.repo, "main", |k| k < &b"k00000010"[..], &opts())),
        ),
        (
            "keep most",
            Box::new(|s: &Store| rebase_keep(&s.repo, "main", |k| k != &b"k00001999"[..], &opts())),
        ),
    ];
    for (what, run) in runs {
        let store = Store::memory();
        let (leaf, head) = head_with_a_wrong_count(&store);
        match run(&store) {
            Err(RebaseError::Core(kvgit_core::Error::Corrupt { id, .. })) => {
                assert_eq!(id, leaf, "{what}: names the leaf")
            }
            other => panic!("{what}: expected Corrupt, got {other:?}"),
        }
        assert_eq!(
            store.repo.get_ref("heads/main").unwrap(),
            Some(head),
            "{what}: the branch stays"
        );
    }
}

#[test]
fn rebase_keep_of_everything_still_cuts_history() {
    let store = Store::memory();
    store.put("main", b"a", b"1");
    store.put("main", b"b", b"2");
    let report = rebase_keep(&store.repo, "main", |_| true, &opts()).unwrap();
    assert!(report.performed());
    assert!(report.dropped.is_empty());
    let head = store.repo.get_ref("heads/main").unwrap().unwrap();
    assert_eq!(store.repo.read_commit(&head).unwrap().height, 1);
    assert_eq!(store.contents("main").len(), 2);
}

#[test]
fn unknown_and_invalid_branches_are_errors() {
    let store = Store::memory();
    let marks = Watermarks::new(10);
    assert!(matches!(
        rebase(&store.repo, "nope", &marks, &store.access, &opts()),
        Err(RebaseError::UnknownBranch(b)) if b == "nope"
    ));
    assert!(matches!(
        rebase_keep(&store.repo, "bad name", |_| true, &opts()),
        Err(RebaseError::Core(_))
    ));
}

/// A repo where, `races` times, writing a commit object (the rebase's) is
/// preceded by a writer committing a new key to `main` through a second
/// handle on the same store, so the rebase's compare-and-swap loses.
fn racing_store(races: usize) -> (Store, Arc<Hooked>) {
    let inner = memory_backend();
    let hooked = Hooked::new(inner.clone());
    let store = Store::over(repo_over(hooked.clone()));
    for key in ["a", "b", "c"] {
        store.put("main", key.as_bytes(), &[1; 40]);
    }
    let writer = Repo::new(inner, Default::default());
    let mut left = races;
    *hooked.on_put.lock() = Some(Box::new(move |objects| {
        let commit_kind = kvgit_core::object::Kind::Commit as u8;
        let commit = objects
            .iter()
            .any(|(_, bytes)| bytes.get(1) == Some(&commit_kind));
        if commit && left > 0 {
            left -= 1;
            let key = format!("w{left}");
            commit_edits(&writer, "main", &[(key.as_bytes(), Some(&[2; 40]))]);
        }
    }));
    (store, hooked)
}

#[test]
fn a_lost_race_is_retried_on_the_new_head() {
    let (store, _hooked) = racing_store(1);
    let report = rebase(
        &store.repo,
        "main",
        &Watermarks::new(100),
        &store.access,
        &opts(),
    )
    .unwrap();
    assert_eq!(report.status, RebaseStatus::Rebased);
    assert_eq!(report.attempts, 2);
    // The writer's key (never touched: coldest) was part of the second
    // plan: 160 bytes down to 80.
    assert_eq!(key_strings(&report.dropped), ["w0", "a"]);
    assert_eq!(report.bytes_before, 160);
    let keys: Vec<_> = store.contents("main").into_keys().collect();
    assert_eq!(keys, [b"b".to_vec(), b"c".to_vec()]);
}

#[test]
fn a_race_lost_every_time_is_reported_and_the_writer_wins() {
    let (store, _hooked) = racing_store(2);
    let options = RebaseOptions {
        max_attempts: 2,
        ..opts()
    };
    let report = rebase(
        &store.repo,
        "main",
        &Watermarks::new(100),
        &store.access,
        &options,
    )
    .unwrap();
    assert_eq!(report.status, RebaseStatus::Raced);
    assert_eq!(report.attempts, 2);
    assert!(report.commit.is_none() && report.dropped.is_empty());
    // The writers' commits are on the branch, with their history.
    let keys: Vec<_> = store.contents("main").into_keys().collect();
    assert_eq!(keys.len(), 5);
    let head = store.repo.get_ref("heads/main").unwrap().unwrap();
    assert_eq!(store.repo.read_commit(&head).unwrap().height, 5);
}

#[test]
fn rebase_keep_retries_too() {
    let (store, _hooked) = racing_store(1);
    let report = rebase_keep(&store.repo, "main", |k| k == b"a", &opts()).unwrap();
    assert_eq!(report.attempts, 2);
    assert_eq!(key_strings(&report.dropped), ["b", "c", "w0"]);
}

/// What a caller's mover refuses with.
#[derive(Debug)]
enum MoverError {
    Refused,
    Rebase(RebaseError),
}

impl From<RebaseError> for MoverError {
    fn from(e: RebaseError) -> Self {
        MoverError::Rebase(e)
    }
}

#[test]
fn a_caller_moves_the_ref_from_the_planned_head_to_the_new_root() {
    let store = Store::memory();
    for key in ["a", "b", "c"] {
        store.put("main", key.as_bytes(), &[1; 40]);
    }
    let before = store.repo.get_ref("heads/main").unwrap().unwrap();
    let mut seen = Vec::new();
    let report = rebase_with(
        &store.repo,
        "main",
        &Watermarks::new(100),
        &store.access,
        &opts(),
        |m: &RebaseMove<'_>| -> Result<CasOutcome, MoverError> {
            seen.push((m.branch.to_string(), m.ref_name.to_string(), m.from, m.to));
            Ok(store
                .repo
                .move_ref(m.ref_name, Some(&m.from), Some(&m.to))
                .map_err(RebaseError::from)?)
        },
    )
    .unwrap();
    assert_eq!(report.status, RebaseStatus::Rebased);
    let commit = report.commit.unwrap();
    assert_eq!(
        seen,
        [("main".to_string(), "heads/main".to_string(), before, commit)]
    );
    assert_eq!(store.repo.get_ref("heads/main").unwrap(), Some(commit));
}

#[test]
fn a_refusing_mover_ends_the_rebase_and_the_branch_stays() {
    let store = Store::memory();
    for key in ["a", "b", "c"] {
        store.put("main", key.as_bytes(), &[1; 40]);
    }
    let before = store.repo.get_ref("heads/main").unwrap();
    let refuse =
        |_: &RebaseMove<'_>| -> Result<CasOutcome, MoverError> { Err(MoverError::Refused) };
    let marks = Watermarks::new(100);
    let result = rebase_with(&store.repo, "main", &marks, &store.access, &opts(), refuse);
    assert!(matches!(result, Err(MoverError::Refused)));
    let result = rebase_keep_with(&store.repo, "main", |k| k == b"a", &opts(), refuse);
    assert!(matches!(result, Err(MoverError::Refused)));
    assert_eq!(store.repo.get_ref("heads/main").unwrap(), before);
    // Errors of the rebase itself come through the caller's error type.
    let result = rebase_keep_with(&store.repo, "nope", |_| true, &opts(), refuse);
    assert!(matches!(
        result,
        Err(MoverError::Rebase(RebaseError::UnknownBranch(_)))
    ));
}

#[test]
fn a_mover_reporting_a_lost_swap_makes_the_rebase_plan_again() {
    let store = Store::memory();
    for key in ["a", "b", "c"] {
        store.put("main", key.as_bytes(), &[1; 40]);
    }
    let options = RebaseOptions {
        max_attempts: 2,
        ..opts()
    };
    let mut calls = 0;
    let report = rebase_keep_with(
        &store.repo,
        "main",
        |k| k == b"a",
        &options,
        |m: &RebaseMove<'_>| -> Result<CasOutcome, RebaseError> {
            calls += 1;
            Ok(CasOutcome::Mismatch {
                actual: Some(m.from),
            })
        },
    )
    .unwrap();
    assert_eq!(calls, 2);
    assert_eq!(report.status, RebaseStatus::Raced);
    assert!(report.commit.is_none());
}

#[derive(Debug, Clone)]
struct Case {
    /// key -> value length
    entries: BTreeMap<Vec<u8>, usize>,
    /// keys touched after the writes, in order
    touches: Vec<Vec<u8>>,
    high: u64,
    low_percent: u64,
}

fn case() -> impl Strategy<Value = Case> {
    let key = prop_oneof![
        3 => "[a-e]{1,2}",
        1 => "__[a-c]",
        1 => "[a-c]/__[a-c]",
    ];
    (
        prop::collection::btree_map(key.prop_map(String::into_bytes), 0usize..400, 1..40),
        prop::collection::vec(any::<prop::sample::Index>(), 0..20),
        0u64..6000,
        0u64..=100,
    )
        .prop_map(|(entries, touches, high, low_percent)| {
            let keys: Vec<Vec<u8>> = entries.keys().cloned().collect();
            let touches = touches.iter().map(|i| i.get(&keys).clone()).collect();
            Case {
                entries,
                touches,
                high,
                low_percent,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Protected keys survive every rebase; the dropped keys are exactly a
    /// shortest prefix of the coldness order that reaches the low water;
    /// survivors keep their values.
    #[test]
    fn rebase_drops_a_minimal_coldest_prefix(case in case()) {
        let store = Store::memory();
        let values: BTreeMap<Vec<u8>, Vec<u8>> = case
            .entries
            .iter()
            .map(|(k, &n)| (k.clone(), vec![k[0]; n]))
            .collect();
        let edits: Vec<(&[u8], Option<&[u8]>)> = values
            .iter()
            .map(|(k, v)| (k.as_slice(), Some(v.as_slice())))
            .collect();
        commit_edits(&store.repo, "main", &edits);
        for k in &case.touches {
            store.access.touch("main", k).unwrap();
        }
        let marks = Watermarks::with_low(case.high, case.high * case.low_percent / 100).unwrap();
        let ticks: BTreeMap<Vec<u8>, u64> = store.access.ticks("main").unwrap().into_iter().collect();
        let report = rebase(&store.repo, "main", &marks, &store.access, &opts()).unwrap();
        let total: u64 = values.values().map(|v| v.len() as u64).sum();
        prop_assert_eq!(report.bytes_before, total);

        // The expected plan, from the rules.
        let mut order: Vec<&Vec<u8>> = values.keys().filter(|k| !is_protected_default(k)).collect();
        order.sort_by_key(|k| (ticks.get(*k).copied().unwrap_or(0), Reverse(values[*k].len()), (*k).clone()));
        let mut expected = Vec::new();
        let mut left = total;
        if total > marks.high() {
            for k in order {
                if left <= marks.low() {
                    break;
                }
                left -= values[k].len() as u64;
                expected.push(k.clone());
            }
        }
        let contents = store.contents("main");
        for k in values.keys().filter(|k| is_protected_default(k)) {
            prop_assert_eq!(contents.get(k), values.get(k));
        }
        if total <= marks.high() {
            prop_assert_eq!(report.status, RebaseStatus::BelowHighWater);
            prop_assert_eq!(contents, values);
        } else if expected.iter().all(|k| values[k].is_empty()) {
            prop_assert_eq!(report.status, RebaseStatus::NothingDroppable);
            prop_assert_eq!(contents, values);
        } else {
            prop_assert_eq!(report.status, RebaseStatus::Rebased);
            prop_assert_eq!(&report.dropped, &expected);
            prop_assert_eq!(report.bytes_after, left);
            prop_assert_eq!(report.reached_low, left <= marks.low());
            let mut survivors = values.clone();
            for k in &expected {
                survivors.remove(k);
            }
            prop_assert_eq!(report.kept, survivors.len() as u64);
            prop_assert_eq!(contents, survivors);
        }
    }
}
