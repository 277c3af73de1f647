//! The chunk-boundary rule: where a node ends.
//!
//! This rule decides tree shape, so it is part of the format and fixed
//! forever (docs/FORMAT.md). A node ends after an entry when
//!
//! - the node holds at least two entries (so every node but a level's last
//!   has two, each level at most about halves the count below, and the
//!   height stays logarithmic whatever the keys), and
//! - the node's encoded entries reach [`MAX_NODE`] bytes, or they have
//!   reached [`MIN_NODE`] bytes and `key_hash(level, key)`, read as
//!   a fraction of 2^64, falls below the Weibull-shaped hazard of growing
//!   from `size - entry` to `size` bytes: `(size^4 - before^4) / SCALE^4`.
//!
//! The decision depends only on the entry's key, the tree level and the
//! node's own size so far, never on anything before the node's start, so an
//! edit disturbs boundaries only until they fall back into step. The rule is
//! integer arithmetic only, identical on every platform. With shape 4 and
//! scale 4400 bytes, node sizes concentrate around 4 KiB.

use super::Writer;
use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::object::{ChildEntry, Node};

/// No boundary before a node holds this many bytes of entries.
pub const MIN_NODE: usize = 1024;
/// A boundary is forced once a node holds this many bytes of entries.
pub const MAX_NODE: usize = 16 * 1024;
/// The scale of the Weibull-shaped size distribution, in bytes.
pub const SCALE: u64 = 4400;

/// The boundary hash of a key at a tree level: a fixed, fast,
/// non-cryptographic 64-bit hash (MurmurHash3's finaliser over 8-byte
/// little-endian words, seeded with the level).
pub fn key_hash(level: u8, key: &[u8]) -> u64 {
    let mut h = 0x9e37_79b9_7f4a_7c15_u64 ^ u64::from(level).wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
    let mut chunks = key.chunks_exact(8);
    for chunk in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        h = fmix64(h ^ u64::from_le_bytes(w));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        h = fmix64(h ^ u64::from_le_bytes(w));
    }
    fmix64(h ^ key.len() as u64)
}

fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

/// Whether a node ends after an entry of `entry_len` encoded bytes with key
/// `key`, appended when the node already held `before` bytes of entries,
/// making `entries` entries in all.
pub fn is_boundary(level: u8, key: &[u8], before: usize, entry_len: usize, entries: usize) -> bool {
    if entries < 2 {
        return false;
    }
    let size = before + entry_len;
    if size >= MAX_NODE {
        return true;
    }
    if size < MIN_NODE {
        return false;
    }
    // hash / 2^64 < (size^4 - before^4) / SCALE^4, in integers: the
    // hash is below floor(hazard * 2^64) exactly when (hash + 1) * SCALE^4
    // <= (size^4 - before^4) * 2^64. Here size < MAX_NODE = 2^14, so the
    // fourth powers fit in 64 bits and the products in 128.
    let (s1, s0) = (size as u64, before as u64);
    let grown = s1 * s1 * s1 * s1 - s0 * s0 * s0 * s0;
    (u128::from(key_hash(level, key)) + 1) * SCALE4 <= u128::from(grown) << 64
}

/// `SCALE` to the fourth power.
const SCALE4: u128 = (SCALE as u128) * (SCALE as u128) * (SCALE as u128) * (SCALE as u128);

/// Packs a stream of encoded entries at one level into nodes.
pub(crate) struct Chunker {
    level: u8,
    buf: Vec<u8>,
    n: usize,
    /// The stored tree whose entries an edit re-chunks: named if they make
    /// an invalid node (their aggregates are input). `None` for a bulk
    /// build, whose entries are all computed.
    source: Option<ObjectId>,
}

impl Chunker {
    /// A chunker at `level` whose buffer comes from (and on drop of the
    /// chunker should go back to) the writer, so one allocation serves a
    /// whole tree operation.
    pub(crate) fn new(level: u8, w: &mut Writer<'_>) -> Self {
        Chunker {
            level,
            buf: w.take_buffer(),
            n: 0,
            source: None,
        }
    }

    /// A chunker for an edit of the stored tree rooted at `source`.
    pub(crate) fn for_edit(level: u8, w: &mut Writer<'_>, source: ObjectId) -> Self {
        let mut chunker = Chunker::new(level, w);
        chunker.source = Some(source);
        chunker
    }

    /// Hands the buffer back to the writer.
    pub(crate) fn release(self, w: &mut Writer<'_>) {
        w.return_buffer(self.buf);
    }

    /// True when the last entry pushed ended a node (or none was pushed).
    pub(crate) fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Appends an encoded entry whose key is `key`; returns the parent
    /// entry of the node it completed, if it completed one.
    pub(crate) fn push(
        &mut self,
        key: &[u8],
        entry: &[u8],
        w: &mut Writer<'_>,
    ) -> Result<Option<ChildEntry>> {
        let before = self.buf.len();
        self.buf.extend_from_slice(entry);
        self.n += 1;
        if is_boundary(self.level, key, before, entry.len(), self.n) {
            self.finish(w)
        } else {
            Ok(None)
        }
    }

    /// Ends the current node, if it has entries.
    pub(crate) fn finish(&mut self, w: &mut Writer<'_>) -> Result<Option<ChildEntry>> {
        if self.n == 0 {
            return Ok(None);
        }
        let node = match self.source {
            None => Node::assemble(self.level, self.n, &self.buf),
            Some(source) => {
                Node::assemble_checked(self.level, self.n, &self.buf).map_err(|reason| {
                    Error::corrupt(source, format!("an edit of this tree: {reason}"))
                })?
            }
        };
        self.buf.clear();
        self.n = 0;
        w.put_node(node).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_hash_is_pinned() {
        // The boundary hash is part of the format: these values must never
        // change.
        assert_eq!(key_hash(0, b"k00000042"), key_hash(0, b"k00000042"));
        assert_ne!(key_hash(0, b"k00000042"), key_hash(1, b"k00000042"));
        assert_eq!(
            key_hash(0, b""),
            0x9ca0_66f1_a4ab_2eea,
            "{:#x}",
            key_hash(0, b"")
        );
        assert_eq!(
            key_hash(0, b"k00000042"),
            0x49b4_53d6_f0bf_946f,
            "{:#x}",
            key_hash(0, b"k00000042")
        );
        assert_eq!(
            key_hash(3, b"user/alice"),
            0xd8a5_9ee6_bebd_b79f,
            "{:#x}",
            key_hash(3, b"user/alice")
        );
    }

    #[test]
    fn sizes_bracket_the_rule() {
        assert!(!is_boundary(0, b"x", 0, MIN_NODE - 1, 2));
        assert!(!is_boundary(0, b"x", 0, MAX_NODE, 1));
        assert!(is_boundary(0, b"x", 0, MAX_NODE, 2));
        // Near the maximum almost every entry ends a node.
        let hits = (0..1000u32)
            .filter(|i| is_boundary(0, &i.to_le_bytes(), 12000, 112, 80))
            .count();
        assert!(hits > 990, "{hits}");
    }
}
