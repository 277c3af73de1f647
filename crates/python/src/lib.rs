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

use std::collections::BTreeMap;
use std::sync::Arc;

use kvgit::{ChangeKind, CommitId as ObjectId, Db};
use parking_lot::Mutex;
use pyo3::exceptions::{PyKeyError, PyValueError};
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
}

impl Store {
    fn wrap(db: Db) -> Store {
        Store {
            db,
            kv_lock: Mutex::new(()),
        }
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
            Some(branch) => Ok(engine::head(&self.db, &branch)?.map(|id| encode_id(&id))),
            None => Ok(engine::backend(&self.db).get_meta(&Self::meta_key(key))?),
        }
    }

    /// Writes `key` of the key-value view (`None`: removes it). A branch
    /// head takes only the JSON id of a commit of this store.
    fn kv_write_now(&self, key: &str, value: Option<&[u8]>) -> Result<(), KvError> {
        match self.head_of(key) {
            Some(branch) => match value {
                None => match engine::head(&self.db, &branch)? {
                    Some(_) => Ok(engine::delete_branch(&self.db, &branch)?),
                    None => Ok(()),
                },
                Some(raw) => {
                    let id = decode_id(raw)
                        .filter(|id| engine::commit_exists(&self.db, id))
                        .ok_or_else(|| KvError::NotAHead(key.to_string()))?;
                    Ok(engine::set_branch(&self.db, &branch, &id)?)
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
    /// A branch head was given something other than a commit of the store.
    NotAHead(String),
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
            KvError::NotAHead(key) => PyValueError::new_err(format!(
                "{key} is a branch head: its value must name a commit of this store \
                 (a JSON string of its id)"
            )),
            KvError::Engine(e) => to_py(py, e, None),
        }
    }
}

#[pymethods]
impl Store {
    /// A new store in memory.
    #[staticmethod]
    fn memory() -> Store {
        Store::wrap(Db::memory())
    }

    /// Opens (or creates) the store at `target`: a directory (sled), or a
    /// URL the engine knows.
    #[staticmethod]
    fn open(py: Python<'_>, target: String) -> PyResult<Store> {
        py.allow_threads(|| engine::open(&target))
            .map(Store::wrap)
            .map_err(|e| to_py(py, e, None))
    }

    /// A store whose objects, refs and metadata live in the Python
    /// `KVStore` object `kv`.
    #[staticmethod]
    fn adapter(py: Python<'_>, kv: Py<PyAny>) -> PyResult<Store> {
        let backend = Arc::new(pybackend::PyKvBackend::new(kv));
        py.allow_threads(|| engine::with_backend(backend))
            .map(Store::wrap)
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
                keys.push(key_str(&k[KV_META.len()..]));
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
    fn head(&self, py: Python<'_>, branch: &str) -> PyResult<Option<String>> {
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
        py.allow_threads(|| engine::set_branch(&self.db, branch, &at))
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
        let metadata = metadata.unwrap_or_default();
        py.allow_threads(|| engine::write_commit(&self.db, &parent, edits, metadata, message))
            .map(|id| id.to_hex())
            .map_err(|e| to_py(py, e, None))
    }

    /// Lands `commit` on `branch` (fast-forward, or three-way merge with
    /// the head using the Python merge functions `merge_fns` (key to
    /// callable) and `default`); returns (strategy, head, auto-merged
    /// keys). Raises MergeConflict or ConcurrencyError.
    #[pyo3(signature = (branch, commit, merge_fns=None, default=None, metadata=None))]
    fn land(
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
        let registry = merge::registry(py, merge_fns, default, &errors)?;
        let metadata = metadata.unwrap_or_default();
        let landed = py.allow_threads(|| engine::land(&self.db, branch, &id, &registry, metadata));
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
            Err(LandError::Engine(e)) => Err(to_py(py, e, Some(&errors))),
        }
    }

    // -- garbage collection --

    /// High/low-water rebase of `branch`; returns a dict report.
    #[pyo3(signature = (branch, high, low=None))]
    fn rebase<'py>(
        &self,
        py: Python<'py>,
        branch: &str,
        high: u64,
        low: Option<u64>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let report = py
            .allow_threads(|| engine::rebase(&self.db, branch, high, low))
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
    Ok(())
}
