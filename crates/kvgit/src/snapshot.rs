//! [`Snapshot`]: a read-only view of one commit.

use std::ops::{Bound, RangeBounds};

use std::sync::Arc;

use kvgit_core::{Commit, Pin, Tree};
use serde::de::DeserializeOwned;

use crate::codec::{decode_for, Codec};
use crate::db::{CommitId, Db};
use crate::error::Result;

/// What happened to a key between two commits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// The key is new.
    Added,
    /// The key is gone.
    Removed,
    /// The key's value changed.
    Modified,
}

/// One key's change between two commits, with both values loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The key.
    pub key: Vec<u8>,
    /// Added, removed or modified.
    pub kind: ChangeKind,
    /// The value before (`None` if added).
    pub old: Option<Vec<u8>>,
    /// The value after (`None` if removed).
    pub new: Option<Vec<u8>>,
}

/// A commit's metadata, as listed by [`Branch::log`](crate::Branch::log).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitInfo {
    /// The commit id.
    pub id: CommitId,
    /// The commit itself: root tree, parents, height, time, message and
    /// metadata.
    pub commit: Commit,
}

impl CommitInfo {
    /// The parents (none for a root commit, two for a merge).
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// let first = main.put("k", "v")?;
    /// let dev = main.fork("dev")?;
    /// dev.put("a", "1")?;
    /// main.put("b", "2")?;
    /// main.merge_from(&dev)?;
    /// let merge = main.log()?.next().expect("a head")?;
    /// assert_eq!(merge.parents().len(), 2);
    /// let root = main.log()?.last().expect("a root")?;
    /// assert!(root.parents().is_empty());
    /// assert_eq!(main.db().checkout(&first)?.info()?.parents(), &[root.id]);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn parents(&self) -> &[CommitId] {
        &self.commit.parents
    }

    /// The commit message.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// let mut tx = main.transaction()?;
    /// tx.put("k", "v").message("import users");
    /// tx.commit()?;
    /// assert_eq!(main.snapshot()?.info()?.message(), "import users");
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn message(&self) -> &str {
        &self.commit.message
    }

    /// The commit time.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// let before = std::time::SystemTime::now() - std::time::Duration::from_secs(1);
    /// main.put("k", "v")?;
    /// assert!(main.snapshot()?.info()?.time() >= before);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn time(&self) -> std::time::SystemTime {
        std::time::UNIX_EPOCH + std::time::Duration::from_micros(self.commit.time_micros)
    }

    /// The user metadata.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// let mut tx = main.transaction()?;
    /// tx.put("k", "v").metadata("source", "nightly-import");
    /// tx.commit()?;
    /// let info = main.snapshot()?.info()?;
    /// assert_eq!(info.metadata()["source"], "nightly-import");
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn metadata(&self) -> &std::collections::BTreeMap<String, String> {
        &self.commit.metadata
    }
}

/// A read-only view of one commit: the state of a branch at some point.
///
/// A snapshot of a branch head ([`Branch::snapshot`](crate::Branch::snapshot),
/// a transaction's base) counts its reads of values as access to the
/// branch's keys, for garbage collection's coldest-first order, when the
/// store records access ([`Options::track_access`](crate::Options::track_access));
/// a snapshot of any other commit ([`Db::checkout`]) does not.
///
/// ```
/// let db = kvgit::Db::memory();
/// let main = db.branch("main")?;
/// let first = main.put("k", "v1")?;
/// main.put("k", "v2")?;
/// let old = db.checkout(&first)?;
/// assert_eq!(old.get("k")?.as_deref(), Some(&b"v1"[..]));
/// # Ok::<(), kvgit::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub(crate) db: Db,
    pub(crate) id: CommitId,
    pub(crate) tree: Tree,
    /// Keeps a branch snapshot's commit from garbage collection while any
    /// clone of the snapshot lives (a transaction's base included).
    _pin: Option<Arc<Pin>>,
    /// The branch whose head this is, if it is one: reads count as access
    /// to its keys.
    branch: Option<Arc<str>>,
}

