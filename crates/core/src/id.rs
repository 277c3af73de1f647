//! Object ids: the 32-byte blake3 hash of an object's encoded bytes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The id of a stored object: the blake3 hash of exactly its encoded bytes
/// (`[format version][kind][body]`). Ids compare, hash and order as bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObjectId(pub [u8; 32]);

impl ObjectId {
    /// The length of an id in bytes.
    pub const LEN: usize = 32;

    /// Hashes `bytes` (an object's whole encoding) into its id.
    pub fn hash(bytes: &[u8]) -> Self {
        ObjectId(*blake3::hash(bytes).as_bytes())
    }

    /// The raw bytes of the id.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Builds an id from a 32-byte slice; `None` if the length is wrong.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(ObjectId)
    }

    /// The id as 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        self.hex().to_string()
    }

    /// The hex digits on the stack (blake3's encoder: ids are its hashes).
    fn hex(&self) -> impl std::ops::Deref<Target = str> {
        blake3::Hash::from_bytes(self.0).to_hex()
    }

    /// The first `n` hex digits of the id (at most 64).
    pub fn short(&self, n: usize) -> String {
        self.hex()[..n.min(64)].to_string()
    }

    /// The ids whose hex form starts with `prefix` (case-insensitive), as
    /// the range `start..end` (`end` `None`: to the last id); `None` if
    /// `prefix` is longer than 64 or not hex.
    pub fn hex_prefix_range(prefix: &str) -> Option<(ObjectId, Option<ObjectId>)> {
        if prefix.len() > 64 {
            return None;
        }
        let mut start = [0u8; 32];
        for (i, c) in prefix.chars().enumerate() {
            let nibble = u8::try_from(c.to_digit(16)?).expect("a hex digit is below 16");
            start[i / 2] |= if i % 2 == 0 { nibble << 4 } else { nibble };
        }
        // The end: the prefix as a number of nibbles, plus one, padded.
        let mut end = start;
        let mut digits = prefix.len();
        loop {
            if digits == 0 {
                return Some((ObjectId(start), None));
            }
            let i = (digits - 1) / 2;
            let (unit, mask) = if digits % 2 == 1 {
                (0x10, 0xf0)
            } else {
                (0x01, 0x0f)
            };
            if end[i] & mask == mask {
                end[i] &= !mask;
                digits -= 1;
                continue;
            }
            end[i] += unit;
            return Some((ObjectId(start), Some(ObjectId(end))));
        }
    }

    /// True if the id's hex form starts with `prefix` (case-insensitive).
    pub fn has_hex_prefix(&self, prefix: &str) -> bool {
        let hex = self.hex();
        prefix.len() <= 64 && hex.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({})", self.short(12))
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

impl FromStr for ObjectId {
    type Err = Error;

    /// Parses 64 hex digits (either case). Decoded here rather than by
    /// `blake3::Hash::from_hex` or the `hex` crate: both took about four
    /// times as long on ids in a timed comparison.
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || Error::InvalidId(s.chars().take(80).collect());
        if s.len() != 64 {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (i, pair) in s.as_bytes().chunks_exact(2).enumerate() {
            let hi = (pair[0] as char).to_digit(16).ok_or_else(bad)?;
            let lo = (pair[1] as char).to_digit(16).ok_or_else(bad)?;
            out[i] = u8::try_from(hi * 16 + lo).map_err(|_| bad())?;
        }
        Ok(ObjectId(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hex_prefix_range_holds_exactly_the_ids_with_the_prefix() {
        let ids: Vec<ObjectId> = (0..300u32)
            .map(|i| ObjectId::hash(&i.to_le_bytes()))
            .chain([ObjectId([0; 32]), ObjectId([0xff; 32])])
            .collect();
        let mut prefixes: Vec<String> = vec![String::new()];
        for n in 1..=64 {
            prefixes.push("f".repeat(n));
            prefixes.push("0".repeat(n));
            prefixes.push(format!("{}F", "f".repeat(n - 1)));
        }
        for id in ids.iter().take(40) {
            let hex = id.to_hex();
            for n in 1..=64 {
                prefixes.push(hex[..n].to_string());
                prefixes.push(hex[..n].to_ascii_uppercase());
            }
        }
        for prefix in &prefixes {
            let (start, end) = ObjectId::hex_prefix_range(prefix).expect("a hex prefix");
            for id in &ids {
                let in_range = *id >= start && end.is_none_or(|end| *id < end);
                assert_eq!(in_range, id.has_hex_prefix(prefix), "{prefix} {id}");
            }
        }
        assert!(ObjectId::hex_prefix_range("abg").is_none());
        assert!(ObjectId::hex_prefix_range(&"0".repeat(65)).is_none());
        let (start, end) = ObjectId::hex_prefix_range("ab1").unwrap();
        assert_eq!(start.to_hex(), format!("ab10{}", "0".repeat(60)));
        assert_eq!(end.unwrap().to_hex(), format!("ab20{}", "0".repeat(60)));
        let (_, end) = ObjectId::hex_prefix_range("0fff").unwrap();
        assert_eq!(end.unwrap().to_hex(), format!("1000{}", "0".repeat(60)));
    }

    #[test]
    fn hex_round_trip() {
        let id = ObjectId::hash(b"hello");
        let hex = id.to_hex();
        assert_eq!(hex.len(), 64);
        assert_eq!(hex.parse::<ObjectId>().unwrap(), id);
        assert!(id.has_hex_prefix(&hex[..6].to_uppercase()));
        assert!("zz".parse::<ObjectId>().is_err());
        assert!("g".repeat(64).parse::<ObjectId>().is_err());
        assert_eq!(hex.to_uppercase().parse::<ObjectId>().unwrap(), id);
        assert!(format!("{}é", &hex[..62]).parse::<ObjectId>().is_err());
        assert_eq!(id.short(12), hex[..12]);
        assert_eq!(id.short(100), hex);
        assert_eq!(id.to_string(), hex);
    }
}
