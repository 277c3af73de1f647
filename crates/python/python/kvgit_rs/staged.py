"""Staged: buffered writes over a Versioned store."""

from __future__ import annotations

import pickle
from collections.abc import MutableMapping
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Set

from .content_types import MergeFn
from .versioned import BytesMergeFn, MergeResult, Versioned

_MISSING = object()


class Staged(MutableMapping):
    """Buffered write layer over a ``Versioned`` store.

    Writes are staged in memory. ``commit()`` flushes them to the
    underlying ``Versioned`` as a single atomic commit (merged with
    concurrent commits by the engine).

    Values are encoded to bytes on commit using the configured encoder
    (pickle by default). Implements ``MutableMapping[str, Any]``.
    """

    def __init__(
        self,
        versioned: Versioned,
        *,
        encoder: Callable[[Any], bytes] = pickle.dumps,
        decoder: Callable[[bytes], Any] = pickle.loads,
    ) -> None:
        self._versioned = versioned
        self._encoder = encoder
        self._decoder = decoder
        self._updates: Dict[str, Any] = {}
        self._removals: Set[str] = set()
        self._cache: Dict[str, Any] = {}
        self._merge_fns: Dict[str, MergeFn] = {}
        self._default_merge: Optional[MergeFn] = None

    # -- reads --

    def get(self, key: str, default: Any = None) -> Any:
        """Get a value, checking staged changes first."""
        if not isinstance(key, str):
            return default
        if self._removals and key in self._removals:
            return default
        if self._updates and key in self._updates:
            return self._updates[key]
        cache = self._cache
        if key in cache:
            return cache[key]
        # The Versioned's read view, called directly: one Python frame
        # less per read (its get only checks the key's type, done above).
        raw = self._versioned._snap.get(key)
        if raw is None:
            return default
        value = self._decoder(raw)
        cache[key] = value
        return value

    def get_many(self, *keys: str) -> Dict[str, Any]:
        """Get multiple values, respecting staged state."""
        result: Dict[str, Any] = {}
        fetch: List[str] = []
        for key in keys:
            if key in self._removals:
                continue
            if key in self._updates:
                result[key] = self._updates[key]
            elif key in self._cache:
                result[key] = self._cache[key]
            else:
                fetch.append(key)
        if fetch:
            for key, raw in self._versioned.get_many(*fetch).items():
                value = self._decoder(raw)
                self._cache[key] = value
                result[key] = value
        return result

    def keys(self) -> Set[str]:  # type: ignore[override]
        """All keys visible in the current state (committed + staged)."""
        seen = {k for k in self._versioned.keys() if k not in self._removals}
        seen.update(self._updates.keys())
        return seen

    def keys_with_prefix(self, prefix: str) -> Iterable[str]:
        """The visible keys starting with ``prefix`` (a range scan)."""
        seen = {
            k
            for k in self._versioned.keys_with_prefix(prefix)
            if k not in self._removals
        }
        seen.update(k for k in self._updates if k.startswith(prefix))
        return seen

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        if key in self._removals:
            return False
        if key in self._updates:
            return True
        return key in self._versioned

    def __getitem__(self, key: str) -> Any:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(key, str):
            raise TypeError(f"keys must be str, not {type(key).__name__}")
        self._removals.discard(key)
        self._updates[key] = value

    def __delitem__(self, key: str) -> None:
        if key not in self:
            raise KeyError(key)
        self._updates.pop(key, None)
        self._removals.add(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        if not self._updates and not self._removals:
            return len(self._versioned)
        return len(self.keys())

    # -- merge functions --

    def set_merge_fn(self, key: str, fn: MergeFn) -> None:
        """Register a merge function for a specific key."""
        self._merge_fns[key] = fn

    def set_default_merge(self, fn: MergeFn) -> None:
        """Register a default merge function."""
        self._default_merge = fn

    def _wrap_merge_fn(self, fn: MergeFn) -> BytesMergeFn:
        """Wrap a value-level merge fn into a bytes-level one."""
        encoder = self._encoder
        decoder = self._decoder

        def wrapped(
            old: Optional[bytes], ours: Optional[bytes], theirs: Optional[bytes]
        ) -> bytes:
            """``fn`` over decoded values, its answer encoded."""
            old_val = decoder(old) if old is not None else None
            ours_val = decoder(ours) if ours is not None else None
            theirs_val = decoder(theirs) if theirs is not None else None
            return encoder(fn(old_val, ours_val, theirs_val))

        wrapped.merge_equal_changes = getattr(  # type: ignore[attr-defined]
            fn, "merge_equal_changes", False
        )
        return wrapped

    # -- commit / reset --

    def _clear(self) -> None:
        self._updates.clear()
        self._removals.clear()
        self._cache.clear()

    def commit(
        self,
        *,
        on_conflict: str = "raise",
        merge_fns: Optional[Dict[str, MergeFn]] = None,
        default_merge: Optional[MergeFn] = None,
        info: Optional[dict] = None,
    ) -> MergeResult:
        """Flush staged changes to the underlying Versioned store as one
        commit; on success the staging buffer is cleared.

        Returns:
            A MergeResult (truthy when committed).
        """
        encoded = (
            {k: self._encoder(v) for k, v in self._updates.items()}
            if self._updates
            else None
        )
        fns = dict(self._merge_fns)
        if merge_fns:
            fns.update(merge_fns)
        default = default_merge or self._default_merge
        result = self._versioned.commit(
            encoded,
            set(self._removals) if self._removals else None,
            on_conflict=on_conflict,
            merge_fns={k: self._wrap_merge_fn(f) for k, f in fns.items()} or None,
            default_merge=self._wrap_merge_fn(default) if default else None,
            info=info,
        )
        if result.merged:
            self._clear()
        return result

    def merge(
        self,
        *,
        branch: Optional[str] = None,
        commit: Optional[str] = None,
        merge_fns: Optional[Dict[str, MergeFn]] = None,
        default_merge: Optional[MergeFn] = None,
        info: Optional[dict] = None,
    ) -> MergeResult:
        """Merge another branch (or a commit) into this branch (see
        ``Versioned.merge``); staged changes stay staged."""
        fns = dict(self._merge_fns)
        if merge_fns:
            fns.update(merge_fns)
        default = default_merge or self._default_merge
        result = self._versioned.merge(
            branch=branch,
            commit=commit,
            merge_fns={k: self._wrap_merge_fn(f) for k, f in fns.items()} or None,
            default_merge=self._wrap_merge_fn(default) if default else None,
            info=info,
        )
        self._cache.clear()
        return result

    def reset(self) -> None:
        """Discard all staged changes."""
        self._clear()

    @property
    def has_changes(self) -> bool:
        """Whether there are staged changes."""
        return bool(self._updates or self._removals)

    def is_staged(self, key: str) -> bool:
        """Whether a specific key has a pending staged update or removal."""
        return key in self._updates or key in self._removals

    # -- Versioned pass-through --

    @property
    def versioned(self) -> Versioned:
        """The underlying Versioned instance."""
        return self._versioned

    @property
    def current_commit(self) -> str:
        """The commit reads see (under the staged changes)."""
        return self._versioned.current_commit

    @property
    def base_commit(self) -> str:
        """The branch head last seen."""
        return self._versioned.base_commit

    @property
    def last_merge_result(self) -> Optional[MergeResult]:
        """The result of the last commit."""
        return self._versioned.last_merge_result

    def _like(self, versioned: Versioned) -> "Staged":
        return Staged(versioned, encoder=self._encoder, decoder=self._decoder)

    def create_branch(self, name: str) -> "Staged":
        """Fork the current commit onto a new branch. Returns a new Staged."""
        return self._like(self._versioned.create_branch(name))

    def checkout(
        self, commit_hash: str, *, branch: Optional[str] = None
    ) -> Optional["Staged"]:
        """A new Staged at a specific commit, or None if not found."""
        v = self._versioned.checkout(commit_hash, branch=branch)
        return None if v is None else self._like(v)

    def list_branches(self) -> List[str]:
        """List all branch names in the store."""
        return self._versioned.list_branches()

    def reset_to(self, commit_hash: str) -> bool:
        """Reset HEAD to a commit and clear staged changes (False if there
        is no such commit)."""
        ok = self._versioned.reset_to(commit_hash)
        if ok:
            self._clear()
        return ok

    def history(
        self,
        commit_hash: Optional[str] = None,
        *,
        all_parents: bool = False,
    ) -> Iterable[str]:
        """Yield the commit chain from newest to oldest."""
        return self._versioned.history(commit_hash, all_parents=all_parents)

    def refresh(self) -> None:
        """Reload from HEAD and discard staged changes."""
        self._versioned.refresh()
        self._clear()
