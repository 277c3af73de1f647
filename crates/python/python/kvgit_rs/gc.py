"""GCVersioned: Versioned state with automatic garbage collection.

The rebase runs in the engine (``Db::rebase``): when a branch holds more
value bytes than the high water mark, its coldest keys (least recently read
or written, then largest) are dropped down to the low water mark and the
survivors committed as a fresh root commit; a sweep then deletes what no
branch reaches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Set, Tuple

from .errors import ConcurrencyError
from .kv.base import KVStore
from .versioned import MergeResult, Versioned


def _is_system_key(key: str) -> bool:
    """True for system/protected keys: the last ``/`` segment starts with
    ``__`` (the engine's default protection, and kvgit's)."""
    base_key = key.split("/")[-1] if "/" in key else key
    return base_key.startswith("__")


@dataclass(frozen=True)
class RebaseResult:
    """Result of a rebase/GC operation."""

    performed: bool
    new_commit: Optional[str]
    dropped_keys: Tuple[str, ...]
    kept_keys: Tuple[str, ...]
    total_size_before: int
    total_size_after: int
    orphans_cleaned: int = 0


class GCVersioned(Versioned):
    """Versioned state with built-in garbage collection via rebase.

    - If the branch holds at most ``high_water_bytes``: nothing happens.
    - Above it: drop the coldest unprotected keys until at most
      ``low_water_bytes`` (default 80% of high) remain, as a fresh root
      commit; then sweep what no branch reaches.

    Every ``commit()`` runs the check. Keys whose last ``/`` segment starts
    with ``__`` are protected, unless ``is_protected`` says otherwise: the
    engine's rebase calls it for the keys it would drop.
    """

    def __init__(
        self,
        store: Optional[KVStore] = None,
        *,
        commit_hash: Optional[str] = None,
        branch: str = "main",
        high_water_bytes: int,
        low_water_bytes: Optional[int] = None,
        is_protected: Callable[[str], bool] = _is_system_key,
    ) -> None:
        super().__init__(store, commit_hash=commit_hash, branch=branch)
        # Coldest-first needs recency: the store records reads and writes
        # from now on (a store no GCVersioned uses skips that cost).
        self._native.track_access(True)
        if high_water_bytes <= 0:
            raise ValueError("high_water_bytes must be > 0")
        self.high_water = high_water_bytes
        self.low_water = (
            low_water_bytes
            if low_water_bytes is not None
            else int(high_water_bytes * 0.8)
        )
        if self.low_water <= 0 or self.low_water > self.high_water:
            self.low_water = int(high_water_bytes * 0.8)
        self._is_protected = is_protected
        self.last_rebase_result: Optional[RebaseResult] = None

    def commit(self, updates=None, removals=None, **kwargs) -> MergeResult:  # type: ignore[override]
        """Commit changes (see ``Versioned.commit``), then run GC if the
        branch is above the high water mark."""
        result = super().commit(updates, removals, **kwargs)
        if result.merged:
            self.last_rebase_result = self.maybe_rebase()
        return result

    def _report(self, report: dict) -> RebaseResult:
        performed = report["status"] == "rebased"
        orphans = 0
        if performed:
            self._load(report["commit"], update_base=True)
            orphans = self._native.sweep()
        return RebaseResult(
            performed=performed,
            new_commit=report["commit"] if performed else None,
            dropped_keys=tuple(report["dropped"]),
            kept_keys=tuple(self.keys()),
            total_size_before=report["bytes_before"],
            total_size_after=report["bytes_after"],
            orphans_cleaned=orphans,
        )

    def maybe_rebase(self) -> RebaseResult:
        """Run rebase only if the branch is above the high water mark."""
        self._check_head()
        return self._report(
            self._native.rebase(
                self._branch, self.high_water, self.low_water, self._protected_rule()
            )
        )

    def _protected_rule(self) -> Optional[Callable[[str], bool]]:
        """The custom protection rule, or None for the engine's default
        (the same rule, applied without calling into Python)."""
        if self._is_protected is _is_system_key:
            return None
        return self._is_protected

    def _check_head(self) -> None:
        if self._native.head(self._branch) != self._base_commit:
            raise ConcurrencyError("HEAD changed during rebase.")

    def rebase(
        self,
        keep_keys: Optional[Set[str]] = None,
        *,
        info: Optional[dict] = None,
    ) -> RebaseResult:
        """Rebase now: a fresh root commit keeping ``keep_keys`` (plus the
        protected keys) if given, else the warmest keys down to the low
        water mark.

        ``info`` is accepted for compatibility; the engine's rebase commit
        records its own message.
        """
        self._check_head()
        if keep_keys is not None:
            keep = set(keep_keys)
            rule = self._protected_rule()
            if rule is not None:
                keep.update(k for k in self.keys() if rule(k))
            report = self._native.rebase_keep(self._branch, sorted(keep))
        else:
            report = self._native.rebase(
                self._branch, self.low_water, self.low_water, self._protected_rule()
            )
        return self._report(report)

    def clean_orphans(self, min_age: float = 3600) -> int:
        """Delete every object no branch or tag reaches (the engine's
        sweep; on the embedded stores it needs no age, and ``min_age`` is
        accepted for compatibility). Returns the number of objects freed."""
        return self._native.sweep()
