//! Tree nodes: leaves of `(key, value)` entries and internal nodes of child
//! entries carrying subtree aggregates.

use serde::{Deserialize, Serialize};

use super::{
    check_key, decode_body, open, push_varint, Kind, FORMAT_VERSION, INLINE_MAX, MAX_VALUE_LEN,
};
use crate::error::{Error, Result};
use crate::id::ObjectId;

/// A value as stored in a leaf: inline bytes (at most [`INLINE_MAX`]) or a
/// reference to a blob object holding a larger value.
///
/// The form is canonical (a value's length alone decides it), so two values
/// are equal exactly when their bytes are equal.
#[derive(Clone, PartialEq, Eq, Debug, Hash, Serialize, Deserialize)]
pub enum Value {
    /// The value's bytes, stored in the leaf.
    Inline(#[serde(with = "serde_bytes")] Vec<u8>),
    /// A value stored as a separate blob object.
    Blob {
        /// The blob object's id.
        id: ObjectId,
        /// The value's length in bytes.
        len: u64,
    },
}

impl Value {
    /// The length of the value in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Value::Inline(v) => v.len() as u64,
            Value::Blob { len, .. } => *len,
        }
    }

    /// True for the empty value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One `(key, value)` entry of a leaf.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct LeafEntry {
    /// The key.
    #[serde(with = "serde_bytes")]
    pub key: Vec<u8>,
    /// The value.
    pub value: Value,
}

/// One child entry of an internal node.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ChildEntry {
    /// The first key of the child's subtree.
    #[serde(with = "serde_bytes")]
    pub key: Vec<u8>,
    /// The child node's id.
    pub id: ObjectId,
    /// How many keys the child's subtree holds.
    pub count: u64,
    /// The total length of the values in the child's subtree.
    pub bytes: u64,
}

#[derive(Serialize, Deserialize)]
struct InternalBody {
    level: u8,
    children: Vec<ChildEntry>,
}

#[derive(Serialize)]
struct LeafEntryRef<'a> {
    #[serde(with = "serde_bytes")]
    key: &'a [u8],
    value: &'a Value,
}

#[derive(Serialize)]
struct ChildEntryRef<'a> {
    #[serde(with = "serde_bytes")]
    key: &'a [u8],
    id: &'a ObjectId,
    count: u64,
    bytes: u64,
}

/// A decoded tree node. Nodes are immutable once built, so they are shared
/// through the node cache as `Arc<Node>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    body: Body,
    count: u64,
    bytes: u64,
    encoded_len: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Body {
    Leaf(Vec<LeafEntry>),
    Internal {
        level: u8,
        children: Vec<ChildEntry>,
    },
}

impl Node {
    /// A leaf node from its entries (assumed sorted and valid).
    pub(crate) fn leaf(entries: Vec<LeafEntry>, encoded_len: usize) -> Node {
        let bytes = entries.iter().map(|e| e.value.len()).sum();
        Node {
            count: entries.len() as u64,
            bytes,
            body: Body::Leaf(entries),
            encoded_len,
        }
    }

    /// An internal node from its children (assumed sorted and valid).
    pub(crate) fn internal(level: u8, children: Vec<ChildEntry>, encoded_len: usize) -> Node {
        let count = children.iter().map(|c| c.count).sum();
        let bytes = children.iter().map(|c| c.bytes).sum();
        Node {
            count,
            bytes,
            body: Body::Internal { level, children },
            encoded_len,
        }
    }

    /// The node's level: 0 for a leaf, 1 + the children's level otherwise.
    pub fn level(&self) -> u8 {
        match &self.body {
            Body::Leaf(_) => 0,
            Body::Internal { level, .. } => *level,
        }
    }

    /// The number of keys in the node's subtree.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The total value bytes in the node's subtree.
    pub fn value_bytes(&self) -> u64 {
        self.bytes
    }

    /// The length of the node's encoding in bytes.
    pub fn encoded_len(&self) -> usize {
        self.encoded_len
    }

    /// The entries if this is a leaf.
    pub fn leaf_entries(&self) -> Option<&[LeafEntry]> {
        match &self.body {
            Body::Leaf(e) => Some(e),
            Body::Internal { .. } => None,
        }
    }

