//! Merging commits: find the merge base, merge the trees, and (with
//! [`merge_into_ref`]) record the result on a branch.

use std::collections::BTreeMap;

use kvgit_core::{CasOutcome, CommitSpec, ObjectId, Repo};

use crate::base::merge_base;
use crate::error::Error;
use crate::resolve::Registry;
use crate::tree::{self, merge_trees};

/// Options of [`merge_commits`].
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// How the trees are merged.
    pub tree: tree::Options,
}

/// The result of [`merge_commits`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The merge base used (`None`: unrelated histories, merged against
    /// the empty tree).
    pub base: Option<ObjectId>,
    /// The tree merge: strategy, merged tree, resolved and carried keys.
    pub merge: tree::Outcome,
}

/// Merges commit `theirs` into commit `ours`: finds their merge base (see
/// [`merge_base`]) and merges the three trees (see
/// [`merge_trees`]). Writes the merged tree's objects
/// but no commit: see [`merge_into_ref`] for that, or write one with
/// parents `[ours, theirs]` yourself.
pub fn merge_commits(
    repo: &Repo,
    ours: &ObjectId,
    theirs: &ObjectId,
    registry: &Registry,
    options: &Options,
) -> Result<Outcome, Error> {
    let ours_tree = repo.tree(repo.commit_ref(ours)?.root)?;
    let theirs_tree = repo.tree(repo.commit_ref(theirs)?.root)?;
    let base = merge_base(repo, ours, theirs)?;
    let base_tree = match &base {
        Some(id) => repo.tree(repo.commit_ref(id)?.root)?,
        None => repo.empty_tree()?,
    };
    let merge = merge_trees(
        repo,
        &base_tree,
        &ours_tree,
        &theirs_tree,
        registry,
        &options.tree,
    )?;
    Ok(Outcome { base, merge })
}

/// Options of [`merge_into_ref`].
#[derive(Clone, Debug)]
pub struct RefOptions {
    /// How the commits are merged.
    pub merge: Options,
    /// The merge commit's message. Default: `"merge"`.
    pub message: String,
    /// The merge commit's metadata.
    pub metadata: BTreeMap<String, String>,
    /// The merge commit's time; now if `None`.
    pub time_micros: Option<u64>,
    /// Move the ref straight to theirs, writing no merge commit, when the
    /// ref's commit is an ancestor of theirs and the merge result is
    /// theirs' tree (as git does by default). Default: true.
    pub fast_forward: bool,
    /// How many times to merge again when another writer moves the ref
    /// meanwhile, before giving up with [`Error::Contended`]. Default: 10.
    pub max_attempts: u32,
}

impl Default for RefOptions {
    fn default() -> Self {
        RefOptions {
            merge: Options::default(),
            message: "merge".to_string(),
            metadata: BTreeMap::new(),
            time_micros: None,
            fast_forward: true,
            max_attempts: 10,
        }
    }
}

/// The result of [`merge_into_ref`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefOutcome {
    /// What the ref held before (`None`: it did not exist).
    pub previous: Option<ObjectId>,
    /// What the ref holds now.
    pub head: ObjectId,
    /// The merge commit written, if one was (`None` on a fast-forward or
    /// when already up to date).
    pub merge_commit: Option<ObjectId>,
    /// The merge that produced `head`.
    pub outcome: Outcome,
    /// How many merges were tried (more than 1 when the ref moved
    /// meanwhile).
    pub attempts: u32,
}

