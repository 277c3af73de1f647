//! Crafted objects: written straight to the backend, each breaking one rule
//! of the format that a single object's decoder cannot see (a commit
//! height, a child that disagrees with its parent's entry or its place in
//! the tree, a chain of single-child nodes). Every public call that meets
//! one refuses it with `Error::Corrupt` naming the object, never panics,
//! never writes it into a new commit, and `Repo::verify` lists it.

use std::collections::BTreeMap;

use kvgit_core::object::{ChildEntry, Node, Value};
use kvgit_core::{Commit, CommitSpec, Error, ObjectId, Repo, Tree};

fn kv(i: u32) -> (Vec<u8>, Vec<u8>) {
    (format!("k{i:08}").into_bytes(), i.to_string().into_bytes())
}

/// Writes `bytes` as an object through the backend; returns its id.
fn put(repo: &Repo, bytes: Vec<u8>) -> ObjectId {
    let id = ObjectId::hash(&bytes);
    repo.backend().put_objects(vec![(id, bytes)]).expect("put");
    id
}

fn put_node(repo: &Repo, node: &Node) -> ObjectId {
    put(repo, node.bytes().to_vec())
}

fn put_commit(repo: &Repo, root: ObjectId, parents: Vec<ObjectId>, height: u64) -> ObjectId {
    let commit = Commit {
        root,
        parents,
        height,
        time_micros: 1_700_000_000_000_000,
        message: "crafted".into(),
        metadata: BTreeMap::new(),
    };
    put(repo, commit.encode())
}

fn entries(node: &Node) -> Vec<ChildEntry> {
    node.children()
        .map(|c| ChildEntry {
            key: c.key.to_vec(),
            id: c.id,
            count: c.count,
            bytes: c.bytes,
        })
        .collect()
}

/// A fresh repo over the same backend (nothing cached).
fn fresh(repo: &Repo) -> Repo {
    Repo::new(repo.backend().clone(), kvgit_core::RepoOptions::default())
}

fn assert_corrupt<T: std::fmt::Debug>(result: kvgit_core::Result<T>, id: ObjectId, what: &str) {
    match result {
        Err(Error::Corrupt { id: got, reason }) => {
            assert_eq!(got, id, "{what}: names the wrong object ({reason})")
        }
        other => panic!("{what}: expected Corrupt naming {id}, got {other:?}"),
    }
}

/// 2,000 keys: eight leaves under a root at level 1.
fn two_level_tree(repo: &Repo) -> Tree {
    let tree = repo.build_tree((0..2000).map(kv)).expect("build");
    assert_eq!(tree.level(), 1);
    tree
}

#[test]
fn a_commit_on_a_parent_of_height_u64_max_is_refused() {
    let repo = Repo::memory();
    let tree = two_level_tree(&repo);
    let root_commit = repo
        .write_commit(&tree, &CommitSpec::default())
        .expect("root commit");
    let tall = put_commit(&repo, tree.root(), vec![root_commit], u64::MAX);
    repo.move_ref("heads/main", None, Some(&tall)).expect("ref");

    let spec = CommitSpec {
        parents: vec![tall],
        ..CommitSpec::default()
    };
    assert_corrupt(
        repo.commit("heads/main", Some(&tall), &tree, &spec),
        tall,
        "commit",
    );
    assert_corrupt(repo.write_commit(&tree, &spec), tall, "write_commit");
    assert_eq!(repo.get_ref("heads/main").expect("ref"), Some(tall));

    // verify says why: the height disagrees with its parent's.
    let report = repo.verify().expect("verify");
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(
        report.problems[0].contains(&format!("commit {tall} has height {}", u64::MAX)),
        "{:?}",
        report.problems
    );
}

#[test]
fn verify_reports_a_child_of_a_parent_of_height_u64_max() {
    let repo = Repo::memory();
    let tree = two_level_tree(&repo);
    let root_commit = repo
        .write_commit(&tree, &CommitSpec::default())
        .expect("root commit");
    let tall = put_commit(&repo, tree.root(), vec![root_commit], u64::MAX);
    // Any height for the child is wrong: none is 1 + u64::MAX.
    let child = put_commit(&repo, tree.root(), vec![tall], u64::MAX);
    repo.move_ref("heads/main", None, Some(&child))
        .expect("ref");
    let report = repo.verify().expect("verify");
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains(&format!("commit {child}")) && p.contains("no room")),
        "{:?}",
        report.problems
    );
}

