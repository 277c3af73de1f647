"""kvgit_rs: kvgit for Python over the Rust engine.

A drop-in for the Python ``kvgit`` package (``import kvgit_rs as kvgit``):
the same classes and functions, with commits, merges, history and garbage
collection run by the Rust ``kvgit`` crate.
"""

from .db import Db, Snapshot
from .content_types import MergeFn, counter, last_writer_wins
from .errors import (
    ConcurrencyError,
    KvgitError,
    MergeConflict,
    PushRejected,
    RemoteError,
    ValidationError,
)
from .keyfile import open
from .live import Live
from .namespaced import Namespaced
from .staged import Staged
from .store import store
from .versioned import DiffResult, MergeResult, Versioned

__all__ = [
    "ConcurrencyError",
    "Db",
    "DiffResult",
    "KvgitError",
    "Live",
    "MergeConflict",
    "MergeFn",
    "MergeResult",
    "Namespaced",
    "PushRejected",
    "RemoteError",
    "Snapshot",
    "Staged",
    "ValidationError",
    "Versioned",
    "counter",
    "last_writer_wins",
    "open",
    "store",
]
