//! [`move_branch`]: the one place a branch head moves.
//!
//! Every way a branch gets a new head builds a [`Request`] saying what kind
//! of move it is ([`MoveKind`]), the head it replaces and where it goes,
//! and calls [`move_branch`], which does every step of a move in order:
//!
//! 1. Validation: the hooks see the kind, the old and new heads and the
//!    changes between them, and can refuse the move (nothing moves then).
//! 2. The compare-and-swap from the expected head, with the durability
//!    barrier ([`kvgit_core::Repo::commit_with`] or
//!    [`kvgit_core::Repo::move_ref`]). A lost swap hands the caller's write
//!    fence back, for a merge and another try.
//! 3. Subscriptions are told the new head.
//! 4. With the write fence released: the written keys become the warmest
//!    (access recency), and the automatic garbage collection runs if the
//!    branch is now above the high water. The rebase it makes is itself a
//!    move through here, of kind [`MoveKind::Rebase`], which runs no
//!    garbage collection of its own.
//!
//! So a new kind of move cannot forget a step: it is one more request.

use kvgit_core::{CasOutcome, CommitSpec, Tree, Unwritten};
use kvgit_gc::{RebaseMove, RebaseReport, Watermarks};
use parking_lot::RwLockReadGuard;

use crate::db::{CommitCheck, CommitId, Db};
use crate::error::{Error, Result};
use crate::snapshot::diff_trees;

/// What kind of move a branch makes, as validation hooks see it
/// ([`CommitCheck::kind`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MoveKind {
    /// A transaction's commit on top of the head (`put`, `delete`,
    /// `update`, `commit`, `commit_keys`, ...).
    Commit,
    /// A merge of another commit, recorded as a two-parent merge commit.
    Merge,
    /// A merge that moved the branch to the other commit, which already
    /// contained its head.
    FastForward,
    /// [`Branch::reset_to`](crate::Branch::reset_to): to any commit,
    /// whatever the branch held.
    Reset,
    /// Garbage collection: the surviving keys as a fresh root commit
    /// ([`Db::rebase`], [`Db::rebase_keep`], the automatic rebase).
    Rebase,
    /// A new branch: [`Db::branch`] creating it, [`Db::create_branch`],
    /// [`Branch::fork`](crate::Branch::fork). The changes are those from
    /// the empty tree.
    Create,
    /// [`Db::delete_branch`]: the branch goes away. The changes remove
    /// every key it held, and [`CommitCheck::new_head`] is `None`.
    Delete,
}

/// Where a move takes the branch.
pub(crate) enum Target {
    /// A commit that exists already.
    Existing(CommitId),
    /// A commit to write: `tree` (its last objects possibly still
    /// `unwritten`, see [`kvgit_core::Repo::apply_unwritten`]) and `spec`.
    New {
        tree: Tree,
        unwritten: Unwritten,
        spec: CommitSpec,
    },
    /// No commit: the branch is deleted.
    Deleted,
}

/// The caller's share of the write fence ([`kvgit_core::Repo::write_fence`]),
/// held from its first object write until the ref has moved.
pub(crate) struct Fence<'r>(Option<RwLockReadGuard<'r, ()>>);

impl<'r> Fence<'r> {
    /// The caller's guard, handed over: [`move_branch`] releases it once
    /// the ref has moved, before the work that takes the fence itself
    /// (the automatic garbage collection), and hands it back on a lost
    /// race.
    pub(crate) fn handed(guard: RwLockReadGuard<'r, ()>) -> Self {
        Fence(Some(guard))
    }

    /// Held by the caller for the whole call (the rebase inside
    /// kvgit-gc): then no automatic garbage collection runs.
    pub(crate) fn held_by_caller() -> Self {
        Fence(None)
    }
}

/// One branch move (see the module docs).
pub(crate) struct Request<'r> {
    /// The branch's short name.
    pub branch: &'r str,
    /// Its full ref name.
    pub ref_name: &'r str,
    pub kind: MoveKind,
    /// The head the move replaces; `None`: the branch must not exist.
    pub expected: Option<CommitId>,
    pub target: Target,
    /// The message the hooks see when no commit is written here (a commit
    /// written here shows its own).
    pub message: String,
    /// Keys the move writes, recorded as accessed once it has landed.
    pub written: &'r [Vec<u8>],
    pub fence: Fence<'r>,
}

/// What a [`move_branch`] did.
pub(crate) enum Outcome<'r> {
    /// The branch moved to `head`; `gc` is the automatic rebase that ran
    /// after, if any (then the branch is at its new root commit).
    Moved {
        head: CommitId,
        gc: Option<RebaseReport>,
    },
    /// The branch was deleted ([`Target::Deleted`]).
    Deleted,
    /// Another writer moved the branch first (`actual`: what it holds now,
    /// `None` if it was deleted). Nothing moved; the fence is handed back.
    Lost {
        actual: Option<CommitId>,
        fence: Fence<'r>,
    },
}

