//! Tree nodes: leaves of `(key, value)` entries and internal nodes of child
//! entries carrying subtree aggregates.
//!
//! A decoded [`Node`] keeps its encoded bytes and the offsets of its
//! entries, nothing else: reading an entry borrows from those bytes, an edit
//! copies unchanged entries as byte ranges, and a cached node costs little
//! more than its encoding. The bytes are parsed by hand (the format is
//! postcard's, see docs/FORMAT.md); tests check the parser against postcard.

use serde::{Deserialize, Serialize};

use super::{push_varint, Kind, FORMAT_VERSION, INLINE_MAX, MAX_KEY_LEN, MAX_VALUE_LEN};
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

    /// A borrowed view.
    pub fn as_ref(&self) -> ValueRef<'_> {
        match self {
            Value::Inline(v) => ValueRef::Inline(v),
            Value::Blob { id, len } => ValueRef::Blob { id: *id, len: *len },
        }
    }
}

/// A value borrowed from a node's bytes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ValueRef<'a> {
    /// Inline bytes.
    Inline(&'a [u8]),
    /// A blob reference.
    Blob {
        /// The blob object's id.
        id: ObjectId,
        /// The value's length in bytes.
        len: u64,
    },
}

impl ValueRef<'_> {
    /// The length of the value in bytes.
    pub fn len(&self) -> u64 {
        match self {
            ValueRef::Inline(v) => v.len() as u64,
            ValueRef::Blob { len, .. } => *len,
        }
    }

    /// True for the empty value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// An owned copy.
    pub fn to_value(&self) -> Value {
        match self {
            ValueRef::Inline(v) => Value::Inline(v.to_vec()),
            ValueRef::Blob { id, len } => Value::Blob { id: *id, len: *len },
        }
    }
}

/// An owned child entry of an internal node.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ChildEntry {
    /// The first key of the child's subtree.
    pub key: Vec<u8>,
    /// The child node's id.
    pub id: ObjectId,
    /// How many keys the child's subtree holds.
    pub count: u64,
    /// The total length of the values in the child's subtree.
    pub bytes: u64,
}

/// A child entry borrowed from a node.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ChildRef<'a> {
    /// The first key of the child's subtree.
    pub key: &'a [u8],
    /// The child node's id.
    pub id: ObjectId,
    /// How many keys the child's subtree holds.
    pub count: u64,
    /// The total length of the values in the child's subtree.
    pub bytes: u64,
}

/// Where one entry sits in a node's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    /// Offset of the entry's first byte (its key's length prefix).
    start: u32,
    /// Offset of the key's first byte.
    key: u32,
    /// Offset just past the key: the value (leaf) or id (internal) follows.
    key_end: u32,
    /// The key's first eight bytes, big-endian, zero-padded: most key
    /// comparisons are decided by this one integer comparison.
    prefix: u64,
}

/// The length of the longest common prefix of `a` and `b`.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    const STEP: usize = 32;
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + STEP <= n && a[i..i + STEP] == b[i..i + STEP] {
        i += STEP;
    }
    i + a[i..n]
        .iter()
        .zip(&b[i..n])
        .take_while(|(x, y)| x == y)
        .count()
}

/// A key's first eight bytes as a big-endian integer, zero-padded. If two
/// keys' prefixes differ, they order as their prefixes do.
fn key_prefix(key: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    let n = key.len().min(8);
    w[..n].copy_from_slice(&key[..n]);
    u64::from_be_bytes(w)
}

/// A decoded tree node. Nodes are immutable once built, so they are shared
/// through the node cache as `Arc<Node>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    bytes: Vec<u8>,
    spans: Vec<Span>,
    level: u8,
    count: u64,
    value_bytes: u64,
}

impl Node {
    /// The node's level: 0 for a leaf, 1 + the children's level otherwise.
    pub fn level(&self) -> u8 {
        self.level
    }

    /// True for a leaf.
    pub fn is_leaf(&self) -> bool {
        self.level == 0
    }

    /// The number of keys in the node's subtree.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The total value bytes in the node's subtree.
    pub fn value_bytes(&self) -> u64 {
        self.value_bytes
    }

