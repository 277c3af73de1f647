//! A `Repo` over PostgreSQL against a `BTreeMap` model: random batches of
//! puts and deletes, each committed on a branch, checked by reads, range
//! and prefix scans and diffs; now and then the store is reopened (a fresh
//! `PgBackend` and `Repo`, so nothing comes from a cache) and the branch's
//! head must still hold the model. A smaller run of
//! `crates/core/tests/tree_model.rs`, on one database shared by all cases
//! (each case on a branch of its own).
mod common;

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use kvgit_core::tree::Change;
use kvgit_core::{CasOutcome, CommitSpec, ObjectId, Repo, RepoOptions, Tree};
use kvgit_postgres::PgBackend;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;
type Batch = Vec<(Vec<u8>, Option<Vec<u8>>)>;
/// (key, old value, new value) for each changed key.
type Diffs = Vec<(Vec<u8>, Option<Vec<u8>>, Option<Vec<u8>>)>;

fn key() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => (0u32..400).prop_map(|n| format!("k{n:04}").into_bytes()),
        1 => proptest::collection::vec(any::<u8>(), 1..6),
    ]
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        12 => proptest::collection::vec(any::<u8>(), 0..48),
        // Over INLINE_MAX: stored as a blob object of its own.
        1 => proptest::collection::vec(any::<u8>(), 257..700),
    ]
}

fn batch() -> impl Strategy<Value = Batch> {
    proptest::collection::vec((key(), proptest::option::weighted(0.7, value())), 0..40)
}

/// One step of a case: a batch to apply and commit, a range and a prefix
/// to scan, and whether to reopen the store afterwards.
#[derive(Clone, Debug)]
struct Step {
    batch: Batch,
    lo: Vec<u8>,
    hi: Vec<u8>,
    prefix: Vec<u8>,
    reopen: bool,
}

fn step() -> impl Strategy<Value = Step> {
    (
        batch(),
        key(),
        key(),
        proptest::collection::vec(any::<u8>(), 0..3),
        proptest::bool::weighted(0.3),
    )
        .prop_map(|(batch, lo, hi, prefix, reopen)| Step {
            batch,
            lo,
            hi,
            prefix,
            reopen,
        })
}

fn case() -> impl Strategy<Value = (Model, Vec<Step>)> {
    (
        proptest::collection::btree_map(key(), value(), 0..300),
        proptest::collection::vec(step(), 1..6),
    )
}

fn apply_model(model: &mut Model, batch: &Batch) {
    for (k, v) in batch {
        match v {
            Some(v) => model.insert(k.clone(), v.clone()),
            None => model.remove(k),
        };
    }
}

fn open_repo(url: &str) -> Repo {
    let backend = PgBackend::open(url).unwrap_or_else(|e| panic!("{url} opens: {e}"));
    Repo::new(Arc::new(backend), RepoOptions::default())
}

/// Every read of `tree` against `model`.
fn check_reads(repo: &Repo, tree: &Tree, model: &Model) {
    assert_eq!(tree.len(), model.len() as u64, "len");
    let bytes: u64 = model.values().map(|v| v.len() as u64).sum();
    assert_eq!(tree.value_bytes(), bytes, "value bytes");
    let all: Vec<(Vec<u8>, Vec<u8>)> = repo
        .range(tree, ..)
        .collect::<Result<_, _>>()
        .expect("range");
    let expected: Vec<(Vec<u8>, Vec<u8>)> =
        model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(all, expected, "a full scan");
    for (k, v) in model.iter().step_by(5) {
        assert_eq!(
            repo.get(tree, k).expect("get").as_ref(),
            Some(v),
            "get {k:?}"
        );
    }
    assert_eq!(
        repo.get(tree, b"\xff\xff\xff\xff\xff\xff\xff")
            .expect("get"),
        None
    );
    assert_eq!(repo.get(tree, b"k0400").expect("get"), None);
}

