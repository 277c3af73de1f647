//! [`Branch`]: a named, moving head, and everything done through it.

use std::ops::RangeBounds;
use std::sync::mpsc::Receiver;

use kvgit_core::{CommitSpec, Repo, Tree, Value};
use kvgit_gc::RebaseReport;
use kvgit_merge::{merge_commits, Strategy};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec::{decode_for, Codec};
use crate::db::{CommitId, Db};
use crate::error::{Error, Result};
use crate::move_branch::{move_branch, Fence, MoveKind, Outcome, Request, Target};
use crate::namespace::Namespace;
use crate::snapshot::{CommitInfo, Snapshot};
use crate::tx::{backoff, CommitOutcome, Transaction};

/// What merging another branch in did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MergeOutcome {
    /// The branch head afterwards (after the automatic garbage
    /// collection, if the merge triggered it).
    pub head: CommitId,
    /// The two-parent merge commit, if one was written (`None` when
    /// already up to date or fast-forwarded).
    pub merge_commit: Option<CommitId>,
    /// The merge base (`None`: unrelated histories, merged against the
    /// empty tree).
    pub base: Option<CommitId>,
    /// `NoOp` (already up to date), `FastForward` (moved to theirs) or
    /// `ThreeWay`.
    pub strategy: Strategy,
    /// Keys a merge function decided.
    pub resolved: Vec<Vec<u8>>,
    /// Keys whose value came from the other branch.
    pub from_theirs: Vec<Vec<u8>>,
    /// The automatic garbage collection the merge triggered, if any (see
    /// [`Options::watermarks`](crate::Options::watermarks)): then `head` is
    /// a fresh root commit after the merge.
    pub gc: Option<RebaseReport>,
}

/// A branch: a name whose head moves, by compare-and-swap only, from
/// commit to commit. Cheap to clone; reads always see the current head.
///
/// ```
/// let db = kvgit::Db::memory();
/// let main = db.branch("main")?;
/// main.update(|tx| {
///     let n: u64 = tx.get_as("hits")?.unwrap_or(0);
///     tx.put_as("hits", &(n + 1))
/// })?;
/// let dev = main.fork("dev")?;
/// dev.put("feature", "on")?;
/// main.merge_from(&dev)?;
/// assert_eq!(main.get_as::<u64>("hits")?, Some(1));
/// assert!(main.contains("feature")?);
/// # Ok::<(), kvgit::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Branch {
    pub(crate) db: Db,
    pub(crate) name: String,
    pub(crate) ref_name: String,
}

impl Branch {
    pub(crate) fn new(db: Db, name: String, ref_name: String) -> Branch {
        Branch { db, name, ref_name }
    }