    /// The node's encoding.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The length of the node's encoding in bytes.
    pub fn encoded_len(&self) -> usize {
        self.bytes.len()
    }

    /// The number of entries (leaf entries or children) in this node.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True for a node without entries (only the empty tree's root).
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    fn span_end(&self, i: usize) -> usize {
        self.spans
            .get(i + 1)
            .map_or(self.bytes.len(), |s| s.start as usize)
    }

    /// The key of entry `i` (leaf key or child's first key).
    pub fn key_at(&self, i: usize) -> Option<&[u8]> {
        let s = self.spans.get(i)?;
        Some(&self.bytes[s.key as usize..s.key_end as usize])
    }

    /// The first key of the node, if it has entries.
    pub fn first_key(&self) -> Option<&[u8]> {
        self.key_at(0)
    }

    /// Entry `i`'s whole encoding (key included).
    pub(crate) fn entry_bytes(&self, i: usize) -> &[u8] {
        &self.bytes[self.spans[i].start as usize..self.span_end(i)]
    }

    /// Entry `i`'s encoding after its key: the value of a leaf entry, or
    /// the id and aggregates of a child entry. Equal exactly when the
    /// values (or children) are equal.
    pub(crate) fn entry_tail(&self, i: usize) -> &[u8] {
        &self.bytes[self.spans[i].key_end as usize..self.span_end(i)]
    }

    /// How many entries, pair by pair, from entry `i` of this node and
    /// entry `j` of `other` have the same encoding: one scan of the bytes
    /// (entries are self-delimiting, so equal bytes from two entry starts
    /// are equal entries). Meaningful for two nodes of the same level.
    pub(crate) fn equal_run(&self, i: usize, other: &Node, j: usize) -> usize {
        let (Some(a), Some(b)) = (self.spans.get(i), other.spans.get(j)) else {
            return 0;
        };
        let same = common_prefix(
            &self.bytes[a.start as usize..],
            &other.bytes[b.start as usize..],
        );
        let limit = a.start as usize + same;
        // Entry `i + k` ends where entry `i + k + 1` starts.
        let rest = &self.spans[i + 1..];
        let mut run = rest.partition_point(|s| s.start as usize <= limit);
        if run == rest.len() && self.bytes.len() <= limit {
            run += 1;
        }
        // Equal bytes parse alike: the other side has the same entries
        // (the bound is kept for safety).
        run.min(other.spans.len() - j)
    }

    /// Leaf entry `i`: its key and value.
    pub fn leaf_entry(&self, i: usize) -> Option<(&[u8], ValueRef<'_>)> {
        if self.level != 0 {
            return None;
        }
        let key = self.key_at(i)?;
        let mut r = Reader::new(self.entry_tail(i));
        let value = r.value().expect("a parsed node's values are well formed");
        Some((key, value))
    }

