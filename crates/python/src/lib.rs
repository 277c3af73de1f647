//! `kvgit_rs._native`: the Rust half of the `kvgit_rs` Python package.
//!
//! Two classes: [`Store`], a `kvgit::Db` (in memory, sled on disk, or over
//! a Python `KVStore`), with every engine operation the Python layer needs
//! (commits, merges, history, diff, branches, garbage collection) plus a
//! key-value view for kvgit 0.1.3's `KVStore` interface; and [`Snap`], a
//! read view of one commit. The Python package (`python/kvgit_rs`) builds
//! kvgit's API over them: it pickles values and wraps classes, and holds
//! no second implementation of the engine. The GIL is released around
//! engine work.

mod engine;
mod merge;
mod pybackend;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use kvgit::remote::{Report, TransferError};
use kvgit::{ChangeKind, CommitId as ObjectId, Db};
use parking_lot::Mutex;
use pyo3::exceptions::{PyKeyError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PySet};

use crate::engine::LandError;
use crate::pybackend::{decode_id, encode_id};

/// Keys of the key-value view that are branch heads (kvgit 0.1.3's name).
const HEAD: &str = "__branch_head__";
/// Where the key-value view keeps its other keys in the store's metadata.
const KV_META: &[u8] = b"py/";

fn error_class<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    py.import("kvgit_rs.errors")?.getattr(name)
}

fn raise(py: Python<'_>, name: &str, message: String) -> PyErr {
    match error_class(py, name).and_then(|c| c.call1((message,))) {
        Ok(e) => PyErr::from_value(e),
        Err(e) => e,
    }
}

/// A Python exception for an engine error; `errors` holds what merge
/// functions raised, for a conflict.
fn to_py(py: Python<'_>, err: engine::Error, errors: Option<&merge::Errors>) -> PyErr {
    match err {
        engine::Error::Conflicts(conflicts) => {
            let build = || -> PyResult<PyErr> {
                let keys = PySet::empty(py)?;
                for c in &conflicts {
                    keys.add(String::from_utf8_lossy(&c.key).into_owned())?;
                }
                let raised = PyDict::new(py);
                if let Some(errors) = errors {
                    for (k, e) in errors.lock().iter() {
                        raised.set_item(
                            String::from_utf8_lossy(k).into_owned(),
                            e.clone_ref(py).into_value(py),
                        )?;
                    }
                }
                let e = error_class(py, "MergeConflict")?.call1((keys, raised))?;
                Ok(PyErr::from_value(e))
            };
            build().unwrap_or_else(|e| e)
        }
        engine::Error::Contended { .. } => raise(py, "ConcurrencyError", err.to_string()),
        engine::Error::AlreadyExists(ref name) => {
            PyValueError::new_err(format!("Branch '{name}' already exists"))
        }
        engine::Error::UnknownCommit(_)
        | engine::Error::NoSuchBranch(_)
        | engine::Error::NoSuchTag(_)
        | engine::Error::UnknownRevision(_)
        | engine::Error::MissingObject(_) => PyKeyError::new_err(err.to_string()),
        engine::Error::InvalidKey { .. }
        | engine::Error::ValueTooLarge { .. }
        | engine::Error::InvalidName { .. }
        | engine::Error::InvalidId(_)
        | engine::Error::AmbiguousId { .. } => PyValueError::new_err(err.to_string()),
        engine::Error::Rejected { .. } => raise(py, "ValidationError", err.to_string()),
        engine::Error::Remote(ref e) => match e {
            TransferError::NotFastForward { .. } => raise(py, "PushRejected", err.to_string()),
            TransferError::Rejected { .. } => raise(py, "ValidationError", err.to_string()),
            TransferError::UnknownRemote(_) | TransferError::UnknownRemoteBranch(_) => {
                PyKeyError::new_err(err.to_string())
            }
            TransferError::BadUrl { .. } | TransferError::NotEmpty(_) => {
                PyValueError::new_err(err.to_string())
            }
            _ => raise(py, "RemoteError", err.to_string()),
        },
        _ => raise(py, "KvgitError", err.to_string()),
    }
}

fn parse_id(s: &str) -> PyResult<ObjectId> {
    s.parse()
        .map_err(|_| PyValueError::new_err(format!("{s:?} is not a commit id")))
}

fn key_str(k: &[u8]) -> String {
    String::from_utf8_lossy(k).into_owned()
}

/// A store: a `kvgit::Db` and the operations of the Python layer.
#[pyclass(frozen, weakref, module = "kvgit_rs._native")]
struct Store {
    db: Db,
    /// Serialises the key-value view's compare-and-swap of plain keys.
    kv_lock: Mutex<()>,
    /// Branch heads written through the key-value view with a value that
    /// names no commit of the store (kvgit 0.1.3's tests do it to simulate
    /// another writer), by branch: kept in the store's metadata, beside
    /// the branch, which keeps its head and history. While one is set,
    /// the key-value view reads it back, `head` reports it and commits on
    /// that branch raise ConcurrencyError (the head moved to something
    /// this writer cannot merge with). Cached here so that a commit's
    /// check costs no store read.
    foreign: Mutex<HashMap<String, Vec<u8>>>,
}

