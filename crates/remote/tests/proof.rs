//! Merkle proofs of presence and absence, checked without a store.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use kvgit_core::{ObjectId, Repo};
use kvgit_remote::{get_verified, prove, Connection, Error, Proof, ServeOptions};

fn root_of(repo: &Repo) -> ObjectId {
    repo.read_commit(&repo.get_ref("heads/main").unwrap().unwrap())
        .unwrap()
        .root
}

#[test]
fn a_proof_of_presence_gives_the_value_and_one_of_absence_gives_none() {
    let repo = store_with(20_000, 30);
    put(&repo, "main", "large", &"L".repeat(10_000));
    let root = root_of(&repo);
    let depth = repo.tree(root).unwrap().level() as usize + 1;
    for i in [0, 1, 7_777, 19_999] {
        let proof = prove(&repo, &root, &key(i)).unwrap();
        assert_eq!(proof.nodes.len(), depth);
        assert_eq!(proof.verify(&root, &key(i)).unwrap(), Some(value(i, 30)));
    }
    let proof = prove(&repo, &root, b"large").unwrap();
    assert!(proof.blob.is_some());
    assert_eq!(
        proof.verify(&root, b"large").unwrap(),
        Some("L".repeat(10_000).into_bytes())
    );
    for absent in [&b"a"[..], b"k00000000x", b"zzz", b"k"] {
        let proof = prove(&repo, &root, absent).unwrap();
        assert_eq!(proof.verify(&root, absent).unwrap(), None, "{absent:?}");
    }
    let empty = Repo::memory();
    let tree = empty.empty_tree().unwrap();
    let proof = prove(&empty, &tree.root(), b"x").unwrap();
    assert_eq!(proof.verify(&tree.root(), b"x").unwrap(), None);
}

#[test]
fn a_tampered_or_misused_proof_is_refused() {
    let repo = store_with(20_000, 30);
    put(&repo, "main", "large", &"L".repeat(10_000));
    let root = root_of(&repo);
    let proof = prove(&repo, &root, &key(500)).unwrap();
    // Any byte of any node changed.
    for n in 0..proof.nodes.len() {
        let mut bad = proof.clone();
        let last = bad.nodes[n].len() - 1;
        bad.nodes[n][last] ^= 1;
        assert!(matches!(
            bad.verify(&root, &key(500)),
            Err(Error::BadProof(_))
        ));
    }
    // Another root, another key's path, a cut path, an extra node.
    assert!(proof.verify(&ObjectId::hash(b"x"), &key(500)).is_err());
    assert!(proof.verify(&root, &key(15_000)).is_err());
    let mut short = proof.clone();
    short.nodes.pop();
    assert!(short.verify(&root, &key(500)).is_err());
    let mut long = proof.clone();
    long.nodes.push(proof.nodes[0].clone());
    assert!(long.verify(&root, &key(500)).is_err());
    // A blob that is not the value's, or none.
    let with_blob = prove(&repo, &root, b"large").unwrap();
    let mut bad = with_blob.clone();
    if let Some(b) = bad.blob.as_mut() {
        b[100] ^= 1;
    }
    assert!(bad.verify(&root, b"large").is_err());
    let no_blob = Proof {
        blob: None,
        ..with_blob.clone()
    };
    assert!(no_blob.verify(&root, b"large").is_err());
    let stray = Proof {
        blob: with_blob.blob.clone(),
        ..proof.clone()
    };
    assert!(stray.verify(&root, &key(500)).is_err());
}

#[test]
fn a_value_fetched_with_its_proof_from_a_remote_is_checked() {
    let server = store_with(5_000, 30);
    let head = put(&server, "main", "large", &"L".repeat(1_000));
    let mut conn = Connection::in_process(server.clone(), ServeOptions::default()).unwrap();
    let got = get_verified(&mut conn, "heads/main", &key(42), Some(&head)).unwrap();
    assert_eq!(got.commit, head);
    assert_eq!(got.value, Some(value(42, 30)));
    let got = get_verified(&mut conn, "heads/main", b"large", None).unwrap();
    assert_eq!(got.value, Some("L".repeat(1_000).into_bytes()));
    let got = get_verified(&mut conn, "heads/main", b"nope", None).unwrap();
    assert_eq!(got.value, None);
    let traffic = conn.channel().traffic();
    // Only paths travelled, not the store.
    assert!(traffic.bytes_received < 64 * 1024, "{traffic:?}");
    let err = get_verified(
        &mut conn,
        "heads/main",
        b"x",
        Some(&ObjectId::hash(b"other")),
    )
    .unwrap_err();
    assert!(matches!(err, Error::BadProof(_)), "{err}");
    conn.close().unwrap();
}