    /// Child entry `i` of an internal node.
    pub fn child(&self, i: usize) -> Option<ChildRef<'_>> {
        if self.level == 0 {
            return None;
        }
        let key = self.key_at(i)?;
        let mut r = Reader::new(self.entry_tail(i));
        let (id, count, bytes) = r
            .child_tail()
            .expect("a parsed node's children are well formed");
        Some(ChildRef {
            key,
            id,
            count,
            bytes,
        })
    }

    /// The children of an internal node, in order (empty for a leaf).
    pub fn children(&self) -> impl ExactSizeIterator<Item = ChildRef<'_>> + '_ {
        let n = if self.level == 0 { 0 } else { self.len() };
        (0..n).map(|i| self.child(i).expect("index in range"))
    }

    /// The entries of a leaf, in order (empty for an internal node).
    pub fn leaf_entries(&self) -> impl ExactSizeIterator<Item = (&[u8], ValueRef<'_>)> + '_ {
        let n = if self.level == 0 { self.len() } else { 0 };
        (0..n).map(|i| self.leaf_entry(i).expect("index in range"))
    }

    /// The index of the first entry whose key is greater than `key`.
    pub(crate) fn upper_bound(&self, key: &[u8]) -> usize {
        let p = key_prefix(key);
        self.spans
            .partition_point(|s| self.cmp_span(s, key, p).is_le())
    }

    /// The index of the first entry whose key is at least `key`.
    pub(crate) fn lower_bound(&self, key: &[u8]) -> usize {
        let p = key_prefix(key);
        self.spans
            .partition_point(|s| self.cmp_span(s, key, p).is_lt())
    }

    /// Orders the key of `span` against `key`, whose prefix is `prefix`.
    #[inline]
    fn cmp_span(&self, span: &Span, key: &[u8], prefix: u64) -> std::cmp::Ordering {
        match span.prefix.cmp(&prefix) {
            std::cmp::Ordering::Equal => {
                self.bytes[span.key as usize..span.key_end as usize].cmp(key)
            }
            unequal => unequal,
        }
    }

    /// Approximate heap footprint, for the cache's byte budget.
    pub(crate) fn footprint(&self) -> usize {
        self.bytes.capacity() + self.spans.capacity() * std::mem::size_of::<Span>() + 96
    }

    /// Decodes and validates a node, checking its hash against `id`.
    pub fn decode(id: &ObjectId, bytes: &[u8]) -> Result<Node> {
        Node::decode_vec(id, bytes.to_vec())
    }

    /// Like [`Node::decode`], taking the bytes by value (no copy).
    pub fn decode_vec(id: &ObjectId, bytes: Vec<u8>) -> Result<Node> {
        if ObjectId::hash(&bytes) != *id {
            return Err(Error::corrupt(*id, "bytes do not hash to the object id"));
        }
        Node::parse(bytes).map_err(|reason| Error::corrupt(*id, reason))
    }

    /// The node's encoding, by value.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// Parses and validates a node's encoding (without a hash check).
    pub(crate) fn parse(bytes: Vec<u8>) -> std::result::Result<Node, String> {
        Node::parse_checked(bytes, true)
    }

    /// Parses a node's encoding; `check_order` false skips the key order
    /// check, for bytes this crate just encoded in order.
    fn parse_checked(bytes: Vec<u8>, check_order: bool) -> std::result::Result<Node, String> {
        if bytes.len() > MAX_NODE_LEN {
            return Err(format!("node of {} bytes is over the limit", bytes.len()));
        }
        let mut r = Reader::new(&bytes);
        // The size check above keeps every offset within u32.
        let version = r.u8()?;
        if version != FORMAT_VERSION {
            return Err(format!("unknown format version {version}"));
        }
        let kind = r.u8()?;
        let level = match Kind::from_byte(kind) {
            Some(Kind::Leaf) => 0,
            Some(Kind::Internal) => {
                let level = r.u8()?;
                if level == 0 || level > MAX_LEVEL {
                    return Err(format!("internal node at level {level}"));
                }
                level
            }
            Some(other) => return Err(format!("expected a tree node, found {other:?}")),
            None => return Err(format!("unknown object kind {kind}")),
        };
        let n = r.varint()?;
        // Every entry takes at least two bytes: never trust a count beyond.
        if n > (r.remaining() / 2) as u64 {
            return Err(format!("entry count {n} exceeds the node's size"));
        }
        if level > 0 && n == 0 {
            return Err("internal node without children".into());
        }
        let mut spans = Vec::with_capacity(n as usize);
        let (count, value_bytes) =
            parse_entries(&mut r, &bytes, level, n, check_order, &mut spans)?;
        if r.remaining() != 0 {
            return Err(format!("{} trailing bytes after the body", r.remaining()));
        }
        Ok(Node {
            bytes,
            spans,
            level,
            count,
            value_bytes,
        })
    }

    /// Builds a node from `n` encoded entries at `level`, produced by this
    /// crate's encoders (so valid by construction).
    pub(crate) fn assemble(level: u8, n: usize, entries: &[u8]) -> Node {
        Node::assemble_checked(level, n, entries)
            .expect("entries encoded by kvgit-core from valid entries parse")
    }

    /// Like [`Node::assemble`], for entries that carry stored aggregates
    /// (an edit copies its siblings' entries unread): a level over the
    /// limit, or sums that overflow, are reported instead.
    pub(crate) fn assemble_checked(
        level: u8,
        n: usize,
        entries: &[u8],
    ) -> std::result::Result<Node, String> {
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
        Node::parse_checked(out, cfg!(debug_assertions))
    }

    /// A node from owned leaf entries (sorted, valid), for tests and tools.
    pub fn from_leaf_entries(entries: &[(Vec<u8>, Value)]) -> Node {
        let mut buf = Vec::new();
        for (k, v) in entries {
            encode_leaf_entry(&mut buf, k, v.as_ref());
        }
        Node::assemble(0, entries.len(), &buf)
    }

    /// A node from owned child entries (sorted, valid), for tests and tools.
    pub fn from_children(level: u8, children: &[ChildEntry]) -> Node {
        let mut buf = Vec::new();
        for c in children {
            encode_child_entry(&mut buf, &c.key, &c.id, c.count, c.bytes);
        }
        Node::assemble(level, children.len(), &buf)
    }
}

