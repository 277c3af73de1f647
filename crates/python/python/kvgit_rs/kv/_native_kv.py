"""The KVStore methods of the native stores (Memory, Disk): a key-value view
of a Rust store. ``__branch_head__<name>`` keys are the branch heads (JSON
string of the commit id; only a commit of the store can be written there);
other keys live in the store's metadata."""

from __future__ import annotations

from typing import Dict, Iterable, List, Mapping, Optional, Tuple

from .._native import Store
from .base import KVStore


def _check_key(key: object) -> str:
    if not isinstance(key, str):
        raise TypeError(f"keys must be str, not {type(key).__name__}")
    return key


def _check_value(key: str, value: object) -> bytes:
    if not isinstance(value, bytes):
        raise TypeError(f"Expected bytes for {key}, got {type(value).__name__}")
    return value


class NativeKV(KVStore):
    """A KVStore whose data is a native kvgit store (``self._native``)."""

    _native: Store

    def get(self, key: str) -> Optional[bytes]:
        """Get bytes value for key, or None if not found."""
        return self._native.kv_get(_check_key(key))

    def set(self, key: str, value: bytes) -> None:
        """Set bytes value for key."""
        if not isinstance(value, bytes):
            raise TypeError(f"Expected bytes, got {type(value).__name__}")
        self._native.kv_set(_check_key(key), value)

    def get_many(self, *args: str) -> Mapping[str, bytes]:
        """Get multiple keys, returning only keys that exist."""
        out: Dict[str, bytes] = {}
        for k in args:
            v = self.get(k)
            if v is not None:
                out[k] = v
        return out

    def set_many(self, **kwargs: bytes) -> None:
        """Set multiple key-value pairs."""
        for k, v in kwargs.items():
            _check_value(k, v)
        for k, v in kwargs.items():
            self._native.kv_set(k, v)

    def items(self) -> Iterable[Tuple[str, bytes]]:
        """All key-value pairs."""
        out: List[Tuple[str, bytes]] = []
        for k in self._native.kv_keys():
            v = self._native.kv_get(k)
            if v is not None:
                out.append((k, v))
        return out

    def keys(self) -> Iterable[str]:
        """All keys."""
        return self._native.kv_keys()

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        return self._native.kv_get(key) is not None

    def remove(self, key: str) -> None:
        """Remove a key if present."""
        self._native.kv_remove(_check_key(key))

    def remove_many(self, *keys: str) -> None:
        """Remove multiple keys."""
        for k in keys:
            self.remove(k)

    def cas(self, key: str, value: bytes, expected: Optional[bytes]) -> bool:
        """Atomic compare-and-swap (None: the key must not exist)."""
        if not isinstance(value, bytes):
            raise TypeError(f"Expected bytes, got {type(value).__name__}")
        if expected is not None and not isinstance(expected, bytes):
            raise TypeError(f"Expected bytes, got {type(expected).__name__}")
        return self._native.kv_cas(_check_key(key), value, expected)

    def clear(self) -> None:
        """Remove every key (and so every branch) from the store."""
        for k in list(self._native.kv_keys()):
            self._native.kv_remove(k)
