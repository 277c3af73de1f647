//! [`Namespace`]: a prefix view of a branch, `/`-separated and nestable.

use std::collections::BTreeSet;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::branch::Branch;
use crate::db::CommitId;
use crate::error::Result;
use crate::tx::Transaction;

/// The keys of a branch under `path/`, seen without the prefix. Nest with
/// [`Namespace::namespace`]; `users.namespace("alice")` is `users/alice/`.
///
/// A path is a list of `/`-separated segments, and empty segments are
/// dropped: `"/users/"`, `"users//"` and `"users"` are the same namespace,
/// `"a//b"` is `"a/b"`, and a path with no segment at all (`""`, `"/"`)
/// is the root view: the whole branch, with keys as they are
/// (`branch.namespace("")` writes `k`, not `/k`; `ns.namespace("")` is
/// `ns`). Keys with an empty segment themselves (`a//b`) are reachable
/// through the branch and [`Namespace::descendant_keys`], but no namespace
/// or child names them.
///
/// ```
/// let db = kvgit::Db::memory();
/// let main = db.branch("main")?;
/// let users = main.namespace("users");
/// users.put("alice", "admin")?;
/// users.namespace("archived").put("bob", "user")?;
/// assert_eq!(main.get("users/alice")?.as_deref(), Some(&b"admin"[..]));
/// assert_eq!(users.keys()?, vec!["alice".to_string()]);
/// assert_eq!(users.children()?, vec!["archived".to_string()]);
/// assert_eq!(users.descendant_keys()?, vec!["alice".to_string(), "archived/bob".to_string()]);
/// # Ok::<(), kvgit::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Namespace {
    branch: Branch,
    /// The full prefix, with its trailing `/`.
    prefix: String,
}

impl Namespace {
    pub(crate) fn new(branch: Branch, path: &str) -> Namespace {
        let mut prefix = String::new();
        for segment in path.split('/').filter(|s| !s.is_empty()) {
            prefix.push_str(segment);
            prefix.push('/');
        }
        Namespace { branch, prefix }
    }

    /// The namespace's path, e.g. `users/alice` (no trailing `/`; `""` for
    /// the root view).
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// let main = db.branch("main")?;
    /// assert_eq!(main.namespace("users").namespace("alice").path(), "users/alice");
    /// assert_eq!(main.namespace("/users//").path(), "users");
    /// assert_eq!(main.namespace("").path(), "");
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn path(&self) -> &str {
        self.prefix.trim_end_matches('/')
    }

    /// The branch seen through this namespace.
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// let users = db.branch("main")?.namespace("users");
    /// assert_eq!(users.branch().name(), "main");
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn branch(&self) -> &Branch {
        &self.branch
    }

    /// The full key of `key` in this namespace.
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// let alice = db.branch("main")?.namespace("users/alice");
    /// assert_eq!(alice.full_key("email"), "users/alice/email");
    /// assert_eq!(db.branch("main")?.namespace("").full_key("k"), "k");
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn full_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// A namespace nested in this one (empty segments of `path` are
    /// dropped; `""` is this namespace).
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// let main = db.branch("main")?;
    /// let users = main.namespace("users");
    /// users.namespace("alice").put("email", "a@example.com")?;
    /// assert!(main.contains("users/alice/email")?);
    /// assert_eq!(users.namespace("").path(), "users");
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn namespace(&self, path: &str) -> Namespace {
        Namespace::new(self.branch.clone(), &self.full_key(path))
    }