/// Merges commit `theirs` into the commit ref `ref_name` points at, and
/// moves the ref by compare-and-swap:
///
/// - already up to date (theirs is an ancestor of the ref's commit and the
///   merge leaves its tree as it is): the ref is left alone;
/// - fast-forward (the ref's commit is an ancestor of theirs and the merge
///   result is theirs' tree, and [`RefOptions::fast_forward`]): the ref
///   moves to theirs;
/// - otherwise: a merge commit of the merged tree with parents
///   `[ref's commit, theirs]` is written and the ref moves to it.
///
/// A missing ref is created at theirs. If another writer moves the ref
/// meanwhile, the merge is redone against its new commit, up to
/// [`RefOptions::max_attempts`] times. Holds [`Repo::write_fence`] while
/// it writes, as the commit protocol requires, so it must not be called
/// by a thread that already holds the fence (a second shared lock taken
/// while garbage collection waits for the exclusive one would deadlock).
///
/// ```
/// use kvgit_core::{CommitSpec, ObjectId, Repo, Tree};
/// use kvgit_merge::{merge_into_ref, Counter, Registry, RefOptions, Strategy};
///
/// let repo = Repo::memory();
/// let put = |tree: &Tree, v: &str| repo.apply(tree, [(b"hits".to_vec(), Some(v.as_bytes().to_vec()))]);
/// let commit = |tree: &Tree, parents: Vec<ObjectId>| {
///     repo.write_commit(tree, &CommitSpec { parents, ..CommitSpec::default() })
/// };
///
/// let base_tree = put(&repo.empty_tree()?, "100")?;
/// let base = commit(&base_tree, vec![])?;
/// let main = commit(&put(&base_tree, "115")?, vec![base])?;
/// let dev = commit(&put(&base_tree, "120")?, vec![base])?;
/// repo.move_ref("heads/main", None, Some(&main))?;
///
/// let registry = Registry::new();
/// registry.set("hits", Counter);
/// let done = merge_into_ref(&repo, "heads/main", &dev, &registry, &RefOptions::default())?;
/// assert_eq!(done.outcome.merge.strategy, Strategy::ThreeWay);
/// assert_eq!(done.outcome.merge.resolved, vec![b"hits".to_vec()]);
/// assert_eq!(repo.commit_ref(&done.head)?.parents, vec![main, dev]);
/// assert_eq!(repo.get(&done.outcome.merge.tree, b"hits")?, Some(b"135".to_vec()));
/// # Ok::<(), kvgit_merge::Error>(())
/// ```
pub fn merge_into_ref(
    repo: &Repo,
    ref_name: &str,
    theirs: &ObjectId,
    registry: &Registry,
    options: &RefOptions,
) -> Result<RefOutcome, Error> {
    let attempts = options.max_attempts.max(1);
    for attempt in 1..=attempts {
        let _fence = repo.write_fence();
        let current = repo.get_ref(ref_name)?;
        let (outcome, head, merge_commit) = match current {
            None => {
                // Nothing to merge into: the ref starts at theirs.
                let theirs_tree = repo.tree(repo.commit_ref(theirs)?.root)?;
                let merge = tree::fast_forward(
                    repo,
                    &repo.empty_tree()?,
                    &theirs_tree,
                    &options.merge.tree,
                )?;
                (Outcome { base: None, merge }, *theirs, None)
            }
            Some(ours) => {
                let outcome = merge_commits(repo, &ours, theirs, registry, &options.merge)?;
                let result = outcome.merge.tree.root();
                let ours_root = repo.commit_ref(&ours)?.root;
                let theirs_root = repo.commit_ref(theirs)?.root;
                if ours == *theirs || (outcome.base == Some(*theirs) && result == ours_root) {
                    return Ok(RefOutcome {
                        previous: Some(ours),
                        head: ours,
                        merge_commit: None,
                        outcome,
                        attempts: attempt,
                    });
                }
                if options.fast_forward && outcome.base == Some(ours) && result == theirs_root {
                    (outcome, *theirs, None)
                } else {
                    let id = repo
                        .write_commit(&outcome.merge.tree, &spec(options, vec![ours, *theirs]))?;
                    (outcome, id, Some(id))
                }
            }
        };
        match repo.move_ref(ref_name, current.as_ref(), Some(&head))? {
            CasOutcome::Swapped => {
                return Ok(RefOutcome {
                    previous: current,
                    head,
                    merge_commit,
                    outcome,
                    attempts: attempt,
                })
            }
            CasOutcome::Mismatch { .. } => continue,
        }
    }
    Err(Error::Contended {
        ref_name: ref_name.to_string(),
        attempts,
    })
}

fn spec(options: &RefOptions, parents: Vec<ObjectId>) -> CommitSpec {
    CommitSpec {
        parents,
        message: options.message.clone(),
        metadata: options.metadata.clone(),
        time_micros: options.time_micros,
    }
}
