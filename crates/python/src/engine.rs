//! The binding's only calls into the `kvgit` crate and its parts: every
//! engine operation the Python layer needs, as plain Rust functions over
//! [`Db`]. Kept in one place so that renames in the facade are followed
//! here alone. Nothing in this file knows about Python.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use kvgit::{ChangeKind, CommitId as ObjectId, Db};
use kvgit_core::Backend;
use kvgit_core::{CommitSpec, Tree};
use kvgit_merge::{merge_commits, MergeFn, Registry, Strategy};

/// The engine's error type.
pub type Error = kvgit::Error;
/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Edits of one commit: `None` deletes the key.
pub type Edits = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// Opens a store: `":memory:"`, a directory (sled) or a URL. Access
/// recency is not recorded until a `GCVersioned` asks for it
/// ([`track_access`]): a store that never rebases by recency does not pay
/// for it on every read.
pub fn open(target: &str) -> Result<Db> {
    match target {
        ":memory:" => Ok(Db::memory()),
        path => Db::open(path),
    }
}

/// A store over a backend of the caller's (see [`open`]).
pub fn with_backend(backend: Arc<dyn Backend>) -> Result<Db> {
    Db::builder().backend(backend)
}

/// Starts (or stops) recording access recency on `db`.
pub fn track_access(db: &Db, on: bool) {
    db.set_track_access(on);
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
/// ancestor (greatest height first); at most `limit` commits. Both end at
/// a shallow clone's cut (the core's walks).
pub fn history(
    db: &Db,
    start: &ObjectId,
    all_parents: bool,
    limit: usize,
) -> Result<Vec<ObjectId>> {
    let repo = kvgit::advanced::repo(db);
    let ids: kvgit_core::Result<Vec<ObjectId>> = match all_parents {
        false => repo
            .first_parent_log(*start)
            .take(limit)
            .map(|c| c.map(|(id, _)| id))
            .collect(),
        true => repo
            .log(&[*start])
            .take(limit)
            .map(|c| c.map(|(id, _)| id))
            .collect(),
    };
    Ok(ids?)
}

/// The merge base of two commits.
pub fn merge_base(db: &Db, a: &ObjectId, b: &ObjectId) -> Result<Option<ObjectId>> {
    Ok(kvgit_merge::merge_base(kvgit::advanced::repo(db), a, b)?)
}

/// Keys added, removed and modified from `a` to `b` (no value is loaded).
pub fn diff(db: &Db, a: &ObjectId, b: &ObjectId) -> Result<Vec<(Vec<u8>, ChangeKind)>> {
    let (a, b) = (db.checkout(a)?, db.checkout(b)?);
    a.changed_keys(&b)
        .map(|c| c.map(|(kind, key)| (key, kind)))
        .collect()
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

/// What [`commit`] or [`merge`] did.
pub struct Landed {
    /// `"fast_forward"`, `"three_way"` or `"no_op"`.
    pub strategy: &'static str,
    /// The branch head afterwards.
    pub head: ObjectId,
    /// Keys whose value came from the landed side or a merge function.
    pub auto_merged: Vec<Vec<u8>>,
}

/// Why [`commit`] or [`merge`] could not move the branch.
pub enum LandError {
    /// The branch holds a commit that shares no history with the commit
    /// being landed.
    Unrelated,
    /// An engine error (conflicts, contention, a refused move, storage).
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

/// Commits `edits` to branch `name` (created if missing) as a transaction
/// based on commit `base` (the commit the caller reads): if the branch
/// still holds `base`, a fast-forward; if it moved on, a three-way merge
/// onto its head (base: `base`), keys both changed decided by the
/// transaction's merge functions `fns` (by key) and `default`, then the
/// Db's. The branch moves through the facade's one path (validation
/// hooks, subscriptions, access recency, automatic garbage collection).
/// A head sharing no history with `base` is [`LandError::Unrelated`].
/// Without edits, a commit of `metadata` alone is written on `base` and
/// merged in (see [`merge`]).
#[allow(clippy::too_many_arguments)]
pub fn commit<F: MergeFn + 'static>(
    db: &Db,
    name: &str,
    base: &ObjectId,
    edits: Edits,
    message: String,
    metadata: BTreeMap<String, String>,
    fns: Vec<(Vec<u8>, F)>,
    default: Option<F>,
) -> Result<Landed, LandError> {
    if edits.is_empty() {
        // A commit of metadata alone (a transaction without writes
        // commits nothing): the commit, then merged in through the
        // facade (a fast-forward if the branch still holds `base`).
        let local = write_commit(db, base, edits, metadata, message)?;
        return merge(db, name, &local, &Registry::new(), BTreeMap::new());
    }
    let branch = db.branch(name)?;
    let head = branch.head()?;
    if head != *base && merge_base(db, &head, base)?.is_none() {
        return Err(LandError::Unrelated);
    }
    let mut tx = branch.transaction_at(base)?;
    let mut keys = Vec::with_capacity(edits.len());
    for (k, v) in edits {
        match v {
            Some(v) => tx.put(&k, v),
            None => tx.delete(&k),
        };
        keys.push(k);
    }
    tx.message(message);
    for (k, v) in metadata {
        tx.metadata(k, v);
    }
    for (k, f) in fns {
        tx.merge_fn(k, f);
    }
    if let Some(f) = default {
        tx.default_merge(f);
    }
    let outcome = tx.commit()?;
    let head = outcome.commit.expect("a committed outcome names the head");
    let strategy = match outcome.strategy {
        Strategy::NoOp => "no_op",
        Strategy::FastForward => "fast_forward",
        _ => "three_way",
    };
    let mut auto_merged = Vec::new();
    if outcome.strategy == Strategy::ThreeWay {
        let theirs: HashSet<&Vec<u8>> = outcome.from_theirs.iter().collect();
        auto_merged = outcome.resolved.clone();
        let resolved: HashSet<&Vec<u8>> = outcome.resolved.iter().collect();
        for k in keys {
            if !theirs.contains(&k) && !resolved.contains(&k) {
                auto_merged.push(k);
            }
        }
    }
    Ok(Landed {
        strategy,
        head,
        auto_merged,
    })
}

/// Merges commit `theirs` into branch `name` (created if missing): nothing
/// if the branch includes it, a fast-forward if the head is its ancestor,
/// else a merge commit (parents: the head, then `theirs`; metadata
/// `metadata`) whose keys changed on both sides `registry` decides. The
/// branch moves through the facade ([`kvgit::Branch::merge_commit`]): the
/// merge commit is written first and then fast-forwarded to (merged again,
/// with the Db's functions, if another writer moved the branch meanwhile).
pub fn merge(
    db: &Db,
    name: &str,
    theirs: &ObjectId,
    registry: &Registry,
    metadata: BTreeMap<String, String>,
) -> Result<Landed, LandError> {
    let branch = db.branch(name)?;
    let repo = kvgit::advanced::repo(db);
    let head = branch.head()?;
    let m = merge_commits(
        repo,
        &head,
        theirs,
        registry,
        &kvgit_merge::commit::Options::default(),
    )?;
    let Some(base) = m.base else {
        return Err(LandError::Unrelated);
    };
    if base == *theirs {
        return Ok(Landed {
            strategy: "no_op",
            head,
            auto_merged: Vec::new(),
        });
    }
    let theirs_root = repo.commit_ref(theirs)?.root;
    let target = if base == head && m.merge.tree.root() == theirs_root {
        *theirs
    } else {
        let spec = CommitSpec {
            parents: vec![head, *theirs],
            message: format!("merge {} into {name}", theirs.short(12)),
            metadata,
            time_micros: None,
        };
        repo.write_commit(&m.merge.tree, &spec)?
    };
    let done = branch.merge_commit(&target)?;
    let strategy = match target == *theirs {
        true => "fast_forward",
        false => "three_way",
    };
    let mut auto_merged = m.merge.from_theirs.clone();
    auto_merged.extend(m.merge.resolved.iter().cloned());
    Ok(Landed {
        strategy,
        head: done.head,
        auto_merged,
    })
}

/// High/low-water rebase of branch `name` (see `Db::rebase`), with
/// `protected` in place of the store's protection rule if given.
pub fn rebase(
    db: &Db,
    name: &str,
    high: u64,
    low: Option<u64>,
    protected: Option<kvgit::Protected>,
) -> Result<kvgit::RebaseReport> {
    match protected {
        Some(p) => db.rebase_protecting(name, high, low, p),
        None => db.rebase(name, high, low),
    }
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

/// The commits of branch `name` (first-parent line, newest first) where
/// `key` changed, each with its value then (`None`: deleted there); at
/// most `limit`.
pub fn key_history(
    db: &Db,
    name: &str,
    key: &[u8],
    limit: usize,
) -> Result<Vec<(ObjectId, Option<Vec<u8>>)>> {
    let branch = db
        .get_branch(name)?
        .ok_or_else(|| Error::NoSuchBranch(name.to_string()))?;
    branch
        .key_history(key)?
        .take(limit)
        .map(|r| r.map(|(info, v)| (info.id, v)))
        .collect()
}

/// How to reach `file://` and ssh remotes (the serving program, the ssh
/// client and its arguments); `None` keeps each default.
#[derive(Default)]
pub struct Connect {
    /// Run as `PROGRAM serve --stdio PATH` on the far side.
    pub serve_program: Option<String>,
    /// The ssh client.
    pub ssh_program: Option<String>,
    /// Extra ssh arguments.
    pub ssh_args: Option<Vec<String>>,
}

impl Connect {
    fn options(self) -> kvgit::remote::ConnectOptions {
        let mut o = kvgit::remote::ConnectOptions::default();
        if let Some(p) = self.serve_program {
            o.serve_program = p;
        }
        if let Some(p) = self.ssh_program {
            o.ssh_program = p;
        }
        if let Some(a) = self.ssh_args {
            o.ssh_args = a;
        }
        o
    }
}

/// Clones the store at `url` into the new store at `path`.
pub fn clone_from(
    url: &str,
    path: &str,
    depth: Option<u32>,
    connect: Connect,
) -> Result<(Db, kvgit::remote::Report)> {
    let options = kvgit::remote::FetchOptions {
        depth,
        connect: connect.options(),
        progress: None,
    };
    Db::clone_from_with(url, path, options)
}

/// Adds (or re-points) remote `name`.
pub fn add_remote(db: &Db, name: &str, url: &str) -> Result<()> {
    db.add_remote(name, url)
}

/// Removes remote `name`.
pub fn remove_remote(db: &Db, name: &str) -> Result<()> {
    db.remove_remote(name)
}

/// The remotes, name and URL.
pub fn remotes(db: &Db) -> Result<Vec<(String, String)>> {
    db.remotes()
}

/// Fetches `branches` (all if empty) of remote `remote` into its
/// remote-tracking refs.
pub fn fetch(
    db: &Db,
    remote: &str,
    branches: &[String],
    depth: Option<u32>,
    connect: Connect,
) -> Result<kvgit::remote::Report> {
    let options = kvgit::remote::FetchOptions {
        depth,
        connect: connect.options(),
        progress: None,
    };
    db.remote(remote)?.fetch(branches, options)
}

/// The head remote `remote`'s branch `branch` had when last fetched or
/// pushed.
pub fn tracking(db: &Db, remote: &str, branch: &str) -> Result<Option<ObjectId>> {
    db.remote(remote)?.tracking(branch)
}

/// Pushes `branch` to `remote` (as `remote_branch`, default the same
/// name).
pub fn push(
    db: &Db,
    branch: &str,
    remote: &str,
    remote_branch: Option<String>,
    force: bool,
    connect: Connect,
) -> Result<kvgit::remote::Report> {
    let options = kvgit::remote::PushOptions {
        force,
        remote_branch,
        connect: connect.options(),
        progress: None,
    };
    db.get_branch(branch)?
        .ok_or_else(|| Error::NoSuchBranch(branch.to_string()))?
        .push(remote, options)
}

/// What kind of location `url` names: `"path"`, `"file"`, `"ssh"` or
/// `"postgres"`; the parse error's text otherwise.
pub fn url_kind(url: &str) -> std::result::Result<&'static str, String> {
    use kvgit::remote::RemoteUrl;
    match url.parse::<RemoteUrl>().map_err(|e| e.to_string())? {
        RemoteUrl::Path(_) => Ok("path"),
        RemoteUrl::File(_) => Ok("file"),
        RemoteUrl::Ssh { .. } => Ok("ssh"),
        RemoteUrl::Postgres(_) => Ok("postgres"),
    }
}

/// Key `key` of branch `branch` at `url`, read with a Merkle proof
/// checked here: the value (None if absent) and the head it is proven
/// against.
pub fn get_verified(
    url: &str,
    branch: &str,
    key: &[u8],
    connect: Connect,
) -> Result<(Option<Vec<u8>>, ObjectId)> {
    let proven = kvgit::remote::get_verified(url, branch, key, &connect.options())?;
    Ok((proven.value, proven.commit))
}

/// Compacts the store's files (see `Db::compact`): the bytes on disk
/// before and after, or None for a store that does not compact (memory,
/// PostgreSQL, a Python backend).
pub fn compact(db: &Db) -> Result<Option<(u64, u64)>> {
    Ok(db.compact()?.map(|c| (c.bytes_before, c.bytes_after)))
}