impl Snapshot {
    /// A snapshot of commit `id`. Unpinned: if no branch or tag reaches
    /// the commit, a sweep may delete it, and reads then fail with
    /// `MissingObject`.
    pub(crate) fn at(db: Db, id: CommitId) -> Result<Snapshot> {
        let tree = tree_of(&db, &id)?;
        Ok(Snapshot {
            db,
            id,
            tree,
            _pin: None,
            branch: None,
        })
    }

    /// A snapshot of the head of branch `branch` (full ref name
    /// `ref_name`), pinned (read and pinned under the write fence, so no
    /// sweep can remove it meanwhile).
    pub(crate) fn of_branch(db: Db, branch: &str, ref_name: &str) -> Result<Option<Snapshot>> {
        match db.inner.repo.head_pinned(ref_name)? {
            Some((id, tree, pin)) => Ok(Some(Snapshot::pinned(db, id, tree, pin, branch))),
            None => Ok(None),
        }
    }

    /// A snapshot of commit `id` with tree `tree`, kept by `pin`, whose
    /// reads count as access to the keys of `branch`.
    pub(crate) fn pinned(db: Db, id: CommitId, tree: Tree, pin: Pin, branch: &str) -> Snapshot {
        Snapshot {
            db,
            id,
            tree,
            _pin: Some(Arc::new(pin)),
            branch: Some(branch.into()),
        }
    }

    /// Records a read of `key` as access, if this is a branch head.
    fn record(&self, key: &[u8]) {
        if let Some(branch) = &self.branch {
            self.db.touch(branch, key);
        }
    }

    /// Records the entries `entries` yields as they are read, if this is a
    /// branch head.
    fn recorded<I>(&self, entries: I) -> impl Iterator<Item = Result<(Vec<u8>, Vec<u8>)>>
    where
        I: Iterator<Item = kvgit_core::Result<(Vec<u8>, Vec<u8>)>>,
    {
        let to = match self.db.tracking() {
            true => self.branch.clone().map(|b| (self.db.clone(), b)),
            false => None,
        };
        entries.map(move |entry| {
            if let (Ok((key, _)), Some((db, branch))) = (&entry, &to) {
                db.touch(branch, key);
            }
            entry.map_err(Into::into)
        })
    }

