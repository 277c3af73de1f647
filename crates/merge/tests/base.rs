//! Merge base on small commit DAGs, and how much history the search reads.

use std::collections::BTreeMap;
use std::sync::Arc;

use kvgit_core::{CommitSpec, ObjectId, Repo};
use kvgit_merge::{merge_base, merge_bases};

mod common;

/// Builds a DAG from lines `name: parent parent`, in order.
fn dag(repo: &Repo, spec: &str) -> BTreeMap<String, ObjectId> {
    let tree = repo.empty_tree().expect("test dag");
    let mut ids = BTreeMap::new();
    for line in spec.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (name, parents) = line.split_once(':').unwrap_or((line, ""));
        let parents = parents.split_whitespace().map(|p| ids[p]).collect();
        let id = repo
            .write_commit(
                &tree,
                &CommitSpec {
                    parents,
                    message: name.to_string(),
                    time_micros: Some(0),
                    ..CommitSpec::default()
                },
            )
            .expect("test dag");
        ids.insert(name.trim().to_string(), id);
    }
    ids
}

#[track_caller]
fn check(spec: &str, a: &str, b: &str, want: &[&str]) {
    let repo = Repo::memory();
    let ids = dag(&repo, spec);
    let name = |id: &ObjectId| {
        ids.iter()
            .find(|(_, v)| *v == id)
            .map(|(k, _)| k.clone())
            .expect("test dag")
    };
    let got: Vec<String> = merge_bases(&repo, &ids[a], &ids[b])
        .expect("test dag")
        .iter()
        .map(name)
        .collect();
    let mut want_sorted: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    want_sorted.sort();
    let mut got_sorted = got.clone();
    got_sorted.sort();
    assert_eq!(got_sorted, want_sorted, "merge bases of {a} and {b}");
    // Symmetric, and merge_base is the first of merge_bases.
    let back: Vec<String> = merge_bases(&repo, &ids[b], &ids[a])
        .expect("test dag")
        .iter()
        .map(name)
        .collect();
    assert_eq!(back, got, "order of {b} and {a}");
    assert_eq!(
        merge_base(&repo, &ids[a], &ids[b])
            .expect("test dag")
            .map(|id| name(&id)),
        got.first().cloned()
    );
}

#[test]
fn linear() {
    let spec = "r\n a: r\n b: a\n c: b";
    check(spec, "c", "a", &["a"]);
    check(spec, "a", "c", &["a"]);
    check(spec, "c", "c", &["c"]);
    check(spec, "r", "c", &["r"]);
}

#[test]
fn fork() {
    let spec = "r\n a: r\n b: a\n x1: b\n x2: x1\n y1: b";
    check(spec, "x2", "y1", &["b"]);
    check(spec, "y1", "x2", &["b"]);
}

#[test]
fn after_a_merge_the_merged_commit_is_the_base() {
    // m merges y into x; a later fork from y merges against y2's parent
    // chain through m.
    let spec = "r\n x: r\n y: r\n m: x y\n x2: m\n y2: y";
    check(spec, "x2", "y2", &["y"]);
    check(spec, "m", "y", &["y"]);
    check(spec, "x2", "x", &["x"]);
}

#[test]
fn criss_cross_has_two_best_bases() {
    // a and b are both merged into each side: m1 = (a, b), m2 = (b, a).
    let spec = "r\n a: r\n b: r\n m1: a b\n m2: b a\n p: m1\n q: m2";
    check(spec, "p", "q", &["a", "b"]);
    // The rule: greatest height, then smallest id.
    let repo = Repo::memory();
    let ids = dag(&repo, spec);
    let (a, b) = (ids["a"], ids["b"]);
    assert_eq!(
        merge_base(&repo, &ids["p"], &ids["q"]).unwrap(),
        Some(a.min(b))
    );
    // Unequal heights: the higher candidate wins.
    let spec = "r\n a: r\n a2: a\n b: r\n m1: a2 b\n m2: b a2";
    let ids = dag(&repo, spec);
    assert_eq!(
        merge_bases(&repo, &ids["m1"], &ids["m2"]).unwrap(),
        vec![ids["a2"], ids["b"]]
    );
}

#[test]
fn an_ancestor_of_a_base_is_not_a_base() {
    // c is common, and so is its ancestor r through another path.
    let spec = "r\n c: r\n x: c\n y: c r";
    check(spec, "x", "y", &["c"]);
}

#[test]
fn unrelated_histories_have_no_base() {
    let spec = "r1\n a: r1\n r2\n b: r2";
    check(spec, "a", "b", &[]);
}

#[test]
fn unknown_commits_are_errors() {
    let repo = Repo::memory();
    let ids = dag(&repo, "r");
    let bogus = ObjectId::hash(b"nothing");
    assert!(merge_base(&repo, &ids["r"], &bogus).is_err());
    assert!(merge_base(&repo, &bogus, &bogus).is_err());
}

/// The search reads the commits near the tips, not the whole history.
#[test]
fn a_near_base_is_found_without_walking_history() {
    let backend = Arc::new(common::Counting::default());
    let repo = common::repo_over(&backend, 1 << 20);
    let tree = repo.empty_tree().unwrap();
    let commit = |parents: Vec<ObjectId>, n: u64| {
        repo.write_commit(
            &tree,
            &CommitSpec {
                parents,
                time_micros: Some(n),
                ..CommitSpec::default()
            },
        )
        .unwrap()
    };
    let mut head = commit(vec![], 0);
    for n in 1..2000 {
        head = commit(vec![head], n);
    }
    // Two branches of 5 commits each from the tip of a 2000-commit history,
    // the second with a merge of a side branch.
    let (mut x, mut y) = (head, head);
    for n in 0..5 {
        x = commit(vec![x], 10_000 + n);
        y = commit(vec![y], 20_000 + n);
    }
    let side = commit(vec![head], 30_000);
    y = commit(vec![y, side], 30_001);

    let lone = commit(vec![], 40_000);

    // Count commit reads on a repo with cold caches.
    let reads = |a: &ObjectId, b: &ObjectId, want: Option<ObjectId>| {
        let cold = common::repo_over(&backend, 1 << 20);
        let before = backend.reads();
        assert_eq!(merge_base(&cold, a, b).unwrap(), want);
        backend.reads() - before
    };
    // 5 + 6 + 1 commits above the base, the base and its parent.
    let n = reads(&x, &y, Some(head));
    assert!(n <= 15, "read {n} commits");
    // A fast-forward check reads only the commits in between.
    let n = reads(&head, &x, Some(head));
    assert!(n <= 8, "read {n} commits");
    // Unrelated histories, by contrast, need the whole walk.
    let n = reads(&x, &lone, None);
    assert!(n >= 2000, "read {n} commits");
}
