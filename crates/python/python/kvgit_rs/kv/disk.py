"""Disk store: a native kvgit store on disk (sled) in a directory."""

from __future__ import annotations

import os
import threading
import weakref

from .._native import Store
from ._native_kv import NativeKV

ONE_GB = 1024 * 1024 * 1024

_open: "weakref.WeakValueDictionary[str, Store]" = weakref.WeakValueDictionary()
_open_lock = threading.Lock()


def _store_at(directory: str) -> Store:
    """The open store at ``directory``: one per process and path (a sled
    store is held by one opener at a time), shared by every ``Disk`` of it
    and closed when the last one goes."""
    path = os.path.realpath(directory)
    with _open_lock:
        store = _open.get(path)
        if store is None:
            store = Store.open(path)
            _open[path] = store
        return store


def _register(directory: str, store: Store) -> Store:
    """Records ``store`` as the open store at ``directory`` (a store
    opened by a clone), or returns the one already recorded."""
    path = os.path.realpath(directory)
    with _open_lock:
        existing = _open.get(path)
        if existing is not None:
            return existing
        _open[path] = store
        return store


class Disk(NativeKV):
    """A store on disk in ``directory`` (sled: crash-safe, one process at a
    time; a second process gets an error while the first holds it).

    ``size_limit`` is accepted for compatibility with kvgit's diskcache
    backend and ignored: the store keeps what its branches reach (see
    ``GCVersioned`` and ``sweep``).
    """

    def __init__(self, directory: str, size_limit: int = ONE_GB) -> None:
        if not isinstance(directory, (str, os.PathLike)):
            raise TypeError("directory must be a path")
        self.directory = os.fspath(directory)
        self.size_limit = size_limit
        self._native = _store_at(self.directory)
