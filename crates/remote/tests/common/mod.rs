//! Helpers shared by the transfer tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;

use kvgit_core::{CasOutcome, CommitSpec, ObjectId, Repo};

/// Commits `edits` (`None` deletes) on top of branch `branch`.
pub fn commit(repo: &Repo, branch: &str, edits: &[(&[u8], Option<&[u8]>)]) -> ObjectId {
    let name = format!("heads/{branch}");
    let head = repo.get_ref(&name).unwrap();
    let tree = match head {
        Some(h) => repo.tree(repo.read_commit(&h).unwrap().root).unwrap(),
        None => repo.empty_tree().unwrap(),
    };
    let tree = repo
        .apply(
            &tree,
            edits
                .iter()
                .map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec))),
        )
        .unwrap();
    let spec = CommitSpec {
        parents: head.into_iter().collect(),
        ..Default::default()
    };
    let (id, outcome) = repo.commit(&name, head.as_ref(), &tree, &spec).unwrap();
    assert_eq!(outcome, CasOutcome::Swapped);
    id
}

/// Puts `key = value` on `branch`.
pub fn put(repo: &Repo, branch: &str, key: &str, value: &str) -> ObjectId {
    commit(repo, branch, &[(key.as_bytes(), Some(value.as_bytes()))])
}

/// A store whose `main` holds `n` keys (`k00000042` -> a value of
/// `value_len` bytes), in one commit.
pub fn store_with(n: usize, value_len: usize) -> Repo {
    let repo = Repo::memory();
    let tree = repo
        .build_tree((0..n).map(|i| (key(i), value(i, value_len))))
        .unwrap();
    repo.commit("heads/main", None, &tree, &CommitSpec::default())
        .unwrap();
    repo
}

pub fn key(i: usize) -> Vec<u8> {
    format!("k{i:08}").into_bytes()
}

pub fn value(i: usize, len: usize) -> Vec<u8> {
    let mut v = format!("v{i}-").into_bytes();
    v.resize(len.max(v.len()), b'x');
    v
}

/// Every entry of the tree of the commit `ref_name` points at.
pub fn contents(repo: &Repo, ref_name: &str) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let head = repo.get_ref(ref_name).unwrap().expect("the ref exists");
    let tree = repo.tree(repo.read_commit(&head).unwrap().root).unwrap();
    repo.range(&tree, ..).map(Result::unwrap).collect()
}

/// Asserts that `verify` finds nothing wrong.
pub fn assert_verifies(repo: &Repo) {
    let report = repo.verify().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
}

/// The number of objects in a store.
pub fn object_count(repo: &Repo) -> u64 {
    let mut n = 0;
    repo.backend()
        .for_each_object(&mut |_, _| {
            n += 1;
            Ok(true)
        })
        .unwrap();
    n
}
