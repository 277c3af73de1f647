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
        let node = self.node(&root)?;
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

    /// Loads child `idx` of internal node `parent`, checking that it agrees
    /// with its parent entry (level, first key and aggregates).
    pub(crate) fn child(&self, parent: &Node, idx: usize) -> Result<Arc<Node>> {
        self.child_with_id(parent, idx).map(|(_, node)| node)
    }

    /// Like [`Repo::child`], also returning the child's id.
    pub(crate) fn child_with_id(&self, parent: &Node, idx: usize) -> Result<(ObjectId, Arc<Node>)> {
        let entry = parent
            .child(idx)
            .expect("callers pass an index of an internal node's child");
        let node = self.node(&entry.id)?;
        if node.level() + 1 != parent.level()
            || node.count() != entry.count
            || node.value_bytes() != entry.bytes
            || node.first_key() != Some(entry.key)
        {
            return Err(Error::corrupt(
                entry.id,
                "node does not match its parent's entry for it",
            ));
        }
        Ok((entry.id, node))
    }
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
