//! Bulk load: a tree from sorted entries in one linear pass.

use super::chunker::Chunker;
use super::{Tree, Writer};
use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::object::{check_key, encode_child_entry, encode_leaf_entry, ChildEntry, ValueRef};
use crate::repo::Repo;

impl Repo {
    /// Builds a tree from entries strictly sorted by key (an
    /// [`Error::Unsorted`] otherwise), in one pass, writing each node once.
    pub fn build_tree<I>(&self, entries: I) -> Result<Tree>
    where
        I: IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
    {
        let mut builder = self.tree_builder();
        for (key, value) in entries {
            builder.push(&key, value)?;
        }
        builder.finish()
    }

    /// A streaming bulk build: push entries in strictly increasing key
    /// order, then [`TreeBuilder::finish`]. Only the node being filled and
    /// one entry per finished leaf are held, so a build from a scan of
    /// another tree never holds the entries themselves.
    pub fn tree_builder(&self) -> TreeBuilder<'_> {
        let mut w = Writer::new(self, false);
        let chunker = Chunker::new(0, &mut w);
        TreeBuilder {
            w,
            chunker,
            parents: Vec::new(),
            last_key: Vec::new(),
            entry: Vec::with_capacity(512),
            index: 0,
        }
    }
}

/// A bulk build in progress (see [`Repo::tree_builder`]): the same tree,
/// node for node, as [`Repo::build_tree`] of the same entries.
pub struct TreeBuilder<'r> {
    w: Writer<'r>,
    chunker: Chunker,
    /// The finished leaves' entries in the level above.
    parents: Vec<ChildEntry>,
    last_key: Vec<u8>,
    entry: Vec<u8>,
    index: usize,
}

impl TreeBuilder<'_> {
    /// Appends `key` with value bytes `value` (a blob is written for a
    /// value over [`INLINE_MAX`](crate::INLINE_MAX)).
    pub fn push(&mut self, key: &[u8], value: Vec<u8>) -> Result<()> {
        self.check_order(key)?;
        let value = self.w.value(value)?;
        self.push_checked(key, value.as_ref())
    }

    /// Appends `key` with a value in stored form, as read from a tree of
    /// this repository ([`Repo::for_each_entry`], [`Repo::range_raw`]): a
    /// blob is referenced by its id, neither reloaded nor rewritten, so it
    /// must be stored already.
    pub fn push_stored(&mut self, key: &[u8], value: ValueRef<'_>) -> Result<()> {
        self.check_order(key)?;
        self.push_checked(key, value)
    }

    /// How many entries were pushed.
    pub fn len(&self) -> usize {
        self.index
    }

    /// True if no entry was pushed.
    pub fn is_empty(&self) -> bool {
        self.index == 0
    }

    fn check_order(&self, key: &[u8]) -> Result<()> {
        check_key(key)?;
        if self.index > 0 && key <= self.last_key.as_slice() {
            return Err(Error::Unsorted { index: self.index });
        }
        Ok(())
    }

    fn push_checked(&mut self, key: &[u8], value: ValueRef<'_>) -> Result<()> {
        self.entry.clear();
        encode_leaf_entry(&mut self.entry, key, value);
        self.parents
            .extend(self.chunker.push(key, &self.entry, &mut self.w)?);
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        self.index += 1;
        Ok(())
    }

    /// Writes the last nodes and returns the tree.
    pub fn finish(self) -> Result<Tree> {
        let TreeBuilder {
            mut w,
            mut chunker,
            mut parents,
            ..
        } = self;
        parents.extend(chunker.finish(&mut w)?);
        chunker.release(&mut w);
        let tree = match build_up(parents, 1, &mut w, None)? {
            Some((root, level)) => Tree {
                root: root.id,
                len: root.count,
                value_bytes: root.bytes,
                level,
            },
            None => {
                let repo = w.repo;
                w.finish()?;
                return repo.empty_tree();
            }
        };
        w.finish()?;
        Ok(tree)
    }
}

/// Builds the levels above a complete, sorted list of nodes at
/// `level - 1` until one node remains; returns its entry and level.
/// `source`: the stored tree an edit started from (see [`Chunker`]).
pub(super) fn build_up(
    mut items: Vec<ChildEntry>,
    mut level: u8,
    w: &mut Writer<'_>,
    source: Option<ObjectId>,
) -> Result<Option<(ChildEntry, u8)>> {
    let mut entry = Vec::with_capacity(128);
    loop {
        if items.len() <= 1 {
            return Ok(items.pop().map(|root| (root, level - 1)));
        }
        let mut chunker = match source {
            Some(source) => Chunker::for_edit(level, w, source),
            None => Chunker::new(level, w),
        };
        let mut next = Vec::with_capacity(items.len() / 32 + 1);
        for c in items {
            entry.clear();
            encode_child_entry(&mut entry, &c.key, &c.id, c.count, c.bytes);
            next.extend(chunker.push(&c.key, &entry, w)?);
        }
        next.extend(chunker.finish(w)?);
        chunker.release(w);
        items = next;
        level += 1;
    }
}