impl Store {
    fn wrap(db: Db) -> engine::Result<Store> {
        let mut foreign = HashMap::new();
        let prefix = Self::meta_key(HEAD);
        for (k, v) in engine::backend(&db).scan_meta(&prefix)? {
            let branch = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            foreign.insert(branch, v);
        }
        Ok(Store {
            db,
            kv_lock: Mutex::new(()),
            foreign: Mutex::new(foreign),
        })
    }

    /// The foreign head of `branch` (see [`Store::foreign`]), if any.
    fn foreign_head(&self, branch: &str) -> Option<Vec<u8>> {
        let foreign = self.foreign.lock();
        match foreign.is_empty() {
            true => None,
            false => foreign.get(branch).cloned(),
        }
    }

    /// Sets (`Some`) or clears the foreign head of `branch`.
    fn set_foreign(&self, branch: &str, value: Option<&[u8]>) -> engine::Result<()> {
        let mut foreign = self.foreign.lock();
        if value.is_none() && !foreign.contains_key(branch) {
            return Ok(());
        }
        let key = Self::meta_key(&format!("{HEAD}{branch}"));
        engine::backend(&self.db).put_meta(vec![(key, value.map(<[u8]>::to_vec))])?;
        match value {
            Some(v) => foreign.insert(branch.to_string(), v.to_vec()),
            None => foreign.remove(branch),
        };
        Ok(())
    }

    fn head_of(&self, key: &str) -> Option<String> {
        key.strip_prefix(HEAD)
            .filter(|b| !b.is_empty())
            .map(str::to_string)
    }

    fn meta_key(key: &str) -> Vec<u8> {
        let mut k = KV_META.to_vec();
        k.extend_from_slice(key.as_bytes());
        k
    }

    fn kv_read(&self, key: &str) -> engine::Result<Option<Vec<u8>>> {
        match self.head_of(key) {
            Some(branch) => match self.foreign_head(&branch) {
                Some(v) => Ok(Some(v)),
                None => Ok(engine::head(&self.db, &branch)?.map(|id| encode_id(&id))),
            },
            None => Ok(engine::backend(&self.db).get_meta(&Self::meta_key(key))?),
        }
    }

    /// Writes `key` of the key-value view (`None`: removes it). A branch
    /// head given the JSON id of a commit of this store moves the branch
    /// there (through the facade); given anything else, it becomes the
    /// branch's foreign head (see [`Store::foreign`]) and the branch is
    /// left as it was.
    fn kv_write_now(&self, key: &str, value: Option<&[u8]>) -> Result<(), KvError> {
        match self.head_of(key) {
            Some(branch) => match value {
                None => {
                    self.set_foreign(&branch, None)?;
                    match engine::head(&self.db, &branch)? {
                        Some(_) => Ok(engine::delete_branch(&self.db, &branch)?),
                        None => Ok(()),
                    }
                }
                Some(raw) => {
                    match decode_id(raw).filter(|id| engine::commit_exists(&self.db, id)) {
                        Some(id) => {
                            engine::set_branch(&self.db, &branch, &id)?;
                            Ok(self.set_foreign(&branch, None)?)
                        }
                        None => Ok(self.set_foreign(&branch, Some(raw))?),
                    }
                }
            },
            None => Ok(engine::backend(&self.db)
                .put_meta(vec![(Self::meta_key(key), value.map(<[u8]>::to_vec))])?),
        }
    }

    fn kv_write(&self, py: Python<'_>, key: &str, value: Option<&[u8]>) -> PyResult<()> {
        py.allow_threads(|| self.kv_write_now(key, value))
            .map_err(|e| e.into_py(py))
    }
}

/// Why a write to the key-value view failed.
enum KvError {
    /// The engine failed.
    Engine(engine::Error),
}

impl<E: Into<engine::Error>> From<E> for KvError {
    fn from(e: E) -> Self {
        KvError::Engine(e.into())
    }
}

impl KvError {
    fn into_py(self, py: Python<'_>) -> PyErr {
        match self {
            KvError::Engine(e) => to_py(py, e, None),
        }
    }
}

#[pymethods]
impl Store {
    /// A new store in memory.
    #[staticmethod]
    fn memory(py: Python<'_>) -> PyResult<Store> {
        engine::open(":memory:")
            .and_then(Store::wrap)
            .map_err(|e| to_py(py, e, None))
    }

    /// Opens (or creates) the store at `target`: a directory (sled), or a
    /// URL the engine knows.
    #[staticmethod]
    fn open(py: Python<'_>, target: String) -> PyResult<Store> {
        py.allow_threads(|| engine::open(&target).and_then(Store::wrap))
            .map_err(|e| to_py(py, e, None))
    }

    /// A store whose objects, refs and metadata live in the Python
    /// `KVStore` object `kv`.
    #[staticmethod]
    fn adapter(py: Python<'_>, kv: Py<PyAny>) -> PyResult<Store> {
        let backend = Arc::new(pybackend::PyKvBackend::new(kv));
        py.allow_threads(|| engine::with_backend(backend).and_then(Store::wrap))
            .map_err(|e| to_py(py, e, None))
    }

    // -- the key-value view (kvgit 0.1.3's KVStore) --

