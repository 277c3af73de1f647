//! Commits: a root tree, parents, height, time, message and metadata.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{decode_body, encode, open_unhashed, Kind};
use crate::error::{Error, Result};
use crate::id::ObjectId;

/// The largest encoded commit accepted (message and metadata included).
pub const MAX_COMMIT_LEN: usize = 16 << 20;

/// A commit: one immutable state of a branch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    /// The root node of the commit's tree.
    pub root: ObjectId,
    /// No parent for a root commit, one for an ordinary commit, two for a
    /// merge (first parent: the branch merged into).
    pub parents: Vec<ObjectId>,
    /// 1 for a root commit, else 1 + the greatest parent height. Makes
    /// merge-base search cheap.
    pub height: u64,
    /// Microseconds since the Unix epoch when the commit was made.
    pub time_micros: u64,
    /// The commit message.
    pub message: String,
    /// Free-form user metadata.
    pub metadata: BTreeMap<String, String>,
}

impl Commit {
    /// Encodes the commit object.
    pub fn encode(&self) -> Vec<u8> {
        encode(Kind::Commit, self)
    }

    /// Decodes and validates a commit, checking its hash against `id`.
    ///
    /// Only the canonical encoding is accepted: the bytes must be exactly
    /// what [`Commit::encode`] gives for the decoded commit.
    pub fn decode(id: &ObjectId, bytes: &[u8]) -> Result<Commit> {
        if ObjectId::hash(bytes) != *id {
            return Err(Error::corrupt(*id, "bytes do not hash to the object id"));
        }
        Commit::decode_hashed(id, bytes)
    }

    /// Like [`Commit::decode`], for bytes whose hash the caller has
    /// already checked against `id`.
    pub(crate) fn decode_hashed(id: &ObjectId, bytes: &[u8]) -> Result<Commit> {
        if bytes.len() > MAX_COMMIT_LEN {
            return Err(Error::corrupt(
                *id,
                format!("commit of {} bytes is over the limit", bytes.len()),
            ));
        }
        let (kind, body) = open_unhashed(id, bytes)?;
        if kind != Kind::Commit {
            return Err(Error::corrupt(
                *id,
                format!("expected a commit, found {kind:?}"),
            ));
        }
        let commit: Commit = decode_body(id, body)?;
        commit
            .check()
            .map_err(|reason| Error::corrupt(*id, reason))?;
        if commit.encode() != bytes {
            return Err(Error::corrupt(
                *id,
                "commit is not in its canonical encoding",
            ));
        }
        Ok(commit)
    }

    /// The structural rules every commit obeys (checked on write and read).
    pub fn check(&self) -> std::result::Result<(), String> {
        if self.parents.len() > 2 {
            return Err(format!(
                "a commit has at most two parents, not {}",
                self.parents.len()
            ));
        }
        if self.parents.len() == 2 && self.parents[0] == self.parents[1] {
            return Err("a merge commit needs two different parents".into());
        }
        if self.height == 0 || (self.parents.is_empty() && self.height != 1) {
            return Err(format!("invalid height {}", self.height));
        }
        Ok(())
    }

    /// The current time in microseconds since the Unix epoch.
    pub fn now_micros() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_round_trip_and_validation() {
        let mut c = Commit {
            root: ObjectId::hash(b"root"),
            parents: vec![ObjectId::hash(b"p")],
            height: 2,
            time_micros: 1_700_000_000_000_000,
            message: "hello".into(),
            metadata: BTreeMap::from([("author".to_string(), "ann".to_string())]),
        };
        let bytes = c.encode();
        assert_eq!(Commit::decode(&ObjectId::hash(&bytes), &bytes).unwrap(), c);
        c.parents.clear();
        let bytes = c.encode();
        assert!(Commit::decode(&ObjectId::hash(&bytes), &bytes).is_err());
    }
}