fn check_range(repo: &Repo, tree: &Tree, model: &Model, lo: &[u8], hi: &[u8], prefix: &[u8]) {
    for (lo_bound, hi_bound) in [
        (Bound::Included(lo), Bound::Excluded(hi)),
        (Bound::Excluded(lo), Bound::Included(hi)),
        (Bound::Included(lo), Bound::Unbounded),
        (Bound::Unbounded, Bound::Excluded(hi)),
    ] {
        let got: Vec<(Vec<u8>, Vec<u8>)> = repo
            .range(tree, (lo_bound, hi_bound))
            .collect::<Result<_, _>>()
            .expect("range");
        let in_range = |k: &[u8]| {
            let above = match lo_bound {
                Bound::Included(lo) => k >= lo,
                Bound::Excluded(lo) => k > lo,
                Bound::Unbounded => true,
            };
            let below = match hi_bound {
                Bound::Included(hi) => k <= hi,
                Bound::Excluded(hi) => k < hi,
                Bound::Unbounded => true,
            };
            above && below
        };
        let want: Vec<(Vec<u8>, Vec<u8>)> = model
            .iter()
            .filter(|(k, _)| in_range(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(got, want, "range {lo_bound:?}..{hi_bound:?}");
    }
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

/// The tree a branch's head commit names, read through `repo`.
fn head_tree(repo: &Repo, branch: &str) -> (ObjectId, Tree) {
    let head = repo
        .get_ref(branch)
        .expect("get_ref")
        .expect("the branch exists");
    let commit = repo.read_commit(&head).expect("the head commit");
    (head, repo.tree(commit.root).expect("the head tree"))
}

fn run_case(url: &str, branch: &str, initial: Model, steps: Vec<Step>) {
    let mut repo = open_repo(url);
    let mut model = initial;
    let mut tree = repo
        .build_tree(model.iter().map(|(k, v)| (k.clone(), v.clone())))
        .expect("build");
    let spec = |parents: Vec<ObjectId>, message: String| CommitSpec {
        parents,
        message,
        ..CommitSpec::default()
    };
    let (mut head, outcome) = repo
        .commit(branch, None, &tree, &spec(Vec::new(), "initial".into()))
        .expect("commit");
    assert_eq!(outcome, CasOutcome::Swapped, "a new branch");
    check_reads(&repo, &tree, &model);

    for (i, step) in steps.into_iter().enumerate() {
        let before = model.clone();
        let next = repo.apply(&tree, step.batch.clone()).expect("apply");
        apply_model(&mut model, &step.batch);
        let (id, outcome) = repo
            .commit(
                branch,
                Some(&head),
                &next,
                &spec(vec![head], format!("step {i}")),
            )
            .expect("commit");
        assert_eq!(outcome, CasOutcome::Swapped, "step {i}: the branch moved");
        let commit = repo.read_commit(&id).expect("the new commit");
        assert_eq!(commit.parents, vec![head], "step {i}: parent");
        assert_eq!(commit.root, next.root(), "step {i}: root");

        check_reads(&repo, &next, &model);
        check_range(&repo, &next, &model, &step.lo, &step.hi, &step.prefix);
        assert_eq!(
            tree_diff(&repo, &tree, &next),
            model_diff(&before, &model),
            "step {i}: diff forward"
        );
        assert_eq!(
            tree_diff(&repo, &next, &tree),
            model_diff(&model, &before),
            "step {i}: diff backward"
        );
        head = id;
        tree = next;

        if step.reopen {
            repo = open_repo(url);
            let (reopened_head, reopened) = head_tree(&repo, branch);
            assert_eq!(reopened_head, head, "step {i}: the head after reopening");
            assert_eq!(reopened, tree, "step {i}: the head tree after reopening");
            check_reads(&repo, &reopened, &model);
            check_range(&repo, &reopened, &model, &step.lo, &step.hi, &step.prefix);
            tree = reopened;
        }
    }

    // Finally, from a fresh store handle: the head holds the model, and its
    // parent chain leads back to the initial commit.
    let repo = open_repo(url);
    let (final_head, final_tree) = head_tree(&repo, branch);
    assert_eq!(final_head, head);
    check_reads(&repo, &final_tree, &model);
    let mut walk = final_head;
    loop {
        let commit = repo.read_commit(&walk).expect("a commit in the chain");
        match commit.parents.as_slice() {
            [] => {
                assert_eq!(commit.message, "initial");
                break;
            }
            [parent] => walk = *parent,
            more => panic!("an unexpected merge commit with parents {more:?}"),
        }
    }
}

#[test]
fn repo_over_postgres_matches_model() {
    let db = common::TestDb::new("tree_model");
    let cases = AtomicUsize::new(0);
    let mut runner = TestRunner::new(Config {
        cases: 16,
        // Run from an integration test's own runner: no source file to
        // record failures next to.
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&case(), |(initial, steps)| {
        let branch = format!("heads/case{}", cases.fetch_add(1, Ordering::Relaxed));
        run_case(&db.url, &branch, initial, steps);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