    /// The children if this is an internal node.
    pub fn children(&self) -> Option<&[ChildEntry]> {
        match &self.body {
            Body::Leaf(_) => None,
            Body::Internal { children, .. } => Some(children),
        }
    }

    /// The number of entries (leaf entries or children) in this node.
    pub fn len(&self) -> usize {
        match &self.body {
            Body::Leaf(e) => e.len(),
            Body::Internal { children, .. } => children.len(),
        }
    }

    /// True for a node without entries (only the empty tree's root).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The key of entry `i` (leaf key or child separator).
    pub fn key_at(&self, i: usize) -> Option<&[u8]> {
        match &self.body {
            Body::Leaf(e) => e.get(i).map(|e| e.key.as_slice()),
            Body::Internal { children, .. } => children.get(i).map(|c| c.key.as_slice()),
        }
    }

    /// The first key of the node, if it has entries.
    pub fn first_key(&self) -> Option<&[u8]> {
        self.key_at(0)
    }

    /// Approximate heap footprint, for the cache's byte budget.
    pub(crate) fn footprint(&self) -> usize {
        // Encoded size plus per-entry vector and allocation overheads.
        self.encoded_len + self.len() * 64 + 64
    }

    /// Encodes the node as a whole (the streaming encoder in the chunker
    /// produces the same bytes entry by entry).
    pub fn encode(&self) -> Vec<u8> {
        match &self.body {
            Body::Leaf(entries) => super::encode(Kind::Leaf, entries),
            Body::Internal { level, children } => {
                let mut out = vec![FORMAT_VERSION, Kind::Internal as u8, *level];
                push_varint(&mut out, children.len() as u64);
                for c in children {
                    encode_child_entry(&mut out, &c.key, &c.id, c.count, c.bytes);
                }
                out
            }
        }
    }

    /// Decodes and validates a node, checking its hash against `id`.
    pub fn decode(id: &ObjectId, bytes: &[u8]) -> Result<Node> {
        let (kind, body) = open(id, bytes)?;
        match kind {
            Kind::Leaf => {
                let entries: Vec<LeafEntry> = decode_body(id, body)?;
                check_sorted(id, entries.iter().map(|e| e.key.as_slice()))?;
                for e in &entries {
                    check_value_form(id, &e.value)?;
                }
                Ok(Node::leaf(entries, bytes.len()))
            }
            Kind::Internal => {
                let InternalBody { level, children } = decode_body(id, body)?;
                if level == 0 || level > MAX_LEVEL {
                    return Err(Error::corrupt(
                        *id,
                        format!("internal node at level {level}"),
                    ));
                }
                if children.is_empty() {
                    return Err(Error::corrupt(*id, "internal node without children"));
                }
                check_sorted(id, children.iter().map(|c| c.key.as_slice()))?;
                let mut count = 0u64;
                let mut total = 0u64;
                for c in &children {
                    if c.count == 0 {
                        return Err(Error::corrupt(*id, "child entry with an empty subtree"));
                    }
                    count = count
                        .checked_add(c.count)
                        .ok_or_else(|| Error::corrupt(*id, "key count overflows"))?;
                    total = total
                        .checked_add(c.bytes)
                        .ok_or_else(|| Error::corrupt(*id, "value bytes overflow"))?;
                }
                Ok(Node {
                    body: Body::Internal { level, children },
                    count,
                    bytes: total,
                    encoded_len: bytes.len(),
                })
            }
            other => Err(Error::corrupt(
                *id,
                format!("expected a tree node, found {other:?}"),
            )),
        }
    }
}

/// The deepest level a valid tree can reach. With at least two entries per
/// node below the root, 64 levels hold more keys than can exist.
pub(crate) const MAX_LEVEL: u8 = 64;

fn check_sorted<'a>(id: &ObjectId, keys: impl Iterator<Item = &'a [u8]>) -> Result<()> {
    let mut prev: Option<&[u8]> = None;
    for key in keys {
        check_key(key).map_err(|e| Error::corrupt(*id, e.to_string()))?;
        if let Some(p) = prev {
            if p >= key {
                return Err(Error::corrupt(*id, "keys are not strictly sorted"));
            }
        }
        prev = Some(key);
    }
    Ok(())
}