/// Parses `n` entries at `level`, filling `spans`; returns the subtree's
/// key count and value bytes. `bytes` is at most [`MAX_NODE_LEN`] long.
fn parse_entries(
    r: &mut Reader<'_>,
    bytes: &[u8],
    level: u8,
    n: u64,
    check_order: bool,
    spans: &mut Vec<Span>,
) -> ParseResult<(u64, u64)> {
    let mut count = 0u64;
    let mut value_bytes = 0u64;
    let mut prev: &[u8] = &[];
    for _ in 0..n {
        let start = r.pos;
        let key_len = r.varint()?;
        if key_len == 0 || key_len > MAX_KEY_LEN as u64 {
            return Err("key of invalid length");
        }
        let key_at = r.pos;
        let key = r.skip(key_len as usize)?;
        if check_order && !spans.is_empty() && prev >= key {
            return Err("keys are not strictly sorted");
        }
        prev = key;
        if level == 0 {
            let v = r.value()?;
            count += 1;
            value_bytes = value_bytes
                .checked_add(v.len())
                .ok_or("value bytes overflow")?;
        } else {
            let (_, c, b) = r.child_tail()?;
            if c == 0 {
                return Err("child entry with an empty subtree");
            }
            // Every node but a level's last ends at a chunk boundary, which
            // needs two entries; so a child that is not its parent's last
            // (hence not the last of its level) has at least 2^level keys.
            if spans.len() + 1 < n as usize
                && 1u64.checked_shl(u32::from(level)).is_none_or(|min| c < min)
            {
                return Err("child entry with fewer keys than a subtree of its height holds");
            }
            if c.checked_mul(MAX_VALUE_LEN).is_some_and(|max| b > max) {
                return Err("child entry with more value bytes than its keys can hold");
            }
            count = count.checked_add(c).ok_or("key count overflows")?;
            value_bytes = value_bytes.checked_add(b).ok_or("value bytes overflow")?;
        }
        spans.push(Span {
            start: start as u32,
            key: key_at as u32,
            key_end: (key_at + key.len()) as u32,
            prefix: key_prefix(key),
        });
    }
    debug_assert!(bytes.len() <= MAX_NODE_LEN);
    Ok((count, value_bytes))
}

/// The largest encoded node accepted: a node ends once its entries reach
/// 16 KiB, and one entry is under 4.5 KiB.
pub const MAX_NODE_LEN: usize = 32 * 1024;

/// The deepest level a valid tree can reach. Every node but a level's last
/// holds at least two entries, so 64 levels hold more keys than can exist.
pub(crate) const MAX_LEVEL: u8 = 64;

