//! [`Transaction`]: a snapshot plus staged writes, and the commit protocol.
//!
//! Committing (see `DESIGN.md`, "Commits, branches, merge"):
//!
//! 1. Under the write fence (so garbage collection keeps every object this
//!    commit writes or references), apply the staged writes to the
//!    snapshot's tree.
//! 2. Move the branch through [`move_branch`]: the validation hooks, then
//!    the commit (parent: the head it replaces) and the compare-and-swap
//!    from that head, the durability barrier, subscriptions; once it has
//!    moved, access recency and automatic garbage collection.
//! 3. If another writer moved the branch, three-way merge: base = the
//!    snapshot, ours = the transaction's tree, theirs = the new head; keys
//!    both changed go to the merge functions. Commit the merged tree on top
//!    of the new head and go back to 2, at most `max_retries` times.
//!
//! The snapshot is the merge base of every staged key: each is merged
//! against the value it was read at. After [`Transaction::commit_keys`]
//! the transaction goes on from the head it made, but the keys still
//! staged keep their first values in its snapshot (see there).

use std::collections::BTreeMap;
use std::ops::RangeBounds;

use kvgit_core::{CommitSpec, Tree, Unwritten, Value};
use kvgit_merge::{merge_trees, Conflict, MergeFn, Policy, Registry, Strategy};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::branch::Branch;
use crate::codec::{decode_for, encode_for, Codec};
use crate::db::CommitId;
use crate::error::{Error, Result};
use crate::move_branch::{move_branch, Fence, MoveKind, Outcome, Request, Target};
use crate::snapshot::Snapshot;
use crate::staged::Staged;

/// What a commit did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitOutcome {
    /// False only from [`Transaction::try_commit`] when conflicts stopped
    /// it (then [`CommitOutcome::conflicts`] lists them).
    pub committed: bool,
    /// The branch head after the commit (the new commit, or the unchanged
    /// head for a no-op); `None` if not committed.
    pub commit: Option<CommitId>,
    /// `NoOp`: nothing to change; `FastForward`: committed straight on the
    /// snapshot; `ThreeWay`: merged with commits made meanwhile.
    pub strategy: Strategy,
    /// Keys a merge function (or side policy) decided.
    pub resolved: Vec<Vec<u8>>,
    /// Keys whose value came from the commits made meanwhile.
    pub from_theirs: Vec<Vec<u8>>,
    /// How many compare-and-swaps were tried.
    pub attempts: u32,
    /// The conflicts that stopped a [`Transaction::try_commit`].
    pub conflicts: Vec<Conflict>,
    /// The automatic garbage collection this commit triggered, if any (see
    /// [`Options::watermarks`](crate::Options::watermarks)): then the
    /// branch head is a fresh root commit after `commit`.
    pub gc: Option<kvgit_gc::RebaseReport>,
}

impl CommitOutcome {
    fn no_op(head: CommitId) -> Self {
        CommitOutcome {
            committed: true,
            commit: Some(head),
            strategy: Strategy::NoOp,
            resolved: Vec::new(),
            from_theirs: Vec::new(),
            attempts: 0,
            conflicts: Vec::new(),
            gc: None,
        }
    }
}

/// Staged writes on top of a snapshot of a branch; reads see the writes.
/// Nothing reaches the branch until [`Transaction::commit`]; dropping the
/// transaction discards it.
///
/// ```
/// let db = kvgit::Db::memory();
/// let main = db.branch("main")?;
/// let mut tx = main.transaction()?;
/// tx.put("user/alice", "admin");
/// tx.delete("user/bob");
/// assert_eq!(tx.get("user/alice")?.as_deref(), Some(&b"admin"[..]));
/// tx.message("add alice");
/// let outcome = tx.commit()?;
/// assert_eq!(Some(main.head()?), outcome.commit);
/// # Ok::<(), kvgit::Error>(())
/// ```
#[derive(Debug)]
pub struct Transaction {
    branch: Branch,
    /// What the transaction reads, and the merge base of its staged keys.
    base: Snapshot,
    /// The head it commits on top of: the base's commit, except after
    /// [`Transaction::commit_keys`] (see there).
    head: CommitId,
    staged: Staged,
    message: String,
    metadata: BTreeMap<String, String>,
    /// Merge functions for this transaction's commit, over the Db's.
    merge_overrides: Vec<(Scope, Policy)>,
}

/// Which keys a per-transaction merge function covers.
#[derive(Clone, Debug)]
enum Scope {
    Key(Vec<u8>),
    Prefix(Vec<u8>),
    Default,
}

/// How a commit handles conflicts and lost races.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Merge onto moved heads; conflicts are errors.
    Merge,
    /// Merge onto moved heads; conflicts give a not-committed outcome.
    MergeOrAbandon,
    /// One attempt, no merge: a lost race gives `None` (for `update`).
    Once,
}