    /// The commit this snapshot shows.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// let head = main.put("k", "v")?;
    /// assert_eq!(main.snapshot()?.commit_id(), head);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn commit_id(&self) -> CommitId {
        self.id
    }

    /// The id of the root node of this snapshot's tree (what a commit
    /// names as its tree; the root a [`Proof`](crate::remote::Proof) is
    /// checked against).
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// main.put("k", "v")?;
    /// let snap = main.snapshot()?;
    /// // The same keys and values have the same root, whatever the history.
    /// let other = kvgit::Db::memory().branch("main")?;
    /// other.put("k", "v")?;
    /// assert_eq!(snap.root_id(), other.snapshot()?.root_id());
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn root_id(&self) -> CommitId {
        self.tree.root()
    }

    /// The commit's metadata.
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// let main = db.branch("main")?;
    /// let id = main.put("k", "v")?;
    /// let info = db.checkout(&id)?.info()?;
    /// assert_eq!(info.id, id);
    /// assert_eq!(info.parents().len(), 1);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn info(&self) -> Result<CommitInfo> {
        Ok(CommitInfo {
            id: self.id,
            commit: self.db.inner.repo.read_commit(&self.id)?,
        })
    }

    /// The value of `key`.
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// let main = db.branch("main")?;
    /// let v1 = main.put("k", "v1")?;
    /// main.put("k", "v2")?;
    /// assert_eq!(db.checkout(&v1)?.get("k")?.as_deref(), Some(&b"v1"[..]));
    /// assert_eq!(main.snapshot()?.get("k")?.as_deref(), Some(&b"v2"[..]));
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        let key = key.as_ref();
        self.record(key);
        Ok(self.db.inner.repo.get(&self.tree, key)?)
    }

    /// The value of `key`, decoded with the store's codec.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// main.put_as("version", &3u32)?;
    /// assert_eq!(main.snapshot()?.get_as::<u32>("version")?, Some(3));
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn get_as<T: DeserializeOwned>(&self, key: impl AsRef<[u8]>) -> Result<Option<T>> {
        self.get_with(&self.db.inner.options.codec, key)
    }

    /// The value of `key`, decoded with `codec`.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// main.put("flags", "[true,false]")?;
    /// let flags: Option<Vec<bool>> = main.snapshot()?.get_with(&kvgit::Json, "flags")?;
    /// assert_eq!(flags, Some(vec![true, false]));
    /// // A value the codec cannot decode is an error naming the key.
    /// assert!(main.snapshot()?.get_with::<_, u32>(&kvgit::Json, "flags").is_err());
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

    /// True if `key` has a value.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// main.put("k", "v")?;
    /// let snap = main.snapshot()?;
    /// assert!(snap.contains("k")?);
    /// assert!(!snap.contains("x")?);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn contains(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        let key = key.as_ref();
        self.record(key);
        Ok(self.db.inner.repo.get_value(&self.tree, key)?.is_some())
    }

    /// The number of keys, in O(1).
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// main.put("a", "1")?;
    /// main.put("b", "2")?;
    /// assert_eq!(main.snapshot()?.len(), 2);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn len(&self) -> u64 {
        self.tree.len()
    }

    /// True if there are no keys.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// assert!(main.snapshot()?.is_empty());
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    /// The total size of all values in bytes, in O(1).
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// main.put("a", "12345")?;
    /// main.put("b", "678")?;
    /// assert_eq!(main.snapshot()?.value_bytes(), 8);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn value_bytes(&self) -> u64 {
        self.tree.value_bytes()
    }

    /// The entries with keys in `range`, in key order, lazily.
    ///
    /// ```
    /// use std::ops::Bound;
    /// let main = kvgit::Db::memory().branch("main")?;
    /// for (k, v) in [("a", "1"), ("b", "2"), ("c", "3")] {
    ///     main.put(k, v)?;
    /// }
    /// let snap = main.snapshot()?;
    /// let tail: Vec<(Vec<u8>, Vec<u8>)> = snap.range((Bound::Included(&b"b"[..]), Bound::Unbounded)).collect::<kvgit::Result<_>>()?;
    /// assert_eq!(tail, vec![(b"b".to_vec(), b"2".to_vec()), (b"c".to_vec(), b"3".to_vec())]);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn range<R: RangeBounds<[u8]>>(
        &self,
        range: R,
    ) -> impl Iterator<Item = Result<(Vec<u8>, Vec<u8>)>> {
        self.recorded(self.db.inner.repo.range(&self.tree, range))
    }

    /// The entries whose keys start with `prefix`, in key order, lazily.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// main.put("log/1", "start")?;
    /// main.put("log/2", "stop")?;
    /// main.put("lost", "x")?;
    /// let n = main.snapshot()?.scan_prefix("log/").count();
    /// assert_eq!(n, 2);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn scan_prefix(
        &self,
        prefix: impl AsRef<[u8]>,
    ) -> impl Iterator<Item = Result<(Vec<u8>, Vec<u8>)>> {
        self.recorded(self.db.inner.repo.prefix(&self.tree, prefix.as_ref()))
    }

    /// All keys in order, lazily (values are not loaded).
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// main.put("b", "2")?;
    /// main.put("a", "1")?;
    /// let keys: Vec<Vec<u8>> = main.snapshot()?.keys().collect::<kvgit::Result<_>>()?;
    /// assert_eq!(keys, vec![b"a".to_vec(), b"b".to_vec()]);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn keys(&self) -> impl Iterator<Item = Result<Vec<u8>>> {
        self.db
            .inner
            .repo
            .range_raw(&self.tree, (Bound::<&[u8]>::Unbounded, Bound::Unbounded))
            .map(|r| r.map(|(k, _)| k).map_err(Into::into))
    }

    /// The keys starting with `prefix`, in order, lazily (values are not
    /// loaded).
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// main.put("user/alice", "1")?;
    /// main.put("user/bob", "2")?;
    /// main.put("users", "3")?;
    /// let keys: Vec<Vec<u8>> = main.snapshot()?.keys_with_prefix(b"user/").collect::<kvgit::Result<_>>()?;
    /// assert_eq!(keys, vec![b"user/alice".to_vec(), b"user/bob".to_vec()]);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn keys_with_prefix(&self, prefix: &[u8]) -> impl Iterator<Item = Result<Vec<u8>>> {
        let end = kvgit_core::tree::prefix_successor(prefix);
        let upper = match &end {
            Some(e) => Bound::Excluded(e.as_slice()),
            None => Bound::Unbounded,
        };
        self.db
            .inner
            .repo
            .range_raw(&self.tree, (Bound::Included(prefix), upper))
            .map(|r| r.map(|(k, _)| k).map_err(Into::into))
    }

    /// The changes from this snapshot to `other`, in key order.
    ///
    /// ```
    /// use kvgit::ChangeKind;
    /// let main = kvgit::Db::memory().branch("main")?;
    /// main.put("a", "1")?;
    /// main.put("b", "2")?;
    /// let before = main.snapshot()?;
    /// main.put("a", "10")?;
    /// main.delete("b")?;
    /// let changes = before.diff_to(&main.snapshot()?)?;
    /// assert_eq!(changes.len(), 2);
    /// assert_eq!((changes[0].kind, changes[0].new.as_deref()), (ChangeKind::Modified, Some(&b"10"[..])));
    /// assert_eq!((changes[1].kind, changes[1].old.as_deref()), (ChangeKind::Removed, Some(&b"2"[..])));
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn diff_to(&self, other: &Snapshot) -> Result<Vec<Change>> {
        diff_trees(&self.db, &self.tree, &other.tree)
    }

    /// The keys that differ from this snapshot to `other`, with how, in
    /// key order, lazily, without loading any value.
    ///
    /// ```
    /// use kvgit::ChangeKind;
    /// let main = kvgit::Db::memory().branch("main")?;
    /// main.put("a", "1")?;
    /// let before = main.snapshot()?;
    /// main.put("b", "2")?;
    /// let changed: Vec<(ChangeKind, Vec<u8>)> =
    ///     before.changed_keys(&main.snapshot()?).collect::<kvgit::Result<_>>()?;
    /// assert_eq!(changed, vec![(ChangeKind::Added, b"b".to_vec())]);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn changed_keys(
        &self,
        other: &Snapshot,
    ) -> impl Iterator<Item = Result<(ChangeKind, Vec<u8>)>> {
        self.db
            .inner
            .repo
            .diff(&self.tree, &other.tree)
            .map(|change| {
                let change = change?;
                let kind = match &change {
                    kvgit_core::Change::Added { .. } => ChangeKind::Added,
                    kvgit_core::Change::Removed { .. } => ChangeKind::Removed,
                    kvgit_core::Change::Modified { .. } => ChangeKind::Modified,
                };
                Ok((kind, change.key().to_vec()))
            })
    }
}

/// The tree of commit `id`.
fn tree_of(db: &Db, id: &CommitId) -> Result<Tree> {
    let repo = &db.inner.repo;
    Ok(repo.tree(repo.commit_ref(id)?.root)?)
}

/// The changes from tree `a` to tree `b`, values loaded.
pub(crate) fn diff_trees(db: &Db, a: &Tree, b: &Tree) -> Result<Vec<Change>> {
    let repo = &db.inner.repo;
    let mut out = Vec::new();
    for change in repo.diff(a, b) {
        let change = change?;
        let load = |v: Option<&kvgit_core::Value>| v.map(|v| repo.read_value(v)).transpose();
        let kind = match &change {
            kvgit_core::Change::Added { .. } => ChangeKind::Added,
            kvgit_core::Change::Removed { .. } => ChangeKind::Removed,
            kvgit_core::Change::Modified { .. } => ChangeKind::Modified,
        };
        out.push(Change {
            key: change.key().to_vec(),
            kind,
            old: load(change.old())?,
            new: load(change.new_value())?,
        });
    }
    Ok(out)
}
