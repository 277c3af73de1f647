"""In-memory KV store: a native kvgit store in memory."""

from __future__ import annotations

from .._native import Store
from ._native_kv import NativeKV


class Memory(NativeKV):
    """A memory-backed store.

    The Rust engine keeps its commits here directly; the ``KVStore``
    methods are a key-value view of it, safe for concurrent readers and
    writers.
    """

    def __init__(self) -> None:
        self._native = Store.memory()