impl Transaction {
    pub(crate) fn new(branch: Branch) -> Result<Transaction> {
        let base = branch.snapshot()?;
        Ok(Transaction {
            branch,
            head: base.id,
            base,
            staged: Staged::default(),
            message: String::new(),
            metadata: BTreeMap::new(),
            merge_overrides: Vec::new(),
        })
    }

    /// A transaction of `branch` on snapshot `base` that commits on top
    /// of `head` (see [`Branch::transaction_at`]).
    pub(crate) fn on(branch: Branch, base: Snapshot, head: CommitId) -> Transaction {
        Transaction {
            branch,
            head,
            base,
            staged: Staged::default(),
            message: String::new(),
            metadata: BTreeMap::new(),
            merge_overrides: Vec::new(),
        }
    }

    /// The snapshot the transaction reads under its staged writes: the
    /// head when it began. After [`Transaction::commit_keys`], the head it
    /// made, with the keys still staged as they were first read (a commit
    /// of its own that no branch holds, kept while the transaction lives).
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// let head = main.put("k", "v")?;
    /// let mut tx = main.transaction()?;
    /// tx.put("k", "staged");
    /// assert_eq!(tx.base().commit_id(), head);
    /// assert_eq!(tx.base().get("k")?.as_deref(), Some(&b"v"[..])); // without the staged write
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn base(&self) -> &Snapshot {
        &self.base
    }

    /// The branch the transaction commits to.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// let tx = main.transaction()?;
    /// assert_eq!(tx.branch().name(), "main");
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn branch(&self) -> &Branch {
        &self.branch
    }