    /// The branch's name.
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// assert_eq!(db.branch("main")?.name(), "main");
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The store.
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// let main = db.branch("main")?;
    /// assert_eq!(main.db().branches()?, vec!["main".to_string()]);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The current head commit.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// let before = main.head()?;
    /// let after = main.put("k", "v")?;
    /// assert_ne!(before, after);
    /// assert_eq!(main.head()?, after);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn head(&self) -> Result<CommitId> {
        self.db
            .inner
            .repo
            .get_ref(&self.ref_name)?
            .ok_or_else(|| Error::NoSuchBranch(self.name.clone()))
    }

    /// A read-only snapshot of the current head. While it (or a
    /// transaction begun from it) lives, garbage collection keeps its
    /// commit, even if the branch moves on or is rebased.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// main.put("k", "v1")?;
    /// let snap = main.snapshot()?;
    /// main.put("k", "v2")?;
    /// assert_eq!(snap.get("k")?.as_deref(), Some(&b"v1"[..])); // unchanged
    /// assert_eq!(main.get("k")?.as_deref(), Some(&b"v2"[..]));
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn snapshot(&self) -> Result<Snapshot> {
        Snapshot::of_branch(self.db.clone(), &self.name, &self.ref_name)?
            .ok_or_else(|| Error::NoSuchBranch(self.name.clone()))
    }

    /// The value of `key` at the head. Like every read of a value at a
    /// branch head (`get*`, `contains`, `range`, `scan_prefix`, and the
    /// same through a namespace, a transaction or a branch snapshot), it
    /// counts as access for garbage collection when the store records
    /// access ([`Options::track_access`](crate::Options::track_access)).
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// main.put("greeting", "hello")?;
    /// assert_eq!(main.get("greeting")?.as_deref(), Some(&b"hello"[..]));
    /// assert_eq!(main.get(b"\x00binary key")?, None);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        let key = key.as_ref();
        self.read_at_head(key, |repo, tree| repo.get(tree, key))
    }

    /// The value of `key` at the head, decoded with the store's codec.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// main.put_as("scores", &vec![3u32, 5])?;
    /// assert_eq!(main.get_as::<Vec<u32>>("scores")?, Some(vec![3, 5]));
    /// assert_eq!(main.get_as::<u32>("missing")?, None);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn get_as<T: DeserializeOwned>(&self, key: impl AsRef<[u8]>) -> Result<Option<T>> {
        self.get_with(&self.db.inner.options.codec, key)
    }

    /// The value of `key` at the head, decoded with `codec`.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// main.put("user", r#"{"name":"alice","age":30}"#)?;
    /// #[derive(serde::Deserialize)]
    /// struct User { name: String, age: u32 }
    /// let user: User = main.get_with(&kvgit::Json, "user")?.expect("stored");
    /// assert_eq!((user.name.as_str(), user.age), ("alice", 30));
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn get_with<C: Codec, T: DeserializeOwned>(
        &self,
        codec: &C,
        key: impl AsRef<[u8]>,
    ) -> Result<Option<T>> {
        let key = key.as_ref();
        self.get(key)?
            .map(|bytes| decode_for(codec, key, &bytes))
            .transpose()
    }

    /// True if `key` has a value at the head.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// main.put("k", "")?; // an empty value is a value
    /// assert!(main.contains("k")?);
    /// assert!(!main.contains("other")?);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn contains(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        let key = key.as_ref();
        let value = self.read_at_head(key, |repo, tree| repo.get_value(tree, key))?;
        Ok(value.is_some())
    }

    /// The number of keys at the head, in O(1).
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// main.put("a", "1")?;
    /// main.put("b", "2")?;
    /// main.put("a", "3")?; // same key
    /// assert_eq!(main.len()?, 2);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn len(&self) -> Result<u64> {
        Ok(self.head_tree()?.1.len())
    }

    /// True if the head has no keys.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// assert!(main.is_empty()?);
    /// main.put("k", "v")?;
    /// assert!(!main.is_empty()?);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.head_tree()?.1.is_empty())
    }

    /// The head and its tree, from the repo's ref cache when the branch has
    /// not moved ([`kvgit_core::Repo::head`]).
    fn head_tree(&self) -> Result<(CommitId, Tree)> {
        self.db
            .inner
            .repo
            .head(&self.ref_name)?
            .ok_or_else(|| Error::NoSuchBranch(self.name.clone()))
    }

    /// A point read of `key` at the head, done within the call: no
    /// snapshot is pinned. If a sweep deletes what the read needs (the
    /// branch was rebased or reset and swept meanwhile), the read fails
    /// with `MissingObject` (objects are named by their hash: never wrong
    /// data) and is made again on a pinned snapshot of the head as it is
    /// now. Counts as access to `key`.
    fn read_at_head<T>(
        &self,
        key: &[u8],
        read: impl Fn(&Repo, &Tree) -> kvgit_core::Result<T>,
    ) -> Result<T> {
        let (_, tree) = self.head_tree()?;
        self.read_or_retry_pinned(&tree, key, read)
    }

    /// `read` on `tree`, a head of this branch; made again on a pinned
    /// snapshot of the current head if `tree` has been swept meanwhile.
    fn read_or_retry_pinned<T>(
        &self,
        tree: &Tree,
        key: &[u8],
        read: impl Fn(&Repo, &Tree) -> kvgit_core::Result<T>,
    ) -> Result<T> {
        let repo = &self.db.inner.repo;
        let value = match read(repo, tree) {
            Err(kvgit_core::Error::MissingObject(_)) => {
                let snapshot = self.snapshot()?;
                read(repo, &snapshot.tree)?
            }
            other => other?,
        };
        self.db.touch(&self.name, key);
        Ok(value)
    }

    /// The entries with keys in `range` at the head, in order, lazily.
    ///
    /// ```
    /// use std::ops::Bound;
    /// let main = kvgit::Db::memory().branch("main")?;
    /// for k in ["a", "b", "c", "d"] {
    ///     main.put(k, k.to_uppercase())?;
    /// }
    /// // Ranges of byte strings are written with `Bound`s (`..` for all).
    /// let from_b_to_d = (Bound::Included(&b"b"[..]), Bound::Excluded(&b"d"[..]));
    /// let keys: Vec<Vec<u8>> = main
    ///     .range(from_b_to_d)?
    ///     .map(|e| e.map(|(k, _)| k))
    ///     .collect::<kvgit::Result<_>>()?;
    /// assert_eq!(keys, vec![b"b".to_vec(), b"c".to_vec()]);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn range<R: RangeBounds<[u8]>>(
        &self,
        range: R,
    ) -> Result<impl Iterator<Item = Result<(Vec<u8>, Vec<u8>)>>> {
        Ok(self.snapshot()?.range(range))
    }

    /// The entries whose keys start with `prefix` at the head, lazily.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// main.put("user/alice", "admin")?;
    /// main.put("user/bob", "user")?;
    /// main.put("group/staff", "2")?;
    /// let users: Vec<(Vec<u8>, Vec<u8>)> = main.scan_prefix("user/")?.collect::<kvgit::Result<_>>()?;
    /// assert_eq!(users.len(), 2);
    /// assert_eq!(users[0], (b"user/alice".to_vec(), b"admin".to_vec()));
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn scan_prefix(
        &self,
        prefix: impl AsRef<[u8]>,
    ) -> Result<impl Iterator<Item = Result<(Vec<u8>, Vec<u8>)>>> {
        Ok(self.snapshot()?.scan_prefix(prefix))
    }

    /// Every key at the head, in order, lazily (values are not loaded).
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// main.put("b", "2")?;
    /// main.put("a", "1")?;
    /// let keys: Vec<Vec<u8>> = main.keys()?.collect::<kvgit::Result<_>>()?;
    /// assert_eq!(keys, vec![b"a".to_vec(), b"b".to_vec()]);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn keys(&self) -> Result<impl Iterator<Item = Result<Vec<u8>>>> {
        let snapshot = self.snapshot()?;
        let keys = snapshot.keys();
        // The snapshot goes with the scan: its pin keeps the commit from
        // garbage collection until the scan is dropped.
        Ok(keys.inspect(move |_| {
            let _ = &snapshot;
        }))
    }

    /// The value of `key` on another branch's head (without creating it).
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// let main = db.branch("main")?;
    /// db.branch("config")?.put("mode", "fast")?;
    /// assert_eq!(main.peek("config", "mode")?.as_deref(), Some(&b"fast"[..]));
    /// assert!(matches!(main.peek("nope", "mode"), Err(kvgit::Error::NoSuchBranch(_))));
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn peek(&self, branch: &str, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        match self.db.get_branch(branch)? {
            Some(b) => b.get(key),
            None => Err(Error::NoSuchBranch(branch.to_string())),
        }
    }

    /// A transaction on the current head.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// let mut tx = main.transaction()?;
    /// tx.put("a", "1").put("b", "2");
    /// assert!(main.is_empty()?); // nothing visible before the commit
    /// tx.commit()?;
    /// assert_eq!(main.len()?, 2);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn transaction(&self) -> Result<Transaction> {
        Transaction::new(self.clone())
    }

    /// Commits `key = value` alone; returns the new head.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// let head = main.put("k", "v")?;
    /// assert_eq!(main.head()?, head);
    /// assert_eq!(main.get("k")?.as_deref(), Some(&b"v"[..]));
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn put(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<CommitId> {
        let mut tx = self.transaction()?;
        tx.put(key, value);
        head_of(tx.commit()?)
    }

    /// Commits `key = value` encoded with the store's codec.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// main.put_as("point", &(3i32, -4i32))?;
    /// assert_eq!(main.get_as::<(i32, i32)>("point")?, Some((3, -4)));
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn put_as<T: Serialize + ?Sized>(
        &self,
        key: impl AsRef<[u8]>,
        value: &T,
    ) -> Result<CommitId> {
        let mut tx = self.transaction()?;
        tx.put_as(key, value)?;
        head_of(tx.commit()?)
    }

    /// Commits the deletion of `key`; returns the head.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// main.put("k", "v")?;
    /// main.delete("k")?;
    /// assert!(!main.contains("k")?);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn delete(&self, key: impl AsRef<[u8]>) -> Result<CommitId> {
        let mut tx = self.transaction()?;
        tx.delete(key);
        head_of(tx.commit()?)
    }

    /// Runs `f` in a transaction and commits what it staged, only if it
    /// returns `Ok` (gitkv's atomic with-block). If another writer moves
    /// the branch first, `f` runs again on the new head (no merge: it
    /// re-reads what it depends on), up to the store's `max_retries`.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// main.put_as("balance", &100i64)?;
    /// // Commits only if the closure returns Ok.
    /// let result: Result<(), Box<dyn std::error::Error>> = main.update(|tx| {
    ///     let balance: i64 = tx.get_as("balance")?.unwrap_or(0);
    ///     tx.put_as("balance", &(balance - 150))?;
    ///     Err("overdrawn".into())
    /// });
    /// assert!(result.is_err());
    /// assert_eq!(main.get_as::<i64>("balance")?, Some(100));
    /// let new = main.update(|tx| {
    ///     let balance: i64 = tx.get_as("balance")?.unwrap_or(0);
    ///     tx.put_as("balance", &(balance - 30))?;
    ///     Ok::<_, kvgit::Error>(balance - 30)
    /// })?;
    /// assert_eq!((new, main.get_as::<i64>("balance")?), (70, Some(70)));
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn update<R, E, F>(&self, mut f: F) -> Result<R, E>
    where
        F: FnMut(&mut Transaction) -> Result<R, E>,
        E: From<Error>,
    {
        let attempts = self.db.inner.options.max_retries.saturating_add(1);
        // On a store shared by processes, the branch's writer turn is held
        // from the first lost race on (or from the start if the branch was
        // contended a moment ago), so the closure runs on a fresh head and
        // colliding processes take turns (see `Transaction::run`).
        let mut turn = None;
        if self.db.recently_contended(&self.ref_name) {
            turn = self.db.writer_turn(&self.ref_name)?;
        }
        for attempt in 0..attempts {
            let mut tx = self.transaction()?;
            let result = f(&mut tx)?;
            if tx.commit_once(turn.is_some())?.is_some() {
                return Ok(result);
            }
            if turn.is_none() {
                turn = self.db.writer_turn(&self.ref_name)?;
            }
            if turn.is_none() {
                backoff(attempt);
            }
        }
        Err(Error::Contended {
            branch: self.name.clone(),
            attempts,
        }
        .into())
    }

    /// A new branch `name` at this branch's head.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// main.put("k", "v")?;
    /// let dev = main.fork("dev")?;
    /// dev.put("k", "changed")?;
    /// assert_eq!(main.get("k")?.as_deref(), Some(&b"v"[..]));
    /// assert_eq!(dev.get("k")?.as_deref(), Some(&b"changed"[..]));
    /// assert!(main.fork("dev").is_err()); // exists already
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn fork(&self, name: &str) -> Result<Branch> {
        self.db.create_branch(name, &self.head()?)
    }

    /// Merges `other`'s head into this branch (see
    /// [`Branch::merge_commit`]).
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// let dev = main.fork("dev")?;
    /// dev.put("feature", "on")?;
    /// main.put("fix", "done")?;
    /// let outcome = main.merge_from(&dev)?;
    /// assert_eq!(outcome.strategy, kvgit::Strategy::ThreeWay);
    /// assert!(main.contains("feature")? && main.contains("fix")?);
    /// assert_eq!(main.log()?.next().expect("a head")?.parents().len(), 2);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn merge_from(&self, other: &Branch) -> Result<MergeOutcome> {
        self.merge_commit(&other.head()?)
    }

    /// Merges commit `theirs` into this branch: nothing if it is already
    /// included, a fast-forward if this branch's head is its ancestor, else
    /// a three-way merge against the merge base, recorded as a commit with
    /// two parents (this head, then theirs). Keys changed differently on
    /// both sides go to the merge functions; unresolved ones fail the merge
    /// with [`Error::Conflicts`] listing them all.
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// let main = db.branch("main")?;
    /// main.put("k", "base")?;
    /// let dev = main.fork("dev")?;
    /// dev.put("k", "theirs")?;
    /// main.put("k", "ours")?;
    /// // Both sides changed `k` and no merge function covers it.
    /// match main.merge_commit(&dev.head()?) {
    ///     Err(kvgit::Error::Conflicts(conflicts)) => assert_eq!(conflicts[0].key, b"k"),
    ///     other => panic!("expected a conflict, got {other:?}"),
    /// }
    /// db.merge_fns().set("k", kvgit::merge::Theirs);
    /// let outcome = main.merge_commit(&dev.head()?)?;
    /// assert_eq!(outcome.resolved, vec![b"k".to_vec()]);
    /// assert_eq!(main.get("k")?.as_deref(), Some(&b"theirs"[..]));
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn merge_commit(&self, theirs: &CommitId) -> Result<MergeOutcome> {
        let db = &self.db;
        let repo = &db.inner.repo;
        let attempts = db.inner.options.max_retries.saturating_add(1);
        #[cfg(feature = "tracing")]
        let _span =
            tracing::debug_span!("kvgit.merge", branch = %self.name, theirs = %theirs.short(12))
                .entered();
        for _ in 0..attempts {
            let fence = Fence::handed(repo.write_fence());
            let ours = self.head()?;
            let m = merge_commits(
                repo,
                &ours,
                theirs,
                &db.inner.merge_fns,
                &kvgit_merge::commit::Options::default(),
            )?;
            let head_tree = repo.tree(repo.commit_ref(&ours)?.root)?;
            let mut outcome = MergeOutcome {
                head: ours,
                merge_commit: None,
                base: m.base,
                strategy: m.merge.strategy,
                resolved: m.merge.resolved,
                from_theirs: m.merge.from_theirs,
                gc: None,
            };
            if m.merge.tree.root() == head_tree.root() && m.base == Some(*theirs) {
                outcome.strategy = Strategy::NoOp;
                return Ok(outcome);
            }
            let fast_forward =
                m.base == Some(ours) && m.merge.tree.root() == repo.commit_ref(theirs)?.root;
            let (kind, target, message) = if fast_forward {
                let message = format!("fast-forward {} to {}", self.name, theirs.short(12));
                (MoveKind::FastForward, Target::Existing(*theirs), message)
            } else {
                let spec = CommitSpec {
                    parents: vec![ours, *theirs],
                    message: format!("merge {} into {}", theirs.short(12), self.name),
                    ..CommitSpec::default()
                };
                let message = spec.message.clone();
                let target = Target::New {
                    tree: m.merge.tree,
                    unwritten: Default::default(),
                    spec,
                };
                (MoveKind::Merge, target, message)
            };
            let request = Request {
                branch: &self.name,
                ref_name: &self.ref_name,
                kind,
                expected: Some(ours),
                target,
                message,
                written: &[],
                fence,
            };
            match move_branch(db, request)? {
                Outcome::Moved { head, gc } => {
                    outcome.head = gc.as_ref().and_then(|r| r.commit).unwrap_or(head);
                    outcome.merge_commit = (!fast_forward).then_some(head);
                    outcome.strategy = match fast_forward {
                        true => Strategy::FastForward,
                        false => Strategy::ThreeWay,
                    };
                    outcome.gc = gc;
                    return Ok(outcome);
                }
                Outcome::Deleted | Outcome::Lost { actual: None, .. } => {
                    return Err(Error::BranchDeleted(self.name.clone()))
                }
                Outcome::Lost { .. } => continue,
            }
        }
        Err(Error::Contended {
            branch: self.name.clone(),
            attempts,
        })
    }

    /// Moves the branch to commit `to`, whatever it held (history after
    /// `to` is no longer on the branch; its commits stay until a sweep).
    /// Validation hooks see it as a [`MoveKind::Reset`] and can refuse it.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// let good = main.put("k", "good")?;
    /// main.put("k", "bad")?;
    /// main.reset_to(&good)?;
    /// assert_eq!(main.head()?, good);
    /// assert_eq!(main.get("k")?.as_deref(), Some(&b"good"[..]));
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn reset_to(&self, to: &CommitId) -> Result<()> {
        let repo = &self.db.inner.repo;
        loop {
            let fence = Fence::handed(repo.write_fence());
            // Read under the fence: a commit no ref reaches cannot be
            // swept between this check and the move.
            repo.read_commit(to)
                .map_err(|_| Error::unknown_commit(to))?;
            let request = Request {
                branch: &self.name,
                ref_name: &self.ref_name,
                kind: MoveKind::Reset,
                expected: Some(self.head()?),
                target: Target::Existing(*to),
                message: format!("reset {} to {}", self.name, to.short(12)),
                written: &[],
                fence,
            };
            match move_branch(&self.db, request)? {
                Outcome::Moved { .. } => return Ok(()),
                Outcome::Deleted | Outcome::Lost { actual: None, .. } => {
                    return Err(Error::BranchDeleted(self.name.clone()))
                }
                Outcome::Lost { .. } => continue,
            }
        }
    }

    /// Deletes the branch (its commits stay until a sweep).
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// let tmp = db.branch("tmp")?;
    /// tmp.delete_branch()?;
    /// assert!(db.get_branch("tmp")?.is_none());
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn delete_branch(self) -> Result<()> {
        self.db.delete_branch(&self.name)
    }

    /// The head and its first parents, newest first (a branch's own line
    /// of history; see [`Branch::log_all`] for every ancestor).
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// let mut tx = main.transaction()?;
    /// tx.put("k", "v").message("set k");
    /// tx.commit()?;
    /// let messages: Vec<String> = main
    ///     .log()?
    ///     .map(|c| c.map(|c| c.message().to_string()))
    ///     .collect::<kvgit::Result<_>>()?;
    /// assert_eq!(messages, vec!["set k", "create branch main"]);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn log(&self) -> Result<impl Iterator<Item = Result<CommitInfo>>> {
        Ok(self.db.inner.repo.first_parent_log(self.head()?).map(|r| {
            r.map(|(id, commit)| CommitInfo { id, commit })
                .map_err(Into::into)
        }))
    }

    /// Every commit reachable from the head, each once, newest first.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// let dev = main.fork("dev")?;
    /// dev.put("a", "1")?;
    /// main.put("b", "2")?;
    /// main.merge_from(&dev)?;
    /// // The merge, both sides' commits and the root: dev's commit is not on
    /// // main's first-parent line.
    /// assert_eq!(main.log_all()?.count(), 4);
    /// assert_eq!(main.log()?.count(), 3);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn log_all(&self) -> Result<impl Iterator<Item = Result<CommitInfo>>> {
        Ok(self.db.inner.repo.log(&[self.head()?]).map(|r| {
            r.map(|(id, commit)| CommitInfo { id, commit })
                .map_err(Into::into)
        }))
    }

    /// The commits (first-parent line, newest first) where `key` changed,
    /// each with its value then (`None`: deleted there).
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// main.put("k", "v1")?;
    /// main.put("other", "x")?; // does not change `k`
    /// main.put("k", "v2")?;
    /// main.delete("k")?;
    /// let values: Vec<Option<Vec<u8>>> = main
    ///     .key_history("k")?
    ///     .map(|e| e.map(|(_, value)| value))
    ///     .collect::<kvgit::Result<_>>()?;
    /// assert_eq!(values, vec![None, Some(b"v2".to_vec()), Some(b"v1".to_vec())]);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn key_history(
        &self,
        key: impl AsRef<[u8]>,
    ) -> Result<impl Iterator<Item = Result<(CommitInfo, Option<Vec<u8>>)>>> {
        Ok(KeyHistory {
            db: self.db.clone(),
            key: key.as_ref().to_vec(),
            next: Some(self.head()?),
            current: None,
        })
    }

    /// A view of the keys under `prefix/` (see [`Namespace`]).
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// main.namespace("users").put("alice", "admin")?;
    /// assert!(main.contains("users/alice")?);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn namespace(&self, prefix: &str) -> Namespace {
        Namespace::new(self.clone(), prefix)
    }

    /// Every new head of this branch (see [`Db::subscribe`]).
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// let heads = main.subscribe()?;
    /// let head = main.put("k", "v")?;
    /// assert_eq!(heads.try_recv().ok(), Some(head));
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn subscribe(&self) -> Result<Receiver<CommitId>> {
        self.db.subscribe(&self.name)
    }
}

