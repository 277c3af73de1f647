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
    pub fn path(&self) -> &str {
        self.prefix.trim_end_matches('/')
    }

    /// The branch seen through this namespace.
    pub fn branch(&self) -> &Branch {
        &self.branch
    }

    /// The full key of `key` in this namespace.
    pub fn full_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// A namespace nested in this one (empty segments of `path` are
    /// dropped; `""` is this namespace).
    pub fn namespace(&self, path: &str) -> Namespace {
        Namespace::new(self.branch.clone(), &self.full_key(path))
    }

    /// The value of `key` at the branch head.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.branch.get(self.full_key(key))
    }

    /// The value of `key`, decoded with the store's codec.
    pub fn get_as<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        self.branch.get_as(self.full_key(key))
    }

    /// True if `key` has a value.
    pub fn contains(&self, key: &str) -> Result<bool> {
        self.branch.contains(self.full_key(key))
    }

    /// Commits `key = value` alone.
    pub fn put(&self, key: &str, value: impl AsRef<[u8]>) -> Result<CommitId> {
        self.branch.put(self.full_key(key), value)
    }

    /// Commits `key = value` encoded with the store's codec.
    pub fn put_as<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<CommitId> {
        self.branch.put_as(self.full_key(key), value)
    }

    /// Commits the deletion of `key`.
    pub fn delete(&self, key: &str) -> Result<CommitId> {
        self.branch.delete(self.full_key(key))
    }

    /// The keys right under this namespace (not in nested namespaces),
    /// sorted.
    pub fn keys(&self) -> Result<Vec<String>> {
        Ok(self
            .descendant_keys()?
            .into_iter()
            .filter(|k| !k.contains('/'))
            .collect())
    }

    /// The number of keys right under this namespace.
    pub fn len(&self) -> Result<usize> {
        Ok(self.keys()?.len())
    }

    /// True if no key is right under this namespace.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.keys()?.is_empty())
    }

    /// The nested namespaces right under this one, sorted (as strings:
    /// `a` before `a-b`, although the key `a-b/..` sorts before `a/..`).
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
    pub fn set_merge_fn(&self, key: &str, f: impl kvgit_merge::MergeFn + 'static) {
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
    fn full_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// The value of `key` as the transaction sees it.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.tx.get(self.full_key(key))
    }

    /// The value of `key`, decoded with the store's codec.
    pub fn get_as<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        self.tx.get_as(self.full_key(key))
    }

    /// Stages `key = value`.
    pub fn put(&mut self, key: &str, value: impl AsRef<[u8]>) -> &mut Self {
        let k = self.full_key(key);
        self.tx.put(k, value);
        self
    }

    /// Stages `key = value` encoded with the store's codec.
    pub fn put_as<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<()> {
        let k = self.full_key(key);
        self.tx.put_as(k, value)
    }

    /// Stages the deletion of `key`.
    pub fn delete(&mut self, key: &str) -> &mut Self {
        let k = self.full_key(key);
        self.tx.delete(k);
        self
    }
}
