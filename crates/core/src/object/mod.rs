//! The stored objects: leaf and internal tree nodes, blobs and commits.
//!
//! Every object is stored as `[format version][kind][postcard body]` and its
//! id is the blake3 hash of exactly those bytes (see `docs/FORMAT.md`).
//! Decoding never trusts its input: every check failure is an
//! [`Error::Corrupt`] naming the object, never a panic.

mod commit;
mod node;

pub use commit::{Commit, MAX_COMMIT_LEN};
pub(crate) use node::{encode_child_entry, encode_leaf_entry};
pub use node::{ChildEntry, ChildRef, Node, Value, ValueRef};

use crate::error::{Error, Result};
use crate::id::ObjectId;

/// The object format version written as the first byte of every object.
pub const FORMAT_VERSION: u8 = 1;

/// Values of at most this many bytes are stored inline in their leaf; larger
/// ones are stored as a separate [`Kind::Blob`] object.
pub const INLINE_MAX: usize = 256;

/// The longest key accepted, in bytes.
pub const MAX_KEY_LEN: usize = 4096;

/// The largest value accepted, in bytes (256 MiB).
pub const MAX_VALUE_LEN: u64 = 256 << 20;

/// The second byte of every object: what it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// A tree leaf: sorted `(key, value)` entries.
    Leaf = 1,
    /// An internal tree node: sorted child entries with aggregates.
    Internal = 2,
    /// A large value's bytes.
    Blob = 3,
    /// A commit.
    Commit = 4,
}

impl Kind {
    /// The kind for a kind byte, if it is one.
    pub fn from_byte(b: u8) -> Option<Kind> {
        match b {
            1 => Some(Kind::Leaf),
            2 => Some(Kind::Internal),
            3 => Some(Kind::Blob),
            4 => Some(Kind::Commit),
            _ => None,
        }
    }
}

/// Checks the two-byte header and the hash of `bytes`, returning the kind and
/// the body.
pub(crate) fn open<'a>(id: &ObjectId, bytes: &'a [u8]) -> Result<(Kind, &'a [u8])> {
    if ObjectId::hash(bytes) != *id {
        return Err(Error::corrupt(*id, "bytes do not hash to the object id"));
    }
    open_unhashed(id, bytes)
}

/// Like [`open`] without the hash check, for bytes already verified.
pub(crate) fn open_unhashed<'a>(id: &ObjectId, bytes: &'a [u8]) -> Result<(Kind, &'a [u8])> {
    match bytes {
        [] | [_] => Err(Error::corrupt(*id, "truncated header")),
        [version, kind, body @ ..] => {
            if *version != FORMAT_VERSION {
                return Err(Error::corrupt(
                    *id,
                    format!("unknown format version {version}"),
                ));
            }
            let kind = Kind::from_byte(*kind)
                .ok_or_else(|| Error::corrupt(*id, format!("unknown object kind {kind}")))?;
            Ok((kind, body))
        }
    }
}

/// Decodes a postcard body that must be consumed exactly.
pub(crate) fn decode_body<'a, T: serde::Deserialize<'a>>(
    id: &ObjectId,
    body: &'a [u8],
) -> Result<T> {
    let (value, rest) = postcard::take_from_bytes::<T>(body)
        .map_err(|e| Error::corrupt(*id, format!("undecodable body: {e}")))?;
    if !rest.is_empty() {
        return Err(Error::corrupt(
            *id,
            format!("{} trailing bytes after the body", rest.len()),
        ));
    }
    Ok(value)
}

/// Encodes `[version][kind][postcard(body)]`.
pub(crate) fn encode<T: serde::Serialize + ?Sized>(kind: Kind, body: &T) -> Vec<u8> {
    let mut out = vec![FORMAT_VERSION, kind as u8];
    postcard::to_io(body, &mut out).expect("serialising into a Vec cannot fail");
    out
}

/// Encodes a blob object holding `value`.
pub fn encode_blob(value: &[u8]) -> Vec<u8> {
    encode(Kind::Blob, serde_bytes::Bytes::new(value))
}

/// Decodes a blob object, checking its hash against `id`.
pub fn decode_blob(id: &ObjectId, bytes: &[u8]) -> Result<Vec<u8>> {
    let (kind, body) = open(id, bytes)?;
    if kind != Kind::Blob {
        return Err(Error::corrupt(
            *id,
            format!("expected a blob, found {kind:?}"),
        ));
    }
    let value: &[u8] = decode_body::<&serde_bytes::Bytes>(id, body)?;
    if value.len() <= INLINE_MAX {
        return Err(Error::corrupt(*id, "blob small enough to be stored inline"));
    }
    if value.len() as u64 > MAX_VALUE_LEN {
        return Err(Error::corrupt(*id, "blob larger than the value limit"));
    }
    // Canonical form: the length prefix is the shortest varint.
    let mut prefix = Vec::with_capacity(10);
    push_varint(&mut prefix, value.len() as u64);
    if body.len() != prefix.len() + value.len() {
        return Err(Error::corrupt(
            *id,
            "blob length is not in its shortest form",
        ));
    }
    Ok(value.to_vec())
}

/// Appends `n` as an unsigned LEB128 varint, as postcard encodes integers.
pub(crate) fn push_varint(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Checks a key's length against the limits.
pub fn check_key(key: &[u8]) -> Result<()> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(Error::InvalidKey {
            len: key.len(),
            max: MAX_KEY_LEN,
        });
    }
    Ok(())
}

/// Checks a value's length against the limits.
pub fn check_value(value: &[u8]) -> Result<()> {
    let len = value.len() as u64;
    if len > MAX_VALUE_LEN {
        return Err(Error::ValueTooLarge {
            len,
            max: MAX_VALUE_LEN,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_matches_postcard() {
        for n in [
            0u64,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut ours = Vec::new();
            push_varint(&mut ours, n);
            assert_eq!(ours, postcard::to_stdvec(&n).unwrap(), "{n}");
        }
    }

    #[test]
    fn blob_round_trip_and_checks() {
        let value = vec![7u8; 1000];
        let bytes = encode_blob(&value);
        let id = ObjectId::hash(&bytes);
        assert_eq!(decode_blob(&id, &bytes).unwrap(), value);
        let small = encode_blob(b"tiny");
        let err = decode_blob(&ObjectId::hash(&small), &small).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{err}");
        let mut bad = bytes.clone();
        bad[10] ^= 1;
        assert!(matches!(decode_blob(&id, &bad), Err(Error::Corrupt { .. })));
    }
}