/// A cursor over postcard-encoded bytes.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// A parse failure: what was wrong, as a fixed message.
type ParseResult<T> = std::result::Result<T, &'static str>;

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    #[inline]
    fn u8(&mut self) -> ParseResult<u8> {
        let b = *self.buf.get(self.pos).ok_or("truncated")?;
        self.pos += 1;
        Ok(b)
    }

    #[inline]
    fn skip(&mut self, n: usize) -> ParseResult<&'a [u8]> {
        let s = self
            .buf
            .get(self.pos..self.pos.saturating_add(n))
            .ok_or("truncated")?;
        self.pos += n;
        Ok(s)
    }

    /// An unsigned LEB128 varint of at most 64 bits, in its shortest form.
    #[inline]
    fn varint(&mut self) -> ParseResult<u64> {
        match self.buf.get(self.pos) {
            Some(&b) if b < 0x80 => {
                self.pos += 1;
                Ok(u64::from(b))
            }
            _ => self.varint_long(),
        }
    }

    fn varint_long(&mut self) -> ParseResult<u64> {
        let mut n = 0u64;
        for i in 0..10 {
            let b = self.u8()?;
            if i == 9 && b > 1 {
                return Err("varint overflows 64 bits");
            }
            n |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                if b == 0 && i > 0 {
                    return Err("varint not in its shortest form");
                }
                return Ok(n);
            }
        }
        Err("varint longer than 10 bytes")
    }

    #[inline]
    fn id(&mut self) -> ParseResult<ObjectId> {
        Ok(ObjectId::from_slice(self.skip(32)?).expect("32 bytes were taken"))
    }

    #[inline]
    fn value(&mut self) -> ParseResult<ValueRef<'a>> {
        match self.varint()? {
            0 => {
                let len = self.varint()?;
                if len > INLINE_MAX as u64 {
                    return Err("inline value longer than the inline limit");
                }
                Ok(ValueRef::Inline(self.skip(len as usize)?))
            }
            1 => {
                let id = self.id()?;
                let len = self.varint()?;
                if len <= INLINE_MAX as u64 || len > MAX_VALUE_LEN {
                    return Err("blob reference of invalid length");
                }
                Ok(ValueRef::Blob { id, len })
            }
            _ => Err("unknown value tag"),
        }
    }

    #[inline]
    fn child_tail(&mut self) -> ParseResult<(ObjectId, u64, u64)> {
        let id = self.id()?;
        let count = self.varint()?;
        let bytes = self.varint()?;
        Ok((id, count, bytes))
    }
}

/// Appends one leaf entry's encoding to `out`.
pub(crate) fn encode_leaf_entry(out: &mut Vec<u8>, key: &[u8], value: ValueRef<'_>) {
    push_varint(out, key.len() as u64);
    out.extend_from_slice(key);
    match value {
        ValueRef::Inline(v) => {
            out.push(0);
            push_varint(out, v.len() as u64);
            out.extend_from_slice(v);
        }
        ValueRef::Blob { id, len } => {
            out.push(1);
            out.extend_from_slice(id.as_bytes());
            push_varint(out, len);
        }
    }
}

