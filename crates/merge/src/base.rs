//! The merge base: the lowest common ancestor of two commits.
//!
//! Every commit records its height (1 for a root commit, else 1 + the
//! greatest parent height), so a parent is always lower than its child.
//! The search walks back from both commits at once, always expanding the
//! highest commit not yet expanded, and marks each commit with the sides
//! it is reachable from. Because of the height order, a commit is only
//! expanded once every commit above it that the walk reached has passed
//! its marks down, so the first commits found reachable from both sides
//! are exactly the best common ancestors: common ancestors that are not
//! ancestors of another common ancestor. Their ancestors are marked stale,
//! and the walk stops as soon as only stale commits are left to expand.
//! It therefore reads the commits between the two tips and their merge
//! bases (plus, in criss-cross histories, as far as it takes to see which
//! candidates are ancestors of others), never whole histories when the
//! bases are near. Only for unrelated histories does it read everything,
//! which is what it takes to prove that there is no common ancestor.

use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap};

use kvgit_core::{Error, ObjectId, Repo, Result};

/// The merge base of commits `a` and `b`: their lowest common ancestor,
/// or `None` if their histories are unrelated (merge against the empty
/// tree then).
///
/// In a criss-cross history there can be several best common ancestors
/// (none an ancestor of another). Then the one with the greatest height is
/// chosen, and among equal heights the one with the smallest id, so the
/// answer is deterministic and does not depend on the order of `a` and
/// `b`. Git would instead merge the candidates recursively into a virtual
/// base; picking one is simpler, and a key on which the candidates
/// disagree shows up as changed relative to the chosen base, so at worst a
/// merge reports a conflict git might have avoided (or consults the key's
/// merge function). [`merge_bases`] lists every candidate.
///
/// ```
/// use kvgit_core::{CommitSpec, Repo};
///
/// let repo = Repo::memory();
/// let tree = repo.empty_tree()?;
/// let commit = |parents: Vec<_>| {
///     repo.write_commit(&tree, &CommitSpec { parents, ..CommitSpec::default() })
/// };
/// let root = commit(vec![])?;
/// let left = commit(vec![root])?;
/// let right = commit(vec![root])?;
/// assert_eq!(kvgit_merge::merge_base(&repo, &left, &right)?, Some(root));
/// assert_eq!(kvgit_merge::merge_base(&repo, &root, &right)?, Some(root));
/// # Ok::<(), kvgit_core::Error>(())
/// ```
pub fn merge_base(repo: &Repo, a: &ObjectId, b: &ObjectId) -> Result<Option<ObjectId>> {
    Ok(merge_bases(repo, a, b)?.into_iter().next())
}

/// Every best common ancestor of `a` and `b` (a common ancestor that is not
/// an ancestor of another common ancestor), ordered by the rule of
/// [`merge_base`]: greatest height first, then smallest id. Empty if the
/// histories are unrelated; just `a` if `a` is an ancestor of `b` (or
/// equal to it).
pub fn merge_bases(repo: &Repo, a: &ObjectId, b: &ObjectId) -> Result<Vec<ObjectId>> {
    if a == b {
        repo.read_commit(a)?;
        return Ok(vec![*a]);
    }
    let mut walk = Walk {
        repo,
        seen: HashMap::new(),
        queue: BinaryHeap::new(),
        live: 0,
    };
    walk.reach(*a, FROM_A, None)?;
    walk.reach(*b, FROM_B, None)?;
    let mut found: Vec<(u64, ObjectId)> = Vec::new();
    while walk.live > 0 {
        let Some((height, id)) = walk.queue.pop() else {
            break;
        };
        let Some(state) = walk.seen.get_mut(&id) else {
            continue;
        };
        state.expanded = true;
        if state.marks & STALE == 0 {
            walk.live -= 1;
        }
        if state.marks & BOTH == BOTH && state.marks & STALE == 0 {
            found.push((height, id));
            state.marks |= STALE;
        }
        let marks = state.marks;
        let parents = std::mem::take(&mut state.parents);
        for parent in parents {
            walk.reach(parent, marks, Some((id, height)))?;
        }
    }
    found.sort_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(&y.1)));
    Ok(found.into_iter().map(|(_, id)| id).collect())
}

/// Reachable from `a`.
const FROM_A: u8 = 1;
/// Reachable from `b`.
const FROM_B: u8 = 2;
const BOTH: u8 = FROM_A | FROM_B;
/// An ancestor of a common ancestor already found: cannot be a best one.
const STALE: u8 = 4;

struct State {
    marks: u8,
    parents: Vec<ObjectId>,
    expanded: bool,
}

struct Walk<'r> {
    repo: &'r Repo,
    seen: HashMap<ObjectId, State>,
    /// Commits reached and not yet expanded, highest first.
    queue: BinaryHeap<(u64, ObjectId)>,
    /// How many queued commits are not stale: the walk ends at zero.
    live: usize,
}

impl Walk<'_> {
    /// Adds `marks` to commit `id`, reached from `child` (id and height) or
    /// as a starting point.
    fn reach(&mut self, id: ObjectId, marks: u8, child: Option<(ObjectId, u64)>) -> Result<()> {
        match self.seen.entry(id) {
            Entry::Vacant(slot) => {
                let commit = self.repo.commit_ref(&id)?;
                if let Some((child, child_height)) = child {
                    if commit.height >= child_height {
                        return Err(Error::corrupt(
                            child,
                            format!(
                                "commit of height {child_height} has parent {id} of height {}",
                                commit.height
                            ),
                        ));
                    }
                }
                self.queue.push((commit.height, id));
                if marks & STALE == 0 {
                    self.live += 1;
                }
                slot.insert(State {
                    marks,
                    parents: commit.parents.clone(),
                    expanded: false,
                });
            }
            Entry::Occupied(mut slot) => {
                let state = slot.get_mut();
                // Heights strictly decrease along parents, so a commit is
                // never reached again after it was expanded.
                if state.expanded {
                    return Ok(());
                }
                let was_live = state.marks & STALE == 0;
                state.marks |= marks;
                if was_live && state.marks & STALE != 0 {
                    self.live -= 1;
                }
            }
        }
        Ok(())
    }
}
