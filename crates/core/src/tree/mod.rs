//! The prolly tree: each commit's key space as a content-addressed,
//! history-independent B-tree.
//!
//! Leaves hold sorted `(key, value)` entries; internal nodes hold one entry
//! per child: the child's first key, id, and subtree key count and value
//! bytes. Node boundaries come from the content (see [`chunker`]), so the
//! same set of entries always gives the same nodes and the same root id,
//! and an edit rewrites only the nodes on its path.

pub mod chunker;

mod apply;
mod build;
mod diff;
mod read;

pub use build::TreeBuilder;
pub use diff::{Change, Diff};
pub use read::{prefix_successor, Range, RawRange};

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::object::{self, ChildEntry, Node, Value, INLINE_MAX};
use crate::repo::Repo;

/// A handle on an immutable tree: its root id and the aggregates of its
/// root. Cheap to copy; reading goes through a [`Repo`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tree {
    root: ObjectId,
    len: u64,
    value_bytes: u64,
    level: u8,
}

impl Tree {
    fn from_node(root: ObjectId, node: &Node) -> Tree {
        Tree {
            root,
            len: node.count(),
            value_bytes: node.value_bytes(),
            level: node.level(),
        }
    }

    /// The id of the root node; equal content gives an equal id.
    pub fn root(&self) -> ObjectId {
        self.root
    }

    /// The number of keys, in O(1).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True if the tree holds no key.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The total length of all values in bytes, in O(1).
    pub fn value_bytes(&self) -> u64 {
        self.value_bytes
    }

    /// The level of the root: 0 when the root is a leaf. The tree's depth
    /// is `level() + 1` nodes.
    pub fn level(&self) -> u8 {
        self.level
    }
}

impl Repo {
    /// The tree rooted at `root` (loads the root node).
    pub fn tree(&self, root: ObjectId) -> Result<Tree> {
        let node = self.root_node(&root)?;
        Ok(Tree::from_node(root, &node))
    }

    /// The empty tree (its root, an empty leaf, is written if missing).
    pub fn empty_tree(&self) -> Result<Tree> {
        let mut w = Writer::new(self, true);
        let entry = w.put_node(Node::assemble(0, 0, &[]))?;
        w.finish()?;
        Ok(Tree {
            root: entry.id,
            len: 0,
            value_bytes: 0,
            level: 0,
        })
    }

    /// The root node of a tree, checked as a root: an internal root has at
    /// least two children (a tree is never taller than it needs to be).
    pub(crate) fn root_node(&self, root: &ObjectId) -> Result<Arc<Node>> {
        let node = self.node(root)?;
        check_root(&Shape::of(&node)).map_err(|reason| Error::corrupt(*root, reason))?;
        Ok(node)
    }

    /// Loads child `idx` of internal node `parent` and checks it against
    /// its parent's entry and its place in the tree ([`check_child`]).
    /// `parent_upper` is the key that bounds `parent`'s subtree from above
    /// (the first key of the next subtree at `parent`'s level, through the
    /// ancestors), `None` if `parent` is the last node of its level.
    ///
    /// Every reader that goes down a tree goes through here, so a node is
    /// never used in a place where `verify` would reject it. The checks are
    /// a few comparisons (no hashing, no allocation): decoding, done once
    /// per load, checks the node on its own, and the cache holds decoded
    /// nodes.
    pub(crate) fn child(
        &self,
        parent: &Node,
        idx: usize,
        parent_upper: Option<&[u8]>,
    ) -> Result<Arc<Node>> {
        self.child_with_id(parent, idx, parent_upper)
            .map(|(_, node)| node)
    }

    /// Like [`Repo::child`], also returning the child's id.
    pub(crate) fn child_with_id(
        &self,
        parent: &Node,
        idx: usize,
        parent_upper: Option<&[u8]>,
    ) -> Result<(ObjectId, Arc<Node>)> {
        let entry = parent
            .child(idx)
            .expect("callers pass an index of an internal node's child");
        let node = self.node(&entry.id)?;
        let claim = Claim {
            level: parent.level() - 1,
            key: entry.key,
            count: entry.count,
            bytes: entry.bytes,
            upper: parent.key_at(idx + 1).or(parent_upper),
        };
        check_child(&Shape::of(&node), &claim).map_err(|wrong| {
            Error::corrupt(
                entry.id,
                format!(
                    "node does not match its parent's entry for it: it has {}",
                    wrong.join(", ")
                ),
            )
        })?;
        Ok((entry.id, node))
    }
}

