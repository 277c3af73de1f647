//! Three-way merge of trees.
//!
//! The changes base → ours and base → theirs are streamed side by side in
//! key order (each a [`Repo::diff`], which skips every subtree the two trees
//! share, so it costs O(changes x depth)). Each changed key is settled on
//! the spot:
//!
//! - changed on one side only: that side's change is taken;
//! - changed the same way on both sides: taken once (unless the key's
//!   merge function asks to see such keys too, as [`Counter`] does: see
//!   [`MergeFn::merge_equal_changes`]);
//! - changed differently on both sides: the key's registry entry decides
//!   (see [`Registry`]); with no entry, or if the merge function declines,
//!   the key is a conflict.
//!
//! [`Policy::Ours`] and [`Policy::Theirs`] entries also override one-sided
//! changes under them: the covered keys keep that side's state whatever
//! happened on the other side.
//!
//! The keys that must change in ours (theirs' changes and the
//! resolutions) are applied to ours as one batch of stored values, so no
//! blob is read for a key taken from theirs and the tree is rewritten only
//! along the changed paths. Nothing is written when there are conflicts:
//! every conflicting key is reported at once.
//!
//! [`Counter`]: crate::Counter

use kvgit_core::object::{encode_blob, INLINE_MAX, MAX_VALUE_LEN};
use kvgit_core::tree::Diff;
use kvgit_core::{Change, ObjectId, Repo, Tree, Value};

use crate::error::{Conflict, Error};
use crate::resolve::{call_guarded, Entries, MergeFn, Policy, Registry, Resolution, Side};

/// Options of [`merge_trees`].
#[derive(Clone, Debug)]
pub struct Options {
    /// On a fast-forward (ours unchanged since base), list the keys taken
    /// from theirs in [`Outcome::from_theirs`]. That costs a diff of base
    /// and theirs, O(theirs' changes); without it a fast-forward reads
    /// nothing. Default: true.
    pub list_fast_forward_keys: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            list_fast_forward_keys: true,
        }
    }
}

/// Which way the merge went, judged by its result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// The result is ours: theirs had nothing to add (theirs unchanged
    /// since base, equal to ours, or every difference settled for ours).
    NoOp,
    /// The result is theirs: ours had nothing to add (typically ours
    /// unchanged since base).
    FastForward,
    /// The result differs from both sides: a true three-way merge.
    ThreeWay,
}

/// The result of a successful merge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Which way the merge went.
    pub strategy: Strategy,
    /// The merged tree (its objects are written).
    pub tree: Tree,
    /// The keys a registry entry decided, in key order: keys both sides
    /// changed differently, settled by a merge function or a side policy,
    /// and keys changed on one side whose change a side policy overrode.
    pub resolved: Vec<Vec<u8>>,
    /// The keys whose merged state (value or absence) is theirs' and not
    /// ours', in key order: what the merge carried over from the other
    /// side. A key can be in both lists.
    pub from_theirs: Vec<Vec<u8>>,
}

/// Merges `ours` and `theirs`, two trees derived from `base`.
///
/// Fails with [`Error::Conflicts`] listing every key that could not be
/// merged (nothing of the merge is written then, except blobs of values
/// that merge functions returned). Storage errors are [`Error::Core`].
///
/// The merge writes the new nodes of its result (and blobs of large
/// merged values): a caller that commits the result should hold
/// [`Repo::write_fence`] from before the merge until its ref has moved, as
/// for any commit.
///
/// ```
/// use kvgit_core::Repo;
/// use kvgit_merge::{merge_trees, tree, Registry, Strategy};
///
/// let repo = Repo::memory();
/// let kv = |k: &str, v: &str| (k.as_bytes().to_vec(), Some(v.as_bytes().to_vec()));
/// let base = repo.apply(&repo.empty_tree()?, [kv("a", "1"), kv("b", "2")])?;
/// let ours = repo.apply(&base, [kv("a", "3")])?;
/// let theirs = repo.apply(&base, [kv("b", "4")])?;
/// let outcome = merge_trees(&repo, &base, &ours, &theirs, &Registry::new(), &tree::Options::default())?;
/// assert_eq!(outcome.strategy, Strategy::ThreeWay);
/// assert_eq!(outcome.from_theirs, vec![b"b".to_vec()]);
/// assert_eq!(repo.get(&outcome.tree, b"a")?, Some(b"3".to_vec()));
/// assert_eq!(repo.get(&outcome.tree, b"b")?, Some(b"4".to_vec()));
/// # Ok::<(), kvgit_merge::Error>(())
/// ```
pub fn merge_trees(
    repo: &Repo,
    base: &Tree,
    ours: &Tree,
    theirs: &Tree,
    registry: &Registry,
    options: &Options,
) -> Result<Outcome, Error> {
    let entries = registry.snapshot();
    let no_op = Outcome {
        strategy: Strategy::NoOp,
        tree: *ours,
        resolved: Vec::new(),
        from_theirs: Vec::new(),
    };
    // The short cuts hold unless a side policy could override the one side
    // that changed, or a function wants to see identical changes.
    if ours.root() == theirs.root()
        && (ours.root() == base.root() || !entries.has_equal_change_fn())
    {
        return Ok(no_op);
    }
    if theirs.root() == base.root() && !entries.has_side_policy(Side::Theirs) {
        return Ok(no_op);
    }
    if ours.root() == base.root() && !entries.has_side_policy(Side::Ours) {
        return fast_forward(repo, base, theirs, options);
    }
    three_way(repo, base, ours, theirs, &entries)
}