/// A root at level 64 over a chain of single-child nodes down to a leaf.
fn single_child_chain(repo: &Repo) -> (ObjectId, Vec<ObjectId>) {
    let leaf = Node::from_leaf_entries(&[
        (b"a".to_vec(), Value::Inline(b"1".to_vec())),
        (b"b".to_vec(), Value::Inline(b"2".to_vec())),
    ]);
    let mut ids = vec![put_node(repo, &leaf)];
    for level in 1..=64u8 {
        let node = Node::from_children(
            level,
            &[ChildEntry {
                key: b"a".to_vec(),
                id: *ids.last().expect("a node below"),
                count: 2,
                bytes: 2,
            }],
        );
        ids.push(put_node(repo, &node));
    }
    (*ids.last().expect("the root"), ids)
}

#[test]
fn verify_rejects_a_chain_of_single_child_nodes() {
    let repo = Repo::memory();
    let (root, _) = single_child_chain(&repo);
    let commit = put_commit(&repo, root, vec![], 1);
    repo.move_ref("heads/main", None, Some(&commit))
        .expect("ref");

    let report = repo.verify().expect("verify");
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(
        report.problems[0].contains(&root.to_hex()) && report.problems[0].contains("single child"),
        "{:?}",
        report.problems
    );
    // Reads refuse it too: the tree is taller than the format allows.
    assert_corrupt(repo.tree(root), root, "tree");
}

#[test]
fn a_child_with_keys_past_the_next_separator_is_refused() {
    let repo = Repo::memory();
    let tree = two_level_tree(&repo);
    let root = repo.node(&tree.root()).expect("root");
    let mut children = entries(&root);
    // Leaf 0 gets an extra key that belongs under leaf 1.
    let leaf0 = repo.node(&children[0].id).expect("leaf 0");
    let mut leaf_entries: Vec<(Vec<u8>, Value)> = leaf0
        .leaf_entries()
        .map(|(k, v)| (k.to_vec(), v.to_value()))
        .collect();
    let stray = format!("k{:08}x", children[1].count + children[0].count).into_bytes();
    assert!(stray.as_slice() > children[1].key.as_slice());
    leaf_entries.push((stray.clone(), Value::Inline(b"s".to_vec())));
    let bad_leaf = Node::from_leaf_entries(&leaf_entries);
    children[0].id = put_node(&repo, &bad_leaf);
    children[0].count += 1;
    children[0].bytes += 1;
    let bad_root = put_node(&repo, &Node::from_children(1, &children));
    let repo = fresh(&repo);
    let bad = repo.tree(bad_root).expect("the root alone is sound");
    let leaf = children[0].id;

    // A point read for the stray key goes to leaf 1 and does not see it;
    // one that passes through leaf 0 refuses it.
    assert_corrupt(repo.get(&bad, b"k00000000"), leaf, "get");
    assert_corrupt(
        repo.range(&bad, ..).collect::<kvgit_core::Result<Vec<_>>>(),
        leaf,
        "range",
    );
    assert_corrupt(
        repo.diff(&tree, &bad)
            .collect::<kvgit_core::Result<Vec<_>>>(),
        leaf,
        "diff",
    );
    assert_corrupt(
        repo.apply(&bad, [(b"k00000001".to_vec(), Some(b"x".to_vec()))]),
        leaf,
        "apply",
    );

    let commit = put_commit(&repo, bad_root, vec![], 1);
    repo.move_ref("heads/main", None, Some(&commit))
        .expect("ref");
    let report = repo.verify().expect("verify");
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains(&leaf.to_hex()) && p.contains("past the next subtree")),
        "{:?}",
        report.problems
    );
}

