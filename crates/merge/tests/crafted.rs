//! Merges that meet crafted trees: a child whose parent's entry carries a
//! wrong key count or byte total, written straight to the backend. The
//! merge refuses with `Error::Corrupt` naming the node, writes no merge
//! commit and leaves the ref where it was.

use kvgit_core::object::{ChildEntry, Node};
use kvgit_core::{CommitSpec, ObjectId, Repo, Tree};
use kvgit_merge::{merge_into_ref, merge_trees, tree, Error, RefOptions, Registry};

fn kv(i: u32) -> (Vec<u8>, Vec<u8>) {
    (format!("k{i:08}").into_bytes(), i.to_string().into_bytes())
}

fn edit(i: u32, v: &str) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    vec![(kv(i).0, Some(v.as_bytes().to_vec()))]
}

/// A copy of `tree`'s root (level 1) with child 0's entry changed.
fn crafted(repo: &Repo, tree: &Tree, change: Change) -> (Tree, ObjectId) {
    let root = repo.node(&tree.root()).expect("root");
    let mut children: Vec<ChildEntry> = root
        .children()
        .map(|c| ChildEntry {
            key: c.key.to_vec(),
            id: c.id,
            count: c.count,
            bytes: c.bytes,
        })
        .collect();
    change(&mut children[0]);
    let node = Node::from_children(root.level(), &children);
    let id = ObjectId::hash(node.bytes());
    repo.backend()
        .put_objects(vec![(id, node.bytes().to_vec())])
        .expect("put");
    (
        repo.tree(id).expect("the root alone is sound"),
        children[0].id,
    )
}

/// A change to a child entry.
type Change = fn(&mut ChildEntry);

fn assert_corrupt<T: std::fmt::Debug>(result: Result<T, Error>, id: ObjectId, what: &str) {
    match result {
        Err(Error::Core(kvgit_core::Error::Corrupt { id: got, reason })) => {
            assert_eq!(got, id, "{what}: names the wrong object ({reason})")
        }
        other => panic!("{what}: expected Corrupt naming {id}, got {other:?}"),
    }
}

#[test]
fn merge_trees_refuses_a_side_whose_child_counts_are_wrong() {
    let repo = Repo::memory();
    let good = repo.build_tree((0..2000).map(kv)).expect("build");
    assert_eq!(good.level(), 1);
    let o = tree::Options::default();
    let r = Registry::new();
    let changes: [(&str, Change); 2] = [("count", |c| c.count += 1), ("bytes", |c| c.bytes += 7)];
    for (what, change) in changes {
        let (bad, leaf) = crafted(&repo, &good, change);
        let edited = repo.apply(&good, edit(1999, "x")).expect("apply");
        let other = repo.apply(&good, edit(1000, "y")).expect("apply");
        assert_corrupt(merge_trees(&repo, &good, &bad, &other, &r, &o), leaf, what);
        assert_corrupt(merge_trees(&repo, &good, &edited, &bad, &r, &o), leaf, what);
        assert_corrupt(merge_trees(&repo, &bad, &bad, &good, &r, &o), leaf, what);
        assert_corrupt(merge_trees(&repo, &good, &good, &bad, &r, &o), leaf, what);
    }
}

#[test]
fn merge_into_ref_writes_no_commit_over_wrong_child_counts() {
    let repo = Repo::memory();
    let good = repo.build_tree((0..2000).map(kv)).expect("build");
    let (bad, leaf) = crafted(&repo, &good, |c| c.count += 1);
    let commit = |tree: &Tree, parents: Vec<ObjectId>| {
        repo.write_commit(
            tree,
            &CommitSpec {
                parents,
                ..CommitSpec::default()
            },
        )
        .expect("commit")
    };
    let base = commit(&good, vec![]);
    let main = commit(
        &repo.apply(&good, edit(1999, "x")).expect("apply"),
        vec![base],
    );
    let dev = commit(&bad, vec![base]);
    repo.move_ref("heads/main", None, Some(&main)).expect("ref");
    let before = repo.backend().list_refs("").expect("refs");
    let mut objects = 0;
    repo.backend()
        .for_each_object(&mut |_, _| {
            objects += 1;
            Ok(true)
        })
        .expect("count");

    assert_corrupt(
        merge_into_ref(
            &repo,
            "heads/main",
            &dev,
            &Registry::new(),
            &RefOptions::default(),
        ),
        leaf,
        "merge_into_ref",
    );
    assert_eq!(repo.backend().list_refs("").expect("refs"), before);
    let mut after = 0;
    repo.backend()
        .for_each_object(&mut |_, _| {
            after += 1;
            Ok(true)
        })
        .expect("count");
    assert_eq!(after, objects, "nothing written");
}
