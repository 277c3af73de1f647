//! Merkle proofs: the nodes on the path from a tree's root to the leaf
//! where a key is or would be, checkable without a store.
//!
//! Each node's id is the hash of its bytes and each internal node names its
//! children by id, so the path, hashed from the root id down, ties the leaf
//! (and the value's blob, for a large value) to the root: a proof of
//! presence gives the value, a proof of absence shows the leaf whose range
//! holds the key without it. Whoever knows a root (or commit) id can check
//! a value served by a store it does not trust.

use kvgit_core::object::{decode_blob, Node, ValueRef};
use kvgit_core::{Commit, ObjectId, Repo};

use crate::error::{Error, Result};
use crate::protocol::{Message, WireObject};
use crate::transport::Connection;

/// The nodes from a tree's root to the leaf that holds (or would hold) a
/// key, and the value's blob if it is stored as one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proof {
    /// Encoded nodes, root first.
    pub nodes: Vec<Vec<u8>>,
    /// The encoded blob of a large value.
    pub blob: Option<Vec<u8>>,
}

/// Where a key leads in a node: the leaf entry or the child to follow.
enum Step<'a> {
    /// A leaf: the key's value, if present.
    Leaf(Option<ValueRef<'a>>),
    /// An internal node: the child whose range holds the key, with its
    /// index; `None` if the key sorts before every child.
    Child(Option<usize>),
}

fn step<'a>(node: &'a Node, key: &[u8]) -> Step<'a> {
    // The number of entries whose key is at most `key`.
    let (mut lo, mut hi) = (0, node.len());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if node.key_at(mid).is_some_and(|k| k <= key) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if node.is_leaf() {
        let found = lo
            .checked_sub(1)
            .and_then(|i| node.leaf_entry(i))
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| v);
        Step::Leaf(found)
    } else {
        Step::Child(lo.checked_sub(1))
    }
}

/// The proof of `key` in the tree rooted at `root`.
pub fn prove(repo: &Repo, root: &ObjectId, key: &[u8]) -> Result<Proof> {
    let mut nodes = Vec::new();
    let mut id = *root;
    loop {
        let node = repo.node(&id)?;
        nodes.push(node.bytes().to_vec());
        match step(&node, key) {
            Step::Leaf(value) => {
                let blob = match value {
                    Some(ValueRef::Blob { id, .. }) => Some(repo.object_bytes(&id)?),
                    _ => None,
                };
                return Ok(Proof { nodes, blob });
            }
            Step::Child(None) => return Ok(Proof { nodes, blob: None }),
            Step::Child(Some(i)) => {
                id = node.child(i).expect("step() returns an index in range").id;
            }
        }
    }
}

impl Proof {
    /// Checks the proof against the tree root `root` and returns the
    /// value of `key` (`None`: the proof shows the key is absent). Every
    /// node is hashed and must be the one its parent names; any other
    /// shape is [`Error::BadProof`].
    pub fn verify(&self, root: &ObjectId, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let bad = |reason: String| Error::BadProof(reason);
        let mut expected = *root;
        let mut parent: Option<(u8, Vec<u8>, u64, u64)> = None;
        for (depth, bytes) in self.nodes.iter().enumerate() {
            let node = Node::decode(&expected, bytes)
                .map_err(|e| bad(format!("node {depth} of the path: {e}")))?;
            if let Some((level, first, count, value_bytes)) = &parent {
                if node.level() != *level
                    || node.first_key() != Some(first.as_slice())
                    || node.count() != *count
                    || node.value_bytes() != *value_bytes
                {
                    return Err(bad(format!(
                        "node {depth} of the path does not match its parent's entry"
                    )));
                }
            }
            let last = depth + 1 == self.nodes.len();
            match step(&node, key) {
                Step::Leaf(value) => {
                    if !last {
                        return Err(bad("nodes after the leaf".into()));
                    }
                    return match (value, &self.blob) {
                        (None, None) => Ok(None),
                        (Some(ValueRef::Inline(v)), None) => Ok(Some(v.to_vec())),
                        (Some(ValueRef::Blob { id, len }), Some(blob)) => {
                            let v = decode_blob(&id, blob)
                                .map_err(|e| bad(format!("the value's blob: {e}")))?;
                            if v.len() as u64 != len {
                                return Err(
                                    bad("the blob's length differs from the leaf's".into()),
                                );
                            }
                            Ok(Some(v))
                        }
                        (Some(ValueRef::Blob { .. }), None) => {
                            Err(bad("the value is a blob and the proof lacks it".into()))
                        }
                        (_, Some(_)) => Err(bad("a blob the value does not refer to".into())),
                    };
                }
                Step::Child(None) => {
                    if !last || self.blob.is_some() {
                        return Err(bad(
                            "the key sorts before the tree, yet the path goes on".into()
                        ));
                    }
                    return Ok(None);
                }
                Step::Child(Some(i)) => {
                    let child = node.child(i).expect("step() returns an index in range");
                    expected = child.id;
                    parent = Some((
                        node.level() - 1,
                        child.key.to_vec(),
                        child.count,
                        child.bytes,
                    ));
                }
            }
        }
        Err(bad("the path ends before a leaf".into()))
    }
}