    /// The value of `key` in the key-value view.
    fn kv_get<'py>(&self, py: Python<'py>, key: &str) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let v = py
            .allow_threads(|| self.kv_read(key))
            .map_err(|e| to_py(py, e, None))?;
        Ok(v.map(|v| PyBytes::new(py, &v)))
    }

    /// Sets `key` in the key-value view.
    fn kv_set(&self, py: Python<'_>, key: &str, value: &[u8]) -> PyResult<()> {
        self.kv_write(py, key, Some(value))
    }

    /// Removes `key` from the key-value view.
    fn kv_remove(&self, py: Python<'_>, key: &str) -> PyResult<()> {
        self.kv_write(py, key, None)
    }

    /// Every key of the key-value view.
    fn kv_keys(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        py.allow_threads(|| -> engine::Result<Vec<String>> {
            let mut keys: Vec<String> = engine::branches(&self.db)?
                .into_iter()
                .map(|b| format!("{HEAD}{b}"))
                .collect();
            for (k, _) in engine::backend(&self.db).scan_meta(KV_META)? {
                let key = key_str(&k[KV_META.len()..]);
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
            Ok(keys)
        })
        .map_err(|e| to_py(py, e, None))
    }

    /// Compare-and-swap in the key-value view: sets `key` to `value` only
    /// if it holds `expected` (`None`: absent). True if it swapped.
    #[pyo3(signature = (key, value, expected))]
    fn kv_cas(
        &self,
        py: Python<'_>,
        key: &str,
        value: &[u8],
        expected: Option<&[u8]>,
    ) -> PyResult<bool> {
        py.allow_threads(|| {
            let _guard = self.kv_lock.lock();
            if self.kv_read(key)?.as_deref() != expected {
                return Ok(false);
            }
            self.kv_write_now(key, Some(value))?;
            Ok(true)
        })
        .map_err(|e: KvError| e.into_py(py))
    }

    // -- branches --

    /// The head of `branch` (hex id), or None.
    /// A foreign head (see [`Store::foreign`]) is reported as its text.
    fn head(&self, py: Python<'_>, branch: &str) -> PyResult<Option<String>> {
        if let Some(raw) = self.foreign_head(branch) {
            // The JSON string it was written as, unquoted (else the text).
            let text = String::from_utf8_lossy(&raw).into_owned();
            let unquoted = text
                .strip_prefix('"')
                .and_then(|t| t.strip_suffix('"'))
                .map(str::to_string);
            return Ok(Some(unquoted.unwrap_or(text)));
        }
        py.allow_threads(|| engine::head(&self.db, branch))
            .map(|h| h.map(|id| id.to_hex()))
            .map_err(|e| to_py(py, e, None))
    }

    /// The head of `branch`, created with an empty root commit if missing.
    fn ensure_branch(&self, py: Python<'_>, branch: &str) -> PyResult<String> {
        py.allow_threads(|| engine::ensure_branch(&self.db, branch))
            .map(|id| id.to_hex())
            .map_err(|e| to_py(py, e, None))
    }

    /// Creates `branch` at commit `at`; ValueError if it exists.
    fn create_branch(&self, py: Python<'_>, branch: &str, at: &str) -> PyResult<()> {
        let at = parse_id(at)?;
        py.allow_threads(|| engine::create_branch(&self.db, branch, &at))
            .map_err(|e| to_py(py, e, None))
    }

    /// Points `branch` at commit `at`, whatever it held.
    fn set_branch(&self, py: Python<'_>, branch: &str, at: &str) -> PyResult<()> {
        let at = parse_id(at)?;
        py.allow_threads(|| {
            engine::set_branch(&self.db, branch, &at)?;
            self.set_foreign(branch, None)
        })
        .map_err(|e| to_py(py, e, None))
    }

    /// Deletes `branch`.
    fn delete_branch(&self, py: Python<'_>, branch: &str) -> PyResult<()> {
        py.allow_threads(|| engine::delete_branch(&self.db, branch))
            .map_err(|e| to_py(py, e, None))
    }

    /// Every branch name, sorted.
    fn branches(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        py.allow_threads(|| engine::branches(&self.db))
            .map_err(|e| to_py(py, e, None))
    }

    /// Tags commit `at` as `name`.
    fn tag(&self, py: Python<'_>, name: &str, at: &str) -> PyResult<()> {
        let at = parse_id(at)?;
        py.allow_threads(|| engine::tag(&self.db, name, &at))
            .map_err(|e| to_py(py, e, None))
    }

    /// Every tag as (name, commit).
    fn tags(&self, py: Python<'_>) -> PyResult<Vec<(String, String)>> {
        py.allow_threads(|| engine::tags(&self.db))
            .map(|t| t.into_iter().map(|(n, id)| (n, id.to_hex())).collect())
            .map_err(|e| to_py(py, e, None))
    }

    /// Deletes tag `name`.
    fn delete_tag(&self, py: Python<'_>, name: &str) -> PyResult<()> {
        py.allow_threads(|| engine::delete_tag(&self.db, name))
            .map_err(|e| to_py(py, e, None))
    }

    /// The commit a revision names: a branch, a tag or a (prefix of a)
    /// commit id.
    fn resolve(&self, py: Python<'_>, rev: &str) -> PyResult<String> {
        py.allow_threads(|| engine::resolve(&self.db, rev))
            .map(|id| id.to_hex())
            .map_err(|e| to_py(py, e, None))
    }

    // -- commits --

    /// True if `commit` is the id of a commit in this store.
    fn exists(&self, py: Python<'_>, commit: &str) -> bool {
        match commit.parse::<ObjectId>() {
            Ok(id) => py.allow_threads(|| engine::commit_exists(&self.db, &id)),
            Err(_) => false,
        }
    }

    /// A read view of `commit`; reads count as accesses of `branch` (for
    /// garbage collection) when `commit` is its head.
    #[pyo3(signature = (commit, branch=None))]
    fn snapshot(&self, py: Python<'_>, commit: &str, branch: Option<&str>) -> PyResult<Snap> {
        let id = parse_id(commit)?;
        py.allow_threads(|| engine::snapshot(&self.db, &id, branch))
            .map(|snap| Snap { snap })
            .map_err(|e| to_py(py, e, None))
    }

    /// The parents of `commit`.
    fn parents(&self, py: Python<'_>, commit: &str) -> PyResult<Vec<String>> {
        let id = parse_id(commit)?;
        py.allow_threads(|| engine::parents(&self.db, &id))
            .map(|p| p.iter().map(ObjectId::to_hex).collect())
            .map_err(|e| to_py(py, e, None))
    }

    /// The metadata of `commit`.
    fn metadata(&self, py: Python<'_>, commit: &str) -> PyResult<BTreeMap<String, String>> {
        let id = parse_id(commit)?;
        py.allow_threads(|| engine::metadata(&self.db, &id))
            .map_err(|e| to_py(py, e, None))
    }

    /// (message, time in microseconds, height) of `commit`.
    fn commit_facts(&self, py: Python<'_>, commit: &str) -> PyResult<(String, u64, u64)> {
        let id = parse_id(commit)?;
        py.allow_threads(|| engine::commit_facts(&self.db, &id))
            .map_err(|e| to_py(py, e, None))
    }

    /// Commits from `start`, newest first (first parents, or all).
    #[pyo3(signature = (start, all_parents=false, limit=usize::MAX))]
    fn history(
        &self,
        py: Python<'_>,
        start: &str,
        all_parents: bool,
        limit: usize,
    ) -> PyResult<Vec<String>> {
        let id = parse_id(start)?;
        py.allow_threads(|| engine::history(&self.db, &id, all_parents, limit))
            .map(|h| h.iter().map(ObjectId::to_hex).collect())
            .map_err(|e| to_py(py, e, None))
    }

    /// The merge base of two commits, or None.
    fn merge_base(&self, py: Python<'_>, a: &str, b: &str) -> PyResult<Option<String>> {
        let (a, b) = (parse_id(a)?, parse_id(b)?);
        py.allow_threads(|| engine::merge_base(&self.db, &a, &b))
            .map(|m| m.map(|id| id.to_hex()))
            .map_err(|e| to_py(py, e, None))
    }

    /// (added, removed, modified) keys from commit `a` to commit `b`.
    fn diff(
        &self,
        py: Python<'_>,
        a: &str,
        b: &str,
    ) -> PyResult<(Vec<String>, Vec<String>, Vec<String>)> {
        let (a, b) = (parse_id(a)?, parse_id(b)?);
        let changes = py
            .allow_threads(|| engine::diff(&self.db, &a, &b))
            .map_err(|e| to_py(py, e, None))?;
        let (mut added, mut removed, mut modified) = (Vec::new(), Vec::new(), Vec::new());
        for (k, kind) in changes {
            match kind {
                ChangeKind::Added => added.push(key_str(&k)),
                ChangeKind::Removed => removed.push(key_str(&k)),
                ChangeKind::Modified => modified.push(key_str(&k)),
            }
        }
        Ok((added, removed, modified))
    }

    /// Writes a commit on top of `parent` (on no branch) setting the keys
    /// of `updates` (str to bytes) and deleting `removals`; returns its id.
    #[pyo3(signature = (parent, updates, removals, metadata=None, message=String::new()))]
    fn write_commit(
        &self,
        py: Python<'_>,
        parent: &str,
        updates: &Bound<'_, PyDict>,
        removals: Vec<String>,
        metadata: Option<BTreeMap<String, String>>,
        message: String,
    ) -> PyResult<String> {
        let parent = parse_id(parent)?;
        let edits = edits_of(updates, removals)?;
        let metadata = metadata.unwrap_or_default();
        py.allow_threads(|| engine::write_commit(&self.db, &parent, edits, metadata, message))
            .map(|id| id.to_hex())
            .map_err(|e| to_py(py, e, None))
    }

    /// Commits to `branch` a transaction based on commit `base` setting
    /// the keys of `updates` (str to bytes) and deleting `removals`: a
    /// fast-forward if the branch still holds `base`, else a three-way
    /// merge onto its head using the Python merge functions `merge_fns`
    /// (key to callable) and `default`. The branch moves through the
    /// facade (validation hooks, subscriptions, garbage collection).
    /// Returns (strategy, head, auto-merged keys, read view of the head).
    /// Raises MergeConflict, ConcurrencyError or ValidationError.
    #[pyo3(signature = (branch, base, updates, removals, merge_fns=None, default=None, metadata=None, message=String::new()))]
    #[allow(clippy::too_many_arguments)]
    fn commit(
        &self,
        py: Python<'_>,
        branch: &str,
        base: &str,
        updates: &Bound<'_, PyDict>,
        removals: Vec<String>,
        merge_fns: Option<&Bound<'_, PyDict>>,
        default: Option<&Bound<'_, PyAny>>,
        metadata: Option<BTreeMap<String, String>>,
        message: String,
    ) -> PyResult<(String, String, Vec<String>, Snap)> {
        let base = parse_id(base)?;
        if self.foreign_head(branch).is_some() {
            return Err(raise(
                py,
                "ConcurrencyError",
                format!(
                    "the head of branch {branch:?} was overwritten through the key-value \
                     view with a value that names no commit of this store"
                ),
            ));
        }
        let edits = edits_of(updates, removals)?;
        let errors = merge::Errors::default();
        let (fns, default) = merge::functions(merge_fns, default, &errors, false)?;
        let metadata = metadata.unwrap_or_default();
        let landed = py.allow_threads(|| {
            let landed = engine::commit(
                &self.db, branch, &base, edits, message, metadata, fns, default,
            )?;
            // The read view of the new head, made here: one call from
            // Python per commit.
            let snap = engine::snapshot(&self.db, &landed.head, Some(branch))?;
            Ok((landed, snap))
        });
        let (landed, snap) = match landed {
            Ok((l, snap)) => (Ok(l), Some(snap)),
            Err(e) => (Err(e), None),
        };
        let (strategy, head, auto) = landed_to_py(py, landed, &errors)?;
        let snap = Snap {
            snap: snap.expect("a landed commit comes with its snapshot"),
        };
        Ok((strategy, head, auto, snap))
    }

    /// Merges `commit` into `branch` (fast-forward, or a merge commit
    /// using the Python merge functions `merge_fns` and `default`, which
    /// see the merged-in side as ours); returns (strategy, head,
    /// auto-merged keys). Raises MergeConflict or ConcurrencyError.
    #[pyo3(signature = (branch, commit, merge_fns=None, default=None, metadata=None))]
    fn merge(
        &self,
        py: Python<'_>,
        branch: &str,
        commit: &str,
        merge_fns: Option<&Bound<'_, PyDict>>,
        default: Option<&Bound<'_, PyAny>>,
        metadata: Option<BTreeMap<String, String>>,
    ) -> PyResult<(String, String, Vec<String>)> {
        let id = parse_id(commit)?;
        let errors = merge::Errors::default();
        let registry = merge::registry(merge_fns, default, &errors)?;
        let metadata = metadata.unwrap_or_default();
        let landed = py.allow_threads(|| engine::merge(&self.db, branch, &id, &registry, metadata));
        landed_to_py(py, landed, &errors)
    }

    /// The commits of `branch` (first-parent line, newest first) where
    /// `key` changed, as (commit, value then or None if deleted).
    #[pyo3(signature = (branch, key, limit=usize::MAX))]
    fn key_history<'py>(
        &self,
        py: Python<'py>,
        branch: &str,
        key: &str,
        limit: usize,
    ) -> PyResult<Vec<(String, Option<Bound<'py, PyBytes>>)>> {
        let h = py
            .allow_threads(|| engine::key_history(&self.db, branch, key.as_bytes(), limit))
            .map_err(|e| to_py(py, e, None))?;
        Ok(h.into_iter()
            .map(|(id, v)| (id.to_hex(), v.map(|v| PyBytes::new(py, &v))))
            .collect())
    }

    // -- validation hooks and subscriptions --

    /// Adds validation hook `name`: `hook(check)` runs before every move
    /// of any branch lands (commits from Python included), with `check` a
    /// dict: `branch`, `message`, `kind` (`"commit"`, `"merge"`,
    /// `"fast_forward"`, `"reset"`, `"rebase"`, `"create"`, `"delete"`), `old_head`
    /// (hex or None), `new_head` (hex, or None for `"delete"`) and `changes` (a list of `(key, kind,
    /// old, new)`, kind `"added"`, `"removed"` or `"modified"`). Returning
    /// False or raising refuses the move (ValidationError).
    fn add_validator(&self, name: &str, hook: Py<PyAny>) -> PyResult<()> {
        Python::with_gil(|py| {
            if !hook.bind(py).is_callable() {
                return Err(pyo3::exceptions::PyTypeError::new_err(
                    "a validation hook must be callable",
                ));
            }
            Ok(())
        })?;
        self.db.add_validator(name, move |check| {
            Python::with_gil(|py| {
                let verdict = check_dict(py, check)
                    .and_then(|d| hook.bind(py).call1((d,)))
                    .map(|r| {
                        r.downcast::<pyo3::types::PyBool>()
                            .map(|b| b.is_true())
                            .unwrap_or(true)
                    });
                match verdict {
                    Ok(true) => Ok(()),
                    Ok(false) => Err("the hook returned False".to_string()),
                    Err(e) => Err(e.to_string()),
                }
            })
        });
        Ok(())
    }

    /// Removes the validation hooks named `name`.
    fn remove_validator(&self, name: &str) {
        self.db.remove_validator(name);
    }

    /// Subscribes to the heads of `branch` (moves this process makes).
    fn subscribe(&self, branch: &str) -> PyResult<Subscription> {
        Python::with_gil(|py| {
            self.db
                .subscribe(branch)
                .map(|rx| Subscription { rx: Mutex::new(rx) })
                .map_err(|e| to_py(py, e, None))
        })
    }

    // -- garbage collection --

    /// High/low-water rebase of `branch`; returns a dict report.
    /// `protected`, if given, is a callable taking a key (str) and
    /// returning whether the rebase must keep it, in place of the default
    /// rule (last segment starting with `__`); a key it raises on is kept.
    #[pyo3(signature = (branch, high, low=None, protected=None))]
    fn rebase<'py>(
        &self,
        py: Python<'py>,
        branch: &str,
        high: u64,
        low: Option<u64>,
        protected: Option<Py<PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let protected = protected.map(|f| {
            kvgit::Protected::new(move |key: &[u8]| {
                Python::with_gil(|py| {
                    let key = String::from_utf8_lossy(key);
                    f.call1(py, (key.as_ref(),))
                        .and_then(|r| r.is_truthy(py))
                        .unwrap_or(true)
                })
            })
        });
        let report = py
            .allow_threads(|| engine::rebase(&self.db, branch, high, low, protected))
            .map_err(|e| to_py(py, e, None))?;
        rebase_report(py, &report)
    }

    /// Rebase of `branch` keeping exactly the keys in `keep` (and the
    /// protected ones); returns a dict report.
    fn rebase_keep<'py>(
        &self,
        py: Python<'py>,
        branch: &str,
        keep: Vec<String>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let keep: std::collections::HashSet<Vec<u8>> =
            keep.into_iter().map(String::into_bytes).collect();
        let report = py
            .allow_threads(|| engine::rebase_keep(&self.db, branch, |k| keep.contains(k)))
            .map_err(|e| to_py(py, e, None))?;
        rebase_report(py, &report)
    }

    /// Deletes what no branch or tag reaches; the number of objects freed.
    fn sweep(&self, py: Python<'_>) -> PyResult<u64> {
        py.allow_threads(|| engine::sweep(&self.db))
            .map_err(|e| to_py(py, e, None))
    }

    /// Writes buffered bookkeeping to the store.
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        py.allow_threads(|| engine::flush(&self.db))
            .map_err(|e| to_py(py, e, None))
    }

    /// Rewrites the store's files to hold only live data (sled): (bytes
    /// before, bytes after), or None for a store that does not compact.
    fn compact(&self, py: Python<'_>) -> PyResult<Option<(u64, u64)>> {
        py.allow_threads(|| engine::compact(&self.db))
            .map_err(|e| to_py(py, e, None))
    }

    /// Starts (or stops) recording reads and writes as access recency,
    /// which `GCVersioned` rebases by (coldest first).
    fn track_access(&self, on: bool) {
        engine::track_access(&self.db, on);
    }

    // -- remotes --

    /// What kind of location `url` names: `"path"`, `"file"`, `"ssh"` or
    /// `"postgres"` (ValueError if it names none).
    #[staticmethod]
    fn url_kind(url: &str) -> PyResult<&'static str> {
        engine::url_kind(url).map_err(PyValueError::new_err)
    }

    /// Reads `key` of `branch` from the store at `url` with a Merkle proof
    /// checked here, fetching only the proof's nodes and the value:
    /// (value or None, the branch's head).
    #[staticmethod]
    #[pyo3(signature = (url, branch, key, connect=None))]
    fn get_verified<'py>(
        py: Python<'py>,
        url: &str,
        branch: &str,
        key: &str,
        connect: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<(Option<Bound<'py, PyBytes>>, String)> {
        let connect = connect_of(connect)?;
        let (value, head) = py
            .allow_threads(|| engine::get_verified(url, branch, key.as_bytes(), connect))
            .map_err(|e| to_py(py, e, None))?;
        Ok((value.map(|v| PyBytes::new(py, &v)), head.to_hex()))
    }

    /// Clones the store at `url` (a store path, `file://`, `ssh://`,
    /// `host:path` or `postgres://`) into a new store at `path`, with
    /// remote `origin` pointing at `url` and its branches created; returns
    /// the open store and the transfer's report.
    #[staticmethod]
    #[pyo3(signature = (url, path, depth=None, connect=None))]
    fn clone_from<'py>(
        py: Python<'py>,
        url: &str,
        path: &str,
        depth: Option<u32>,
        connect: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<(Store, Bound<'py, PyDict>)> {
        let connect = connect_of(connect)?;
        let (db, report) = py
            .allow_threads(|| engine::clone_from(url, path, depth, connect))
            .map_err(|e| to_py(py, e, None))?;
        let store = Store::wrap(db).map_err(|e| to_py(py, e, None))?;
        Ok((store, report_dict(py, &report)?))
    }

    /// Adds remote `name` at `url` (or points it there).
    fn add_remote(&self, py: Python<'_>, name: &str, url: &str) -> PyResult<()> {
        py.allow_threads(|| engine::add_remote(&self.db, name, url))
            .map_err(|e| to_py(py, e, None))
    }

    /// Removes remote `name`.
    fn remove_remote(&self, py: Python<'_>, name: &str) -> PyResult<()> {
        py.allow_threads(|| engine::remove_remote(&self.db, name))
            .map_err(|e| to_py(py, e, None))
    }

    /// The remotes, as (name, url) pairs.
    fn remotes(&self, py: Python<'_>) -> PyResult<Vec<(String, String)>> {
        py.allow_threads(|| engine::remotes(&self.db))
            .map_err(|e| to_py(py, e, None))
    }

    /// Fetches `branches` (every branch if empty) of remote `remote` into
    /// its remote-tracking refs; returns the report.
    #[pyo3(signature = (remote, branches, depth=None, connect=None))]
    fn fetch<'py>(
        &self,
        py: Python<'py>,
        remote: &str,
        branches: Vec<String>,
        depth: Option<u32>,
        connect: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let connect = connect_of(connect)?;
        let report = py
            .allow_threads(|| engine::fetch(&self.db, remote, &branches, depth, connect))
            .map_err(|e| to_py(py, e, None))?;
        report_dict(py, &report)
    }

    /// The head remote `remote`'s branch `branch` had at the last fetch or
    /// push, or None.
    fn tracking(&self, py: Python<'_>, remote: &str, branch: &str) -> PyResult<Option<String>> {
        let id = py
            .allow_threads(|| engine::tracking(&self.db, remote, branch))
            .map_err(|e| to_py(py, e, None))?;
        Ok(id.map(|id| id.to_hex()))
    }

    /// Pushes `branch` to `remote` (as `remote_branch`): raises
    /// PushRejected when not a fast-forward unless `force`.
    #[pyo3(signature = (branch, remote, remote_branch=None, force=false, connect=None))]
    fn push<'py>(
        &self,
        py: Python<'py>,
        branch: &str,
        remote: &str,
        remote_branch: Option<String>,
        force: bool,
        connect: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let connect = connect_of(connect)?;
        let report = py
            .allow_threads(|| engine::push(&self.db, branch, remote, remote_branch, force, connect))
            .map_err(|e| to_py(py, e, None))?;
        report_dict(py, &report)
    }
}

