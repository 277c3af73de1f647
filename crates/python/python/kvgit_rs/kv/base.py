"""Abstract KV store interface.

A ``KVStore`` is a string-keyed store of bytes with compare-and-swap. Give
one to ``Versioned`` and the Rust engine keeps its objects, branch heads
and metadata in it (through an adapter backend calling these methods), so
a store class of your own still works as a backend. ``Memory`` and
``Disk`` are native: the engine uses them directly, and their methods are a
key-value view of the store.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Iterable, Mapping, Optional, Tuple


class KVStore(ABC):
    """Key-value store operating on bytes only.

    All values are stored and retrieved as bytes. Serialization is
    handled at higher layers (e.g., Versioned).
    """

    @abstractmethod
    def get(self, key: str) -> Optional[bytes]:
        """Get bytes value for key, or None if not found."""

    @abstractmethod
    def set(self, key: str, value: bytes) -> None:
        """Set bytes value for key."""

    @abstractmethod
    def get_many(self, *args: str) -> Mapping[str, bytes]:
        """Get multiple keys, returning only keys that exist."""

    @abstractmethod
    def set_many(self, **kwargs: bytes) -> None:
        """Set multiple key-value pairs."""

    @abstractmethod
    def items(self) -> Iterable[Tuple[str, bytes]]:
        """Iterate over all key-value pairs."""

    @abstractmethod
    def keys(self) -> Iterable[str]:
        """Iterate over all keys."""

    @abstractmethod
    def __contains__(self, key: str) -> bool:
        """Check if key exists in store."""

    @abstractmethod
    def remove(self, key: str) -> None:
        """Remove a key if present."""

    @abstractmethod
    def remove_many(self, *keys: str) -> None:
        """Remove multiple keys."""

    @abstractmethod
    def cas(self, key: str, value: bytes, expected: Optional[bytes]) -> bool:
        """Atomic compare-and-swap.

        Set value only if current value equals expected.
        None means "key must not exist".

        Returns True if swap succeeded, False otherwise.
        """

    @abstractmethod
    def clear(self) -> None:
        """Remove all items from the store."""
