//! Point reads and ordered, lazy range scans.

use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use super::{upper_of, Tree};
use crate::error::Result;
use crate::object::{Node, Value, ValueRef};
use crate::repo::Repo;

impl Repo {
    /// The value of `key`, with a blob value loaded.
    pub fn get(&self, tree: &Tree, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.get_value(tree, key)?
            .map(|v| self.read_value(&v))
            .transpose()
    }

    /// The stored form of `key`'s value (a blob is not loaded).
    pub fn get_value(&self, tree: &Tree, key: &[u8]) -> Result<Option<Value>> {
        let mut node = self.root_node(&tree.root())?;
        // The node and index of the key that bounds `node` from above.
        let mut bound: Option<(Arc<Node>, usize)> = None;
        loop {
            if node.is_leaf() {
                let i = node.lower_bound(key);
                return Ok(match node.leaf_entry(i) {
                    Some((k, v)) if k == key => Some(v.to_value()),
                    _ => None,
                });
            }
            let idx = node.upper_bound(key);
            if idx == 0 {
                return Ok(None);
            }
            let upper = bound.as_ref().and_then(|(n, i)| n.key_at(*i));
            let child = self.child(&node, idx - 1, upper)?;
            if idx < node.len() {
                bound = Some((node, idx));
            }
            node = child;
        }
    }

    /// The entries with keys in `range`, in key order, values loaded.
    pub fn range<R: RangeBounds<[u8]>>(&self, tree: &Tree, range: R) -> Range {
        Range {
            raw: self.range_raw(tree, range),
        }
    }

    /// The entries whose keys start with `prefix`, in key order.
    pub fn prefix(&self, tree: &Tree, prefix: &[u8]) -> Range {
        let end = prefix_successor(prefix);
        let end_bound = match &end {
            Some(e) => Bound::Excluded(e.as_slice()),
            None => Bound::Unbounded,
        };
        self.range(tree, (Bound::Included(prefix), end_bound))
    }

    /// Calls `visit` with every `(key, stored value)` of `tree`, in key
    /// order, borrowing from the nodes: nothing is copied, no blob is
    /// loaded, and only the nodes on the current path are held, so a scan
    /// of any size runs in memory bounded by the tree's depth. Every node
    /// is checked against its parent on the way down as every other reader
    /// checks it (a damaged node is [`Error::Corrupt`], never visited).
    /// Stops at the first error, `visit`'s own included.
    ///
    /// [`Error::Corrupt`]: crate::Error::Corrupt
    pub fn for_each_entry<E, F>(&self, tree: &Tree, mut visit: F) -> std::result::Result<(), E>
    where
        E: From<crate::Error>,
        F: FnMut(&[u8], ValueRef<'_>) -> std::result::Result<(), E>,
    {
        let mut stack: Vec<(Arc<Node>, usize)> = vec![(self.root_node(&tree.root())?, 0)];
        while let Some(((node, idx), below)) = stack.split_last_mut() {
            if node.is_leaf() {
                for (key, value) in node.leaf_entries() {
                    visit(key, value)?;
                }
                stack.pop();
                continue;
            }
            if *idx >= node.len() {
                stack.pop();
                continue;
            }
            let child = self.child(node, *idx, upper_of(below))?;
            *idx += 1;
            stack.push((child, 0));
        }
        Ok(())
    }

    /// Like [`Repo::range`], yielding stored values (blobs not loaded).
    pub fn range_raw<R: RangeBounds<[u8]>>(&self, tree: &Tree, range: R) -> RawRange {
        RawRange {
            repo: self.clone(),
            root: tree.root(),
            start: range.start_bound().map(<[u8]>::to_vec),
            end: range.end_bound().map(<[u8]>::to_vec),
            stack: Vec::new(),
            state: State::Unstarted,
        }
    }
}

/// The smallest key greater than every key starting with `prefix`, if any.
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[derive(PartialEq, Eq)]
enum State {
    Unstarted,
    Running,
    Done,
}

/// A lazy, ordered scan yielding `(key, stored value)`.
pub struct RawRange {
    repo: Repo,
    root: crate::ObjectId,
    start: Bound<Vec<u8>>,
    end: Bound<Vec<u8>>,
    /// Nodes from the root down, each with the index of its next entry.
    stack: Vec<(Arc<Node>, usize)>,
    state: State,
}

impl RawRange {
    fn seek(&mut self) -> Result<()> {
        let mut node = self.repo.root_node(&self.root)?;
        loop {
            if node.is_leaf() {
                let idx = match &self.start {
                    Bound::Unbounded => 0,
                    Bound::Included(s) => node.lower_bound(s),
                    Bound::Excluded(s) => node.upper_bound(s),
                };
                self.stack.push((node, idx));
                return Ok(());
            }
            let idx = match &self.start {
                Bound::Unbounded => 0,
                Bound::Included(s) | Bound::Excluded(s) => node.upper_bound(s).saturating_sub(1),
            };
            let child = self.repo.child(&node, idx, upper_of(&self.stack))?;
            self.stack.push((node, idx + 1));
            node = child;
        }
    }

    fn step(&mut self) -> Result<Option<(Vec<u8>, Value)>> {
        if self.state == State::Unstarted {
            self.state = State::Running;
            self.seek()?;
        }
        loop {
            let Some(((node, idx), below)) = self.stack.split_last_mut() else {
                return Ok(None);
            };
            if node.is_leaf() {
                let Some((key, value)) = node.leaf_entry(*idx) else {
                    self.stack.pop();
                    continue;
                };
                *idx += 1;
                let past_end = match &self.end {
                    Bound::Unbounded => false,
                    Bound::Included(e) => key > e.as_slice(),
                    Bound::Excluded(e) => key >= e.as_slice(),
                };
                if past_end {
                    self.stack.clear();
                    return Ok(None);
                }
                return Ok(Some((key.to_vec(), value.to_value())));
            }
            if *idx >= node.len() {
                self.stack.pop();
                continue;
            }
            let child = self.repo.child(node, *idx, upper_of(below))?;
            *idx += 1;
            self.stack.push((child, 0));
        }
    }
}

impl Iterator for RawRange {
    type Item = Result<(Vec<u8>, Value)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.state == State::Done {
            return None;
        }
        match self.step() {
            Ok(Some(item)) => Some(Ok(item)),
            Ok(None) => {
                self.state = State::Done;
                None
            }
            Err(e) => {
                self.state = State::Done;
                Some(Err(e))
            }
        }
    }
}

/// A lazy, ordered scan yielding `(key, value bytes)`.
pub struct Range {
    raw: RawRange,
}

impl Iterator for Range {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.raw.next()?;
        Some(item.and_then(|(k, v)| Ok((k, self.raw.repo.read_value(&v)?))))
    }
}
