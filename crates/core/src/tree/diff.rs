//! Diff of two trees as a sorted stream of changes, skipping every subtree
//! whose id is the same on both sides: O(differences x depth).

use std::sync::Arc;

use super::Tree;
use crate::error::Result;
use crate::object::{ChildEntry, LeafEntry, Node, Value};
use crate::repo::Repo;

/// One difference between two trees, from the old (`a`) to the new (`b`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// The key is only in the new tree.
    Added {
        /// The key.
        key: Vec<u8>,
        /// Its value in the new tree.
        value: Value,
    },
    /// The key is only in the old tree.
    Removed {
        /// The key.
        key: Vec<u8>,
        /// Its value in the old tree.
        value: Value,
    },
    /// The key is in both with different values.
    Modified {
        /// The key.
        key: Vec<u8>,
        /// Its value in the old tree.
        old: Value,
        /// Its value in the new tree.
        new: Value,
    },
}

impl Change {
    /// The key that changed.
    pub fn key(&self) -> &[u8] {
        match self {
            Change::Added { key, .. }
            | Change::Removed { key, .. }
            | Change::Modified { key, .. } => key,
        }
    }

    /// The value before (`None` if added).
    pub fn old(&self) -> Option<&Value> {
        match self {
            Change::Added { .. } => None,
            Change::Removed { value, .. } => Some(value),
            Change::Modified { old, .. } => Some(old),
        }
    }

    /// The value after (`None` if removed).
    pub fn new_value(&self) -> Option<&Value> {
        match self {
            Change::Added { value, .. } => Some(value),
            Change::Removed { .. } => None,
            Change::Modified { new, .. } => Some(new),
        }
    }
}

impl Repo {
    /// The changes that turn tree `a` into tree `b`, in key order.
    pub fn diff(&self, a: &Tree, b: &Tree) -> Diff {
        Diff {
            repo: self.clone(),
            roots: Some((a.root(), b.root())),
            a: Vec::new(),
            b: Vec::new(),
            done: false,
        }
    }
}

/// A lazy stream of [`Change`]s in key order.
pub struct Diff {
    repo: Repo,
    roots: Option<(crate::ObjectId, crate::ObjectId)>,
    a: Vec<(Arc<Node>, usize)>,
    b: Vec<(Arc<Node>, usize)>,
    done: bool,
}

enum Head<'a> {
    Entry(&'a LeafEntry),
    Child(&'a ChildEntry, u8),
}

fn head(stack: &mut Vec<(Arc<Node>, usize)>) -> Option<Head<'_>> {
    while let Some((node, idx)) = stack.last() {
        if *idx < node.len() {
            break;
        }
        stack.pop();
    }
    let (node, idx) = stack.last()?;
    Some(match node.leaf_entries() {
        Some(entries) => Head::Entry(&entries[*idx]),
        None => Head::Child(
            &node.children().expect("a node is a leaf or internal")[*idx],
            node.level(),
        ),
    })
}

fn advance(stack: &mut [(Arc<Node>, usize)]) {
    if let Some((_, idx)) = stack.last_mut() {
        *idx += 1;
    }
}

impl Diff {
    fn expand(repo: &Repo, stack: &mut Vec<(Arc<Node>, usize)>) -> Result<()> {
        let (node, idx) = stack
            .last_mut()
            .expect("expand is called on a side with a head");
        let child = repo.child(node, *idx)?;
        *idx += 1;
        stack.push((child, 0));
        Ok(())
    }

    fn step(&mut self) -> Result<Option<Change>> {
        if let Some((ra, rb)) = self.roots.take() {
            if ra == rb {
                return Ok(None);
            }
            self.a.push((self.repo.node(&ra)?, 0));
            self.b.push((self.repo.node(&rb)?, 0));
        }
        loop {
            let ha = head(&mut self.a);
            let hb = head(&mut self.b);
            // What to do, decided while the heads are borrowed.
            enum Act {
                Emit(Change, bool, bool),
                Skip,
                ExpandA,
                ExpandB,
                ExpandBoth,
            }
            let act =
                match (ha, hb) {
                    (None, None) => return Ok(None),
                    (None, Some(Head::Entry(e))) => Act::Emit(
                        Change::Added {
                            key: e.key.clone(),
                            value: e.value.clone(),
                        },
                        false,
                        true,
                    ),
                    (Some(Head::Entry(e)), None) => Act::Emit(
                        Change::Removed {
                            key: e.key.clone(),
                            value: e.value.clone(),
                        },
                        true,
                        false,
                    ),
                    (None, Some(Head::Child(..)))
                    | (Some(Head::Entry(_)), Some(Head::Child(..))) => Act::ExpandB,
                    (Some(Head::Child(..)), None)
                    | (Some(Head::Child(..)), Some(Head::Entry(_))) => Act::ExpandA,
                    (Some(Head::Entry(x)), Some(Head::Entry(y))) => match x.key.cmp(&y.key) {
                        std::cmp::Ordering::Less => Act::Emit(
                            Change::Removed {
                                key: x.key.clone(),
                                value: x.value.clone(),
                            },
                            true,
                            false,
                        ),
                        std::cmp::Ordering::Greater => Act::Emit(
                            Change::Added {
                                key: y.key.clone(),
                                value: y.value.clone(),
                            },
                            false,
                            true,
                        ),
                        std::cmp::Ordering::Equal if x.value == y.value => Act::Skip,
                        std::cmp::Ordering::Equal => Act::Emit(
                            Change::Modified {
                                key: x.key.clone(),
                                old: x.value.clone(),
                                new: y.value.clone(),
                            },
                            true,
                            true,
                        ),
                    },
                    (Some(Head::Child(x, lx)), Some(Head::Child(y, ly))) => {
                        if x.id == y.id {
                            Act::Skip
                        } else if lx != ly {
                            if lx > ly {
                                Act::ExpandA
                            } else {
                                Act::ExpandB
                            }
                        } else {
                            match x.key.cmp(&y.key) {
                                std::cmp::Ordering::Less => Act::ExpandA,
                                std::cmp::Ordering::Greater => Act::ExpandB,
                                std::cmp::Ordering::Equal => Act::ExpandBoth,
                            }
                        }
                    }
                };
            match act {
                Act::Emit(change, adv_a, adv_b) => {
                    if adv_a {
                        advance(&mut self.a);
                    }
                    if adv_b {
                        advance(&mut self.b);
                    }
                    return Ok(Some(change));
                }
                Act::Skip => {
                    advance(&mut self.a);
                    advance(&mut self.b);
                }
                Act::ExpandA => Self::expand(&self.repo, &mut self.a)?,
                Act::ExpandB => Self::expand(&self.repo, &mut self.b)?,
                Act::ExpandBoth => {
                    Self::expand(&self.repo, &mut self.a)?;
                    Self::expand(&self.repo, &mut self.b)?;
                }
            }
        }
    }
}

impl Iterator for Diff {
    type Item = Result<Change>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.step() {
            Ok(Some(c)) => Some(Ok(c)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
