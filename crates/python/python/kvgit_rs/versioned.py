"""Versioned: a branch of a kvgit store, seen at one commit.

Commits, merges, history, diff and branches run in the Rust engine; this
module converts arguments and results and keeps the instance's place (its
commit, and the head it last saw).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import (
    Any,
    Callable,
    Dict,
    FrozenSet,
    Iterable,
    Iterator,
    List,
    Optional,
    Sequence,
    Set,
    Tuple,
)

from ._native import Store
from .errors import ConcurrencyError, MergeConflict
from .kv.base import KVStore
from .kv.memory import Memory

# kvgit 0.1.3's key names. Only BRANCH_HEAD means anything here: the
# key-value view of a store shows each branch head under it.
PARENT_COMMIT = "__parent_commit__%s"
COMMIT_KEYSET = "__commit_keyset__%s"
BRANCH_HEAD = "__branch_head__%s"
META_KEY = "__meta__%s"
TOTAL_VAR_SIZE_KEY = "__total_var_size__%s"
INFO_KEY = "__info__%s"

#: The commit metadata entry holding a commit's ``info`` dict (JSON).
INFO_METADATA = "kvgit.info"


def _to_bytes(obj: Any) -> bytes:
    """Encode a JSON-safe Python object to bytes."""
    return json.dumps(obj, separators=(",", ":")).encode()


def _from_bytes(raw: bytes) -> Any:
    """Decode bytes to a Python object."""
    return json.loads(raw)


BytesMergeFn = Callable[[Optional[bytes], Optional[bytes], Optional[bytes]], Optional[bytes]]
"""Merge function: (old_value, our_value, their_value) -> merged_value.