/// Appends one child entry's encoding to `out`.
pub(crate) fn encode_child_entry(
    out: &mut Vec<u8>,
    key: &[u8],
    id: &ObjectId,
    count: u64,
    bytes: u64,
) {
    push_varint(out, key.len() as u64);
    out.extend_from_slice(key);
    out.extend_from_slice(id.as_bytes());
    push_varint(out, count);
    push_varint(out, bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    // The serde mirror of the format: the hand-written encoder and parser
    // must agree with postcard byte for byte.
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct LeafEntry {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        value: Value,
    }

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Child {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        id: ObjectId,
        count: u64,
        bytes: u64,
    }

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Internal {
        level: u8,
        children: Vec<Child>,
    }

    fn leaf(n: usize) -> Vec<(Vec<u8>, Value)> {
        (0..n)
            .map(|i| {
                let v = if i % 7 == 3 {
                    Value::Blob {
                        id: ObjectId::hash(&[i as u8]),
                        len: 1000 + i as u64,
                    }
                } else {
                    Value::Inline(vec![i as u8; i * 3])
                };
                (format!("k{i:08}").into_bytes(), v)
            })
            .collect()
    }

    #[test]
    fn encoding_equals_postcard() {
        let entries = leaf(60);
        let node = Node::from_leaf_entries(&entries);
        let serde_entries: Vec<LeafEntry> = entries
            .iter()
            .map(|(k, v)| LeafEntry {
                key: k.clone(),
                value: v.clone(),
            })
            .collect();
        let whole = crate::object::encode(Kind::Leaf, &serde_entries);
        assert_eq!(node.bytes(), whole.as_slice());
        let id = ObjectId::hash(&whole);
        let decoded = Node::decode(&id, &whole).unwrap();
        assert_eq!(decoded, node);
        let read: Vec<(Vec<u8>, Value)> = decoded
            .leaf_entries()
            .map(|(k, v)| (k.to_vec(), v.to_value()))
            .collect();
        assert_eq!(read, entries);
        assert_eq!(decoded.count(), 60);

        let children: Vec<ChildEntry> = (0..5u8)
            .map(|i| ChildEntry {
                key: vec![b'a' + i],
                id: ObjectId::hash(&[i]),
                count: u64::from(i) + 8,
                bytes: 1000,
            })
            .collect();
        let node = Node::from_children(3, &children);
        let whole = crate::object::encode(
            Kind::Internal,
            &Internal {
                level: 3,
                children: children
                    .iter()
                    .map(|c| Child {
                        key: c.key.clone(),
                        id: c.id,
                        count: c.count,
                        bytes: c.bytes,
                    })
                    .collect(),
            },
        );
        assert_eq!(node.bytes(), whole.as_slice());
        let node = Node::decode(&ObjectId::hash(&whole), &whole).unwrap();
        assert_eq!(node.level(), 3);
        assert_eq!(node.count(), 50);
        assert_eq!(node.value_bytes(), 5000);
        assert_eq!(node.child(4).unwrap().key, b"e");
    }

    #[test]
    fn prefix_order_agrees_with_byte_order() {
        let keys: Vec<&[u8]> = vec![
            b"a",
            b"a\0",
            b"a\0\0\0\0\0\0\0",
            b"a\0\0\0\0\0\0\0\0",
            b"ab",
            b"abcdefgh",
            b"abcdefgh\0",
            b"abcdefghi",
            b"abcdefgi",
            b"b",
            b"\xff\xff\xff\xff\xff\xff\xff\xff\xff",
        ];
        let entries: Vec<(Vec<u8>, Value)> = keys
            .iter()
            .map(|k| (k.to_vec(), Value::Inline(Vec::new())))
            .collect();
        let node = Node::from_leaf_entries(&entries);
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(node.lower_bound(k), i, "{k:?}");
            assert_eq!(node.upper_bound(k), i + 1, "{k:?}");
        }
        assert_eq!(node.lower_bound(b""), 0);
        assert_eq!(node.lower_bound(b"a\0\0"), 2);
        assert_eq!(node.upper_bound(b"abcdefgh\0\0"), 7);
    }

    #[test]
    fn unsorted_leaf_is_corrupt() {
        let mut entries = leaf(3);
        entries.swap(0, 2);
        let node_bytes = {
            let mut buf = Vec::new();
            for (k, v) in &entries {
                encode_leaf_entry(&mut buf, k, v.as_ref());
            }
            let mut out = vec![FORMAT_VERSION, Kind::Leaf as u8];
            push_varint(&mut out, 3);
            out.extend(buf);
            out
        };
        let err = Node::decode(&ObjectId::hash(&node_bytes), &node_bytes).unwrap_err();
        assert!(err.to_string().contains("sorted"), "{err}");
    }

    #[test]
    fn non_canonical_forms_are_corrupt() {
        let check = |body: &[u8]| {
            let mut bytes = vec![FORMAT_VERSION, Kind::Leaf as u8];
            bytes.extend_from_slice(body);
            Node::decode(&ObjectId::hash(&bytes), &bytes).unwrap_err()
        };
        // An inline value over the limit.
        let mut body = vec![1, 1, b'a', 0];
        push_varint(&mut body, INLINE_MAX as u64 + 1);
        body.extend(vec![0; INLINE_MAX + 1]);
        check(&body);
        // A blob small enough to be inline.
        let mut body = vec![1, 1, b'a', 1];
        body.extend([0; 32]);
        body.push(3);
        check(&body);
        // A varint with a redundant zero byte.
        check(&[0x81, 0x00]);
    }
}
