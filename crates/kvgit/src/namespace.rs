//! [`Namespace`]: a prefix view of a branch, `/`-separated and nestable.

use std::collections::BTreeSet;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::branch::Branch;
use crate::db::CommitId;
use crate::error::{Error, Result};
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
/// assert_eq!(users.keys_str()?, vec!["alice".to_string()]);
/// assert_eq!(users.len()?, 1);
/// assert_eq!(users.children()?, vec!["archived".to_string()]);
/// let all: Vec<Vec<u8>> = users.descendant_keys()?.collect::<kvgit::Result<_>>()?;
/// assert_eq!(all, vec![b"alice".to_vec(), b"archived/bob".to_vec()]);
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
    /// let main = kvgit::Db::memory().branch("main")?;
    /// assert_eq!(main.namespace("/users//alice/").path(), "users/alice");
    /// assert_eq!(main.namespace("").path(), "");
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn path(&self) -> &str {
        self.prefix.trim_end_matches('/')
    }

    /// The branch seen through this namespace.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// assert_eq!(main.namespace("users").branch().name(), "main");
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn branch(&self) -> &Branch {
        &self.branch
    }

    /// The full key of `key` in this namespace. Keys are bytes, as
    /// everywhere; a `&str` is one.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// let users = main.namespace("users");
    /// assert_eq!(users.full_key("alice"), b"users/alice".to_vec());
    /// assert_eq!(main.namespace("").full_key("k"), b"k".to_vec());
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn full_key(&self, key: impl AsRef<[u8]>) -> Vec<u8> {
        full_key(&self.prefix, key.as_ref())
    }

    /// A namespace nested in this one (empty segments of `path` are
    /// dropped; `""` is this namespace).
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// let alice = main.namespace("users").namespace("alice");
    /// assert_eq!(alice.path(), "users/alice");
    /// alice.put("role", "admin")?;
    /// assert!(main.contains("users/alice/role")?);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn namespace(&self, path: &str) -> Namespace {
        Namespace::new(self.branch.clone(), &format!("{}{path}", self.prefix))
    }

    /// The value of `key` at the branch head.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// main.put("users/alice", "admin")?;
    /// let users = main.namespace("users");
    /// assert_eq!(users.get("alice")?.as_deref(), Some(&b"admin"[..]));
    /// assert_eq!(users.get("bob")?, None);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        self.branch.get(self.full_key(key))
    }

    /// The value of `key`, decoded with the store's codec.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// let stats = main.namespace("stats");
    /// stats.put_as("visits", &42u64)?;
    /// assert_eq!(stats.get_as::<u64>("visits")?, Some(42));
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn get_as<T: DeserializeOwned>(&self, key: impl AsRef<[u8]>) -> Result<Option<T>> {
        self.branch.get_as(self.full_key(key))
    }

    /// True if `key` has a value.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// let users = main.namespace("users");
    /// users.put("alice", "admin")?;
    /// assert!(users.contains("alice")?);
    /// assert!(!main.namespace("admins").contains("alice")?);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn contains(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        self.branch.contains(self.full_key(key))
    }

    /// Commits `key = value` alone.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// let head = main.namespace("users").put("alice", "admin")?;
    /// assert_eq!(main.head()?, head);
    /// assert_eq!(main.get("users/alice")?.as_deref(), Some(&b"admin"[..]));
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn put(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<CommitId> {
        self.branch.put(self.full_key(key), value)
    }

    /// Commits `key = value` encoded with the store's codec.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// let config = main.namespace("config");
    /// config.put_as("limits", &vec![10u32, 20])?;
    /// assert_eq!(main.get_as::<Vec<u32>>("config/limits")?, Some(vec![10, 20]));
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn put_as<T: Serialize + ?Sized>(
        &self,
        key: impl AsRef<[u8]>,
        value: &T,
    ) -> Result<CommitId> {
        self.branch.put_as(self.full_key(key), value)
    }

    /// Commits the deletion of `key`.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// let users = main.namespace("users");
    /// users.put("alice", "admin")?;
    /// users.delete("alice")?;
    /// assert!(!main.contains("users/alice")?);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn delete(&self, key: impl AsRef<[u8]>) -> Result<CommitId> {
        self.branch.delete(self.full_key(key))
    }

    /// The keys right under this namespace (not in nested namespaces),
    /// relative to it, in order, lazily, as bytes like every key (see
    /// [`Namespace::keys_str`] for text).
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// let users = main.namespace("users");
    /// users.put("alice", "admin")?;
    /// users.put("archived/bob", "user")?; // in a nested namespace
    /// let keys: Vec<Vec<u8>> = users.keys()?.collect::<kvgit::Result<_>>()?;
    /// assert_eq!(keys, vec![b"alice".to_vec()]);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn keys(&self) -> Result<impl Iterator<Item = Result<Vec<u8>>>> {
        Ok(self
            .descendant_keys()?
            .filter(|k| k.as_ref().map_or(true, |k| !k.contains(&b'/'))))
    }

    /// The keys right under this namespace as text, in order. A key that
    /// is not UTF-8 is an error naming it ([`Error::Codec`]); read such
    /// keys with [`Namespace::keys`].
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// let users = main.namespace("users");
    /// users.put("bob", "user")?;
    /// users.put("alice", "admin")?;
    /// assert_eq!(users.keys_str()?, vec!["alice".to_string(), "bob".to_string()]);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn keys_str(&self) -> Result<Vec<String>> {
        self.keys()?.map(|k| k.and_then(key_string)).collect()
    }

    /// The number of keys right under this namespace.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// let users = main.namespace("users");
    /// users.put("alice", "admin")?;
    /// users.put("archived/bob", "user")?; // not right under `users`
    /// assert_eq!(users.len()?, 1);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn len(&self) -> Result<u64> {
        let mut n = 0;
        for key in self.keys()? {
            key?;
            n += 1;
        }
        Ok(n)
    }

    /// True if no key is right under this namespace.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// let users = main.namespace("users");
    /// assert!(users.is_empty()?);
    /// users.put("alice", "admin")?;
    /// assert!(!users.is_empty()?);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.keys()?.next().transpose()?.is_none())
    }

    /// The nested namespaces right under this one, sorted (as strings:
    /// `a` before `a-b`, although the key `a-b/..` sorts before `a/..`).
    /// A namespace's name is a path segment, so it is text: a segment that
    /// is not UTF-8 is an error naming it.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// main.put("users/alice/role", "admin")?;
    /// main.put("users/bob/role", "user")?;
    /// main.put("users/count", "2")?;
    /// assert_eq!(main.namespace("users").children()?, vec!["alice", "bob"]);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn children(&self) -> Result<Vec<String>> {
        let mut children = BTreeSet::new();
        for key in self.descendant_keys()? {
            let key = key?;
            if let Some(slash) = key.iter().position(|&b| b == b'/') {
                if slash > 0 {
                    children.insert(key_string(key[..slash].to_vec())?);
                }
            }
        }
        Ok(children.into_iter().collect())
    }

    /// Every key under this namespace, nested ones included, relative to
    /// it, in order, lazily.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// main.put("users/alice/role", "admin")?;
    /// main.put("users/count", "1")?;
    /// main.put("other", "x")?;
    /// let all: Vec<Vec<u8>> = main.namespace("users").descendant_keys()?.collect::<kvgit::Result<_>>()?;
    /// assert_eq!(all, vec![b"alice/role".to_vec(), b"count".to_vec()]);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn descendant_keys(&self) -> Result<impl Iterator<Item = Result<Vec<u8>>>> {
        let skip = self.prefix.len();
        let snapshot = self.branch.snapshot()?;
        let inner = snapshot
            .keys_with_prefix(self.prefix.as_bytes())
            .map(move |k| k.map(|mut k| k.split_off(skip)));
        Ok(KeysUnder {
            inner: Box::new(inner),
            _snapshot: snapshot,
        })
    }

    /// Registers `f` as the merge function of `key` in this namespace.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// let stats = main.namespace("stats");
    /// stats.set_merge_fn("hits", kvgit::merge::Counter); // the key `stats/hits`
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
    pub fn set_merge_fn(&self, key: impl AsRef<[u8]>, f: impl kvgit_merge::MergeFn + 'static) {
        self.branch.db.merge_fns().set(self.full_key(key), f);
    }

    /// Registers `f` for every key under this namespace (nested included)
    /// that has no more specific registration.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// let best = main.namespace("best");
    /// best.set_merge_fn_all(kvgit::merge::Max); // every key under `best/`
    /// best.put("alice/score", "10")?;
    /// let mut a = main.transaction()?;
    /// let mut b = main.transaction()?;
    /// best.within(&mut a).put("alice/score", "30");
    /// best.within(&mut b).put("alice/score", "20");
    /// a.commit()?;
    /// b.commit()?; // no conflict: the larger score stays
    /// assert_eq!(best.get("alice/score")?.as_deref(), Some(&b"30"[..]));
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn set_merge_fn_all(&self, f: impl kvgit_merge::MergeFn + 'static) {
        self.branch.db.merge_fns().set_prefix(&self.prefix, f);
    }

    /// Reads and writes of transaction `tx` through this namespace.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// let users = main.namespace("users");
    /// let mut tx = main.transaction()?;
    /// users.within(&mut tx).put("alice", "admin").put("bob", "user");
    /// tx.put("count", "2"); // outside the namespace
    /// tx.commit()?;
    /// assert_eq!(users.len()?, 2);
    /// assert!(main.contains("count")?);
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
    fn full_key(&self, key: impl AsRef<[u8]>) -> Vec<u8> {
        full_key(&self.prefix, key.as_ref())
    }

    /// The value of `key` as the transaction sees it.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// let users = main.namespace("users");
    /// let mut tx = main.transaction()?;
    /// let mut view = users.within(&mut tx);
    /// assert_eq!(view.get("alice")?, None);
    /// view.put("alice", "admin"); // staged, already visible
    /// assert_eq!(view.get("alice")?.as_deref(), Some(&b"admin"[..]));
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        self.tx.get(self.full_key(key))
    }

    /// The value of `key`, decoded with the store's codec.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// let stats = main.namespace("stats");
    /// stats.put_as("hits", &7u64)?;
    /// let mut tx = main.transaction()?;
    /// assert_eq!(stats.within(&mut tx).get_as::<u64>("hits")?, Some(7));
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn get_as<T: DeserializeOwned>(&self, key: impl AsRef<[u8]>) -> Result<Option<T>> {
        self.tx.get_as(self.full_key(key))
    }

    /// Stages `key = value`.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// let mut tx = main.transaction()?;
    /// main.namespace("users").within(&mut tx).put("alice", "admin");
    /// assert!(tx.is_staged("users/alice"));
    /// tx.commit()?;
    /// assert_eq!(main.get("users/alice")?.as_deref(), Some(&b"admin"[..]));
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> &mut Self {
        let k = self.full_key(key);
        self.tx.put(k, value);
        self
    }

    /// Stages `key = value` encoded with the store's codec.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// let stats = main.namespace("stats");
    /// let mut tx = main.transaction()?;
    /// stats.within(&mut tx).put_as("hits", &1u64)?;
    /// tx.commit()?;
    /// assert_eq!(stats.get_as::<u64>("hits")?, Some(1));
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn put_as<T: Serialize + ?Sized>(
        &mut self,
        key: impl AsRef<[u8]>,
        value: &T,
    ) -> Result<()> {
        let k = self.full_key(key);
        self.tx.put_as(k, value)
    }

    /// Stages the deletion of `key`.
    ///
    /// ```
    /// let main = kvgit::Db::memory().branch("main")?;
    /// let users = main.namespace("users");
    /// users.put("alice", "admin")?;
    /// let mut tx = main.transaction()?;
    /// users.within(&mut tx).delete("alice");
    /// assert_eq!(tx.get("users/alice")?, None);
    /// tx.commit()?;
    /// assert!(users.is_empty()?);
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> &mut Self {
        let k = self.full_key(key);
        self.tx.delete(k);
        self
    }
}

/// `prefix` followed by `key`.
fn full_key(prefix: &str, key: &[u8]) -> Vec<u8> {
    let mut full = Vec::with_capacity(prefix.len() + key.len());
    full.extend_from_slice(prefix.as_bytes());
    full.extend_from_slice(key);
    full
}

/// A key as text, or an error naming it.
fn key_string(key: Vec<u8>) -> Result<String> {
    String::from_utf8(key).map_err(|e| Error::Codec {
        key: String::from_utf8_lossy(e.as_bytes()).into_owned(),
        message: "the key is not UTF-8 text (read it as bytes with `keys()`)".to_string(),
    })
}

/// The lazy key scan of [`Namespace::descendant_keys`], holding the
/// snapshot it reads (pinned against garbage collection) while it lives.
struct KeysUnder {
    inner: Box<dyn Iterator<Item = Result<Vec<u8>>> + Send>,
    _snapshot: crate::Snapshot,
}

impl Iterator for KeysUnder {
    type Item = Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next()
    }
}
