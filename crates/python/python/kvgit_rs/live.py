"""Live: immediate-write store with no versioning."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any, Dict, Iterator, Set


class Live(MutableMapping):
    """Immediate-write in-memory store (a dict with kvgit's mapping API).

    Writes take effect immediately. No versioning support.
    """

    def __init__(self) -> None:
        self._data: Dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, or ``default``."""
        return self._data.get(key, default)

    def get_many(self, *keys: str) -> Dict[str, Any]:
        """The values of the ``keys`` present."""
        return {k: self._data[k] for k in keys if k in self._data}

    def keys(self) -> Set[str]:  # type: ignore[override]
        """All keys."""
        return set(self._data.keys())

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __setitem__(self, key: str, value: Any) -> None:
        self._data[key] = value

    def __delitem__(self, key: str) -> None:
        del self._data[key]
