"""Namespaced: key-prefixed view over a MutableMapping."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any, Dict, Iterable, Iterator, Set


class Namespaced(MutableMapping):
    """A namespaced view over a MutableMapping.

    Keys are prefixed with ``namespace/``. Nested namespaces are
    supported by wrapping another Namespaced instance.

    Args:
        store: Any MutableMapping (Staged, Live, or another Namespaced).
        namespace: The namespace name (must not contain ``/``).
    """

    def __init__(self, store: MutableMapping, namespace: str) -> None:
        if not isinstance(namespace, str):
            raise TypeError("Namespace names must be str")
        if "/" in namespace:
            raise ValueError("Namespace names cannot contain '/'")
        if not isinstance(store, MutableMapping):
            raise TypeError(
                f"Namespaced requires a MutableMapping, not {type(store).__name__}"
            )
        self.namespace: str
        if isinstance(store, Namespaced):
            self.namespace = f"{store.namespace}/{namespace}"
            self._store: MutableMapping = store._store
        else:
            self.namespace = namespace
            self._store = store

    def _prefixed(self, key: str) -> str:
        if not isinstance(key, str):
            raise TypeError(f"keys must be str, not {type(key).__name__}")
        return f"{self.namespace}/{key}"

    def get(self, key: str, default: Any = None) -> Any:
        """Get a value from the namespaced view."""
        return self._store.get(self._prefixed(key), default)

    def get_many(self, *keys: str) -> Dict[str, Any]:
        """Get multiple values from the namespaced view."""
        prefixed = {self._prefixed(k): k for k in keys}
        if hasattr(self._store, "get_many"):
            result = self._store.get_many(*prefixed.keys())
        else:
            result = {}
            for k in prefixed:
                try:
                    result[k] = self._store[k]
                except KeyError:
                    pass
        return {prefixed[pk]: v for pk, v in result.items()}

    def _all_keys(self) -> Iterable[str]:
        prefix = f"{self.namespace}/"
        keys_with_prefix = getattr(self._store, "keys_with_prefix", None)
        if keys_with_prefix is not None:
            return keys_with_prefix(prefix)
        return [k for k in self._store.keys() if k.startswith(prefix)]

    def keys(self) -> Set[str]:  # type: ignore[override]
        """Direct child keys in this namespace (not nested)."""
        n = len(self.namespace) + 1
        return {k[n:] for k in self._all_keys() if k[n:] and "/" not in k[n:]}

    def descendant_keys(self) -> Iterable[str]:
        """All keys under this namespace, including nested."""
        n = len(self.namespace) + 1
        for key in self._all_keys():
            yield key[n:]

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        return self._prefixed(key) in self._store

    def __getitem__(self, key: str) -> Any:
        return self._store[self._prefixed(key)]

    def __setitem__(self, key: str, value: Any) -> None:
        self._store[self._prefixed(key)] = value

    def __delitem__(self, key: str) -> None:
        del self._store[self._prefixed(key)]

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())
