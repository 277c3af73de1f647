//! Apply a batch of puts and deletes, rewriting only the affected nodes.
//!
//! Level by level, from the leaves up: for each run of edits, start a fresh
//! chunker at the start of the node holding the first edit and stream that
//! node's entries, merged with the edits, through it. When a node of the old
//! level is finished and the chunker has just ended a node there too, the
//! boundaries are back in step (the rule looks only inside the current
//! node), so everything after is unchanged until the next edit. Each such
//! region turns into edits one level up: delete the old nodes' entries, put
//! the new ones. At the root level the new nodes are the whole level;
//! levels are added above while there is more than one node, and removed
//! while the root has a single child. The result is exactly the tree a bulk
//! build of the new content would give (the property tests check this).
//!
//! Unchanged entries are copied as encoded bytes, never decoded.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::build::build_up;
use super::chunker::Chunker;
use super::{Tree, Unwritten, Writer};
use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::object::{check_key, encode_child_entry, encode_leaf_entry, ChildEntry, Node, Value};
use crate::repo::Repo;

/// One level's edits, sorted by key: key -> the new entry's encoding, or
/// `None` to delete.
type Edits = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// The edits one level up that a level's rewrite produces.
type ParentEdits = Vec<(Vec<u8>, Option<ChildEntry>)>;

impl Repo {
    /// A new tree: `tree` with `edits` applied (`Some(value)` puts,
    /// `None` deletes; for a key given twice the last edit wins). Writes
    /// O(edits x depth) nodes.
    pub fn apply<E>(&self, tree: &Tree, edits: E) -> Result<Tree>
    where
        E: IntoIterator<Item = (Vec<u8>, Option<Vec<u8>>)>,
    {
        self.apply_counted(tree, edits).map(|(tree, _)| tree)
    }

    /// Like [`Repo::apply`], but the last batch of new objects (for a
    /// commit of a few keys, all of them) is handed back unwritten, so that
    /// it can go to the store in one batch with the commit object
    /// ([`Repo::commit_with`]): one round trip less on a networked
    /// store. Batches over 8 MiB are written as they fill.
    pub fn apply_unwritten<E>(&self, tree: &Tree, edits: E) -> Result<(Tree, Unwritten)>
    where
        E: IntoIterator<Item = (Vec<u8>, Option<Vec<u8>>)>,
    {
        let (tree, w) = self.apply_pending(tree, edits)?;
        Ok((tree, w.finish_unwritten()))
    }

    /// Like [`Repo::apply`], also returning how many objects were written.
    pub fn apply_counted<E>(&self, tree: &Tree, edits: E) -> Result<(Tree, usize)>
    where
        E: IntoIterator<Item = (Vec<u8>, Option<Vec<u8>>)>,
    {
        let (tree, w) = self.apply_pending(tree, edits)?;
        Ok((tree, w.finish()?))
    }

