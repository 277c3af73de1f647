//! Diff of two trees as a sorted stream of changes, skipping every subtree
//! whose id is the same on both sides: O(differences x depth).

use std::sync::Arc;

use super::{upper_of, Tree};
use crate::error::Result;
use crate::object::{Node, Value};
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

/// The next unconsumed item of one side.
enum Head<'a> {
    /// A leaf entry: its node and index.
    Entry(&'a Node, usize),
    /// A subtree: the internal node holding its entry, and the index.
    Child(&'a Node, usize),
}

fn head(stack: &mut Vec<(Arc<Node>, usize)>) -> Option<Head<'_>> {
    while let Some((node, idx)) = stack.last() {
        if *idx < node.len() {
            break;
        }
        stack.pop();
    }
    let (node, idx) = stack.last()?;
    Some(if node.is_leaf() {
        Head::Entry(node, *idx)
    } else {
        Head::Child(node, *idx)
    })
}

fn entry_value(node: &Node, idx: usize) -> (Vec<u8>, Value) {
    let (k, v) = node.leaf_entry(idx).expect("index in range");
    (k.to_vec(), v.to_value())
}

fn added(node: &Node, idx: usize) -> Change {
    let (key, value) = entry_value(node, idx);
    Change::Added { key, value }
}

fn removed(node: &Node, idx: usize) -> Change {
    let (key, value) = entry_value(node, idx);
    Change::Removed { key, value }
}

fn advance(stack: &mut [(Arc<Node>, usize)], by: usize) {
    if let Some((_, idx)) = stack.last_mut() {
        *idx += by;
    }
}

/// What to do next, decided while the heads are borrowed.
enum Act {
    Emit(Change, bool, bool),
    /// Both sides' next entries are equal for this many entries.
    Skip(usize),
    ExpandA,
    ExpandB,
    ExpandBoth,
}

fn decide(ha: Option<Head<'_>>, hb: Option<Head<'_>>) -> Option<Act> {
    use std::cmp::Ordering::{Equal, Greater, Less};
    Some(match (ha, hb) {
        (None, None) => return None,
        (None, Some(Head::Entry(n, i))) => Act::Emit(added(n, i), false, true),
        (Some(Head::Entry(n, i)), None) => Act::Emit(removed(n, i), true, false),
        (None, Some(Head::Child(..))) | (Some(Head::Entry(..)), Some(Head::Child(..))) => {
            Act::ExpandB
        }
        (Some(Head::Child(..)), None) | (Some(Head::Child(..)), Some(Head::Entry(..))) => {
            Act::ExpandA
        }
        (Some(Head::Entry(x, i)), Some(Head::Entry(y, j))) => {
            // Encodings are canonical: equal bytes, equal entries. Runs of
            // equal entries are skipped in one scan of the bytes.
            let run = x.equal_run(i, y, j);
            if run > 0 {
                return Some(Act::Skip(run));
            }
            let kx = x.key_at(i).expect("index in range");
            let ky = y.key_at(j).expect("index in range");
            match kx.cmp(ky) {
                Less => Act::Emit(removed(x, i), true, false),
                Greater => Act::Emit(added(y, j), false, true),
                Equal => {
                    let (key, old) = entry_value(x, i);
                    let (_, new) = entry_value(y, j);
                    Act::Emit(Change::Modified { key, old, new }, true, true)
                }
            }
        }
        (Some(Head::Child(x, i)), Some(Head::Child(y, j))) => {
            // A child entry is its key, id and aggregates: equal entries
            // are the same subtree. (Equal tails under different keys mean
            // one side is damaged: expanded, the child's check says so.)
            let (lx, ly) = (x.level(), y.level());
            let run = if lx == ly { x.equal_run(i, y, j) } else { 0 };
            if run > 0 {
                Act::Skip(run)
            } else if lx != ly {
                if lx > ly {
                    Act::ExpandA
                } else {
                    Act::ExpandB
                }
            } else {
                let kx = x.key_at(i).expect("index in range");
                let ky = y.key_at(j).expect("index in range");
                match kx.cmp(ky) {
                    Less => Act::ExpandA,
                    Greater => Act::ExpandB,
                    Equal => Act::ExpandBoth,
                }
            }
        }
    })
}

impl Diff {
    fn expand(repo: &Repo, stack: &mut Vec<(Arc<Node>, usize)>) -> Result<()> {
        let ((node, idx), below) = stack
            .split_last_mut()
            .expect("expand is called on a side with a head");
        let child = repo.child(node, *idx, upper_of(below))?;
        *idx += 1;
        stack.push((child, 0));
        Ok(())
    }

    fn step(&mut self) -> Result<Option<Change>> {
        if let Some((ra, rb)) = self.roots.take() {
            if ra == rb {
                return Ok(None);
            }
            self.a.push((self.repo.root_node(&ra)?, 0));
            self.b.push((self.repo.root_node(&rb)?, 0));
        }
        loop {
            let Some(act) = decide(head(&mut self.a), head(&mut self.b)) else {
                return Ok(None);
            };
            match act {
                Act::Emit(change, adv_a, adv_b) => {
                    if adv_a {
                        advance(&mut self.a, 1);
                    }
                    if adv_b {
                        advance(&mut self.b, 1);
                    }
                    return Ok(Some(change));
                }
                Act::Skip(run) => {
                    advance(&mut self.a, run);
                    advance(&mut self.b, run);
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
