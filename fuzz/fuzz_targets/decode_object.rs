//! Arbitrary bytes into every object decoder, under their true id and a
//! wrong one.
//!
//! - Every failure is `Error::Corrupt` naming the id asked for; nothing
//!   panics, nothing allocates by a length prefix it has not checked.
//! - Under a wrong id every decoder refuses.
//! - At most one decoder accepts any bytes, and what it accepts is
//!   canonical: re-encoding the decoded object gives the same bytes (else
//!   two encodings of one content would have two ids, breaking history
//!   independence), and decoded values obey the inline/blob rule.

#![no_main]

use kvgit_core::object::{decode_blob, encode_blob, ChildEntry, Commit, Node};
use kvgit_core::{Error, ObjectId, Value, INLINE_MAX, MAX_KEY_LEN, MAX_VALUE_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let id = ObjectId::hash(data);
    let mut wrong = id;
    wrong.0[0] ^= 1;

    let node = Node::decode(&id, data);
    let commit = Commit::decode(&id, data);
    let blob = decode_blob(&id, data);
    for err in [
        node.as_ref().err(),
        commit.as_ref().err(),
        blob.as_ref().err(),
    ]
    .into_iter()
    .flatten()
    {
        match err {
            Error::Corrupt { id: named, .. } => assert_eq!(*named, id),
            other => panic!("decoders report Corrupt, not {other:?}"),
        }
    }
    let accepted = [node.is_ok(), commit.is_ok(), blob.is_ok()]
        .into_iter()
        .filter(|ok| *ok)
        .count();
    assert!(accepted <= 1, "{accepted} decoders accept the same bytes");

    if let Ok(node) = node {
        check_node(&node, data);
    }
    if let Ok(commit) = commit {
        assert_eq!(
            commit.encode(),
            data,
            "a commit decodes only from its canonical form"
        );
        assert!(commit.check().is_ok());
    }
    if let Ok(value) = blob {
        assert!(value.len() > INLINE_MAX && value.len() as u64 <= MAX_VALUE_LEN);
        assert_eq!(
            encode_blob(&value),
            data,
            "a blob decodes only from its canonical form"
        );
    }

    for err in [
        Node::decode(&wrong, data).err(),
        Commit::decode(&wrong, data).err(),
        decode_blob(&wrong, data).err(),
    ] {
        match err {
            Some(Error::Corrupt { id: named, .. }) => assert_eq!(named, wrong),
            Some(other) => panic!("decoders report Corrupt, not {other:?}"),
            None => panic!("a decoder accepted bytes under a wrong id"),
        }
    }
});

/// A node that decodes is canonical and consistent: its entries re-encode
/// to the same bytes, keys are valid and strictly increasing, and its
/// aggregates are the sums of its entries.
fn check_node(node: &Node, data: &[u8]) {
    assert_eq!(node.bytes(), data);
    assert_eq!(
        node.len(),
        node.children().len().max(node.leaf_entries().len())
    );
    let mut keys: Vec<&[u8]> = Vec::new();
    let (mut count, mut bytes) = (0u64, 0u64);
    let rebuilt = if node.is_leaf() {
        let mut entries = Vec::new();
        for (key, value) in node.leaf_entries() {
            keys.push(key);
            let value = value.to_value();
            match &value {
                Value::Inline(v) => assert!(v.len() <= INLINE_MAX),
                Value::Blob { len, .. } => {
                    assert!(*len > INLINE_MAX as u64 && *len <= MAX_VALUE_LEN)
                }
            }
            count += 1;
            bytes += value.len();
            entries.push((key.to_vec(), value));
        }
        Node::from_leaf_entries(&entries)
    } else {
        assert!(!node.is_empty(), "an internal node has children");
        let mut children = Vec::new();
        for child in node.children() {
            keys.push(child.key);
            assert!(child.count > 0);
            count += child.count;
            bytes += child.bytes;
            children.push(ChildEntry {
                key: child.key.to_vec(),
                id: child.id,
                count: child.count,
                bytes: child.bytes,
            });
        }
        Node::from_children(node.level(), &children)
    };
    for (i, key) in keys.iter().enumerate() {
        assert!(!key.is_empty() && key.len() <= MAX_KEY_LEN);
        assert_eq!(node.key_at(i), Some(*key));
        if i > 0 {
            assert!(keys[i - 1] < *key, "keys strictly increase");
        }
    }
    assert_eq!(node.first_key(), keys.first().copied());
    assert_eq!((node.count(), node.value_bytes()), (count, bytes));
    assert_eq!(
        rebuilt.bytes(),
        data,
        "a node decodes only from its canonical form"
    );
}