/// The edits of `updates` (str to bytes) and `removals`.
/// How to reach `file://` and ssh remotes, from a transfer's `connect`
/// dict: `serve_program`, `ssh_program`, `ssh_args` (None keeps a
/// default; any other key is a TypeError).
fn connect_of(options: Option<&Bound<'_, PyDict>>) -> PyResult<engine::Connect> {
    let mut connect = engine::Connect::default();
    for (key, value) in options.into_iter().flat_map(|d| d.iter()) {
        match key.extract::<String>()?.as_str() {
            "serve_program" => connect.serve_program = value.extract()?,
            "ssh_program" => connect.ssh_program = value.extract()?,
            "ssh_args" => connect.ssh_args = value.extract()?,
            other => {
                return Err(PyTypeError::new_err(format!(
                    "unknown connect option {other:?} (serve_program, ssh_program, ssh_args)"
                )))
            }
        }
    }
    Ok(connect)
}

/// A transfer's report as a dict: object and byte counts each way, round
/// trips, the refs moved (`(name, old, new)`, None for absent) and the
/// commits a shallow fetch cut.
fn report_dict<'py>(py: Python<'py>, r: &Report) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("objects_received", r.objects_received)?;
    d.set_item("bytes_received", r.bytes_received)?;
    d.set_item("objects_sent", r.objects_sent)?;
    d.set_item("bytes_sent", r.bytes_sent)?;
    d.set_item("round_trips", r.round_trips)?;
    let refs: Vec<(String, Option<String>, Option<String>)> = r
        .refs
        .iter()
        .map(|c| {
            (
                c.name.clone(),
                c.old.map(|id| id.to_hex()),
                c.new.map(|id| id.to_hex()),
            )
        })
        .collect();
    d.set_item("refs", refs)?;
    let shallow: Vec<String> = r.shallow.iter().map(|id| id.to_hex()).collect();
    d.set_item("shallow", shallow)?;
    Ok(d)
}

