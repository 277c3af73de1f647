//! A storage backend over a Python `KVStore` object (kvgit 0.1.3's
//! interface: `get`, `set_many`, `get_many`, `remove_many`, `keys`,
//! `cas`, `__contains__`), so a user's own store class still works.
//!
//! Layout in the user's store, all string keys:
//! - objects: `__obj__<hex id>` -> the object's bytes;
//! - branch heads: `__branch_head__<name>` -> JSON string of the hex id
//!   (kvgit 0.1.3's key and encoding); other refs: `__ref__<full name>`;
//! - metadata: `__kvmeta__<hex of the key>` -> bytes.
//!
//! Every call takes the GIL; a Python exception becomes
//! `Error::Storage` naming it.

use kvgit::CommitId as ObjectId;
use kvgit_core::{Backend, CasOutcome, Durability, Error, Result};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyTuple};

const OBJ: &str = "__obj__";
const HEAD: &str = "__branch_head__";
const REF: &str = "__ref__";
const META: &str = "__kvmeta__";

/// A backend calling into a Python `KVStore`.
pub struct PyKvBackend {
    store: Py<PyAny>,
}

impl PyKvBackend {
    /// A backend over `store`.
    pub fn new(store: Py<PyAny>) -> Self {
        PyKvBackend { store }
    }
}

