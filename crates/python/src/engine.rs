//! The binding's only calls into the `kvgit` crate and its parts: every
//! engine operation the Python layer needs, as plain Rust functions over
//! [`Db`]. Kept in one place so that renames in the facade are followed
//! here alone. Nothing in this file knows about Python.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;

use kvgit::{ChangeKind, CommitId as ObjectId, Db};
use kvgit_core::Backend;
use kvgit_core::{CommitSpec, Tree};
use kvgit_merge::{merge_into_ref, RefOptions, Registry, Strategy};

/// The engine's error type.
pub type Error = kvgit::Error;
/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Edits of one commit: `None` deletes the key.
pub type Edits = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// Opens a store: `":memory:"`, a directory (sled) or a URL.
pub fn open(target: &str) -> Result<Db> {
    match target {
        ":memory:" => Ok(Db::memory()),
        path => Db::open(path),
    }
}

/// A store over a backend of the caller's.
pub fn with_backend(backend: Arc<dyn Backend>) -> Result<Db> {
    Db::builder().backend(backend)
}

/// The ref name of branch `name`.
pub fn branch_ref(name: &str) -> Result<String> {
    Ok(kvgit_core::refs::branch_ref(name)?)
}

/// The head of branch `name`, if it exists.
pub fn head(db: &Db, name: &str) -> Result<Option<ObjectId>> {
    Ok(kvgit::advanced::repo(db).get_ref(&branch_ref(name)?)?)
}

/// The head of branch `name`, created with an empty root commit if missing.
pub fn ensure_branch(db: &Db, name: &str) -> Result<ObjectId> {
    db.branch(name)?.head()
}

/// Creates branch `name` at `at`; `RefExists` if it exists.
pub fn create_branch(db: &Db, name: &str, at: &ObjectId) -> Result<()> {
    db.create_branch(name, at).map(|_| ())
}

/// Points branch `name` at `to` (creating it if missing).
pub fn set_branch(db: &Db, name: &str, to: &ObjectId) -> Result<()> {
    match db.get_branch(name)? {
        Some(branch) => branch.reset_to(to),
        None => create_branch(db, name, to),
    }
}

/// Deletes branch `name`.
pub fn delete_branch(db: &Db, name: &str) -> Result<()> {
    db.delete_branch(name)
}

/// All branch names, sorted.
pub fn branches(db: &Db) -> Result<Vec<String>> {
    db.branches()
}

/// True if `id` names a commit in the store.
pub fn commit_exists(db: &Db, id: &ObjectId) -> bool {
    kvgit::advanced::repo(db).commit_ref(id).is_ok()
}

/// Parses a full commit id or any revision (branch, tag, id prefix).
pub fn resolve(db: &Db, rev: &str) -> Result<ObjectId> {
    db.resolve(rev)
}

/// A read view of commit `id`; reads through it count as accesses of
/// branch `branch` for garbage collection when `id` is that branch's head.
pub fn snapshot(db: &Db, id: &ObjectId, branch: Option<&str>) -> Result<kvgit::Snapshot> {
    if let Some(name) = branch {
        if let Some(b) = db.get_branch(name)? {
            let snap = b.snapshot()?;
            if snap.commit_id() == *id {
                return Ok(snap);
            }
        }
    }
    db.checkout(id)
}

/// The parents of commit `id`.
pub fn parents(db: &Db, id: &ObjectId) -> Result<Vec<ObjectId>> {
    Ok(kvgit::advanced::repo(db).commit_ref(id)?.parents.clone())
}

/// The metadata of commit `id`.
pub fn metadata(db: &Db, id: &ObjectId) -> Result<BTreeMap<String, String>> {
    Ok(kvgit::advanced::repo(db).commit_ref(id)?.metadata.clone())
}

/// Message, time (microseconds) and height of commit `id`.
pub fn commit_facts(db: &Db, id: &ObjectId) -> Result<(String, u64, u64)> {
    let c = kvgit::advanced::repo(db).commit_ref(id)?;
    Ok((c.message.clone(), c.time_micros, c.height))
}

/// History from `start`, newest first: the first-parent chain, or every
/// ancestor breadth-first (`all_parents`); at most `limit` commits.
pub fn history(
    db: &Db,
    start: &ObjectId,
    all_parents: bool,
    limit: usize,
) -> Result<Vec<ObjectId>> {
    let repo = kvgit::advanced::repo(db);
    let mut out = Vec::new();
    if !all_parents {
        let mut next = Some(*start);
        while let Some(id) = next {
            if out.len() >= limit {
                break;
            }
            out.push(id);
            next = repo.commit_ref(&id)?.parents.first().copied();
        }
        return Ok(out);
    }
    let mut seen = HashSet::new();
    let mut queue = VecDeque::from([*start]);
    while let Some(id) = queue.pop_front() {
        if out.len() >= limit {
            break;
        }
        if !seen.insert(id) {
            continue;
        }
        out.push(id);
        for p in &repo.commit_ref(&id)?.parents {
            if !seen.contains(p) {
                queue.push_back(*p);
            }
        }
    }
    Ok(out)
}

/// The merge base of two commits.
pub fn merge_base(db: &Db, a: &ObjectId, b: &ObjectId) -> Result<Option<ObjectId>> {
    Ok(kvgit_merge::merge_base(kvgit::advanced::repo(db), a, b)?)
}