/// A value proven to be in (or absent from) a commit's tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvenValue {
    /// The commit the proof is relative to: compare it with one you trust.
    pub commit: ObjectId,
    /// The key's value, `None` if absent.
    pub value: Option<Vec<u8>>,
}

/// Asks the remote for `key` at ref `name` (full name, `heads/main`) with
/// its proof, and checks it: only the path and the value travel, not the
/// store. If `trusted` is given, the ref must point at that commit.
pub fn get_verified(
    conn: &mut Connection,
    name: &str,
    key: &[u8],
    trusted: Option<&ObjectId>,
) -> Result<ProvenValue> {
    conn.ch.send(&Message::Prove {
        name: name.to_string(),
        key: key.to_vec(),
    })?;
    let (commit, objects) = match conn.ch.recv()? {
        Message::ProofReply { commit, objects } => (commit, objects),
        other => {
            return Err(Error::protocol(format!(
                "expected ProofReply, got {}",
                other.name()
            )))
        }
    };
    let decoded = Commit::decode(&commit.id, &commit.bytes)
        .map_err(|e| Error::bad_object(commit.id, e.to_string()))?;
    if trusted.is_some_and(|t| *t != commit.id) {
        return Err(Error::BadProof(format!(
            "the remote's {name} is at {}, not the trusted commit",
            commit.id
        )));
    }
    let mut nodes = Vec::new();
    let mut blob = None;
    for obj in objects {
        match obj
            .bytes
            .get(1)
            .copied()
            .and_then(kvgit_core::object::Kind::from_byte)
        {
            Some(kvgit_core::object::Kind::Blob) if blob.is_none() => blob = Some(obj.bytes),
            _ => nodes.push(obj.bytes),
        }
    }
    let value = Proof { nodes, blob }.verify(&decoded.root, key)?;
    Ok(ProvenValue {
        commit: commit.id,
        value,
    })
}

/// The server's answer to [`Message::Prove`].
pub(crate) fn answer_prove(repo: &Repo, name: &str, key: &[u8]) -> Result<Message> {
    if !(name.starts_with(kvgit_core::refs::HEADS) || name.starts_with(kvgit_core::refs::TAGS)) {
        return Err(Error::Remote(format!("{name:?} is not a branch or tag")));
    }
    kvgit_core::refs::check_full_name(name)?;
    let id = repo
        .get_ref(name)?
        .ok_or_else(|| Error::Remote(format!("no ref {name}")))?;
    let commit_bytes = repo.object_bytes(&id)?;
    let root = repo.commit_ref(&id)?.root;
    let proof = prove(repo, &root, key)?;
    let mut objects: Vec<WireObject> = proof
        .nodes
        .into_iter()
        .map(|bytes| WireObject {
            id: ObjectId::hash(&bytes),
            bytes,
        })
        .collect();
    if let Some(bytes) = proof.blob {
        objects.push(WireObject {
            id: ObjectId::hash(&bytes),
            bytes,
        });
    }
    Ok(Message::ProofReply {
        commit: WireObject {
            id,
            bytes: commit_bytes,
        },
        objects,
    })
}