/// The upper bound of the node on top of a stack of `(node, index of the
/// next entry)` frames, given the frames below it: the first key still to
/// come in an ancestor, `None` on the last path of every level.
pub(crate) fn upper_of(below: &[(Arc<Node>, usize)]) -> Option<&[u8]> {
    below.iter().rev().find_map(|(node, idx)| node.key_at(*idx))
}

/// What a parent's entry says about a child, and where the child sits.
pub(crate) struct Claim<'a> {
    /// The parent's level minus one.
    pub(crate) level: u8,
    /// The entry's key: the child's first key.
    pub(crate) key: &'a [u8],
    /// The entry's key count.
    pub(crate) count: u64,
    /// The entry's value bytes.
    pub(crate) bytes: u64,
    /// The first key after the child's subtree (the next entry's key in the
    /// parent, or the parent's own bound); `None` if the child is the last
    /// node of its level.
    pub(crate) upper: Option<&'a [u8]>,
}

/// What a node shows of itself to [`check_child`] and [`check_root`].
pub(crate) struct Shape<'a> {
    /// Its level.
    pub(crate) level: u8,
    /// How many entries the node itself has.
    pub(crate) entries: usize,
    /// Its subtree's key count.
    pub(crate) count: u64,
    /// Its subtree's value bytes.
    pub(crate) bytes: u64,
    /// Its first key.
    pub(crate) first_key: Option<&'a [u8]>,
    /// The greatest key checked against the upper bound: the node's last
    /// key when a reader checks node by node on the way down (the bound is
    /// passed on to the last child), the subtree's greatest key when a
    /// whole subtree is summarised.
    pub(crate) last_key: Option<&'a [u8]>,
    /// A node with a single entry is in the part checked against the upper
    /// bound (the node itself, or its subtree's last path).
    pub(crate) single: bool,
}

impl<'a> Shape<'a> {
    /// The shape of one node.
    pub(crate) fn of(node: &'a Node) -> Self {
        Shape {
            level: node.level(),
            entries: node.len(),
            count: node.count(),
            bytes: node.value_bytes(),
            first_key: node.first_key(),
            last_key: node.len().checked_sub(1).and_then(|i| node.key_at(i)),
            single: node.len() == 1,
        }
    }
}

/// The format's rules between a child and its parent's entry (FORMAT.md,
/// "The tree"): the child is one level down, its first key is the entry's
/// key, its key count and value bytes are the entry's, its keys stay below
/// the next subtree's first key, and only the last node of a level may
/// hold a single entry (every other node ended at a chunk boundary, which
/// needs two). On failure, every rule broken, worded for a report.
pub(crate) fn check_child(
    shape: &Shape<'_>,
    claim: &Claim<'_>,
) -> std::result::Result<(), Vec<String>> {
    let in_bound = match (claim.upper, shape.last_key) {
        (Some(upper), Some(last)) => last < upper,
        _ => true,
    };
    let single_ok = !shape.single || claim.upper.is_none();
    if shape.level == claim.level
        && shape.first_key == Some(claim.key)
        && shape.count == claim.count
        && shape.bytes == claim.bytes
        && in_bound
        && single_ok
    {
        return Ok(());
    }
    let mut wrong = Vec::new();
    if shape.level != claim.level {
        wrong.push(format!(
            "level {} (parent says {})",
            shape.level, claim.level
        ));
    }
    if shape.first_key != Some(claim.key) {
        wrong.push("a first key other than its parent's separator".to_string());
    }
    if shape.count != claim.count {
        wrong.push(format!(
            "{} keys (parent says {})",
            shape.count, claim.count
        ));
    }
    if shape.bytes != claim.bytes {
        wrong.push(format!(
            "{} value bytes (parent says {})",
            shape.bytes, claim.bytes
        ));
    }
    if !in_bound {
        wrong.push("a key at or past the next subtree's first key".to_string());
    }
    if !single_ok {
        wrong.push("a single entry but is not the last node of its level".to_string());
    }
    Err(wrong)
}

/// The root collapse rule: a root is a leaf or an internal node with at
/// least two children.
pub(crate) fn check_root(shape: &Shape<'_>) -> std::result::Result<(), String> {
    if shape.level > 0 && shape.entries < 2 {
        return Err(format!(
            "root at level {} with a single child: the tree is taller than it needs to be",
            shape.level
        ));
    }
    Ok(())
}

/// Collects the objects a tree operation writes and hands them to the
/// backend in batches.
pub(crate) struct Writer<'r> {
    repo: &'r Repo,
    pending: Vec<(ObjectId, Vec<u8>)>,
    pending_bytes: usize,
    cache_new: bool,
    written: usize,
    spare: Vec<u8>,
}