fn edits_of(updates: &Bound<'_, PyDict>, removals: Vec<String>) -> PyResult<engine::Edits> {
    let mut edits: engine::Edits = Vec::with_capacity(updates.len() + removals.len());
    for k in removals {
        edits.push((k.into_bytes(), None));
    }
    for (k, v) in updates.iter() {
        let k: String = k.extract()?;
        let v = v.downcast::<PyBytes>().map_err(|_| {
            pyo3::exceptions::PyTypeError::new_err(format!("value of {k:?} must be bytes"))
        })?;
        edits.push((k.into_bytes(), Some(v.as_bytes().to_vec())));
    }
    Ok(edits)
}

/// The Python answer of a commit or merge.
fn landed_to_py(
    py: Python<'_>,
    landed: Result<engine::Landed, LandError>,
    errors: &merge::Errors,
) -> PyResult<(String, String, Vec<String>)> {
    match landed {
        Ok(l) => Ok((
            l.strategy.to_string(),
            l.head.to_hex(),
            l.auto_merged.iter().map(|k| key_str(k)).collect(),
        )),
        Err(LandError::Unrelated) => Err(raise(
            py,
            "ConcurrencyError",
            "No common ancestor found between current commit and HEAD.".to_string(),
        )),
        Err(LandError::Engine(e)) => Err(to_py(py, e, Some(errors))),
    }
}

