"""Type stubs of ``kvgit_rs._native``, the Rust half of kvgit_rs (see
``crates/python/src/lib.rs``). Commit ids are 64-character hex strings."""

from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

_MergeFn = Callable[[Optional[bytes], Optional[bytes], Optional[bytes]], Optional[bytes]]
_Landed = Tuple[str, str, List[str]]

class Snap:
    """A read view of one commit."""

    @property
    def commit(self) -> str:
        """The commit id."""
    def get(self, key: str) -> Optional[bytes]:
        """The value of ``key``, or None."""
    def get_many(self, keys: List[str]) -> Dict[str, bytes]:
        """The values of the ``keys`` present."""
    def contains(self, key: str) -> bool:
        """True if ``key`` has a value."""
    def keys(self, prefix: Optional[str] = None) -> List[str]:
        """Every key in order (those starting with ``prefix``, if given)."""
    def __len__(self) -> int: ...
    def value_bytes(self) -> int:
        """The total size of the values, in bytes."""

class Subscription:
    """The heads a branch moves to, as this process moves it."""

    def poll(self) -> List[str]:
        """The heads received since the last call, oldest first."""

class Store:
    """A kvgit store (``kvgit::Db``) and the Python layer's operations."""

    @staticmethod
    def memory() -> "Store":
        """A new store in memory."""
    @staticmethod
    def open(target: str) -> "Store":
        """Opens (or creates) the store at a directory or URL."""
    @staticmethod
    def adapter(kv: Any) -> "Store":
        """A store over a Python ``KVStore`` object."""
    # the key-value view (kvgit 0.1.3's KVStore)
    def kv_get(self, key: str) -> Optional[bytes]:
        """The value of ``key`` in the key-value view."""
    def kv_set(self, key: str, value: bytes) -> None:
        """Sets ``key`` in the key-value view."""
    def kv_remove(self, key: str) -> None:
        """Removes ``key`` from the key-value view."""
    def kv_keys(self) -> List[str]:
        """Every key of the key-value view."""
    def kv_cas(self, key: str, value: bytes, expected: Optional[bytes]) -> bool:
        """Compare-and-swap in the key-value view; True if it swapped."""
    # branches, tags, revisions
    def head(self, branch: str) -> Optional[str]:
        """The head of ``branch``, or None."""
    def ensure_branch(self, branch: str) -> str:
        """The head of ``branch``, created if missing."""
    def create_branch(self, branch: str, at: str) -> None:
        """Creates ``branch`` at ``at``; ValueError if it exists."""
    def set_branch(self, branch: str, at: str) -> None:
        """Points ``branch`` at ``at``."""
    def delete_branch(self, branch: str) -> None:
        """Deletes ``branch``."""
    def branches(self) -> List[str]:
        """Every branch name, sorted."""
    def tag(self, name: str, at: str) -> None:
        """Tags commit ``at`` as ``name``."""
    def tags(self) -> List[Tuple[str, str]]:
        """Every tag as (name, commit)."""
    def delete_tag(self, name: str) -> None:
        """Deletes tag ``name``."""
    def resolve(self, rev: str) -> str:
        """The commit a branch, tag or id prefix names."""
    # commits
    def exists(self, commit: str) -> bool:
        """True if ``commit`` is a commit of this store."""
    def snapshot(self, commit: str, branch: Optional[str] = None) -> Snap:
        """A read view of ``commit``."""
    def parents(self, commit: str) -> List[str]:
        """The parents of ``commit``."""
    def metadata(self, commit: str) -> Dict[str, str]:
        """The metadata of ``commit``."""
    def commit_facts(self, commit: str) -> Tuple[str, int, int]:
        """(message, time in microseconds, height) of ``commit``."""
    def history(self, start: str, all_parents: bool = False, limit: int = ...) -> List[str]:
        """Commits from ``start``, newest first."""
    def merge_base(self, a: str, b: str) -> Optional[str]:
        """The merge base of two commits, or None."""
    def diff(self, a: str, b: str) -> Tuple[List[str], List[str], List[str]]:
        """(added, removed, modified) keys from ``a`` to ``b``."""
    def write_commit(
        self,
        parent: str,
        updates: Mapping[str, bytes],
        removals: List[str],
        metadata: Optional[Dict[str, str]] = None,
        message: str = "",
    ) -> str:
        """Writes a commit on top of ``parent``, on no branch."""
    def commit(
        self,
        branch: str,
        base: str,
        updates: Mapping[str, bytes],
        removals: List[str],
        merge_fns: Optional[Dict[str, _MergeFn]] = None,
        default: Optional[_MergeFn] = None,
        metadata: Optional[Dict[str, str]] = None,
        message: str = "",
    ) -> Tuple[str, str, List[str], Snap]:
        """Commits to ``branch`` a transaction based on ``base``;
        (strategy, head, auto-merged keys, read view of the head)."""
    def merge(
        self,
        branch: str,
        commit: str,
        merge_fns: Optional[Dict[str, _MergeFn]] = None,
        default: Optional[_MergeFn] = None,
        metadata: Optional[Dict[str, str]] = None,
    ) -> _Landed:
        """Merges ``commit`` into ``branch``."""
    def key_history(
        self, branch: str, key: str, limit: int = ...
    ) -> List[Tuple[str, Optional[bytes]]]:
        """The commits of ``branch`` where ``key`` changed, with its value."""
    # hooks and subscriptions
    def add_validator(self, name: str, hook: Callable[[Dict[str, Any]], Any]) -> None:
        """Adds validation hook ``name`` (False or an exception refuses)."""
    def remove_validator(self, name: str) -> None:
        """Removes the validation hooks named ``name``."""
    def subscribe(self, branch: str) -> Subscription:
        """Subscribes to the heads of ``branch``."""
    # garbage collection
    def rebase(
        self,
        branch: str,
        high: int,
        low: Optional[int] = None,
        protected: Optional[Callable[[str], bool]] = None,
    ) -> Dict[str, Any]:
        """High/low-water rebase of ``branch``; ``protected`` (a key's
        predicate) replaces the default protection rule."""
    def rebase_keep(self, branch: str, keep: List[str]) -> Dict[str, Any]:
        """Rebase of ``branch`` keeping the keys ``keep``."""
    def sweep(self) -> int:
        """Deletes what no branch or tag reaches; the objects freed."""
    def flush(self) -> None:
        """Writes buffered bookkeeping to the store."""
    def compact(self) -> Optional[Tuple[int, int]]:
        """Rewrites the files to hold only live data: (bytes before,
        bytes after), or None for a store that does not compact."""
    def track_access(self, on: bool) -> None:
        """Starts (or stops) recording access recency (GCVersioned's)."""
    # -- remotes --
    @staticmethod
    def url_kind(url: str) -> str:
        """``"path"``, ``"file"``, ``"ssh"`` or ``"postgres"``."""
    @staticmethod
    def get_verified(
        url: str,
        branch: str,
        key: str,
        connect: Optional[Dict[str, Any]] = None,
    ) -> Tuple[Optional[bytes], str]:
        """``key`` of ``branch`` at ``url`` with its Merkle proof checked:
        (value or None, the head it is proven against)."""
    @staticmethod
    def clone_from(
        url: str,
        path: str,
        depth: Optional[int] = None,
        connect: Optional[Dict[str, Any]] = None,
    ) -> Tuple["Store", Dict[str, Any]]:
        """Clones the store at ``url`` into a new store at ``path``."""
    def add_remote(self, name: str, url: str) -> None:
        """Adds remote ``name`` at ``url``."""
    def remove_remote(self, name: str) -> None:
        """Removes remote ``name``."""
    def remotes(self) -> List[Tuple[str, str]]:
        """(name, url) of each remote."""
    def fetch(
        self,
        remote: str,
        branches: List[str],
        depth: Optional[int] = None,
        connect: Optional[Dict[str, Any]] = None,
    ) -> Dict[str, Any]:
        """Fetches ``branches`` (all if empty) into remote-tracking refs."""
    def tracking(self, remote: str, branch: str) -> Optional[str]:
        """The head ``remote``'s ``branch`` had at the last fetch or push."""
    def push(
        self,
        branch: str,
        remote: str,
        remote_branch: Optional[str] = None,
        force: bool = False,
        connect: Optional[Dict[str, Any]] = None,
    ) -> Dict[str, Any]:
        """Pushes ``branch`` to ``remote``."""