/// Keys added, removed and modified from `a` to `b` (with the new values
/// of added and modified keys, the old of removed ones).
pub fn diff(db: &Db, a: &ObjectId, b: &ObjectId) -> Result<Vec<(Vec<u8>, ChangeKind)>> {
    Ok(db
        .diff(a, b)?
        .into_iter()
        .map(|c| (c.key, c.kind))
        .collect())
}

fn tree_of(db: &Db, id: &ObjectId) -> Result<Tree> {
    let repo = kvgit::advanced::repo(db);
    Ok(repo.tree(repo.commit_ref(id)?.root)?)
}

/// Writes a commit of `edits` on top of `parent`, on no branch.
pub fn write_commit(
    db: &Db,
    parent: &ObjectId,
    edits: Edits,
    metadata: BTreeMap<String, String>,
    message: String,
) -> Result<ObjectId> {
    let repo = kvgit::advanced::repo(db);
    let _fence = repo.write_fence();
    let tree = repo.apply(&tree_of(db, parent)?, edits)?;
    let spec = CommitSpec {
        parents: vec![*parent],
        message,
        metadata,
        time_micros: None,
    };
    Ok(repo.write_commit(&tree, &spec)?)
}

/// What [`land`] did.
pub struct Landed {
    /// `"fast_forward"`, `"three_way"` or `"no_op"`.
    pub strategy: &'static str,
    /// The branch head afterwards.
    pub head: ObjectId,
    /// Keys whose value came from the landed commit or a merge function.
    pub auto_merged: Vec<Vec<u8>>,
}

/// Why [`land`] could not move the branch.
pub enum LandError {
    /// The branch holds a commit that shares no history with `commit`.
    Unrelated,
    /// An engine error (conflicts, contention, storage).
    Engine(Error),
}

impl From<Error> for LandError {
    fn from(e: Error) -> Self {
        LandError::Engine(e)
    }
}

impl From<kvgit_core::Error> for LandError {
    fn from(e: kvgit_core::Error) -> Self {
        LandError::Engine(e.into())
    }
}

impl From<kvgit_merge::Error> for LandError {
    fn from(e: kvgit_merge::Error) -> Self {
        LandError::Engine(e.into())
    }
}

/// Lands commit `commit` on branch `name`: a fast-forward if the branch
/// still holds one of its ancestors, else a three-way merge with the
/// branch's head, decided by `registry` where both changed a key, retried
/// by compare-and-swap while other writers move the branch.
/// `metadata` goes on the merge commit, if one is written.
pub fn land(
    db: &Db,
    name: &str,
    commit: &ObjectId,
    registry: &Registry,
    metadata: BTreeMap<String, String>,
) -> Result<Landed, LandError> {
    let ref_name = branch_ref(name)?;
    let repo = kvgit::advanced::repo(db);
    if let Some(head) = repo.get_ref(&ref_name)? {
        if head != *commit && merge_base(db, &head, commit)?.is_none() {
            return Err(LandError::Unrelated);
        }
    }
    let options = RefOptions {
        message: format!("merge into {name}"),
        metadata,
        max_attempts: db.options().max_retries.saturating_add(1),
        ..RefOptions::default()
    };
    let done = merge_into_ref(repo, &ref_name, commit, registry, &options)?;
    let strategy = match (done.merge_commit.is_some(), done.outcome.merge.strategy) {
        (true, _) => "three_way",
        (false, Strategy::NoOp) if done.previous == Some(done.head) => "no_op",
        (false, _) => "fast_forward",
    };
    let mut auto_merged = done.outcome.merge.from_theirs.clone();
    auto_merged.extend(done.outcome.merge.resolved.iter().cloned());
    Ok(Landed {
        strategy,
        head: done.head,
        auto_merged,
    })
}

/// High/low-water rebase of branch `name` (see `Db::rebase`).
pub fn rebase(db: &Db, name: &str, high: u64, low: Option<u64>) -> Result<kvgit::RebaseReport> {
    db.rebase(name, high, low)
}

/// Rebase of branch `name` keeping the keys `keep` accepts.
pub fn rebase_keep(
    db: &Db,
    name: &str,
    keep: impl Fn(&[u8]) -> bool,
) -> Result<kvgit::RebaseReport> {
    db.rebase_keep(name, keep)
}

/// Deletes what no branch or tag reaches; the number of objects deleted.
pub fn sweep(db: &Db) -> Result<u64> {
    Ok(db.sweep()?.objects_freed)
}

/// The store's backend (for the key-value view of a store).
pub fn backend(db: &Db) -> &Arc<dyn Backend> {
    kvgit::advanced::repo(db).backend()
}

/// Tags commit `at` as `name`.
pub fn tag(db: &Db, name: &str, at: &ObjectId) -> Result<()> {
    db.tag(name, at)
}

/// All tags.
pub fn tags(db: &Db) -> Result<Vec<(String, ObjectId)>> {
    db.tags()
}

/// Deletes tag `name`.
pub fn delete_tag(db: &Db, name: &str) -> Result<()> {
    db.delete_tag(name)
}

/// Writes buffered bookkeeping to the store.
pub fn flush(db: &Db) -> Result<()> {
    db.flush()
}
