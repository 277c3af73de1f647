//! Size limits: keys up to 4 KiB, values up to 256 MiB, clear errors
//! beyond; trees of maximal keys stay correct and history independent.

use std::collections::BTreeMap;

use kvgit_core::{Error, Repo, MAX_KEY_LEN, MAX_VALUE_LEN};

#[test]
fn oversized_keys_and_values_are_clear_errors() {
    let repo = Repo::memory();
    let empty = repo.empty_tree().unwrap();
    let err = repo
        .apply(&empty, vec![(vec![b'k'; MAX_KEY_LEN + 1], Some(vec![1]))])
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidKey { len, .. } if len == MAX_KEY_LEN + 1),
        "{err}"
    );
    assert!(err.to_string().contains("4096"), "{err}");
    let err = repo
        .apply(&empty, vec![(Vec::new(), Some(vec![1]))])
        .unwrap_err();
    assert!(matches!(err, Error::InvalidKey { len: 0, .. }), "{err}");
    // The value is never touched beyond its length: calloc keeps this cheap.
    let huge = vec![0u8; MAX_VALUE_LEN as usize + 1];
    let err = repo
        .apply(&empty, vec![(b"k".to_vec(), Some(huge))])
        .unwrap_err();
    assert!(matches!(err, Error::ValueTooLarge { .. }), "{err}");
    // Nothing was half-applied: the store still has only the empty tree.
    assert!(repo.range(&empty, ..).next().is_none());
}

#[test]
fn large_values_round_trip_as_blobs() {
    let repo = Repo::memory();
    let big: Vec<u8> = (0..16u32 << 20).map(|i| (i % 253) as u8).collect();
    let tree = repo
        .build_tree(vec![
            (b"big".to_vec(), big.clone()),
            (b"small".to_vec(), vec![1; 256]),
        ])
        .unwrap();
    assert_eq!(
        repo.get(&tree, b"big").unwrap().as_deref(),
        Some(big.as_slice())
    );
    assert_eq!(tree.value_bytes(), big.len() as u64 + 256);
    match repo.get_value(&tree, b"big").unwrap() {
        Some(kvgit_core::Value::Blob { len, .. }) => assert_eq!(len, big.len() as u64),
        other => panic!("expected a blob reference, got {other:?}"),
    }
    assert!(matches!(
        repo.get_value(&tree, b"small").unwrap(),
        Some(kvgit_core::Value::Inline(_))
    ));
}

#[test]
fn maximal_keys_build_and_edit_consistently() {
    let repo = Repo::memory();
    let key = |i: u32| {
        let mut k = format!("{i:06}").into_bytes();
        k.resize(MAX_KEY_LEN, b'x');
        k
    };
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> =
        (0..600).map(|i| (key(i), vec![i as u8; 256])).collect();
    let mut tree = repo.build_tree(model.clone()).unwrap();
    assert!(
        tree.level() >= 2,
        "maximal keys make a tall tree: level {}",
        tree.level()
    );
    for round in 0..5u32 {
        let batch: Vec<(Vec<u8>, Option<Vec<u8>>)> = (0..40)
            .map(|j| {
                let i = (round * 97 + j * 31) % 700;
                let v = if j % 3 == 0 {
                    None
                } else {
                    Some(vec![j as u8; 200])
                };
                (key(i), v)
            })
            .collect();
        tree = repo.apply(&tree, batch.clone()).unwrap();
        for (k, v) in batch {
            match v {
                Some(v) => model.insert(k, v),
                None => model.remove(&k),
            };
        }
        assert_eq!(
            tree,
            repo.build_tree(model.clone()).unwrap(),
            "round {round}"
        );
    }
    assert_eq!(tree.len(), model.len() as u64);
}