fn storage(py: Python<'_>, err: PyErr) -> Error {
    let _ = py;
    Error::Storage(format!("Python KVStore: {err}"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn ref_key(name: &str) -> String {
    match name.strip_prefix("heads/") {
        Some(branch) => format!("{HEAD}{branch}"),
        None => format!("{REF}{name}"),
    }
}

fn key_ref(key: &str) -> Option<String> {
    if let Some(b) = key.strip_prefix(HEAD) {
        return (!b.is_empty()).then(|| format!("heads/{b}"));
    }
    key.strip_prefix(REF).map(str::to_string)
}

/// The JSON string holding a ref's target.
pub fn encode_id(id: &ObjectId) -> Vec<u8> {
    format!("\"{}\"", id.to_hex()).into_bytes()
}

/// The id in a ref value written by [`encode_id`] (or by kvgit 0.1.3).
pub fn decode_id(raw: &[u8]) -> Option<ObjectId> {
    let s = std::str::from_utf8(raw).ok()?.trim();
    let s = s.strip_prefix('"')?.strip_suffix('"')?;
    s.parse().ok()
}

impl PyKvBackend {
    fn get(&self, py: Python<'_>, key: &str) -> Result<Option<Vec<u8>>> {
        let v = self
            .store
            .bind(py)
            .call_method1("get", (key,))
            .map_err(|e| storage(py, e))?;
        if v.is_none() {
            return Ok(None);
        }
        let b = v
            .downcast::<PyBytes>()
            .map_err(|_| Error::Storage(format!("Python KVStore: {key} is not bytes")))?;
        Ok(Some(b.as_bytes().to_vec()))
    }

    fn keys(&self, py: Python<'_>, prefix: &str) -> Result<Vec<String>> {
        let keys = self
            .store
            .bind(py)
            .call_method0("keys")
            .map_err(|e| storage(py, e))?;
        let mut out = Vec::new();
        for k in keys.try_iter().map_err(|e| storage(py, e))? {
            let k = k.map_err(|e| storage(py, e))?;
            if let Ok(s) = k.extract::<String>() {
                if s.starts_with(prefix) {
                    out.push(s);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn set_many(&self, py: Python<'_>, entries: Vec<(String, Vec<u8>)>) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let kwargs = PyDict::new(py);
        for (k, v) in entries {
            kwargs
                .set_item(k, PyBytes::new(py, &v))
                .map_err(|e| storage(py, e))?;
        }
        self.store
            .bind(py)
            .call_method("set_many", (), Some(&kwargs))
            .map_err(|e| storage(py, e))?;
        Ok(())
    }

    fn remove_many(&self, py: Python<'_>, keys: Vec<String>) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let args = PyTuple::new(py, keys).map_err(|e| storage(py, e))?;
        self.store
            .bind(py)
            .call_method1("remove_many", args)
            .map_err(|e| storage(py, e))?;
        Ok(())
    }
}

impl Backend for PyKvBackend {
    fn get_object(&self, id: &ObjectId) -> Result<Option<Vec<u8>>> {
        Python::with_gil(|py| self.get(py, &format!("{OBJ}{}", id.to_hex())))
    }

    fn has_object(&self, id: &ObjectId) -> Result<bool> {
        Python::with_gil(|py| {
            self.store
                .bind(py)
                .contains(format!("{OBJ}{}", id.to_hex()))
                .map_err(|e| storage(py, e))
        })
    }

    fn put_objects(&self, objects: Vec<(ObjectId, Vec<u8>)>) -> Result<()> {
        Python::with_gil(|py| {
            let entries = objects
                .into_iter()
                .map(|(id, b)| (format!("{OBJ}{}", id.to_hex()), b))
                .collect();
            self.set_many(py, entries)
        })
    }

    fn delete_objects(&self, ids: &[ObjectId]) -> Result<()> {
        Python::with_gil(|py| {
            let keys = ids
                .iter()
                .map(|id| format!("{OBJ}{}", id.to_hex()))
                .collect();
            self.remove_many(py, keys)
        })
    }

    fn for_each_object(&self, visit: &mut dyn FnMut(ObjectId, u64) -> Result<bool>) -> Result<()> {
        let found: Vec<(ObjectId, u64)> = Python::with_gil(|py| {
            let mut found = Vec::new();
            for key in self.keys(py, OBJ)? {
                let Ok(id) = key[OBJ.len()..].parse::<ObjectId>() else {
                    continue;
                };
                let size = self.get(py, &key)?.map_or(0, |b| b.len() as u64);
                found.push((id, size));
            }
            Ok::<_, Error>(found)
        })?;
        for (id, size) in found {
            if !visit(id, size)? {
                break;
            }
        }
        Ok(())
    }

    fn get_ref(&self, name: &str) -> Result<Option<ObjectId>> {
        let raw = Python::with_gil(|py| self.get(py, &ref_key(name)))?;
        match raw {
            None => Ok(None),
            Some(raw) => decode_id(&raw)
                .map(Some)
                .ok_or_else(|| Error::Storage(format!("ref {name} does not hold a commit id"))),
        }
    }

    fn cas_ref(
        &self,
        name: &str,
        expected: Option<&ObjectId>,
        new: Option<&ObjectId>,
    ) -> Result<CasOutcome> {
        let key = ref_key(name);
        Python::with_gil(|py| {
            let store = self.store.bind(py);
            let swapped = match new {
                Some(new) => {
                    let expected = expected.map(|e| PyBytes::new(py, &encode_id(e)));
                    store
                        .call_method1("cas", (&key, PyBytes::new(py, &encode_id(new)), expected))
                        .and_then(|v| v.is_truthy())
                        .map_err(|e| storage(py, e))?
                }
                None => {
                    let current = self.get(py, &key)?;
                    let matches = current.as_deref().and_then(decode_id).as_ref() == expected;
                    if matches {
                        self.remove_many(py, vec![key.clone()])?;
                    }
                    matches
                }
            };
            if swapped {
                return Ok(CasOutcome::Swapped);
            }
            let actual = self.get(py, &key)?.as_deref().and_then(decode_id);
            Ok(CasOutcome::Mismatch { actual })
        })
    }

    fn list_refs(&self, prefix: &str) -> Result<Vec<(String, ObjectId)>> {
        Python::with_gil(|py| {
            let mut out = Vec::new();
            let mut keys = self.keys(py, HEAD)?;
            keys.extend(self.keys(py, REF)?);
            for key in keys {
                let Some(name) = key_ref(&key) else { continue };
                if !name.starts_with(prefix) {
                    continue;
                }
                if let Some(id) = self.get(py, &key)?.as_deref().and_then(decode_id) {
                    out.push((name, id));
                }
            }
            out.sort();
            Ok(out)
        })
    }

    fn get_meta(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Python::with_gil(|py| self.get(py, &format!("{META}{}", hex(key))))
    }

    fn put_meta(&self, entries: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<()> {
        Python::with_gil(|py| {
            let mut sets = Vec::new();
            let mut removes = Vec::new();
            for (k, v) in entries {
                let key = format!("{META}{}", hex(&k));
                match v {
                    Some(v) => sets.push((key, v)),
                    None => removes.push(key),
                }
            }
            self.set_many(py, sets)?;
            self.remove_many(py, removes)
        })
    }

    fn scan_meta(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        Python::with_gil(|py| {
            let mut out = Vec::new();
            for key in self.keys(py, META)? {
                let Some(k) = unhex(&key[META.len()..]) else {
                    continue;
                };
                if !k.starts_with(prefix) {
                    continue;
                }
                if let Some(v) = self.get(py, &key)? {
                    out.push((k, v));
                }
            }
            out.sort();
            Ok(out)
        })
    }

    fn flush(&self, _durability: Durability) -> Result<()> {
        Ok(())
    }

    fn size_on_disk(&self) -> Result<u64> {
        Ok(0)
    }
}
