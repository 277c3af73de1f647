"""N-tier composite cache over multiple KV stores."""

from __future__ import annotations

from typing import Dict, Iterable, List, Mapping, Optional, Set, Tuple

from .base import KVStore


def _best_effort(fn, *args, **kwargs) -> None:
    try:
        fn(*args, **kwargs)
    except Exception:
        pass  # a cache tier is optional: the authoritative tier decides


class Composite(KVStore):
    """N-tier cache composing any number of KV stores.

    On get: check L1, L2, ..., Ln in order; a hit at tier i fills
    L1..L(i-1). Writes go to Ln (authoritative) first, then to the caches
    (best effort). ``cas`` is decided by Ln; the caches follow on success.

    Args:
        stores: KV stores ordered fastest -> most durable.
    """

    def __init__(self, stores: List[KVStore]) -> None:
        if not stores:
            raise ValueError("Composite requires at least one store")
        self._stores = list(stores)

    def _fill(self, upto: int, values: Mapping[str, bytes]) -> None:
        for j in range(upto):
            _best_effort(self._stores[j].set_many, **values)

    def get(self, key: str) -> Optional[bytes]:
        """The first tier's value of ``key`` (filling the faster tiers)."""
        for i, store in enumerate(self._stores):
            try:
                value = store.get(key)
            except Exception:
                continue  # tier unavailable, try the next
            if value is not None:
                self._fill(i, {key: value})
                return value
        return None

    def get_many(self, *args: str) -> Mapping[str, bytes]:
        """The values of the keys present, tier by tier."""
        result: Dict[str, bytes] = {}
        remaining: Set[str] = set(args)
        for i, store in enumerate(self._stores):
            if not remaining:
                break
            try:
                found = {
                    k: v for k in remaining if (v := store.get(k)) is not None
                }
            except Exception:
                continue
            if found:
                self._fill(i, found)
            result.update(found)
            remaining -= found.keys()
        return result

    def __contains__(self, key: object) -> bool:
        for store in self._stores:
            try:
                if key in store:  # type: ignore[operator]
                    return True
            except Exception:
                continue
        return False

    def keys(self) -> Iterable[str]:
        """The authoritative tier's keys."""
        return self._stores[-1].keys()

    def items(self) -> Iterable[Tuple[str, bytes]]:
        """The authoritative tier's items."""
        return self._stores[-1].items()

    def set(self, key: str, value: bytes) -> None:
        """Sets ``key`` on every tier (the authoritative one first)."""
        self._stores[-1].set(key, value)
        for store in self._stores[:-1]:
            _best_effort(store.set, key, value)

    def set_many(self, **kwargs: bytes) -> None:
        """Sets every pair on every tier."""
        self._stores[-1].set_many(**kwargs)
        for store in self._stores[:-1]:
            _best_effort(store.set_many, **kwargs)

    def remove(self, key: str) -> None:
        """Removes ``key`` from every tier."""
        self._stores[-1].remove(key)
        for store in self._stores[:-1]:
            _best_effort(store.remove, key)

    def remove_many(self, *keys: str) -> None:
        """Removes the keys from every tier."""
        self._stores[-1].remove_many(*keys)
        for store in self._stores[:-1]:
            _best_effort(store.remove_many, *keys)

    def clear(self) -> None:
        """Clears every tier."""
        self._stores[-1].clear()
        for store in self._stores[:-1]:
            _best_effort(store.clear)

    def cas(self, key: str, value: bytes, expected: Optional[bytes]) -> bool:
        """Compare-and-swap on the authoritative tier; caches follow."""
        success = self._stores[-1].cas(key, value, expected)
        if success:
            for store in self._stores[:-1]:
                _best_effort(store.set, key, value)
        return success
