//! Bulk load: a tree from sorted entries in one linear pass.

use super::chunker::Chunker;
use super::{Tree, Writer};
use crate::error::{Error, Result};
use crate::object::{check_key, ChildEntry, LeafEntry};
use crate::repo::Repo;

impl Repo {
    /// Builds a tree from entries strictly sorted by key (an
    /// [`Error::Unsorted`] otherwise), in one pass, writing each node once.
    pub fn build_tree<I>(&self, entries: I) -> Result<Tree>
    where
        I: IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
    {
        let mut w = Writer::new(self, false);
        let mut chunker = Chunker::<LeafEntry>::new(0);
        let mut parents = Vec::new();
        let mut last_key: Vec<u8> = Vec::new();
        for (index, (key, value)) in entries.into_iter().enumerate() {
            check_key(&key)?;
            if index > 0 && key <= last_key {
                return Err(Error::Unsorted { index });
            }
            last_key.clear();
            last_key.extend_from_slice(&key);
            let value = w.value(value)?;
            if let Some(parent) = chunker.push(LeafEntry { key, value }, &mut w)? {
                parents.push(parent);
            }
        }
        parents.extend(chunker.finish(&mut w)?);
        let tree = match build_up(parents, 1, &mut w)? {
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
pub(super) fn build_up(
    mut items: Vec<ChildEntry>,
    mut level: u8,
    w: &mut Writer<'_>,
) -> Result<Option<(ChildEntry, u8)>> {
    loop {
        if items.len() <= 1 {
            return Ok(items.pop().map(|root| (root, level - 1)));
        }
        let mut chunker = Chunker::<ChildEntry>::new(level);
        let mut next = Vec::with_capacity(items.len() / 32 + 1);
        for item in items {
            next.extend(chunker.push(item, w)?);
        }
        next.extend(chunker.finish(w)?);
        items = next;
        level += 1;
    }
}