    /// The value of `key` at the branch head.
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// let main = db.branch("main")?;
    /// main.put("users/alice", "admin")?;
    /// let users = main.namespace("users");
    /// assert_eq!(users.get("alice")?.as_deref(), Some(&b"admin"[..]));
    /// assert_eq!(users.get("bob")?, None);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.branch.get(self.full_key(key))
    }

    /// The value of `key`, decoded with the store's codec.
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// let scores = db.branch("main")?.namespace("scores");
    /// scores.put_as("alice", &42u32)?;
    /// assert_eq!(scores.get_as::<u32>("alice")?, Some(42));
    /// assert_eq!(scores.get_as::<u32>("bob")?, None);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn get_as<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        self.branch.get_as(self.full_key(key))
    }

    /// True if `key` has a value.
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// let users = db.branch("main")?.namespace("users");
    /// users.put("alice", "admin")?;
    /// assert!(users.contains("alice")?);
    /// assert!(!users.contains("bob")?);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn contains(&self, key: &str) -> Result<bool> {
        self.branch.contains(self.full_key(key))
    }

    /// Commits `key = value` alone.
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// let main = db.branch("main")?;
    /// let head = main.namespace("users").put("alice", "admin")?;
    /// assert_eq!(main.head()?, head);
    /// assert_eq!(main.get("users/alice")?.as_deref(), Some(&b"admin"[..]));
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn put(&self, key: &str, value: impl AsRef<[u8]>) -> Result<CommitId> {
        self.branch.put(self.full_key(key), value)
    }

    /// Commits `key = value` encoded with the store's codec.
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// let main = db.branch("main")?;
    /// main.namespace("config").put_as("retries", &3u8)?;
    /// assert_eq!(main.get_as::<u8>("config/retries")?, Some(3));
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn put_as<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<CommitId> {
        self.branch.put_as(self.full_key(key), value)
    }

    /// Commits the deletion of `key`.
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// let users = db.branch("main")?.namespace("users");
    /// users.put("bob", "reader")?;
    /// users.delete("bob")?;
    /// assert!(!users.contains("bob")?);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn delete(&self, key: &str) -> Result<CommitId> {
        self.branch.delete(self.full_key(key))
    }

    /// The keys right under this namespace (not in nested namespaces),
    /// sorted.
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// let users = db.branch("main")?.namespace("users");
    /// users.put("bob", "reader")?;
    /// users.put("alice", "admin")?;
    /// users.put("archived/carol", "reader")?; // in a nested namespace
    /// assert_eq!(users.keys()?, vec!["alice".to_string(), "bob".to_string()]);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn keys(&self) -> Result<Vec<String>> {
        Ok(self
            .descendant_keys()?
            .into_iter()
            .filter(|k| !k.contains('/'))
            .collect())
    }

    /// The number of keys right under this namespace.
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// let users = db.branch("main")?.namespace("users");
    /// users.put("alice", "admin")?;
    /// users.put("archived/bob", "reader")?;
    /// assert_eq!(users.len()?, 1);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn len(&self) -> Result<usize> {
        Ok(self.keys()?.len())
    }

    /// True if no key is right under this namespace.
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// let users = db.branch("main")?.namespace("users");
    /// assert!(users.is_empty()?);
    /// users.put("archived/bob", "reader")?; // nested: not right under `users`
    /// assert!(users.is_empty()?);
    /// users.put("alice", "admin")?;
    /// assert!(!users.is_empty()?);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.keys()?.is_empty())
    }

    /// The nested namespaces right under this one, sorted (as strings:
    /// `a` before `a-b`, although the key `a-b/..` sorts before `a/..`).
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// let root = db.branch("main")?.namespace("");
    /// root.put("users/alice", "admin")?;
    /// root.put("users/archived/bob", "reader")?;
    /// root.put("config/retries", "3")?;
    /// root.put("top", "level")?;
    /// assert_eq!(root.children()?, vec!["config".to_string(), "users".to_string()]);
    /// assert_eq!(root.namespace("users").children()?, vec!["archived".to_string()]);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn children(&self) -> Result<Vec<String>> {
        let children: BTreeSet<String> = self
            .descendant_keys()?
            .into_iter()
            .filter_map(|k| match k.split_once('/') {
                Some((first, _)) if !first.is_empty() => Some(first.to_string()),
                _ => None,
            })
            .collect();
        Ok(children.into_iter().collect())
    }

    /// Every key under this namespace, nested ones included, relative to
    /// it, sorted.
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// let users = db.branch("main")?.namespace("users");
    /// users.put("alice", "admin")?;
    /// users.put("archived/bob", "reader")?;
    /// assert_eq!(
    ///     users.descendant_keys()?,
    ///     vec!["alice".to_string(), "archived/bob".to_string()]
    /// );
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn descendant_keys(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for entry in self
            .branch
            .snapshot()?
            .keys_with_prefix(self.prefix.as_bytes())
        {
            let key = entry?;
            out.push(String::from_utf8_lossy(&key[self.prefix.len()..]).into_owned());
        }
        // Sorted by bytes already, which is string order unless a key is
        // not UTF-8 (its lossy form can sort elsewhere).
        out.sort_unstable();
        Ok(out)
    }

    /// Registers `f` as the merge function of `key` in this namespace.
    ///
    /// ```
    /// use kvgit::merge::Counter;
    /// let db = kvgit::Db::memory();
    /// let main = db.branch("main")?;
    /// let stats = main.namespace("stats");
    /// stats.set_merge_fn("hits", Counter); // registers "stats/hits"
    /// stats.put("hits", "10")?;
    /// let mut a = main.transaction()?;
    /// let mut b = main.transaction()?;
    /// stats.within(&mut a).put("hits", "11");
    /// stats.within(&mut b).put("hits", "12");
    /// a.commit()?;
    /// b.commit()?; // merged: 10 + 1 + 2
    /// assert_eq!(stats.get("hits")?.as_deref(), Some(&b"13"[..]));
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn set_merge_fn(&self, key: &str, f: impl kvgit_merge::MergeFn + 'static) {
        self.branch.db.merge_fns().set(self.full_key(key), f);
    }

    /// Registers `f` for every key under this namespace (nested included)
    /// that has no more specific registration.
    ///
    /// ```
    /// use kvgit::merge::Max;
    /// let db = kvgit::Db::memory();
    /// let main = db.branch("main")?;
    /// let best = main.namespace("best");
    /// best.set_merge_fn_all(Max); // every key under "best/"
    /// best.put("alice/score", "5")?;
    /// let mut a = main.transaction()?;
    /// let mut b = main.transaction()?;
    /// best.within(&mut a).put("alice/score", "9");
    /// best.within(&mut b).put("alice/score", "7");
    /// a.commit()?;
    /// b.commit()?;
    /// assert_eq!(best.get("alice/score")?.as_deref(), Some(&b"9"[..]));
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn set_merge_fn_all(&self, f: impl kvgit_merge::MergeFn + 'static) {
        self.branch.db.merge_fns().set_prefix(&self.prefix, f);
    }

    /// Reads and writes of transaction `tx` through this namespace.
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// let main = db.branch("main")?;
    /// let users = main.namespace("users");
    /// let mut tx = main.transaction()?;
    /// users.within(&mut tx).put("alice", "admin").put("bob", "reader");
    /// tx.put("log", "added two users"); // the transaction itself is still usable
    /// tx.commit()?;
    /// assert_eq!(users.keys()?, vec!["alice".to_string(), "bob".to_string()]);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn within<'a>(&self, tx: &'a mut Transaction) -> TxNamespace<'a> {
        TxNamespace {
            tx,
            prefix: self.prefix.clone(),
        }
    }
}

