//! Random and mutated bytes fed to every decoder: an error, never a panic,
//! and never a wrong answer for bytes that do not hash to their id.

use std::collections::BTreeMap;

use kvgit_core::object::{decode_blob, Commit, Node};
use kvgit_core::{Error, ObjectId, Repo};
use proptest::prelude::*;

/// Valid objects of every kind, to mutate.
fn samples() -> Vec<Vec<u8>> {
    let repo = Repo::memory();
    let small = repo
        .build_tree((0..30u32).map(|i| (format!("k{i:03}").into_bytes(), vec![i as u8; 20])))
        .expect("build");
    let big = repo
        .build_tree((0..3000u32).map(|i| (format!("k{i:05}").into_bytes(), vec![i as u8; 120])))
        .expect("build");
    let blob_tree = repo
        .build_tree(vec![(b"big".to_vec(), vec![1u8; 1000])])
        .expect("build");
    let mut out = vec![
        repo.object_bytes(&small.root()).expect("leaf"),
        repo.object_bytes(&big.root()).expect("internal"),
        kvgit_core::object::encode_blob(&[5u8; 300]),
        repo.object_bytes(&blob_tree.root())
            .expect("leaf with blob"),
    ];
    let commit = Commit {
        root: small.root(),
        parents: vec![big.root(), blob_tree.root()],
        height: 3,
        time_micros: 12345,
        message: "merge".into(),
        metadata: BTreeMap::from([("k".to_string(), "v".to_string())]),
    };
    out.push(commit.encode());
    out
}

/// Runs every decoder on `bytes`, under both the true hash (so the checks
/// past the hash run) and a wrong one.
fn decode_all(bytes: &[u8]) {
    let id = ObjectId::hash(bytes);
    let wrong = ObjectId::hash(b"something else");
    for id in [id, wrong] {
        let results = [
            Node::decode(&id, bytes).err(),
            Commit::decode(&id, bytes).err(),
            decode_blob(&id, bytes).err(),
        ];
        for err in results.into_iter().flatten() {
            match err {
                Error::Corrupt { id: named, .. } => assert_eq!(named, id),
                other => panic!("decoders must report Corrupt, got {other}"),
            }
        }
    }
    // Under the wrong id every decoder must refuse.
    assert!(Node::decode(&wrong, bytes).is_err());
    assert!(Commit::decode(&wrong, bytes).is_err());
    assert!(decode_blob(&wrong, bytes).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(512),
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        decode_all(&bytes);
    }

    #[test]
    fn random_bytes_with_valid_header_never_panic(kind in 1u8..=4, body in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut bytes = vec![1, kind];
        bytes.extend(body);
        decode_all(&bytes);
    }

    #[test]
    fn mutated_objects_never_panic(
        which in 0usize..5,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let mut bytes = samples().swap_remove(which);
        for (at, x) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= x.max(1);
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len()));
        }
        decode_all(&bytes);
    }
}

#[test]
fn huge_length_prefixes_do_not_allocate() {
    // A leaf claiming 2^63 entries, and a blob claiming 2^62 bytes.
    let mut leaf = vec![1, 1];
    leaf.extend([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
    decode_all(&leaf);
    let mut blob = vec![1, 3];
    blob.extend([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40]);
    decode_all(&blob);
}

#[test]
fn samples_decode() {
    for bytes in samples() {
        let id = ObjectId::hash(&bytes);
        let ok = Node::decode(&id, &bytes).is_ok() as u8
            + Commit::decode(&id, &bytes).is_ok() as u8
            + decode_blob(&id, &bytes).is_ok() as u8;
        assert_eq!(ok, 1, "exactly one decoder accepts a valid object");
    }
}

#[test]
fn corrupt_store_reads_name_the_object() {
    use kvgit_core::store::MemoryBackend;
    use kvgit_core::{Backend, RepoOptions};
    use std::sync::Arc;
    let backend = Arc::new(MemoryBackend::new());
    let repo = Repo::new(backend.clone(), RepoOptions::default());
    let tree = repo
        .build_tree((0..5000u32).map(|i| (format!("k{i:05}").into_bytes(), vec![1u8; 50])))
        .expect("build");
    let root = repo.node(&tree.root()).expect("root");
    let child = root.child(1).expect("internal root").id;
    // Overwrite a child with bytes of a different, valid node.
    let other = repo
        .build_tree(vec![(b"x".to_vec(), b"y".to_vec())])
        .expect("build");
    let other_bytes = repo.object_bytes(&other.root()).expect("bytes");
    backend.delete_objects(&[child]).expect("delete");
    backend
        .put_objects(vec![(child, other_bytes)])
        .expect("put");
    let fresh = Repo::new(backend, RepoOptions::default());
    let err = fresh
        .range(&tree, ..)
        .collect::<Result<Vec<_>, _>>()
        .unwrap_err();
    match err {
        Error::Corrupt { id, .. } => assert_eq!(id, child),
        other => panic!("expected Corrupt, got {other}"),
    }
    // A missing node is reported as such.
    fresh.backend().delete_objects(&[child]).expect("delete");
    let fresh = Repo::new(fresh.backend().clone(), RepoOptions::default());
    let err = fresh
        .range(&tree, ..)
        .collect::<Result<Vec<_>, _>>()
        .unwrap_err();
    assert!(
        matches!(err, Error::MissingObject(id) if id == child),
        "{err}"
    );
}