    /// Applies `edits`; the writer still holds the last batch.
    fn apply_pending<E>(&self, tree: &Tree, edits: E) -> Result<(Tree, Writer<'_>)>
    where
        E: IntoIterator<Item = (Vec<u8>, Option<Vec<u8>>)>,
    {
        let mut edits: Vec<(Vec<u8>, Option<Vec<u8>>)> = edits.into_iter().collect();
        for (key, _) in &edits {
            check_key(key)?;
        }
        // Stable sort, then keep the last edit of each key.
        edits.sort_by(|a, b| a.0.cmp(&b.0));
        let mut deduped: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::with_capacity(edits.len());
        for edit in edits {
            match deduped.last_mut() {
                Some(last) if last.0 == edit.0 => *last = edit,
                _ => deduped.push(edit),
            }
        }
        let mut w = Writer::new(self, true);
        let mut level0 = Vec::with_capacity(deduped.len());
        for (key, value) in deduped {
            let entry = match value {
                Some(v) => Some(leaf_entry(&key, &w.value(v)?)),
                None => None,
            };
            level0.push((key, entry));
        }
        let tree = self.apply_entries(tree, level0, &mut w)?;
        Ok((tree, w))
    }

    /// Applies edits whose values are already in stored form, sorted by key
    /// without duplicates (merge uses this to apply a diff without loading
    /// blobs).
    pub fn apply_values(&self, tree: &Tree, edits: Vec<(Vec<u8>, Option<Value>)>) -> Result<Tree> {
        for (index, pair) in edits.windows(2).enumerate() {
            if pair[0].0 >= pair[1].0 {
                return Err(Error::Unsorted { index: index + 1 });
            }
        }
        for (key, _) in &edits {
            check_key(key)?;
        }
        let mut w = Writer::new(self, true);
        let level0 = edits
            .into_iter()
            .map(|(key, value)| {
                let entry = value.map(|value| leaf_entry(&key, &value));
                (key, entry)
            })
            .collect();
        let tree = self.apply_entries(tree, level0, &mut w)?;
        w.finish()?;
        Ok(tree)
    }

    fn apply_entries(&self, tree: &Tree, edits: Edits, w: &mut Writer<'_>) -> Result<Tree> {
        if edits.is_empty() {
            return Ok(*tree);
        }
        let root = self.root_node(&tree.root)?;
        let root_level = root.level();
        let mut up = self.apply_level(&root, tree.root, 0, edits, w)?;
        for level in 1..=root_level {
            if up.is_empty() {
                return Ok(*tree);
            }
            let encoded = up
                .into_iter()
                .map(|(key, child)| (key, child.map(|c| child_entry(&c))))
                .collect();
            up = self.apply_level(&root, tree.root, level, encoded, w)?;
        }
        if up.is_empty() {
            return Ok(*tree);
        }
        // `up` replaces the single old root node: its puts are the whole
        // new root level.
        let nodes: Vec<ChildEntry> = up.into_iter().filter_map(|(_, e)| e).collect();
        let Some((mut top, mut level)) = build_up(nodes, root_level + 1, w, Some(tree.root))?
        else {
            return self.empty_tree();
        };
        // A root never has a single child. Collapsing reads the nodes just
        // built, which may not be written yet (nor cached).
        while level > 0 {
            let node = w.node(&top.id)?;
            if node.len() != 1 {
                break;
            }
            let only = node.child(0).expect("an internal node has a child");
            top = ChildEntry {
                key: only.key.to_vec(),
                id: only.id,
                count: only.count,
                bytes: only.bytes,
            };
            level -= 1;
        }
        Ok(Tree {
            root: top.id,
            len: top.count,
            value_bytes: top.bytes,
            level,
        })
    }

    /// Applies sorted, unique `edits` to the entries at `level`; returns the
    /// resulting edits one level up (empty if nothing changed).
    fn apply_level(
        &self,
        root: &Arc<Node>,
        root_id: ObjectId,
        level: u8,
        edits: Edits,
        w: &mut Writer<'_>,
    ) -> Result<ParentEdits> {
        let mut up: BTreeMap<Vec<u8>, Option<ChildEntry>> = BTreeMap::new();
        let mut i = 0;
        // Every region ends with the chunker empty, so one serves them all.
        let mut chunker = Chunker::for_edit(level, w, root_id);
        while i < edits.len() {
            let mut cur = LevelCursor::seek(self, root, root_id, level, &edits[i].0)?;
            let mut old: Vec<(Vec<u8>, ObjectId)> = Vec::new();
            let mut new: Vec<ChildEntry> = Vec::new();
            loop {
                let node = cur.node.clone();
                if node.level() != level {
                    return Err(Error::corrupt(cur.node_id, "node at the wrong level"));
                }
                if let Some(first) = node.first_key() {
                    old.push((first.to_vec(), cur.node_id));
                }
                let upper = cur.next_first_key().map(<[u8]>::to_vec);
                let in_node = |key: &[u8]| upper.as_deref().is_none_or(|u| key < u);
                let mut j = 0;
                loop {
                    let edit_here = i < edits.len() && in_node(&edits[i].0);
                    let item_key = node.key_at(j);
                    match item_key {
                        item if edit_here && item.is_none_or(|k| edits[i].0.as_slice() <= k) => {
                            if item == Some(edits[i].0.as_slice()) {
                                j += 1;
                            }
                            let (key, entry) = &edits[i];
                            if let Some(entry) = entry {
                                new.extend(chunker.push(key, entry, w)?);
                            }
                            i += 1;
                        }
                        Some(key) => {
                            new.extend(chunker.push(key, node.entry_bytes(j), w)?);
                            j += 1;
                        }
                        None => break,
                    }
                }
                if chunker.is_empty() {
                    break;
                }
                if !cur.advance(self)? {
                    new.extend(chunker.finish(w)?);
                    break;
                }
            }
            let unchanged =
                old.len() == new.len() && old.iter().zip(&new).all(|((_, id), n)| *id == n.id);
            if !unchanged {
                for (key, _) in old {
                    up.insert(key, None);
                }
                for entry in new {
                    up.insert(entry.key.clone(), Some(entry));
                }
            }
        }
        chunker.release(w);
        Ok(up.into_iter().collect())
    }
}

/// The encoding of a leaf entry.
fn leaf_entry(key: &[u8], value: &Value) -> Vec<u8> {
    let mut e = Vec::with_capacity(key.len() + value.len().min(300) as usize + 8);
    encode_leaf_entry(&mut e, key, value.as_ref());
    e
}

/// The encoding of a child entry.
fn child_entry(c: &ChildEntry) -> Vec<u8> {
    let mut e = Vec::with_capacity(c.key.len() + 56);
    encode_child_entry(&mut e, &c.key, &c.id, c.count, c.bytes);
    e
}

/// The first key after the subtree at the end of `path` (frames of a node
/// and the index of the child on the path): the next key in an ancestor.
fn path_upper(path: &[(Arc<Node>, usize)]) -> Option<&[u8]> {
    path.iter()
        .rev()
        .find_map(|(parent, idx)| parent.key_at(idx + 1))
}

/// A position on one node of a level, with the path from the root.
struct LevelCursor {
    /// Internal nodes above, each with the index of the child on the path.
    path: Vec<(Arc<Node>, usize)>,
    node: Arc<Node>,
    node_id: ObjectId,
    level: u8,
}

impl LevelCursor {
    /// The node at `level` that holds `key`'s position (the first node for
    /// a key before every other).
    fn seek(
        repo: &Repo,
        root: &Arc<Node>,
        root_id: ObjectId,
        level: u8,
        key: &[u8],
    ) -> Result<Self> {
        let mut path = Vec::new();
        let mut node = root.clone();
        let mut node_id = root_id;
        while node.level() > level {
            let idx = node.upper_bound(key).saturating_sub(1);
            let (child_id, child) = repo.child_with_id(&node, idx, path_upper(&path))?;
            node_id = child_id;
            path.push((node, idx));
            node = child;
        }
        Ok(LevelCursor {
            path,
            node,
            node_id,
            level,
        })
    }

    /// The first key of the next node at this level, if there is one.
    fn next_first_key(&self) -> Option<&[u8]> {
        path_upper(&self.path)
    }

    /// Moves to the next node at this level; false at the end.
    fn advance(&mut self, repo: &Repo) -> Result<bool> {
        loop {
            let Some((parent, idx)) = self.path.last_mut() else {
                return Ok(false);
            };
            if *idx + 1 < parent.len() {
                *idx += 1;
                break;
            }
            self.path.pop();
        }
        loop {
            let ((parent, idx), above) = self.path.split_last().expect("a frame was just found");
            let (child_id, child) = repo.child_with_id(parent, *idx, path_upper(above))?;
            if child.level() == self.level {
                self.node = child;
                self.node_id = child_id;
                return Ok(true);
            }
            self.path.push((child, 0));
        }
    }
}