fn check_value_form(id: &ObjectId, value: &Value) -> Result<()> {
    match value {
        Value::Inline(v) if v.len() > INLINE_MAX => Err(Error::corrupt(
            *id,
            "inline value longer than the inline limit",
        )),
        Value::Blob { len, .. } if *len <= INLINE_MAX as u64 || *len > MAX_VALUE_LEN => Err(
            Error::corrupt(*id, format!("blob reference of invalid length {len}")),
        ),
        _ => Ok(()),
    }
}

/// Appends one leaf entry's encoding to `out`.
pub(crate) fn encode_leaf_entry(out: &mut Vec<u8>, key: &[u8], value: &Value) {
    postcard::to_io(&LeafEntryRef { key, value }, out).expect("serialising into a Vec cannot fail");
}

/// Appends one child entry's encoding to `out`.
pub(crate) fn encode_child_entry(
    out: &mut Vec<u8>,
    key: &[u8],
    id: &ObjectId,
    count: u64,
    bytes: u64,
) {
    postcard::to_io(
        &ChildEntryRef {
            key,
            id,
            count,
            bytes,
        },
        out,
    )
    .expect("serialising into a Vec cannot fail");
}

/// Assembles a whole node from `n` already encoded entries at `level`.
pub(crate) fn finish_node(level: u8, n: usize, entries: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() + 12);
    out.push(FORMAT_VERSION);
    if level == 0 {
        out.push(Kind::Leaf as u8);
    } else {
        out.push(Kind::Internal as u8);
        out.push(level);
    }
    push_varint(&mut out, n as u64);
    out.extend_from_slice(entries);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(n: usize) -> Vec<LeafEntry> {
        (0..n)
            .map(|i| LeafEntry {
                key: format!("k{i:08}").into_bytes(),
                value: Value::Inline(vec![i as u8; 100]),
            })
            .collect()
    }

    #[test]
    fn streaming_encoding_equals_whole_encoding() {
        let entries = leaf(40);
        let mut buf = Vec::new();
        for e in &entries {
            encode_leaf_entry(&mut buf, &e.key, &e.value);
        }
        let streamed = finish_node(0, entries.len(), &buf);
        let node = Node::leaf(entries, streamed.len());
        assert_eq!(streamed, node.encode());
        let id = ObjectId::hash(&streamed);
        assert_eq!(Node::decode(&id, &streamed).unwrap(), node);

        let children: Vec<ChildEntry> = (0..5)
            .map(|i| ChildEntry {
                key: vec![b'a' + i],
                id: ObjectId::hash(&[i]),
                count: u64::from(i) + 1,
                bytes: 1000,
            })
            .collect();
        let mut buf = Vec::new();
        for c in &children {
            encode_child_entry(&mut buf, &c.key, &c.id, c.count, c.bytes);
        }
        let streamed = finish_node(3, children.len(), &buf);
        let whole = crate::object::encode(
            Kind::Internal,
            &InternalBody {
                level: 3,
                children: children.clone(),
            },
        );
        assert_eq!(streamed, whole);
        let node = Node::decode(&ObjectId::hash(&whole), &whole).unwrap();
        assert_eq!(node.level(), 3);
        assert_eq!(node.count(), 15);
        assert_eq!(node.value_bytes(), 5000);
    }

    #[test]
    fn unsorted_leaf_is_corrupt() {
        let mut entries = leaf(3);
        entries.swap(0, 2);
        let bytes = crate::object::encode(Kind::Leaf, &entries);
        let err = Node::decode(&ObjectId::hash(&bytes), &bytes).unwrap_err();
        assert!(err.to_string().contains("sorted"), "{err}");
    }

    #[test]
    fn non_canonical_values_are_corrupt() {
        let entries = vec![LeafEntry {
            key: b"a".to_vec(),
            value: Value::Inline(vec![0; INLINE_MAX + 1]),
        }];
        let bytes = crate::object::encode(Kind::Leaf, &entries);
        assert!(Node::decode(&ObjectId::hash(&bytes), &bytes).is_err());
        let entries = vec![LeafEntry {
            key: b"a".to_vec(),
            value: Value::Blob {
                id: ObjectId::hash(b"x"),
                len: 3,
            },
        }];
        let bytes = crate::object::encode(Kind::Leaf, &entries);
        assert!(Node::decode(&ObjectId::hash(&bytes), &bytes).is_err());
    }
}