const WRITE_BATCH_BYTES: usize = 8 << 20;

impl<'r> Writer<'r> {
    /// `cache_new`: put new nodes into the node cache (edits, whose next
    /// reads hit them), or not (bulk loads, which would flood it).
    pub(crate) fn new(repo: &'r Repo, cache_new: bool) -> Self {
        Writer {
            repo,
            pending: Vec::new(),
            pending_bytes: 0,
            cache_new,
            written: 0,
            spare: Vec::new(),
        }
    }

    fn put(&mut self, id: ObjectId, bytes: Vec<u8>) -> Result<()> {
        self.pending_bytes += bytes.len();
        self.pending.push((id, bytes));
        self.written += 1;
        if self.pending_bytes >= WRITE_BATCH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the pending objects to the backend now.
    pub(crate) fn flush(&mut self) -> Result<()> {
        if !self.pending.is_empty() {
            self.repo
                .backend()
                .put_objects(std::mem::take(&mut self.pending))?;
            self.pending_bytes = 0;
        }
        Ok(())
    }

    /// Node `id`, which this writer may have made and not written yet:
    /// from the cache, the pending batch, or the store.
    pub(crate) fn node(&self, id: &ObjectId) -> Result<Arc<Node>> {
        if let Some(node) = self.repo.cache().get(id) {
            return Ok(node);
        }
        match self.pending.iter().rev().find(|(p, _)| p == id) {
            Some((_, bytes)) => Node::decode(id, bytes).map(Arc::new),
            None => self.repo.node(id),
        }
    }

    /// A cleared buffer for a chunker (reused across the operation).
    pub(crate) fn take_buffer(&mut self) -> Vec<u8> {
        let mut buf = std::mem::take(&mut self.spare);
        buf.clear();
        if buf.capacity() == 0 {
            buf.reserve(chunker::MAX_NODE + 8 * 1024);
        }
        buf
    }

    /// Returns a chunker's buffer for reuse.
    pub(crate) fn return_buffer(&mut self, buf: Vec<u8>) {
        if buf.capacity() > self.spare.capacity() {
            self.spare = buf;
        }
    }

    /// Stores a node and returns its entry in the parent level.
    pub(crate) fn put_node(&mut self, node: Node) -> Result<ChildEntry> {
        let id = ObjectId::hash(node.bytes());
        let entry = ChildEntry {
            key: node.first_key().map(<[u8]>::to_vec).unwrap_or_default(),
            id,
            count: node.count(),
            bytes: node.value_bytes(),
        };
        let bytes = if self.cache_new {
            let bytes = node.bytes().to_vec();
            self.repo.cache().insert(id, Arc::new(node));
            bytes
        } else {
            node.into_bytes()
        };
        self.put(id, bytes)?;
        Ok(entry)
    }

    /// The stored form of a value: inline, or a blob written now.
    pub(crate) fn value(&mut self, value: Vec<u8>) -> Result<Value> {
        object::check_value(&value)?;
        if value.len() <= INLINE_MAX {
            return Ok(Value::Inline(value));
        }
        let bytes = object::encode_blob(&value);
        let id = ObjectId::hash(&bytes);
        if self.cache_new {
            self.repo
                .cache()
                .insert_blob(id, Arc::from(value.as_slice()));
        }
        self.put(id, bytes)?;
        Ok(Value::Blob {
            id,
            len: value.len() as u64,
        })
    }

    /// Writes everything still pending; returns how many objects the
    /// operation wrote.
    pub(crate) fn finish(mut self) -> Result<usize> {
        self.flush()?;
        Ok(self.written)
    }

    /// Hands back what is still pending instead of writing it, so that the
    /// caller can send it in one batch with the commit object.
    pub(crate) fn finish_unwritten(mut self) -> Unwritten {
        Unwritten {
            objects: std::mem::take(&mut self.pending),
        }
    }
}

/// Objects a tree operation made but has not written yet (see
/// [`Repo::apply_unwritten`]): the tree it returned is not readable from
/// the store until they are written, by [`Repo::write_objects`] or
/// together with a commit and its ref swap by [`Repo::commit_with`].
#[derive(Debug, Default)]
#[must_use = "the tree needs these objects: write them"]
pub struct Unwritten {
    objects: Vec<(ObjectId, Vec<u8>)>,
}

impl Unwritten {
    /// How many objects wait to be written.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// True if nothing waits to be written.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    pub(crate) fn into_objects(self) -> Vec<(ObjectId, Vec<u8>)> {
        self.objects
    }
}