Any argument can be None (key absent or removed on that side). Returning
None deletes the key.
"""


@dataclass(frozen=True)
class DiffResult:
    """Key-level differences between two commits."""

    added: FrozenSet[str]
    removed: FrozenSet[str]
    modified: FrozenSet[str]


class _LazyKeys(Sequence):
    """The keys of a commit, listed on first use (a tuple's interface)."""

    def __init__(self, snap: Any) -> None:
        self._snap = snap
        self._keys: Optional[Tuple[str, ...]] = None

    def _get(self) -> Tuple[str, ...]:
        if self._keys is None:
            self._keys = tuple(self._snap.keys())
            self._snap = None
        return self._keys

    def __getitem__(self, i: Any) -> Any:
        return self._get()[i]

    def __len__(self) -> int:
        return len(self._get())

    def __eq__(self, other: object) -> bool:
        return tuple(self._get()) == (
            tuple(other) if isinstance(other, (tuple, list, _LazyKeys)) else other
        )

    def __hash__(self) -> int:
        return hash(self._get())

    def __repr__(self) -> str:
        return repr(self._get())


@dataclass(frozen=True)
class MergeResult:
    """Result of a commit or merge.

    ``strategy`` is ``"no_op"``, ``"fast_forward"`` or ``"three_way"``;
    ``auto_merged_keys`` are the keys the merge took from this side or
    from a merge function; ``carried_keys`` the others (listed lazily).
    """

    merged: bool
    commit: Optional[str]
    strategy: str
    auto_merged_keys: Tuple[str, ...]
    carried_keys: Sequence[str] = field(default=())

    def __bool__(self) -> bool:
        return self.merged


def _native_of(store: Any) -> Store:
    """The Rust store behind ``store``: its own for Memory and Disk, else
    an adapter over the Python KVStore (one per object)."""
    native = getattr(store, "_native", None)
    if isinstance(native, Store):
        return native
    if isinstance(store, Store):
        return store
    adapter = getattr(store, "_kvgit_adapter", None)
    if isinstance(adapter, Store):
        return adapter
    if not isinstance(store, KVStore):
        raise TypeError(f"store must be a KVStore, not {type(store).__name__}")
    adapter = Store.adapter(store)
    try:
        store._kvgit_adapter = adapter  # type: ignore[attr-defined]
    except AttributeError:
        pass
    return adapter


def _check_key(key: object) -> str:
    if not isinstance(key, str):
        raise TypeError(f"keys must be str, not {type(key).__name__}")
    return key


def _info_metadata(info: Optional[dict]) -> Optional[Dict[str, str]]:
    if info is None:
        return None
    if not isinstance(info, dict):
        raise TypeError("info must be a dict")
    return {INFO_METADATA: json.dumps(info, sort_keys=True, separators=(",", ":"))}


class Versioned:
    """A commit log over a KV store: one branch of a kvgit store, seen at
    one commit.

    - ``get()`` / ``get_many()`` read the current commit;
    - ``commit()`` writes a commit and moves the branch head by
      compare-and-swap, merging three-way with commits others made
      meanwhile;
    - ``refresh()`` moves to the head; ``checkout()`` / ``history()``
      navigate commits.
    """

    def __init__(
        self,
        store: Optional[KVStore] = None,
        *,
        commit_hash: Optional[str] = None,
        branch: str = "main",
    ) -> None:
        if store is None:
            store = Memory()
        if not isinstance(branch, str):
            raise TypeError("branch must be str")
        self.store = store
        self._native = _native_of(store)
        self._branch = branch
        if commit_hash is None:
            commit_hash = self._native.ensure_branch(branch)
        if not isinstance(commit_hash, str):
            raise TypeError(
                f"commit_hash must be str, got {type(commit_hash).__name__}"
            )
        self._merge_fns: Dict[str, BytesMergeFn] = {}
        self._default_merge: Optional[BytesMergeFn] = None
        self.last_merge_result: Optional[MergeResult] = None
        self._load(commit_hash, update_base=True)

    # -- state --

    def _load(self, commit_hash: str, *, update_base: bool) -> None:
        self._snap = self._native.snapshot(commit_hash, self._branch)
        self._current_commit = commit_hash
        if update_base:
            self._base_commit = commit_hash

    @property
    def current_commit(self) -> str:
        """The commit this instance reads (and commits on top of)."""
        return self._current_commit

    @property
    def base_commit(self) -> str:
        """The branch head this instance last saw."""
        return self._base_commit

    @property
    def branch(self) -> str:
        """The branch name."""
        return self._branch

    def __repr__(self) -> str:
        return (
            f"Versioned(branch={self._branch!r}, "
            f"commit={self._current_commit[:8]}..., keys={len(self._snap)})"
        )

    @property
    def latest_head(self) -> Optional[str]:
        """The branch head in the store now (reflects other writers)."""
        return self._native.head(self._branch)

    # -- reads --

    def get(self, key: str) -> Optional[bytes]:
        """The value of ``key`` in the current commit, or None."""
        if type(key) is str:
            return self._snap.get(key)
        return self._snap.get(_check_key(key))

    def get_many(self, *keys: str) -> Dict[str, bytes]:
        """The values of the ``keys`` present in the current commit."""
        return self._snap.get_many([_check_key(k) for k in keys])

    def keys(self) -> List[str]:
        """All keys in the current commit, sorted."""
        return self._snap.keys()

    def keys_with_prefix(self, prefix: str) -> List[str]:
        """The keys of the current commit starting with ``prefix``."""
        return self._snap.keys(_check_key(prefix))

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        return self._snap.contains(key)

    def __len__(self) -> int:
        return len(self._snap)

    # -- merge functions --

    def set_merge_fn(self, key: str, fn: BytesMergeFn) -> None:
        """Register a merge function for a specific key."""
        self._merge_fns[_check_key(key)] = fn

    def set_default_merge(self, fn: BytesMergeFn) -> None:
        """Register a default merge function for unregistered keys."""
        self._default_merge = fn

    # -- writes --

    def _create_commit(
        self,
        updates: Optional[Dict[str, bytes]] = None,
        removals: Optional[Set[str]] = None,
        *,
        info: Optional[dict] = None,
    ) -> str:
        """Write a commit of the changes on top of the current commit,
        without moving the branch; the instance moves to it. Returns its id."""
        new = self._native.write_commit(
            self._current_commit,
            dict(updates or {}),
            [_check_key(k) for k in (removals or ())],
            _info_metadata(info),
        )
        self._load(new, update_base=False)
        return new

    def commit(
        self,
        updates: Optional[Dict[str, bytes]] = None,
        removals: Optional[Set[str]] = None,
        *,
        on_conflict: str = "raise",
        merge_fns: Optional[Dict[str, BytesMergeFn]] = None,
        default_merge: Optional[BytesMergeFn] = None,
        info: Optional[dict] = None,
    ) -> MergeResult:
        """Commit changes and atomically advance HEAD.

        Writes a commit of the changes on top of the current commit and
        moves the branch to it: a fast-forward if the branch still holds
        the head this instance saw, else a three-way merge with the new
        head (per-key ``merge_fns``, then ``default_merge``, then those
        set on the instance), retried while other writers keep moving it.

        Args:
            updates: Key-value pairs to add or update (bytes values).
            removals: Keys to remove.
            on_conflict: 'raise' (default) or 'abandon' when the branch
                cannot be moved (ConcurrencyError).
            merge_fns: Per-key merge functions (override instance-level).
            default_merge: Default merge function.
            info: Optional metadata dict for the commit (JSON-safe).

        Returns:
            A MergeResult (truthy when committed, falsy if abandoned).

        Raises:
            ConcurrencyError: If on_conflict='raise' and the branch holds
                unrelated history or kept moving.
            MergeConflict: If keys conflict and no merge function
                resolves them (``merge_errors`` has what functions raised).
        """
        if not updates and not removals and info is None:
            result = MergeResult(True, self._current_commit, "no_op", (), ())
            self.last_merge_result = result
            return result
        if on_conflict not in ("raise", "abandon"):
            raise ValueError(
                f"on_conflict must be 'raise' or 'abandon', got {on_conflict!r}"
            )
        metadata = _info_metadata(info)
        fns = dict(self._merge_fns)
        if merge_fns:
            fns.update(merge_fns)
        default = default_merge or self._default_merge
        saved = (self._current_commit, self._snap)
        try:
            strategy, head, auto, snap = self._native.commit(
                self._branch,
                self._current_commit,
                dict(updates or {}),
                [_check_key(k) for k in (removals or ())],
                fns or None,
                default,
                metadata,
            )
        except ConcurrencyError:
            self._current_commit, self._snap = saved
            if on_conflict == "abandon":
                result = MergeResult(False, None, "three_way", (), ())
                self.last_merge_result = result
                return result
            raise
        except MergeConflict:
            self._current_commit, self._snap = saved
            raise
        self._snap = snap
        self._current_commit = self._base_commit = head
        if strategy == "fast_forward":
            auto = []
        result = MergeResult(
            True, head, strategy, tuple(auto), _LazyKeys(self._snap)
        )
        self.last_merge_result = result
        return result

    def merge(
        self,
        *,
        branch: Optional[str] = None,
        commit: Optional[str] = None,
        merge_fns: Optional[Dict[str, BytesMergeFn]] = None,
        default_merge: Optional[BytesMergeFn] = None,
        info: Optional[dict] = None,
    ) -> MergeResult:
        """Merge another branch (or a commit) into this branch's head (not
        in kvgit 0.1.3): a fast-forward when possible, else a three-way
        merge commit; merge functions see this branch's value as
        ``theirs`` and the merged-in one as ``ours``. The instance moves
        to the new head."""
        if (branch is None) == (commit is None):
            raise ValueError("name exactly one of branch= or commit=")
        target = self._native.head(branch) if branch is not None else commit
        if target is None:
            raise KeyError(f"no branch named {branch!r}")
        fns = dict(self._merge_fns)
        if merge_fns:
            fns.update(merge_fns)
        strategy, head, auto = self._native.merge(
            self._branch,
            target,
            fns or None,
            default_merge or self._default_merge,
            _info_metadata(info),
        )
        self._load(head, update_base=True)
        result = MergeResult(True, head, strategy, tuple(auto), _LazyKeys(self._snap))
        self.last_merge_result = result
        return result

    def refresh(self) -> None:
        """Reload state from HEAD."""
        head = self._native.head(self._branch)
        if head is None:
            raise ValueError("No HEAD commit found for branch %s" % self._branch)
        self._load(head, update_base=True)

    def checkout(
        self, commit_hash: str, *, branch: Optional[str] = None
    ) -> Optional["Versioned"]:
        """A new Versioned at ``commit_hash`` (None if there is no such
        commit), on ``branch`` (default: this one's)."""
        if not isinstance(commit_hash, str) or not self._native.exists(commit_hash):
            return None
        return type(self)._at(self, commit_hash, branch or self._branch)

    def _at(self, commit_hash: str, branch: str) -> "Versioned":
        return Versioned(self.store, commit_hash=commit_hash, branch=branch)

    def create_branch(self, name: str) -> "Versioned":
        """Fork the current commit onto a new branch and return a Versioned
        on it. Raises ValueError if the branch already exists."""
        self._native.create_branch(_check_key(name), self._current_commit)
        return self._at(self._current_commit, name)

    def reset_to(self, commit_hash: str) -> bool:
        """Move the branch to ``commit_hash`` (False if no such commit)."""
        if not isinstance(commit_hash, str) or not self._native.exists(commit_hash):
            return False
        self._native.set_branch(self._branch, commit_hash)
        self._load(commit_hash, update_base=True)
        return True

    # -- history --

    def history(
        self,
        commit_hash: Optional[str] = None,
        *,
        all_parents: bool = False,
    ) -> Iterator[str]:
        """Yield the commit chain from newest to oldest.

        Args:
            commit_hash: Starting commit (default: current).
            all_parents: If True, every ancestor (full DAG), newest
                (greatest height) first; else the first-parent chain.
        """
        start = commit_hash or self._current_commit
        yield from self._native.history(start, all_parents)

    @property
    def initial_commit(self) -> str:
        """The root commit of the first-parent chain."""
        return self._native.history(self._current_commit, False)[-1]

    @staticmethod
    def branches(store: KVStore) -> List[str]:
        """List all branch names in the store."""
        return _native_of(store).branches()

    def list_branches(self) -> List[str]:
        """List all branch names in the store."""
        return self._native.branches()

    def commit_info(self, commit_hash: Optional[str] = None) -> Optional[dict]:
        """The info dict of a commit (default: current), or None."""
        raw = self._native.metadata(commit_hash or self._current_commit).get(
            INFO_METADATA
        )
        return None if raw is None else json.loads(raw)

    def diff(self, commit_a: str, commit_b: str) -> DiffResult:
        """Keys added, removed and modified from ``commit_a`` to
        ``commit_b`` (computed by the engine, skipping equal subtrees)."""
        added, removed, modified = self._native.diff(commit_a, commit_b)
        return DiffResult(frozenset(added), frozenset(removed), frozenset(modified))

    def parents(self, commit_hash: Optional[str] = None) -> Tuple[str, ...]:
        """The parent commit(s) of a commit (default: current): none for a
        root commit, one for a commit, two for a merge."""
        return tuple(self._native.parents(commit_hash or self._current_commit))

    def _load_parents(self, commit_hash: str) -> Tuple[str, ...]:
        return self.parents(commit_hash)

    def _find_lca(self, commit_a: str, commit_b: str) -> Optional[str]:
        """The merge base of two commits (None if unrelated)."""
        return self._native.merge_base(commit_a, commit_b)