fn rebase_report<'py>(py: Python<'py>, r: &kvgit::RebaseReport) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let status = match r.status {
        kvgit::RebaseStatus::BelowHighWater => "below_high_water",
        kvgit::RebaseStatus::NothingDroppable => "nothing_droppable",
        kvgit::RebaseStatus::Rebased => "rebased",
        kvgit::RebaseStatus::Raced => "raced",
    };
    d.set_item("status", status)?;
    d.set_item("previous", r.previous.to_hex())?;
    d.set_item("commit", r.commit.map(|c| c.to_hex()))?;
    let dropped: Vec<String> = r.dropped.iter().map(|k| key_str(k)).collect();
    d.set_item("dropped", dropped)?;
    d.set_item("bytes_before", r.bytes_before)?;
    d.set_item("bytes_after", r.bytes_after)?;
    Ok(d)
}

/// The dict a Python validation hook receives.
fn check_dict<'py>(py: Python<'py>, c: &kvgit::CommitCheck<'_>) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("branch", c.branch)?;
    d.set_item("message", c.message)?;
    let kind = match c.kind {
        kvgit::MoveKind::Commit => "commit",
        kvgit::MoveKind::Merge => "merge",
        kvgit::MoveKind::FastForward => "fast_forward",
        kvgit::MoveKind::Reset => "reset",
        kvgit::MoveKind::Rebase => "rebase",
        kvgit::MoveKind::Create => "create",
        kvgit::MoveKind::Delete => "delete",
        _ => "other",
    };
    d.set_item("kind", kind)?;
    d.set_item("old_head", c.old_head.map(|h| h.to_hex()))?;
    d.set_item("new_head", c.new_head.map(|h| h.to_hex()))?;
    let changes = PyList::empty(py);
    for ch in c.changes {
        let kind = match ch.kind {
            ChangeKind::Added => "added",
            ChangeKind::Removed => "removed",
            ChangeKind::Modified => "modified",
        };
        let bytes = |v: &Option<Vec<u8>>| v.as_ref().map(|v| PyBytes::new(py, v));
        changes.append((key_str(&ch.key), kind, bytes(&ch.old), bytes(&ch.new)))?;
    }
    d.set_item("changes", changes)?;
    Ok(d)
}