/// The outcome of taking `theirs` whole, over `base`.
pub(crate) fn fast_forward(
    repo: &Repo,
    base: &Tree,
    theirs: &Tree,
    options: &Options,
) -> Result<Outcome, Error> {
    let mut from_theirs = Vec::new();
    if options.list_fast_forward_keys {
        for change in repo.diff(base, theirs) {
            from_theirs.push(change?.key().to_vec());
        }
    }
    Ok(Outcome {
        strategy: Strategy::FastForward,
        tree: *theirs,
        resolved: Vec::new(),
        from_theirs,
    })
}

/// A diff stream with one change of look-ahead.
struct Cursor {
    diff: Diff,
    head: Option<Change>,
}

impl Cursor {
    fn new(diff: Diff) -> Result<Self, Error> {
        let mut c = Cursor { diff, head: None };
        c.head = c.diff.next().transpose()?;
        Ok(c)
    }

    fn take(&mut self) -> Result<Option<Change>, Error> {
        let next = self.diff.next().transpose()?;
        Ok(std::mem::replace(&mut self.head, next))
    }
}

/// The merge's accumulating result.
#[derive(Default)]
struct Acc {
    edits: Vec<(Vec<u8>, Option<Value>)>,
    resolved: Vec<Vec<u8>>,
    from_theirs: Vec<Vec<u8>>,
    conflicts: Vec<Conflict>,
}

impl Acc {
    /// Sets `key` to `state`, which differs from ours'; `theirs` says
    /// whether it is theirs' state.
    fn edit(&mut self, key: &[u8], state: Option<Value>, theirs: bool) {
        if theirs {
            self.from_theirs.push(key.to_vec());
        }
        self.edits.push((key.to_vec(), state));
    }
}

fn three_way(
    repo: &Repo,
    base: &Tree,
    ours: &Tree,
    theirs: &Tree,
    entries: &Entries,
) -> Result<Outcome, Error> {
    let mut o = Cursor::new(repo.diff(base, ours))?;
    let mut t = Cursor::new(repo.diff(base, theirs))?;
    // Without side policies a one-sided change needs no lookup.
    let side_policies = entries.has_any_side_policy();
    let mut acc = Acc::default();
    loop {
        let order = match (&o.head, &t.head) {
            (None, None) => break,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(x), Some(y)) => x.key().cmp(y.key()),
        };
        match order {
            std::cmp::Ordering::Less => {
                // Changed by ours only: already in ours, unless theirs'
                // state is imposed.
                let Some(c) = o.take()? else { break };
                if side_policies && matches!(entries.lookup(c.key()), Some(Policy::Theirs)) {
                    acc.resolved.push(c.key().to_vec());
                    acc.edit(c.key(), c.old().cloned(), true);
                }
            }
            std::cmp::Ordering::Greater => {
                // Changed by theirs only: taken, unless ours' state is
                // imposed.
                let Some(c) = t.take()? else { break };
                if side_policies && matches!(entries.lookup(c.key()), Some(Policy::Ours)) {
                    acc.resolved.push(c.key().to_vec());
                } else {
                    acc.edit(c.key(), c.new_value().cloned(), true);
                }
            }
            std::cmp::Ordering::Equal => {
                let (Some(co), Some(ct)) = (o.take()?, t.take()?) else {
                    break;
                };
                if co.new_value() != ct.new_value() {
                    both_changed(repo, entries, &co, &ct, &mut acc)?;
                } else if let Some(Policy::Fn(f)) = entries.lookup(co.key()) {
                    if f.merge_equal_changes() {
                        call_fn(repo, f.as_ref(), &co, &ct, &mut acc)?;
                    }
                }
            }
        }
    }
    if !acc.conflicts.is_empty() {
        return Err(Error::Conflicts(acc.conflicts));
    }
    let tree = repo.apply_values(ours, acc.edits)?;
    let strategy = if tree.root() == ours.root() {
        Strategy::NoOp
    } else if tree.root() == theirs.root() {
        Strategy::FastForward
    } else {
        Strategy::ThreeWay
    };
    Ok(Outcome {
        strategy,
        tree,
        resolved: acc.resolved,
        from_theirs: acc.from_theirs,
    })
}

