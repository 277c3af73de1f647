//! Bulk load: a tree from sorted entries in one linear pass.

use super::chunker::Chunker;
use super::{Tree, Writer};
use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::object::{check_key, encode_child_entry, encode_leaf_entry, ChildEntry};
use crate::repo::Repo;

impl Repo {
    /// Builds a tree from entries strictly sorted by key (an
    /// [`Error::Unsorted`] otherwise), in one pass, writing each node once.
    pub fn build_tree<I>(&self, entries: I) -> Result<Tree>
    where
        I: IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
    {
        let mut w = Writer::new(self, false);
        let mut chunker = Chunker::new(0, &mut w);
        let mut parents = Vec::new();
        let mut last_key: Vec<u8> = Vec::new();
        let mut entry = Vec::with_capacity(512);
        for (index, (key, value)) in entries.into_iter().enumerate() {
            check_key(&key)?;
            if index > 0 && key <= last_key {
                return Err(Error::Unsorted { index });
            }
            let value = w.value(value)?;
            entry.clear();
            encode_leaf_entry(&mut entry, &key, value.as_ref());
            parents.extend(chunker.push(&key, &entry, &mut w)?);
            last_key = key;
        }
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
                w.finish()?;
                return self.empty_tree();
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