#[test]
fn a_single_child_node_before_the_end_of_its_level_is_refused() {
    let repo = Repo::memory();
    let leaf = |from: u32| {
        let node = Node::from_leaf_entries(
            &(from..from + 4)
                .map(|i| (kv(i).0, Value::Inline(kv(i).1)))
                .collect::<Vec<_>>(),
        );
        ChildEntry {
            key: kv(from).0,
            id: put_node(&repo, &node),
            count: 4,
            bytes: node.value_bytes(),
        }
    };
    let (a, b, c) = (leaf(0), leaf(4), leaf(8));
    // Level 1: [a] then [b, c]. Only the last node of a level may hold a
    // single entry, so [a] cannot come first.
    let lone = Node::from_children(1, std::slice::from_ref(&a));
    let pair = Node::from_children(1, &[b.clone(), c]);
    let lone = ChildEntry {
        key: a.key.clone(),
        id: put_node(&repo, &lone),
        count: 4,
        bytes: a.bytes,
    };
    let pair = ChildEntry {
        key: b.key.clone(),
        id: put_node(&repo, &pair),
        count: 8,
        bytes: pair.value_bytes(),
    };
    let root = put_node(&repo, &Node::from_children(2, &[lone.clone(), pair]));
    let bad = repo.tree(root).expect("the root alone is sound");
    assert_corrupt(repo.get(&bad, &kv(1).0), lone.id, "get");
    assert_eq!(repo.get(&bad, &kv(9).0).expect("get"), Some(kv(9).1));
    assert_corrupt(
        repo.range(&bad, ..).collect::<kvgit_core::Result<Vec<_>>>(),
        lone.id,
        "range",
    );
    assert_corrupt(repo.apply(&bad, [(kv(2).0, None)]), lone.id, "apply");

    let commit = put_commit(&repo, root, vec![], 1);
    repo.move_ref("heads/main", None, Some(&commit))
        .expect("ref");
    let report = repo.verify().expect("verify");
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(
        report.problems[0].contains(&lone.id.to_hex())
            && report.problems[0].contains("single entry"),
        "{:?}",
        report.problems
    );
}

/// Root over leaves with child 0's entry changed by `change`.
fn root_with(repo: &Repo, tree: &Tree, change: impl Fn(&mut ChildEntry)) -> ObjectId {
    let root = repo.node(&tree.root()).expect("root");
    let mut children = entries(&root);
    change(&mut children[0]);
    put_node(repo, &Node::from_children(root.level(), &children))
}

#[test]
fn a_wrong_count_or_byte_total_is_refused_by_every_reader_that_meets_it() {
    let repo = Repo::memory();
    let tree = two_level_tree(&repo);
    for (what, change) in [
        (
            "count",
            Box::new(|c: &mut ChildEntry| c.count += 1) as Box<dyn Fn(&mut ChildEntry)>,
        ),
        ("bytes", Box::new(|c: &mut ChildEntry| c.bytes -= 1)),
    ] {
        let bad_root = root_with(&repo, &tree, change);
        let repo = fresh(&repo);
        let bad = repo.tree(bad_root).expect("the root alone is sound");
        let leaf = repo
            .node(&bad_root)
            .expect("root")
            .child(0)
            .expect("child")
            .id;
        assert_corrupt(repo.get(&bad, b"k00000005"), leaf, what);
        assert_corrupt(
            repo.range(&bad, ..).collect::<kvgit_core::Result<Vec<_>>>(),
            leaf,
            what,
        );
        assert_corrupt(
            repo.diff(&tree, &bad)
                .collect::<kvgit_core::Result<Vec<_>>>(),
            leaf,
            what,
        );
        assert_corrupt(
            repo.apply(&bad, [(b"k00000005".to_vec(), None)]),
            leaf,
            what,
        );
    }
}

#[test]
fn an_edit_whose_copied_counts_overflow_is_refused() {
    let repo = Repo::memory();
    let tree = two_level_tree(&repo);
    let root = repo.node(&tree.root()).expect("root");
    let mut children = entries(&root);
    // The first leaf claims nearly every key there can be; the others
    // keep theirs, so the root's sums still fit in 64 bits.
    let rest: u64 = children[1..].iter().map(|c| c.count).sum();
    children[0].count = u64::MAX - rest;
    let bad_root = put_node(&repo, &Node::from_children(1, &children));
    let repo = fresh(&repo);
    let bad = repo.tree(bad_root).expect("the root alone is sound");
    // An insert under the last leaf: the first leaf's entry is copied
    // unread, and the new root's count would pass 2^64.
    let result = repo.apply(&bad, [(b"k00009999".to_vec(), Some(b"x".to_vec()))]);
    assert_corrupt(result, bad_root, "apply");
}
