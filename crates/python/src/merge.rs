//! Python callables as the engine's merge functions.
//!
//! The engine's three-way merge runs with the GIL released; when it meets
//! a key both sides changed, it calls [`PyMergeFn::merge`], which takes the
//! GIL back, calls the Python function with the key's bytes-level values
//! `(old, ours, theirs)` and turns its answer into a [`Resolution`]. An
//! exception becomes that key's conflict and is kept, so that the caller
//! can attach it to the `MergeConflict` it raises.

use std::sync::Arc;

use kvgit_merge::{MergeFn, Registry, Resolution};
use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

/// Exceptions raised by merge functions during one commit, by key.
pub type Errors = Arc<Mutex<Vec<(Vec<u8>, PyErr)>>>;

/// One Python merge function.
pub struct PyMergeFn {
    func: Py<PyAny>,
    errors: Errors,
    equal_changes: bool,
}

impl MergeFn for PyMergeFn {
    fn merge(
        &self,
        key: &[u8],
        base: Option<&[u8]>,
        ours: Option<&[u8]>,
        theirs: Option<&[u8]>,
    ) -> Resolution {
        // The engine merges the local commit ("theirs" to it) into the
        // branch head ("ours" to it); kvgit's functions see the local
        // commit as ours and the head as theirs.
        let (mine, head) = (theirs, ours);
        Python::with_gil(|py| {
            let arg = |v: Option<&[u8]>| match v {
                Some(b) => PyBytes::new(py, b).into_any(),
                None => py.None().into_bound(py),
            };
            let result = self.func.bind(py).call1((arg(base), arg(mine), arg(head)));
            let answer = result.and_then(|value| {
                if value.is_none() {
                    Ok(Resolution::Delete)
                } else {
                    let bytes = value.downcast::<PyBytes>().map_err(|_| {
                        pyo3::exceptions::PyTypeError::new_err(format!(
                            "a merge function must return bytes or None, not {}",
                            value
                                .get_type()
                                .name()
                                .map(|n| n.to_string())
                                .unwrap_or_default()
                        ))
                    })?;
                    Ok(Resolution::Value(bytes.as_bytes().to_vec()))
                }
            });
            match answer {
                Ok(r) => r,
                Err(err) => {
                    let reason = err.to_string();
                    self.errors.lock().push((key.to_vec(), err));
                    Resolution::conflict(reason)
                }
            }
        })
    }

    fn merge_equal_changes(&self) -> bool {
        self.equal_changes
    }
}

/// A registry of the Python functions `by_key` (a dict of str to
/// callable) and `default`, whose exceptions go to `errors`.
pub fn registry(
    py: Python<'_>,
    by_key: Option<&Bound<'_, PyDict>>,
    default: Option<&Bound<'_, PyAny>>,
    errors: &Errors,
) -> PyResult<Registry> {
    let registry = Registry::new();
    let wrap = |f: &Bound<'_, PyAny>| -> PyResult<PyMergeFn> {
        if !f.is_callable() {
            return Err(pyo3::exceptions::PyTypeError::new_err(
                "a merge function must be callable",
            ));
        }
        let equal_changes = f
            .getattr("merge_equal_changes")
            .and_then(|v| v.is_truthy())
            .unwrap_or(false);
        Ok(PyMergeFn {
            func: f.clone().unbind(),
            errors: errors.clone(),
            equal_changes,
        })
    };
    if let Some(map) = by_key {
        for (k, f) in map.iter() {
            let key: String = k.extract()?;
            registry.set(key.as_bytes(), wrap(&f)?);
        }
    }
    if let Some(f) = default {
        if !f.is_none() {
            registry.set_default(wrap(f)?);
        }
    }
    let _ = py;
    Ok(registry)
}
