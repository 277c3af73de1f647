//! Commits, refs and history: the commit protocol's steps, first-parent and
//! whole-DAG logs, prefix resolution of commit ids.

use kvgit_core::{CasOutcome, CommitSpec, Error, ObjectId, Repo, Tree};

fn put(repo: &Repo, tree: &Tree, k: &str, v: &str) -> Tree {
    repo.apply(
        tree,
        vec![(k.as_bytes().to_vec(), Some(v.as_bytes().to_vec()))],
    )
    .expect("apply")
}

fn commit(repo: &Repo, tree: &Tree, parents: &[ObjectId], msg: &str, time: u64) -> ObjectId {
    repo.write_commit(
        tree,
        &CommitSpec {
            parents: parents.to_vec(),
            message: msg.into(),
            time_micros: Some(time),
            ..CommitSpec::default()
        },
    )
    .expect("commit")
}

#[test]
fn commit_moves_ref_only_from_expected_head() {
    let repo = Repo::memory();
    let t0 = repo.empty_tree().unwrap();
    let t1 = put(&repo, &t0, "a", "1");
    let (c1, out) = repo
        .commit("heads/main", None, &t1, &CommitSpec::default())
        .unwrap();
    assert_eq!(out, CasOutcome::Swapped);
    let read = repo.read_commit(&c1).unwrap();
    assert_eq!(read.root, t1.root());
    assert_eq!(read.height, 1);
    // A second writer that still believes the branch is absent loses and
    // learns the actual head.
    let (_, out) = repo
        .commit("heads/main", None, &t1, &CommitSpec::default())
        .unwrap();
    assert_eq!(out, CasOutcome::Mismatch { actual: Some(c1) });
    let t2 = put(&repo, &t1, "b", "2");
    let spec = CommitSpec {
        parents: vec![c1],
        ..CommitSpec::default()
    };
    let (c2, out) = repo.commit("heads/main", Some(&c1), &t2, &spec).unwrap();
    assert_eq!(out, CasOutcome::Swapped);
    assert_eq!(repo.read_commit(&c2).unwrap().height, 2);
    assert_eq!(repo.get_ref("heads/main").unwrap(), Some(c2));
}

#[test]
fn logs_walk_newest_first() {
    let repo = Repo::memory();
    let t = repo.empty_tree().unwrap();
    let t1 = put(&repo, &t, "a", "1");
    let root = commit(&repo, &t1, &[], "root", 1);
    let t2 = put(&repo, &t1, "b", "2");
    let left = commit(&repo, &t2, &[root], "left", 2);
    let t3 = put(&repo, &t1, "c", "3");
    let right = commit(&repo, &t3, &[root], "right", 3);
    let t4 = put(&repo, &t2, "c", "3");
    let merge = commit(&repo, &t4, &[left, right], "merge", 4);

    let first: Vec<String> = repo
        .first_parent_log(merge)
        .map(|r| r.unwrap().1.message)
        .collect();
    assert_eq!(first, ["merge", "left", "root"]);
    let all: Vec<String> = repo.log(&[merge]).map(|r| r.unwrap().1.message).collect();
    assert_eq!(all, ["merge", "right", "left", "root"]);
    assert_eq!(repo.read_commit(&merge).unwrap().height, 3);
}

#[test]
fn unknown_and_prefixed_commits() {
    let repo = Repo::memory();
    let t = repo.empty_tree().unwrap();
    let c = commit(&repo, &t, &[], "one", 1);
    let hex = c.to_hex();
    assert_eq!(repo.resolve_commit_prefix(&hex[..6]).unwrap(), c);
    assert_eq!(repo.resolve_commit_prefix(&hex).unwrap(), c);
    assert!(matches!(
        repo.resolve_commit_prefix("abc"),
        Err(Error::InvalidId(_))
    ));
    assert!(matches!(
        repo.resolve_commit_prefix("xyz1"),
        Err(Error::InvalidId(_))
    ));
    let missing = ObjectId::hash(b"nothing");
    assert!(matches!(
        repo.read_commit(&missing),
        Err(Error::UnknownCommit(_))
    ));
    // A tree node is not a commit.
    assert!(matches!(
        repo.read_commit(&t.root()),
        Err(Error::UnknownCommit(_))
    ));
    // Many commits: some 4-digit prefix is shared, and reported ambiguous.
    let mut ids = vec![c];
    for i in 0..300 {
        ids.push(commit(&repo, &t, &[], &format!("c{i}"), i));
    }
    ids.sort();
    let shared = ids
        .windows(2)
        .find(|w| w[0].to_hex()[..4] == w[1].to_hex()[..4])
        .map(|w| w[0].to_hex()[..4].to_string());
    if let Some(prefix) = shared {
        assert!(matches!(
            repo.resolve_commit_prefix(&prefix),
            Err(Error::AmbiguousId { .. })
        ));
    }
}

#[test]
fn blobs_are_shared_across_keys() {
    let repo = Repo::memory();
    let big = vec![42u8; 10_000];
    let t = repo
        .build_tree(vec![
            (b"a".to_vec(), big.clone()),
            (b"b".to_vec(), big.clone()),
        ])
        .unwrap();
    let mut count = 0;
    repo.backend()
        .for_each_object(&mut |_, _| {
            count += 1;
            Ok(true)
        })
        .unwrap();
    assert_eq!(count, 2, "one leaf and one blob");
    assert_eq!(repo.get(&t, b"b").unwrap(), Some(big));
    assert_eq!(t.value_bytes(), 20_000);
}

#[test]
fn invalid_commits_are_refused_on_write() {
    let repo = Repo::memory();
    let t = repo.empty_tree().unwrap();
    let a = commit(&repo, &t, &[], "a", 1);
    let b = commit(&repo, &t, &[], "b", 2);
    let c = commit(&repo, &t, &[], "c", 3);
    let spec = |parents: Vec<ObjectId>| CommitSpec {
        parents,
        ..CommitSpec::default()
    };
    let err = repo.write_commit(&t, &spec(vec![a, b, c])).unwrap_err();
    assert!(matches!(err, Error::InvalidCommit(_)), "{err}");
    let err = repo.write_commit(&t, &spec(vec![a, a])).unwrap_err();
    assert!(matches!(err, Error::InvalidCommit(_)), "{err}");
    let err = repo
        .write_commit(&t, &spec(vec![ObjectId::hash(b"x")]))
        .unwrap_err();
    assert!(matches!(err, Error::UnknownCommit(_)), "{err}");
    let err = repo
        .commit("bad name", None, &t, &CommitSpec::default())
        .unwrap_err();
    assert!(matches!(err, Error::InvalidRefName { .. }), "{err}");
}

#[test]
fn non_canonical_commit_bytes_are_corrupt() {
    let repo = Repo::memory();
    let t = repo.empty_tree().unwrap();
    let c = commit(&repo, &t, &[], "m", 5);
    let bytes = repo.object_bytes(&c).unwrap();
    // Re-encode the height (1, one byte after root and parent count) as
    // the two-byte varint 0x81 0x00: same value, other bytes.
    let mut odd = bytes[..2 + 32 + 1].to_vec();
    odd.extend([0x81, 0x00]);
    odd.extend(&bytes[2 + 32 + 2..]);
    let id = ObjectId::hash(&odd);
    let err = kvgit_core::Commit::decode(&id, &odd).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
}
