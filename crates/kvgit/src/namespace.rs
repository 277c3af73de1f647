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
    pub fn path(&self) -> &str {
        self.prefix.trim_end_matches('/')
    }

    /// The branch seen through this namespace.
    pub fn branch(&self) -> &Branch {
        &self.branch
    }

    /// The full key of `key` in this namespace. Keys are bytes, as
    /// everywhere; a `&str` is one.
    pub fn full_key(&self, key: impl AsRef<[u8]>) -> Vec<u8> {
        full_key(&self.prefix, key.as_ref())
    }

    /// A namespace nested in this one (empty segments of `path` are
    /// dropped; `""` is this namespace).
    pub fn namespace(&self, path: &str) -> Namespace {
        Namespace::new(self.branch.clone(), &format!("{}{path}", self.prefix))
    }

    /// The value of `key` at the branch head.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        self.branch.get(self.full_key(key))
    }

    /// The value of `key`, decoded with the store's codec.
    pub fn get_as<T: DeserializeOwned>(&self, key: impl AsRef<[u8]>) -> Result<Option<T>> {
        self.branch.get_as(self.full_key(key))
    }

    /// True if `key` has a value.
    pub fn contains(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        self.branch.contains(self.full_key(key))
    }

    /// Commits `key = value` alone.
    pub fn put(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<CommitId> {
        self.branch.put(self.full_key(key), value)
    }

    /// Commits `key = value` encoded with the store's codec.
    pub fn put_as<T: Serialize + ?Sized>(
        &self,
        key: impl AsRef<[u8]>,
        value: &T,
    ) -> Result<CommitId> {
        self.branch.put_as(self.full_key(key), value)
    }

    /// Commits the deletion of `key`.
    pub fn delete(&self, key: impl AsRef<[u8]>) -> Result<CommitId> {
        self.branch.delete(self.full_key(key))
    }

    /// The keys right under this namespace (not in nested namespaces),
    /// relative to it, in order, lazily, as bytes like every key (see
    /// [`Namespace::keys_str`] for text).
    pub fn keys(&self) -> Result<impl Iterator<Item = Result<Vec<u8>>>> {
        Ok(self
            .descendant_keys()?
            .filter(|k| k.as_ref().map_or(true, |k| !k.contains(&b'/'))))
    }

    /// The keys right under this namespace as text, in order. A key that
    /// is not UTF-8 is an error naming it ([`Error::Codec`]); read such
    /// keys with [`Namespace::keys`].
    pub fn keys_str(&self) -> Result<Vec<String>> {
        self.keys()?.map(|k| k.and_then(key_string)).collect()
    }

    /// The number of keys right under this namespace.
    pub fn len(&self) -> Result<u64> {
        let mut n = 0;
        for key in self.keys()? {
            key?;
            n += 1;
        }
        Ok(n)
    }

    /// True if no key is right under this namespace.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.keys()?.next().transpose()?.is_none())
    }

    /// The nested namespaces right under this one, sorted (as strings:
    /// `a` before `a-b`, although the key `a-b/..` sorts before `a/..`).
    /// A namespace's name is a path segment, so it is text: a segment that
    /// is not UTF-8 is an error naming it.
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
    pub fn set_merge_fn(&self, key: impl AsRef<[u8]>, f: impl kvgit_merge::MergeFn + 'static) {
        self.branch.db.merge_fns().set(self.full_key(key), f);
    }

    /// Registers `f` for every key under this namespace (nested included)
    /// that has no more specific registration.
    pub fn set_merge_fn_all(&self, f: impl kvgit_merge::MergeFn + 'static) {
        self.branch.db.merge_fns().set_prefix(&self.prefix, f);
    }

    /// Reads and writes of transaction `tx` through this namespace.
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
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        self.tx.get(self.full_key(key))
    }

    /// The value of `key`, decoded with the store's codec.
    pub fn get_as<T: DeserializeOwned>(&self, key: impl AsRef<[u8]>) -> Result<Option<T>> {
        self.tx.get_as(self.full_key(key))
    }

    /// Stages `key = value`.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> &mut Self {
        let k = self.full_key(key);
        self.tx.put(k, value);
        self
    }

    /// Stages `key = value` encoded with the store's codec.
    pub fn put_as<T: Serialize + ?Sized>(
        &mut self,
        key: impl AsRef<[u8]>,
        value: &T,
    ) -> Result<()> {
        let k = self.full_key(key);
        self.tx.put_as(k, value)
    }

    /// Stages the deletion of `key`.
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