/// Settles a key both sides changed, differently.
fn both_changed(
    repo: &Repo,
    entries: &Entries,
    co: &Change,
    ct: &Change,
    acc: &mut Acc,
) -> Result<(), Error> {
    let key = co.key();
    let (ours, theirs) = (co.new_value(), ct.new_value());
    let load = |v: Option<&Value>| v.map(|v| repo.read_value(v)).transpose();
    let f = match entries.lookup(key) {
        Some(Policy::Ours) => {
            acc.resolved.push(key.to_vec());
            return Ok(());
        }
        Some(Policy::Theirs) => {
            acc.resolved.push(key.to_vec());
            acc.edit(key, theirs.cloned(), true);
            return Ok(());
        }
        Some(Policy::Fn(f)) => f,
        None => {
            acc.conflicts.push(Conflict {
                key: key.to_vec(),
                base: load(co.old())?,
                ours: load(ours)?,
                theirs: load(theirs)?,
                reason: None,
            });
            return Ok(());
        }
    };
    call_fn(repo, f.as_ref(), co, ct, acc)
}

/// Settles a key both sides changed with merge function `f`.
fn call_fn(
    repo: &Repo,
    f: &dyn MergeFn,
    co: &Change,
    ct: &Change,
    acc: &mut Acc,
) -> Result<(), Error> {
    let key = co.key();
    let (ours, theirs) = (co.new_value(), ct.new_value());
    let load = |v: Option<&Value>| v.map(|v| repo.read_value(v)).transpose();
    let (b, o, t) = (load(co.old())?, load(ours)?, load(theirs)?);
    let resolution = call_guarded(f, key, b.as_deref(), o.as_deref(), t.as_deref());
    let merged = match resolution {
        Resolution::Value(bytes) => match stored(repo, bytes, [ours, theirs])? {
            Ok(v) => Some(v),
            Err(reason) => {
                acc.conflicts.push(Conflict {
                    key: key.to_vec(),
                    base: b,
                    ours: o,
                    theirs: t,
                    reason: Some(reason),
                });
                return Ok(());
            }
        },
        Resolution::Delete => None,
        Resolution::Conflict(reason) => {
            acc.conflicts.push(Conflict {
                key: key.to_vec(),
                base: b,
                ours: o,
                theirs: t,
                reason: Some(reason.unwrap_or_else(|| "merge function declined".to_string())),
            });
            return Ok(());
        }
    };
    acc.resolved.push(key.to_vec());
    if merged.as_ref() != ours {
        let is_theirs = merged.as_ref() == theirs;
        acc.edit(key, merged, is_theirs);
    }
    Ok(())
}

/// The stored form of a merged value: inline, or a blob (written unless
/// one of `known` already refers to it). The inner error is a value the
/// store cannot hold, reported as the key's conflict.
fn stored(
    repo: &Repo,
    bytes: Vec<u8>,
    known: [Option<&Value>; 2],
) -> Result<Result<Value, String>, Error> {
    let len = bytes.len() as u64;
    if len > MAX_VALUE_LEN {
        return Ok(Err(format!(
            "merge function returned {len} bytes, more than the {MAX_VALUE_LEN}-byte limit"
        )));
    }
    if bytes.len() <= INLINE_MAX {
        return Ok(Ok(Value::Inline(bytes)));
    }
    let object = encode_blob(&bytes);
    let value = Value::Blob {
        id: ObjectId::hash(&object),
        len,
    };
    if !known.contains(&Some(&value)) {
        repo.backend()
            .put_objects(vec![(ObjectId::hash(&object), object)])?;
    }
    Ok(Ok(value))
}