/// Moves a branch: validation, compare-and-swap, durability barrier,
/// subscriptions, access recency and automatic garbage collection, in that
/// order (see the module docs). A refusal by a hook is
/// [`Error::Rejected`], with nothing moved.
pub(crate) fn move_branch<'r>(db: &'r Db, request: Request<'r>) -> Result<Outcome<'r>> {
    let repo = &db.inner.repo;
    let Request {
        branch,
        ref_name,
        kind,
        expected,
        target,
        message,
        written,
        fence,
    } = request;
    let check = |message: &str, new_head: Option<CommitId>, new_tree: Option<&Tree>| {
        validate(db, kind, branch, message, expected, new_head, new_tree)
    };
    let (head, cas) = match target {
        // Without hooks, a new commit goes to the store with its last
        // objects and the swap in one backend call.
        Target::New {
            tree,
            unwritten,
            spec,
        } if !db.has_validators() => {
            repo.commit_with(ref_name, expected.as_ref(), &tree, unwritten, &spec)?
        }
        Target::New {
            tree,
            unwritten,
            spec,
        } => {
            // The hooks read the new tree and name the new head: both are
            // stored first (garbage if the move is refused or lost).
            repo.write_objects(unwritten)?;
            let id = repo.write_commit(&tree, &spec)?;
            check(&spec.message, Some(id), Some(&tree))?;
            (id, repo.move_ref(ref_name, expected.as_ref(), Some(&id))?)
        }
        Target::Existing(id) => {
            if db.has_validators() {
                check(&message, Some(id), None)?;
            }
            (id, repo.move_ref(ref_name, expected.as_ref(), Some(&id))?)
        }
        Target::Deleted => {
            if db.has_validators() {
                check(&message, None, None)?;
            }
            let cas = repo.move_ref(ref_name, expected.as_ref(), None)?;
            if let CasOutcome::Mismatch { actual } = cas {
                return Ok(Outcome::Lost { actual, fence });
            }
            // Subscribers learn of the deletion by their channel closing;
            // the branch's access recency goes with it.
            db.unsubscribe_all(ref_name);
            drop(fence);
            db.inner.access.forget_branch(branch)?;
            return Ok(Outcome::Deleted);
        }
    };
    if let CasOutcome::Mismatch { actual } = cas {
        return Ok(Outcome::Lost { actual, fence });
    }
    db.notify(ref_name, head);
    let may_collect = fence.0.is_some() && kind != MoveKind::Rebase;
    drop(fence);
    db.touch_many(branch, written.iter().map(Vec::as_slice));
    let gc = match may_collect {
        true => automatic_gc(db, branch)?,
        false => None,
    };
    Ok(Outcome::Moved { head, gc })
}

/// Runs the hooks on the move from `expected` to `new_head` (`None`: the
/// branch is deleted, and its keys are all removed).
fn validate(
    db: &Db,
    kind: MoveKind,
    branch: &str,
    message: &str,
    expected: Option<CommitId>,
    new_head: Option<CommitId>,
    new_tree: Option<&Tree>,
) -> Result<()> {
    let repo = &db.inner.repo;
    let tree_of = |id: &CommitId| -> Result<Tree> { Ok(repo.tree(repo.commit_ref(id)?.root)?) };
    let old_tree = match &expected {
        Some(id) => tree_of(id)?,
        None => repo.empty_tree()?,
    };
    let new_tree = match (new_tree, &new_head) {
        (Some(tree), _) => *tree,
        (None, Some(id)) => tree_of(id)?,
        (None, None) => repo.empty_tree()?,
    };
    let changes = diff_trees(db, &old_tree, &new_tree)?;
    db.validate(&CommitCheck {
        branch,
        message,
        changes: &changes,
        kind,
        old_head: expected,
        new_head,
    })
}

/// How a rebase chooses what to keep.
pub(crate) enum Keep<'a> {
    /// Drop the coldest keys down to the low water, if above the high.
    Watermarks(&'a Watermarks),
    /// Keep the keys the predicate accepts (and the protected ones).
    Only(&'a dyn Fn(&[u8]) -> bool),
}

/// A rebase of `branch`, its ref moved through [`move_branch`]; `protected`
/// replaces the store's protection rule for this rebase.
pub(crate) fn rebase(
    db: &Db,
    branch: &str,
    keep: Keep<'_>,
    progress: kvgit_gc::Progress,
    protected: Option<kvgit_gc::Protected>,
) -> Result<RebaseReport> {
    let repo = &db.inner.repo;
    let options = kvgit_gc::RebaseOptions {
        protected: protected.unwrap_or_else(|| db.inner.options.protected.clone()),
        progress,
        ..kvgit_gc::RebaseOptions::default()
    };
    let message = options.message.clone();
    // Called by the rebase under its own write fence.
    let mover = |m: &RebaseMove<'_>| -> Result<CasOutcome> {
        let request = Request {
            branch: m.branch,
            ref_name: m.ref_name,
            kind: MoveKind::Rebase,
            expected: Some(m.from),
            target: Target::Existing(m.to),
            message: message.clone(),
            written: &[],
            fence: Fence::held_by_caller(),
        };
        Ok(match move_branch(db, request)? {
            Outcome::Moved { .. } | Outcome::Deleted => CasOutcome::Swapped,
            Outcome::Lost { actual, .. } => CasOutcome::Mismatch { actual },
        })
    };
    match keep {
        Keep::Watermarks(marks) => {
            let access = &db.inner.access;
            kvgit_gc::rebase_with(repo, branch, marks, access, &options, mover)
        }
        Keep::Only(keep) => kvgit_gc::rebase_keep_with(repo, branch, keep, &options, mover),
    }
}

/// The automatic rebase after a move, if water marks are set and the
/// branch is above the high one. A hook refusing it leaves the branch as
/// the move left it: the move itself stands.
fn automatic_gc(db: &Db, branch: &str) -> Result<Option<RebaseReport>> {
    let Some(marks) = db.inner.options.watermarks else {
        return Ok(None);
    };
    match rebase(
        db,
        branch,
        Keep::Watermarks(&marks),
        Default::default(),
        None,
    ) {
        Ok(report) => Ok(report.performed().then_some(report)),
        Err(Error::Rejected { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}