/// The heads a branch moves to, as this process moves it.
#[pyclass(frozen, module = "kvgit_rs._native")]
struct Subscription {
    rx: Mutex<std::sync::mpsc::Receiver<ObjectId>>,
}

#[pymethods]
impl Subscription {
    /// The heads received since the last call (hex ids, oldest first);
    /// never waits.
    fn poll(&self) -> Vec<String> {
        let rx = self.rx.lock();
        rx.try_iter().map(|id| id.to_hex()).collect()
    }
}

/// A read view of one commit.
#[pyclass(frozen, module = "kvgit_rs._native")]
struct Snap {
    snap: kvgit::Snapshot,
}

#[pymethods]
impl Snap {
    /// The commit id.
    #[getter]
    fn commit(&self) -> String {
        self.snap.commit_id().to_hex()
    }

    /// The value of `key`, or None. A point read keeps the GIL: it takes
    /// about a microsecond from the cache, less than releasing and taking
    /// back the GIL would (multi-key reads release it).
    fn get<'py>(&self, py: Python<'py>, key: &str) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let v = self
            .snap
            .get(key.as_bytes())
            .map_err(|e| to_py(py, e, None))?;
        Ok(v.map(|v| PyBytes::new(py, &v)))
    }

    /// The values of the `keys` present, as a dict.
    fn get_many<'py>(&self, py: Python<'py>, keys: Vec<String>) -> PyResult<Bound<'py, PyDict>> {
        let found = py
            .allow_threads(|| -> engine::Result<Vec<(String, Vec<u8>)>> {
                let mut found = Vec::with_capacity(keys.len());
                for k in keys {
                    if let Some(v) = self.snap.get(k.as_bytes())? {
                        found.push((k, v));
                    }
                }
                Ok(found)
            })
            .map_err(|e| to_py(py, e, None))?;
        let d = PyDict::new(py);
        for (k, v) in found {
            d.set_item(k, PyBytes::new(py, &v))?;
        }
        Ok(d)
    }

    /// True if `key` has a value.
    fn contains(&self, py: Python<'_>, key: &str) -> PyResult<bool> {
        py.allow_threads(|| self.snap.contains(key.as_bytes()))
            .map_err(|e| to_py(py, e, None))
    }

    /// Every key, in order (only keys starting with `prefix`, if given).
    #[pyo3(signature = (prefix=None))]
    fn keys<'py>(&self, py: Python<'py>, prefix: Option<&str>) -> PyResult<Bound<'py, PyList>> {
        let keys = py
            .allow_threads(|| -> engine::Result<Vec<Vec<u8>>> {
                match prefix {
                    Some(p) => self.snap.keys_with_prefix(p.as_bytes()).collect(),
                    None => self.snap.keys().collect(),
                }
            })
            .map_err(|e| to_py(py, e, None))?;
        PyList::new(py, keys.iter().map(|k| key_str(k)))
    }

    /// The number of keys.
    fn __len__(&self) -> usize {
        usize::try_from(self.snap.len()).unwrap_or(usize::MAX)
    }

    /// The total size of the values, in bytes.
    fn value_bytes(&self) -> u64 {
        self.snap.value_bytes()
    }
}

/// The native module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Store>()?;
    m.add_class::<Snap>()?;
    m.add_class::<Subscription>()?;
    Ok(())
}