fn head_of(outcome: CommitOutcome) -> Result<CommitId> {
    Ok(outcome.commit.expect("a committed outcome names the head"))
}

/// See [`Branch::key_history`].
struct KeyHistory {
    db: Db,
    key: Vec<u8>,
    next: Option<CommitId>,
    /// The key's stored value in `next`, once known.
    current: Option<Option<Value>>,
}

impl KeyHistory {
    fn value_at(&self, id: &CommitId) -> Result<Option<Value>> {
        let repo = &self.db.inner.repo;
        let tree = repo.tree(repo.commit_ref(id)?.root)?;
        Ok(repo.get_value(&tree, &self.key)?)
    }

    fn step(&mut self) -> Result<Option<(CommitInfo, Option<Vec<u8>>)>> {
        let repo = &self.db.inner.repo;
        while let Some(id) = self.next {
            let here = match self.current.take() {
                Some(v) => v,
                None => self.value_at(&id)?,
            };
            let commit = repo.read_commit(&id)?;
            let before = match commit.parents.first() {
                Some(p) => self.value_at(p)?,
                None => None,
            };
            self.next = commit.parents.first().copied();
            let changed = here != before;
            self.current = Some(before);
            if changed {
                let value = here.map(|v| repo.read_value(&v)).transpose()?;
                return Ok(Some((CommitInfo { id, commit }, value)));
            }
        }
        Ok(None)
    }
}

impl Iterator for KeyHistory {
    type Item = Result<(CommitInfo, Option<Vec<u8>>)>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.step() {
            Ok(Some(x)) => Some(Ok(x)),
            Ok(None) => None,
            Err(e) => {
                self.next = None;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A point read that started at a head since rebased away and swept
    /// finds its objects gone, and reads again at the current head.
    #[test]
    fn a_read_at_a_swept_head_reads_again_at_the_current_head() {
        let db = Db::memory();
        let main = db.branch("main").unwrap();
        main.put("k", "1").unwrap();
        let (_, stale) = main.head_tree().unwrap();
        main.put("k", "2").unwrap();
        db.rebase_keep("main", |_| true).unwrap();
        db.sweep().unwrap();
        let repo = &db.inner.repo;
        assert!(matches!(
            repo.get(&stale, b"k"),
            Err(kvgit_core::Error::MissingObject(_))
        ));
        let read = main.read_or_retry_pinned(&stale, b"k", |repo, tree| repo.get(tree, b"k"));
        assert_eq!(read.unwrap().as_deref(), Some(&b"2"[..]));
    }
}
