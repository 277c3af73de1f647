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
    /// The engine's `ours` is the caller's `theirs` (a merge of another
    /// commit into a branch, where Python's functions see the merged-in
    /// side as ours).
    swap: bool,
}

impl MergeFn for PyMergeFn {
    fn merge(
        &self,
        key: &[u8],
        base: Option<&[u8]>,
        ours: Option<&[u8]>,
        theirs: Option<&[u8]>,
    ) -> Resolution {
        // kvgit's functions see the local side (a transaction's writes,
        // or the commit merged in) as ours and the branch head as theirs.
        let (mine, head) = match self.swap {
            true => (theirs, ours),
            false => (ours, theirs),
        };
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

/// Merge functions by key, and a default.
pub type Functions = (Vec<(Vec<u8>, PyMergeFn)>, Option<PyMergeFn>);

/// The Python functions `by_key` (a dict of str to callable) and
/// `default`, whose exceptions go to `errors`; `swap`: see [`PyMergeFn`].
pub fn functions(
    by_key: Option<&Bound<'_, PyDict>>,
    default: Option<&Bound<'_, PyAny>>,
    errors: &Errors,
    swap: bool,
) -> PyResult<Functions> {
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
            swap,
        })
    };
    let mut fns = Vec::new();
    if let Some(map) = by_key {
        for (k, f) in map.iter() {
            let key: String = k.extract()?;
            fns.push((key.into_bytes(), wrap(&f)?));
        }
    }
    let default = match default {
        Some(f) if !f.is_none() => Some(wrap(f)?),
        _ => None,
    };
    Ok((fns, default))
}

/// A registry of the Python functions `by_key` and `default` for a merge
/// of another commit into a branch (see [`functions`]).
pub fn registry(
    by_key: Option<&Bound<'_, PyDict>>,
    default: Option<&Bound<'_, PyAny>>,
    errors: &Errors,
) -> PyResult<Registry> {
    let registry = Registry::new();
    let (fns, default) = functions(by_key, default, errors, true)?;
    for (k, f) in fns {
        registry.set(&k, f);
    }
    if let Some(f) = default {
        registry.set_default(f);
    }
    Ok(registry)
}