/// A transaction seen through a namespace (see [`Namespace::within`]).
#[derive(Debug)]
pub struct TxNamespace<'a> {
    tx: &'a mut Transaction,
    prefix: String,
}

impl TxNamespace<'_> {
    fn full_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// The value of `key` as the transaction sees it.
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// let main = db.branch("main")?;
    /// main.put("users/alice", "admin")?;
    /// let users = main.namespace("users");
    /// let mut tx = main.transaction()?;
    /// let mut view = users.within(&mut tx);
    /// view.put("bob", "reader");
    /// assert_eq!(view.get("alice")?.as_deref(), Some(&b"admin"[..]));
    /// assert_eq!(view.get("bob")?.as_deref(), Some(&b"reader"[..])); // staged
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.tx.get(self.full_key(key))
    }

    /// The value of `key`, decoded with the store's codec.
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// let main = db.branch("main")?;
    /// let scores = main.namespace("scores");
    /// let mut tx = main.transaction()?;
    /// let mut view = scores.within(&mut tx);
    /// view.put_as("alice", &7u32)?;
    /// assert_eq!(view.get_as::<u32>("alice")?, Some(7));
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn get_as<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        self.tx.get_as(self.full_key(key))
    }

    /// Stages `key = value`.
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// let main = db.branch("main")?;
    /// let mut tx = main.transaction()?;
    /// main.namespace("users").within(&mut tx).put("alice", "admin").put("bob", "reader");
    /// tx.commit()?;
    /// assert_eq!(main.get("users/bob")?.as_deref(), Some(&b"reader"[..]));
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn put(&mut self, key: &str, value: impl AsRef<[u8]>) -> &mut Self {
        let k = self.full_key(key);
        self.tx.put(k, value);
        self
    }

    /// Stages `key = value` encoded with the store's codec.
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// let main = db.branch("main")?;
    /// let mut tx = main.transaction()?;
    /// main.namespace("config").within(&mut tx).put_as("retries", &3u8)?;
    /// tx.commit()?;
    /// assert_eq!(main.get_as::<u8>("config/retries")?, Some(3));
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn put_as<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<()> {
        let k = self.full_key(key);
        self.tx.put_as(k, value)
    }

    /// Stages the deletion of `key`.
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// let main = db.branch("main")?;
    /// main.put("users/bob", "reader")?;
    /// let mut tx = main.transaction()?;
    /// main.namespace("users").within(&mut tx).delete("bob");
    /// tx.commit()?;
    /// assert!(!main.contains("users/bob")?);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn delete(&mut self, key: &str) -> &mut Self {
        let k = self.full_key(key);
        self.tx.delete(k);
        self
    }
}