    /// The value of `key`: a staged write, else the snapshot's.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// main.put("a", "1")?;
    /// let mut tx = main.transaction()?;
    /// tx.put("b", "2").delete("a");
    /// assert_eq!(tx.get("b")?.as_deref(), Some(&b"2"[..])); // staged write
    /// assert_eq!(tx.get("a")?, None); // staged deletion
    /// assert_eq!(main.get("a")?.as_deref(), Some(&b"1"[..])); // not committed
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        let key = key.as_ref();
        match self.staged.get(key) {
            Some(staged) => {
                self.branch.db.touch(&self.branch.name, key);
                Ok(staged.clone())
            }
            // The base is a branch snapshot: its reads count as access.
            None => self.base.get(key),
        }
    }

    /// The value of `key` decoded with the store's codec.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// let mut tx = main.transaction()?;
    /// tx.put_as("count", &41u64)?;
    /// let n: u64 = tx.get_as("count")?.unwrap_or(0);
    /// assert_eq!(n, 41);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn get_as<T: DeserializeOwned>(&self, key: impl AsRef<[u8]>) -> Result<Option<T>> {
        let codec = self.branch.db.inner.options.codec;
        self.get_with(&codec, key)
    }

    /// The value of `key` decoded with `codec`.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// let mut tx = main.transaction()?;
    /// tx.put("tags", r#"["a","b"]"#);
    /// let tags: Vec<String> = tx.get_with(&kvgit::Json, "tags")?.unwrap_or_default();
    /// assert_eq!(tags, vec!["a", "b"]);
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

    /// True if `key` has a value (staged or in the snapshot).
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// main.put("old", "x")?;
    /// let mut tx = main.transaction()?;
    /// tx.put("new", "y").delete("old");
    /// assert!(tx.contains("new")?);
    /// assert!(!tx.contains("old")?);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn contains(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        let key = key.as_ref();
        match self.staged.get(key) {
            Some(staged) => {
                self.branch.db.touch(&self.branch.name, key);
                Ok(staged.is_some())
            }
            None => self.base.contains(key),
        }
    }

    /// Stages `key = value`. Limits (keys up to 4 KiB, values up to
    /// 256 MiB) are checked at commit.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// let mut tx = main.transaction()?;
    /// tx.put("a", "1").put(b"\xffbinary", [0u8, 1, 2]);
    /// tx.commit()?;
    /// assert_eq!(main.get(b"\xffbinary")?, Some(vec![0, 1, 2]));
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> &mut Self {
        self.staged
            .insert(key.as_ref().to_vec(), Some(value.as_ref().to_vec()));
        self
    }

    /// Stages `key = value` encoded with the store's codec.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// let mut tx = main.transaction()?;
    /// tx.put_as("limits", &[1u8, 2, 3])?;
    /// tx.commit()?;
    /// assert_eq!(main.get_as::<[u8; 3]>("limits")?, Some([1, 2, 3]));
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn put_as<T: Serialize + ?Sized>(
        &mut self,
        key: impl AsRef<[u8]>,
        value: &T,
    ) -> Result<()> {
        let codec = self.branch.db.inner.options.codec;
        self.put_with(&codec, key, value)
    }

    /// Stages `key = value` encoded with `codec`.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// let mut tx = main.transaction()?;
    /// tx.put_with(&kvgit::Json, "user", &("alice", 30))?;
    /// tx.commit()?;
    /// assert_eq!(main.get("user")?.as_deref(), Some(&br#"["alice",30]"#[..]));
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn put_with<C: Codec, T: Serialize + ?Sized>(
        &mut self,
        codec: &C,
        key: impl AsRef<[u8]>,
        value: &T,
    ) -> Result<()> {
        let key = key.as_ref();
        let bytes = encode_for(codec, key, value)?;
        self.staged.insert(key.to_vec(), Some(bytes));
        Ok(())
    }

    /// Stages the deletion of `key`.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// main.put("k", "v")?;
    /// let mut tx = main.transaction()?;
    /// tx.delete("k").delete("never-there"); // deleting a missing key is no error
    /// tx.commit()?;
    /// assert!(main.is_empty()?);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> &mut Self {
        self.staged.insert(key.as_ref().to_vec(), None);
        self
    }

    /// Forgets the staged write to `key`, if any.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// let mut tx = main.transaction()?;
    /// tx.put("a", "1").put("b", "2").unstage("a");
    /// assert!(!tx.is_staged("a"));
    /// tx.commit()?;
    /// assert_eq!(main.keys()?.collect::<kvgit::Result<Vec<_>>>()?, vec![b"b".to_vec()]);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn unstage(&mut self, key: impl AsRef<[u8]>) -> &mut Self {
        self.staged.remove(key.as_ref());
        self
    }

    /// True if `key` has a staged write.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// main.put("a", "1")?;
    /// let mut tx = main.transaction()?;
    /// tx.delete("b");
    /// assert!(tx.is_staged("b")); // a staged deletion counts
    /// assert!(!tx.is_staged("a"));
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn is_staged(&self, key: impl AsRef<[u8]>) -> bool {
        self.staged.contains_key(key.as_ref())
    }

    /// True if anything is staged.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// let mut tx = main.transaction()?;
    /// assert!(!tx.has_changes());
    /// tx.put("k", "v");
    /// assert!(tx.has_changes());
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn has_changes(&self) -> bool {
        !self.staged.is_empty()
    }

    /// The staged writes in key order (`None`: a deletion).
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// let mut tx = main.transaction()?;
    /// tx.put("b", "2").delete("a");
    /// let staged: Vec<_> = tx.staged().collect();
    /// assert_eq!(staged, vec![(&b"a"[..], None), (&b"b"[..], Some(&b"2"[..]))]);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn staged(&self) -> impl Iterator<Item = (&[u8], Option<&[u8]>)> {
        self.staged
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_deref()))
    }

    pub(crate) fn staged_mut(&mut self) -> &mut Staged {
        &mut self.staged
    }

    /// The entries with keys in `range` as the transaction sees them
    /// (snapshot plus staged writes), in key order, lazily.
    ///
    /// ```
    /// use std::ops::Bound;
    /// let main = kvgit::Db::memory().branch("main")?;
    /// main.put("a", "1")?;
    /// main.put("c", "3")?;
    /// let mut tx = main.transaction()?;
    /// tx.put("b", "2").delete("c");
    /// let seen: Vec<(Vec<u8>, Vec<u8>)> = tx.range((Bound::Included(&b"a"[..]), Bound::Unbounded)).collect::<kvgit::Result<_>>()?;
    /// assert_eq!(seen, vec![(b"a".to_vec(), b"1".to_vec()), (b"b".to_vec(), b"2".to_vec())]);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn range<'a, R: RangeBounds<[u8]> + Clone + 'a>(
        &'a self,
        range: R,
    ) -> impl Iterator<Item = Result<(Vec<u8>, Vec<u8>)>> + 'a {
        let staged = self.staged.range(range.clone());
        Overlay::new(self.base.range(range), staged, |v: &Vec<u8>| v.clone())
    }

    /// The entries whose keys start with `prefix`, as the transaction sees
    /// them, in key order, lazily.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// main.put("user/alice", "admin")?;
    /// let mut tx = main.transaction()?;
    /// tx.put("user/bob", "user").put("group/x", "1");
    /// let users: Vec<(Vec<u8>, Vec<u8>)> = tx.scan_prefix("user/").collect::<kvgit::Result<_>>()?;
    /// assert_eq!(users.len(), 2);
    /// assert_eq!(users[1], (b"user/bob".to_vec(), b"user".to_vec()));
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn scan_prefix(
        &self,
        prefix: impl AsRef<[u8]>,
    ) -> impl Iterator<Item = Result<(Vec<u8>, Vec<u8>)>> + '_ {
        self.range(prefix_range(prefix.as_ref()))
    }

    /// Every key as the transaction sees it, in order, lazily (values are
    /// not loaded).
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// main.put("a", "1")?;
    /// let mut tx = main.transaction()?;
    /// tx.put("b", "2").delete("a");
    /// let keys: Vec<Vec<u8>> = tx.keys().collect::<kvgit::Result<_>>()?;
    /// assert_eq!(keys, vec![b"b".to_vec()]);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn keys(&self) -> impl Iterator<Item = Result<Vec<u8>>> + '_ {
        let base = self.base.keys().map(|k| k.map(|k| (k, ())));
        Overlay::new(base, self.staged.iter(), |_: &Vec<u8>| ()).map(|entry| entry.map(|(k, ())| k))
    }

    /// The number of keys as the transaction sees them: the snapshot's,
    /// in O(1), adjusted by one lookup per staged key.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// main.put("a", "1")?;
    /// main.put("b", "2")?;
    /// let mut tx = main.transaction()?;
    /// tx.put("c", "3").put("a", "changed").delete("b");
    /// assert_eq!(tx.len()?, 2); // a and c
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn len(&self) -> Result<u64> {
        let mut len = self.base.len();
        for (key, value) in self.staged.iter() {
            let before = self.branch.db.inner.repo.get_value(&self.base.tree, key)?;
            match (before.is_some(), value.is_some()) {
                (false, true) => len += 1,
                (true, false) => len -= 1,
                _ => {}
            }
        }
        Ok(len)
    }

    /// True if the transaction sees no key.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// main.put("k", "v")?;
    /// let mut tx = main.transaction()?;
    /// assert!(!tx.is_empty()?);
    /// tx.delete("k");
    /// assert!(tx.is_empty()?);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Sets the commit message.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// let mut tx = main.transaction()?;
    /// tx.put("k", "v").message("set k");
    /// tx.commit()?;
    /// assert_eq!(main.log()?.next().expect("a head")?.message(), "set k");
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn message(&mut self, message: impl Into<String>) -> &mut Self {
        self.message = message.into();
        self
    }

    /// Sets the commit message.
    #[deprecated(note = "use `Transaction::message`, which takes `&mut self` too")]
    pub fn set_message(&mut self, message: impl Into<String>) -> &mut Self {
        self.message(message)
    }

    /// Adds a metadata entry to the commit.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// let mut tx = main.transaction()?;
    /// tx.put("k", "v").metadata("author", "alice").metadata("ticket", "42");
    /// tx.commit()?;
    /// let head = main.log()?.next().expect("a head")?;
    /// assert_eq!(head.metadata().get("author").map(String::as_str), Some("alice"));
    /// assert_eq!(head.metadata().len(), 2);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn metadata(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Adds a metadata entry to the commit.
    #[deprecated(note = "use `Transaction::metadata`, which takes `&mut self` too")]
    pub fn set_metadata(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.metadata(key, value)
    }

    /// Merges `key` with `f` if this transaction's commit has to merge
    /// with commits made meanwhile, over whatever the store's
    /// [`merge_fns`](crate::Db::merge_fns) say for it (Python kvgit's
    /// `commit(merge_fns=...)`). Lookup order is the store's: exact key,
    /// longest prefix, default, this transaction's entries first at each
    /// level.
    ///
    /// ```
    /// use kvgit::merge::Counter;
    /// let db = kvgit::Db::memory();
    /// let main = db.branch("main")?;
    /// main.put("hits", "1")?;
    /// let mut tx = main.transaction()?;
    /// main.put("hits", "2")?; // another writer
    /// tx.put("hits", "5").merge_fn("hits", Counter);
    /// tx.commit()?;
    /// assert_eq!(main.get("hits")?.as_deref(), Some(&b"6"[..]));
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn merge_fn(&mut self, key: impl AsRef<[u8]>, f: impl MergeFn + 'static) -> &mut Self {
        let scope = Scope::Key(key.as_ref().to_vec());
        self.merge_overrides.push((scope, Policy::func(f)));
        self
    }

    /// Merges every key starting with `prefix` with `f` in this
    /// transaction's commit (see [`Transaction::merge_fn`]).
    ///
    /// ```
    /// use kvgit::merge::Max;
    /// let main = kvgit::Db::memory().branch("main")?;
    /// main.put("best/alice", "10")?;
    /// let mut tx = main.transaction()?;
    /// main.put("best/alice", "30")?; // another writer
    /// tx.put("best/alice", "20").merge_fn_prefix("best/", Max);
    /// tx.commit()?;
    /// assert_eq!(main.get("best/alice")?.as_deref(), Some(&b"30"[..]));
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn merge_fn_prefix(
        &mut self,
        prefix: impl AsRef<[u8]>,
        f: impl MergeFn + 'static,
    ) -> &mut Self {
        let scope = Scope::Prefix(prefix.as_ref().to_vec());
        self.merge_overrides.push((scope, Policy::func(f)));
        self
    }

    /// Merges keys no other entry covers with `f` in this transaction's
    /// commit (Python kvgit's `default_merge`).
    ///
    /// ```
    /// use kvgit::merge::Ours;
    /// let main = kvgit::Db::memory().branch("main")?;
    /// main.put("k", "base")?;
    /// let mut tx = main.transaction()?;
    /// main.put("k", "theirs")?; // another writer
    /// tx.put("k", "ours").default_merge(Ours);
    /// let outcome = tx.commit()?;
    /// assert_eq!(outcome.resolved, vec![b"k".to_vec()]);
    /// assert_eq!(main.get("k")?.as_deref(), Some(&b"ours"[..]));
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn default_merge(&mut self, f: impl MergeFn + 'static) -> &mut Self {
        self.merge_overrides.push((Scope::Default, Policy::func(f)));
        self
    }

    /// The merge functions of this transaction's commit: the store's,
    /// with the transaction's own entries over them.
    fn merge_fns(&self) -> Registry {
        let db_fns = &self.branch.db.inner.merge_fns;
        if self.merge_overrides.is_empty() {
            return db_fns.clone();
        }
        let fns = db_fns.fork();
        for (scope, policy) in &self.merge_overrides {
            match scope {
                Scope::Key(k) => fns.set_policy(k, policy.clone()),
                Scope::Prefix(p) => fns.set_prefix_policy(p, policy.clone()),
                Scope::Default => fns.set_default_policy(Some(policy.clone())),
            }
        }
        fns
    }

    /// Commits every staged write (see the module docs for the protocol).
    /// Conflicts with commits made meanwhile that no merge function
    /// resolves fail with [`Error::Conflicts`], listing every key.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// main.put("k", "base")?;
    /// let mut a = main.transaction()?;
    /// let mut b = main.transaction()?;
    /// a.put("x", "1");
    /// b.put("y", "2");
    /// assert_eq!(a.commit()?.strategy, kvgit::Strategy::FastForward);
    /// // b's snapshot is behind: it merges (different keys, no conflict).
    /// let outcome = b.commit()?;
    /// assert_eq!(outcome.strategy, kvgit::Strategy::ThreeWay);
    /// assert_eq!(main.len()?, 3);
    /// // Both changing the same key without a merge function is a conflict.
    /// let mut c = main.transaction()?;
    /// main.put("k", "other")?;
    /// c.put("k", "mine");
    /// assert!(matches!(c.commit(), Err(kvgit::Error::Conflicts(_))));
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn commit(mut self) -> Result<CommitOutcome> {
        let edits: Vec<_> = self.staged.take();
        Ok(self
            .run(edits, Mode::Merge, false)?
            .expect("merge mode always decides"))
    }

    /// Like [`Transaction::commit`], but conflicts give an outcome with
    /// `committed: false` listing them, instead of an error.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// main.put("k", "base")?;
    /// let mut tx = main.transaction()?;
    /// main.put("k", "theirs")?;
    /// tx.put("k", "ours");
    /// let outcome = tx.try_commit()?;
    /// assert!(!outcome.committed);
    /// assert_eq!(outcome.conflicts[0].key, b"k");
    /// assert_eq!(main.get("k")?.as_deref(), Some(&b"theirs"[..]));
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn try_commit(mut self) -> Result<CommitOutcome> {
        let edits: Vec<_> = self.staged.take();
        Ok(self
            .run(edits, Mode::MergeOrAbandon, false)?
            .expect("merge mode always decides"))
    }

    /// Commits only the staged writes to `keys`; the others stay staged and
    /// the transaction goes on from the branch's head: reads of keys not
    /// staged see it. The keys still staged keep the snapshot they were
    /// read from as their merge base, so a later commit merges them with
    /// what other writers did meanwhile exactly as one commit of
    /// everything would have (a counter adds both increments; without a
    /// merge function, [`Error::Conflicts`]). The snapshot stays pinned
    /// against garbage collection while the transaction lives.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// let mut tx = main.transaction()?;
    /// tx.put("done", "1").put("later", "2");
    /// tx.commit_keys(["done"])?;
    /// assert!(main.contains("done")?);
    /// assert!(!main.contains("later")?);
    /// assert!(tx.is_staged("later"));
    /// tx.commit()?;
    /// assert!(main.contains("later")?);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn commit_keys<I, K>(&mut self, keys: I) -> Result<CommitOutcome>
    where
        I: IntoIterator<Item = K>,
        K: AsRef<[u8]>,
    {
        let mut edits = Vec::new();
        for key in keys {
            if let Some((k, v)) = self.staged.remove_entry(key.as_ref()) {
                edits.push((k, v));
            }
        }
        edits.sort_by(|a, b| a.0.cmp(&b.0));
        let outcome = self
            .run(edits, Mode::Merge, false)?
            .expect("merge mode always decides");
        self.go_on_from_head()?;
        Ok(outcome)
    }

    /// After a partial commit: the transaction goes on from the branch's
    /// head, with a base that is that head except for the keys still
    /// staged, which keep the values they were read at. When those differ
    /// from the head, the base is a commit of its own (parent: the head),
    /// written and pinned under the write fence like any branch snapshot;
    /// the next commit then merges onto the head from it.
    fn go_on_from_head(&mut self) -> Result<()> {
        let db = &self.branch.db;
        let repo = &db.inner.repo;
        let _fence = repo.write_fence();
        let head = repo
            .get_ref(&self.branch.ref_name)?
            .ok_or_else(|| Error::BranchDeleted(self.branch.name.clone()))?;
        let head_pin = repo.pin(head);
        let head_tree = repo.tree(repo.commit_ref(&head)?.root)?;
        let mut first_read: Vec<(Vec<u8>, Option<Value>)> = Vec::new();
        for key in self.staged.keys() {
            first_read.push((key.clone(), repo.get_value(&self.base.tree, key)?));
        }
        let tree = repo.apply_values(&head_tree, first_read)?;
        let name = &self.branch.name;
        self.base = if tree.root() == head_tree.root() {
            Snapshot::pinned(db.clone(), head, head_tree, head_pin, name)
        } else {
            let spec = CommitSpec {
                parents: vec![head],
                message: format!("transaction base on {name}: the staged keys as first read"),
                ..CommitSpec::default()
            };
            let id = repo.write_commit(&tree, &spec)?;
            Snapshot::pinned(db.clone(), id, tree, repo.pin(id), name)
        };
        self.head = head;
        Ok(())
    }

    /// One attempt without merging, for [`Branch::update`]: `None` if
    /// another writer moved the branch first.
    /// `turn_held`: the caller holds the branch's writer turn.
    pub(crate) fn commit_once(mut self, turn_held: bool) -> Result<Option<CommitOutcome>> {
        let edits: Vec<_> = self.staged.take();
        self.run(edits, Mode::Once, turn_held)
    }

    /// The keys to record as written once the commit lands (none when
    /// access is not tracked).
    fn written_keys(&self, edits: &[(Vec<u8>, Option<Vec<u8>>)]) -> Vec<Vec<u8>> {
        match self.branch.db.tracking() {
            true => edits.iter().map(|(k, _)| k.clone()).collect(),
            false => Vec::new(),
        }
    }

    /// Commits `edits` (see the module docs). `turn_held`: the caller
    /// already holds the writer turn on this branch (see below).
    ///
    /// On a store shared by processes, a commit that loses a race takes the
    /// branch's writer turn ([`kvgit_core::SharedStore::writer_turn`]) for
    /// its retries and retries at once instead of backing off, and for a
    /// short while after a lost race new commits on the branch take the
    /// turn before their first try (merging onto the head they find). So
    /// processes that keep colliding, which cannot share a backoff, queue
    /// up instead of starving one another; uncontended commits never wait.
    fn run(
        &self,
        edits: Vec<(Vec<u8>, Option<Vec<u8>>)>,
        mode: Mode,
        turn_held: bool,
    ) -> Result<Option<CommitOutcome>> {
        #[cfg(feature = "tracing")]
        let _span =
            tracing::debug_span!("kvgit.commit", branch = %self.branch.name, keys = edits.len())
                .entered();
        let db = &self.branch.db;
        let repo = &db.inner.repo;
        let ref_name = &self.branch.ref_name;
        // Nothing to change: the outcome names the branch's current head.
        if edits.is_empty() {
            return Ok(Some(CommitOutcome::no_op(self.branch.head()?)));
        }
        let mut turn = None;
        if !turn_held && mode != Mode::Once && db.recently_contended(ref_name) {
            turn = db.writer_turn(ref_name)?;
        }
        let written = self.written_keys(&edits);
        let mut fence = Fence::handed(repo.write_fence());
        // The new nodes go to the store with the commit object, in one
        // batch (one round trip on a networked store).
        let (ours, mut unwritten) = self.build(edits)?;
        if ours.root() == self.base.tree.root() {
            return Ok(Some(CommitOutcome::no_op(self.branch.head()?)));
        }
        let mut head = self.base.id;
        let mut head_tree = self.base.tree;
        let mut tree = ours;
        let mut outcome = CommitOutcome::no_op(head);
        outcome.strategy = Strategy::FastForward;
        // After `commit_keys` the base is not the head: merge onto the
        // head before the first try. So too with the turn taken up front,
        // when the snapshot is likely behind: merge onto the head as it is
        // now.
        let mut moved = (self.head != self.base.id).then_some(self.head);
        if turn.is_some() {
            match repo.get_ref(ref_name)? {
                None => return Err(Error::BranchDeleted(self.branch.name.clone())),
                Some(h) if h != head => moved = Some(h),
                Some(_) => {}
            }
        }
        let attempts = db.inner.options.max_retries.saturating_add(1);
        for attempt in 1..=attempts {
            if let Some(h) = moved.take() {
                // The merge reads `ours`, which the cache may not hold in
                // full: it must be in the store first.
                repo.write_objects(std::mem::take(&mut unwritten))?;
                head = h;
                head_tree = repo.tree(repo.commit_ref(&head)?.root)?;
                match self.merge_onto(&ours, &head_tree, mode)? {
                    Ok(m) => {
                        tree = m.tree;
                        outcome.strategy = Strategy::ThreeWay;
                        outcome.resolved = m.resolved;
                        outcome.from_theirs = m.from_theirs;
                    }
                    Err(conflicts) => {
                        outcome.committed = false;
                        outcome.commit = None;
                        outcome.strategy = Strategy::ThreeWay;
                        outcome.conflicts = conflicts;
                        return Ok(Some(outcome));
                    }
                }
            }
            outcome.attempts = attempt;
            #[cfg(feature = "tracing")]
            tracing::debug!(
                attempt,
                merged = outcome.strategy == Strategy::ThreeWay,
                "commit attempt"
            );
            if tree.root() == head_tree.root() {
                // The merge gave exactly the head: nothing to add.
                outcome.commit = Some(head);
                return Ok(Some(outcome));
            }
            let request = Request {
                branch: &self.branch.name,
                ref_name,
                kind: MoveKind::Commit,
                expected: Some(head),
                target: Target::New {
                    tree,
                    unwritten: std::mem::take(&mut unwritten),
                    spec: CommitSpec {
                        parents: vec![head],
                        message: self.message.clone(),
                        metadata: self.metadata.clone(),
                        time_micros: None,
                    },
                },
                message: String::new(),
                written: &written,
                fence,
            };
            let actual = match move_branch(db, request)? {
                Outcome::Moved { head: id, gc } => {
                    outcome.commit = Some(gc.as_ref().and_then(|r| r.commit).unwrap_or(id));
                    outcome.gc = gc;
                    return Ok(Some(outcome));
                }
                Outcome::Deleted | Outcome::Lost { actual: None, .. } => {
                    return Err(Error::BranchDeleted(self.branch.name.clone()))
                }
                Outcome::Lost {
                    actual: Some(h),
                    fence: handed_back,
                } => {
                    fence = handed_back;
                    h
                }
            };
            db.lost_race(ref_name);
            if mode == Mode::Once {
                return Ok(None);
            }
            if turn_held || turn.is_some() {
                // Holding the turn: the head the CAS reported is current
                // enough; retry at once.
                moved = Some(actual);
                continue;
            }
            turn = db.writer_turn(ref_name)?;
            if turn.is_none() {
                backoff(attempt);
            }
            // Merge onto the head as it is after the wait, not as it was
            // before: on a store shared by processes, a head learned
            // before waiting has usually moved again, and the retry would
            // lose for certain.
            moved = Some(repo.get_ref(ref_name)?.unwrap_or(actual));
        }
        Err(Error::Contended {
            branch: self.branch.name.clone(),
            attempts,
        })
    }

    /// The base's tree with `edits` (sorted by key, each key once) applied.
    /// When the edits are many ([`BULK_BUILD_MIN`] or more) and at least as
    /// many as the base's keys (a bulk load, above all into an empty
    /// branch), the tree is built in one pass from
    /// the merged, sorted entries ([`kvgit_core::Repo::build_tree`]), which
    /// is much faster than editing; otherwise the edits are applied
    /// ([`kvgit_core::Repo::apply_unwritten`]). Both give the same root id:
    /// a tree depends only on its content.
    fn build(&self, edits: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<(Tree, Unwritten)> {
        let repo = &self.branch.db.inner.repo;
        let base = &self.base.tree;
        if edits.len() < BULK_BUILD_MIN || (edits.len() as u64) < base.len() {
            return Ok(repo.apply_unwritten(base, edits)?);
        }
        // Keys of deletions are checked as `apply` checks them (the build
        // checks every key it stores).
        for (key, _) in edits.iter().filter(|(_, v)| v.is_none()) {
            kvgit_core::object::check_key(key)?;
        }
        let old = repo
            .range(base, ..)
            .collect::<kvgit_core::Result<Vec<(Vec<u8>, Vec<u8>)>>>()?;
        let tree = repo.build_tree(MergedEntries {
            old: old.into_iter().peekable(),
            edits: edits.into_iter().peekable(),
        })?;
        Ok((tree, Unwritten::default()))
    }

    /// Three-way merge of the transaction's tree `ours` onto `head_tree`
    /// (base: the snapshot). `Ok(Err(conflicts))` when conflicts stop a
    /// `MergeOrAbandon` commit.
    fn merge_onto(
        &self,
        ours: &Tree,
        head_tree: &Tree,
        mode: Mode,
    ) -> Result<std::result::Result<kvgit_merge::tree::Outcome, Vec<Conflict>>> {
        let db = &self.branch.db;
        #[cfg(feature = "tracing")]
        let _span = tracing::debug_span!("kvgit.merge", branch = %self.branch.name).entered();
        let merged = merge_trees(
            &db.inner.repo,
            &self.base.tree,
            ours,
            head_tree,
            &self.merge_fns(),
            &kvgit_merge::tree::Options::default(),
        );
        match merged {
            Ok(m) => Ok(Ok(m)),
            Err(kvgit_merge::Error::Conflicts(conflicts)) if mode == Mode::MergeOrAbandon => {
                Ok(Err(conflicts))
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// The keys starting with `prefix`, as an owned range.
pub(crate) fn prefix_range(prefix: &[u8]) -> KeyRange {
    use std::ops::Bound;
    let end = match kvgit_core::tree::prefix_successor(prefix) {
        Some(end) => Bound::Excluded(end),
        None => Bound::Unbounded,
    };
    KeyRange {
        start: Bound::Included(prefix.to_vec()),
        end,
    }
}

/// A range of keys that owns its bounds.
#[derive(Clone, Debug)]
pub(crate) struct KeyRange {
    start: std::ops::Bound<Vec<u8>>,
    end: std::ops::Bound<Vec<u8>>,
}

impl RangeBounds<[u8]> for KeyRange {
    fn start_bound(&self) -> std::ops::Bound<&[u8]> {
        as_slice(&self.start)
    }

    fn end_bound(&self) -> std::ops::Bound<&[u8]> {
        as_slice(&self.end)
    }
}

fn as_slice(bound: &std::ops::Bound<Vec<u8>>) -> std::ops::Bound<&[u8]> {
    match bound {
        std::ops::Bound::Included(k) => std::ops::Bound::Included(k.as_slice()),
        std::ops::Bound::Excluded(k) => std::ops::Bound::Excluded(k.as_slice()),
        std::ops::Bound::Unbounded => std::ops::Bound::Unbounded,
    }
}

/// A lazy scan of a snapshot with staged writes laid over it: both in key
/// order, a staged write wins over the snapshot's entry, a staged deletion
/// hides it.
struct Overlay<'a, B: Iterator, S: Iterator<Item = (&'a Vec<u8>, &'a Option<Vec<u8>>)>, V, F> {
    base: std::iter::Peekable<B>,
    staged: std::iter::Peekable<S>,
    value: F,
    _v: std::marker::PhantomData<fn() -> V>,
}

impl<'a, B, S, V, F> Overlay<'a, B, S, V, F>
where
    B: Iterator<Item = Result<(Vec<u8>, V)>>,
    S: Iterator<Item = (&'a Vec<u8>, &'a Option<Vec<u8>>)>,
    F: Fn(&Vec<u8>) -> V,
{
    fn new(base: B, staged: S, value: F) -> Self {
        Overlay {
            base: base.peekable(),
            staged: staged.peekable(),
            value,
            _v: std::marker::PhantomData,
        }
    }
}

impl<'a, B, S, V, F> Iterator for Overlay<'a, B, S, V, F>
where
    B: Iterator<Item = Result<(Vec<u8>, V)>>,
    S: Iterator<Item = (&'a Vec<u8>, &'a Option<Vec<u8>>)>,
    F: Fn(&Vec<u8>) -> V,
{
    type Item = Result<(Vec<u8>, V)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let order = match (self.base.peek(), self.staged.peek()) {
                (Some(Err(_)), _) => return self.base.next(),
                (None, None) => return None,
                (Some(Ok(_)), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some(Ok((b, _))), Some((s, _))) => b.as_slice().cmp(s.as_slice()),
            };
            if order == std::cmp::Ordering::Less {
                return self.base.next();
            }
            if order == std::cmp::Ordering::Equal {
                self.base.next();
            }
            let (key, staged) = self.staged.next().expect("peeked a staged entry");
            if let Some(v) = staged {
                return Some(Ok((key.clone(), (self.value)(v))));
            }
        }
    }
}

/// From this many staged writes on, a commit onto a tree of at most as
/// many keys builds its tree in one pass (see `Transaction::build`). Below
/// it, edits keep their last objects for the commit's own backend call and
/// leave their nodes in the cache.
const BULK_BUILD_MIN: usize = 1024;

/// The entries of a tree (`old`, sorted) with sorted, unique `edits`
/// applied: an edit replaces or (`None`) removes the entry of its key.
struct MergedEntries<A: Iterator, B: Iterator> {
    old: std::iter::Peekable<A>,
    edits: std::iter::Peekable<B>,
}

impl<A, B> Iterator for MergedEntries<A, B>
where
    A: Iterator<Item = (Vec<u8>, Vec<u8>)>,
    B: Iterator<Item = (Vec<u8>, Option<Vec<u8>>)>,
{
    type Item = (Vec<u8>, Vec<u8>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let take_old = match (self.old.peek(), self.edits.peek()) {
                (None, None) => return None,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some((k, _)), Some((e, _))) => match k.cmp(e) {
                    std::cmp::Ordering::Less => true,
                    std::cmp::Ordering::Greater => false,
                    std::cmp::Ordering::Equal => {
                        self.old.next();
                        false
                    }
                },
            };
            if take_old {
                return self.old.next();
            }
            if let Some((key, Some(value))) = self.edits.next() {
                return Some((key, value));
            }
        }
    }
}

/// After losing a race `attempt` times, let the other writers through:
/// yield for the first few attempts, then sleep a random time whose bound
/// doubles with each attempt (up to about a millisecond), so writers that
/// keep colliding spread out and none starves.
pub(crate) fn backoff(attempt: u32) {
    if attempt < 4 {
        for _ in 0..attempt {
            std::thread::yield_now();
        }
        return;
    }
    let bound = 1u64 << attempt.min(10);
    // Jitter from the clock and the thread: no shared state, no dependency.
    use std::hash::BuildHasher;
    let thread =
        std::collections::hash_map::RandomState::new().hash_one(std::thread::current().id());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::from(d.subsec_nanos()))
        .unwrap_or(0);
    let mut x = thread ^ nanos;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    std::thread::sleep(std::time::Duration::from_micros(x % bound));
}
