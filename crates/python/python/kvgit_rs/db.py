"""Db: the kvgit crate's store for Python, beyond kvgit 0.1.3's API.

A ``Db`` opens a store by path or URL (``":memory:"``, a directory for the
embedded sled store, ``postgres://...`` when the engine was built with
PostgreSQL) and reaches the crate's features: branches (as ``Versioned``),
tags, snapshots of any revision, diff, a key's history, validation hooks,
subscriptions and remotes (clone, fetch, pull, push).

Sharing a store between machines, as with git::

    origin = Db.open("/srv/shared.kvgit")      # or ssh://host/path
    copy = Db.clone("/srv/shared.kvgit", "work.kvgit")
    copy.branch("main").commit({"k": b"v"})
    copy.push("main")                          # PushRejected: pull first
    copy.pull("main")                          # fetch + three-way merge

Remote URLs: a store path (opened in this process), ``file:///path`` and
``ssh://[user@]host[:port]/path`` or ``host:path`` (a ``kvgit serve
--stdio`` process, locally or through the ``ssh`` client: the ``kvgit``
command must be installed there; ``serve_program=`` names it elsewhere),
``postgres://...``.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from ._native import Store, Subscription
from .versioned import BytesMergeFn, DiffResult, MergeResult, Versioned

#: A transfer's report: ``objects_received``, ``bytes_received``,
#: ``objects_sent``, ``bytes_sent``, ``round_trips``, ``refs`` (a list of
#: ``(ref, old, new)``, None where absent) and ``shallow`` (commits a
#: shallow fetch stored without their parents).
Report = Dict[str, Any]

_CONNECT = ("serve_program", "ssh_program", "ssh_args")


def _connect_args(defaults: Dict[str, Any], given: Dict[str, Any]) -> Dict[str, Any]:
    """How to reach ``file://`` and ssh remotes: ``serve_program`` (run as
    ``PROGRAM serve --stdio PATH``, default ``kvgit``), ``ssh_program``
    (default ``ssh``) and ``ssh_args`` (a list)."""
    unknown = set(given) - set(_CONNECT)
    if unknown:
        raise TypeError(f"unexpected keyword arguments: {sorted(unknown)}")
    merged = dict(defaults)
    merged.update({k: v for k, v in given.items() if v is not None})
    if "ssh_args" in merged:
        merged["ssh_args"] = [str(a) for a in merged["ssh_args"]]
    return merged

#: What a validation hook receives: ``branch``, ``message``, ``kind``
#: (``"commit"``, ``"merge"``, ``"fast_forward"``, ``"reset"``,
#: ``"rebase"``, ``"create"``, ``"delete"``), ``old_head``, ``new_head``
#: (None when the branch is deleted) and ``changes`` (a list of
#: ``(key, kind, old, new)``).
Check = Dict[str, Any]

#: A validation hook: returns False or raises to refuse a branch move.
Validator = Callable[[Check], Any]


def _open_store(target: str) -> Store:
    """The store at ``target``; a directory is opened once per process
    (shared with ``Disk``: sled lets one opener hold it)."""
    if target == ":memory:":
        return Store.memory()
    if "://" in target:
        return Store.open(target)
    from .kv.disk import _store_at

    return _store_at(target)


class Snapshot:
    """A read-only view of one commit: a mapping of str keys to bytes."""

    def __init__(self, snap: Any) -> None:
        self._snap = snap

    @property
    def commit(self) -> str:
        """The commit id (64 hex characters)."""
        return self._snap.commit

    def get(self, key: str, default: Optional[bytes] = None) -> Optional[bytes]:
        """The value of ``key``, or ``default``."""
        v = self._snap.get(key)
        return default if v is None else v

    def __getitem__(self, key: str) -> bytes:
        v = self._snap.get(key)
        if v is None:
            raise KeyError(key)
        return v

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._snap.contains(key)

    def keys(self, prefix: Optional[str] = None) -> List[str]:
        """The keys, in order (those starting with ``prefix``, if given)."""
        return self._snap.keys(prefix)

    def __iter__(self) -> Iterator[str]:
        return iter(self._snap.keys())

    def items(self) -> Iterator[Tuple[str, bytes]]:
        """``(key, value)`` pairs, in key order."""
        for k in self._snap.keys():
            v = self._snap.get(k)
            if v is not None:
                yield k, v

    def __len__(self) -> int:
        return len(self._snap)

    def __repr__(self) -> str:
        return f"Snapshot(commit={self.commit[:12]}, keys={len(self)})"


class Db:
    """A kvgit store. ``Db.open(path_or_url)`` or ``Db.memory()``.

    Commits made through any ``Versioned``, ``Staged`` or ``kvgit_rs.open``
    on this store go through the engine's one branch-move path: the
    validation hooks added here see them and can refuse them, and
    subscriptions receive their heads.
    """

    def __init__(self, native: Store) -> None:
        if not isinstance(native, Store):
            raise TypeError("use Db.open(path_or_url) or Db.memory()")
        self._native = native
        #: Defaults of ``serve_program``, ``ssh_program`` and ``ssh_args``
        #: for this store's transfers (each call's own arguments win).
        self.connect: Dict[str, Any] = {}

    @classmethod
    def open(cls, target: str) -> "Db":
        """Opens (or creates) the store at ``target``: ``":memory:"``, a
        directory (the embedded store) or a URL (``postgres://...``)."""
        if not isinstance(target, str):
            raise TypeError("target must be a str path or URL")
        return cls(_open_store(target))

    @classmethod
    def memory(cls) -> "Db":
        """A new store in memory."""
        return cls(Store.memory())

    @property
    def native(self) -> Store:
        """The native store (accepted wherever a KVStore is)."""
        return self._native

    # -- branches --

    def branch(self, name: str = "main") -> Versioned:
        """A ``Versioned`` on branch ``name`` (created if missing)."""
        return Versioned(self._native, branch=name)  # type: ignore[arg-type]

    def branches(self) -> List[str]:
        """Every branch name, sorted."""
        return self._native.branches()

    def head(self, branch: str = "main") -> Optional[str]:
        """The head of ``branch``, or None if there is no such branch."""
        return self._native.head(branch)

    def delete_branch(self, name: str) -> None:
        """Deletes branch ``name`` (its commits stay until a sweep)."""
        self._native.delete_branch(name)

    # -- revisions, tags, snapshots --

    def resolve(self, rev: str) -> str:
        """The commit a revision names: a branch, a tag or a (prefix of
        a) commit id. KeyError if none."""
        return self._native.resolve(rev)

    def tag(self, name: str, rev: str) -> str:
        """Tags the commit ``rev`` names as ``name``; returns the commit."""
        commit = self.resolve(rev)
        self._native.tag(name, commit)
        return commit

    def tags(self) -> Dict[str, str]:
        """Every tag, name to commit."""
        return dict(self._native.tags())

    def delete_tag(self, name: str) -> None:
        """Deletes tag ``name``."""
        self._native.delete_tag(name)

    def snapshot(self, rev: str = "main") -> Snapshot:
        """A read-only view of the commit ``rev`` names."""
        return Snapshot(self._native.snapshot(self.resolve(rev)))

    checkout = snapshot

    def diff(self, a: str, b: str) -> DiffResult:
        """Keys added, removed and modified from revision ``a`` to ``b``."""
        added, removed, modified = self._native.diff(self.resolve(a), self.resolve(b))
        return DiffResult(frozenset(added), frozenset(removed), frozenset(modified))

    def key_history(
        self, key: str, branch: str = "main", limit: Optional[int] = None
    ) -> List[Tuple[str, Optional[bytes]]]:
        """The commits of ``branch`` (first-parent line, newest first)
        where ``key`` changed, with its value there (None: deleted)."""
        if limit is None:
            return self._native.key_history(branch, key)
        return self._native.key_history(branch, key, limit)

    def log(self, rev: str = "main", limit: Optional[int] = None) -> List[str]:
        """Commit ids from ``rev`` along first parents, newest first."""
        start = self.resolve(rev)
        if limit is None:
            return self._native.history(start, False)
        return self._native.history(start, False, limit)

    # -- hooks and subscriptions --

    def add_validator(self, name: str, hook: Validator) -> None:
        """Adds validation hook ``name``: ``hook(check)`` runs before every
        branch move lands (commits from Python included). Returning False
        or raising refuses the move: the commit raises ``ValidationError``
        and the branch stays where it was."""
        self._native.add_validator(name, hook)

    def remove_validator(self, name: str) -> None:
        """Removes the validation hooks named ``name``."""
        self._native.remove_validator(name)

    def subscribe(self, branch: str = "main") -> Subscription:
        """A subscription to ``branch``'s heads: ``poll()`` returns the
        heads this process moved it to since the last call."""
        return self._native.subscribe(branch)

    # -- remotes --

    @classmethod
    def clone(
        cls, url: str, path: str, *, depth: Optional[int] = None, **connect: Any
    ) -> "Db":
        """Clones the store at ``url`` into a new store at directory
        ``path``: every branch, with remote ``origin`` pointing at ``url``
        (``depth=1``: only the heads' commits and trees). A clone cut short
        leaves a store without branches; cloning again into it fetches only
        what is missing. ``connect``: ``serve_program``, ``ssh_program``,
        ``ssh_args``."""
        if not isinstance(url, str) or not isinstance(path, str):
            raise TypeError("url and path must be str")
        args = _connect_args({}, connect)
        native, _ = Store.clone_from(url, path, depth, args)
        from .kv.disk import _register

        db = cls(_register(path, native))
        db.connect = args
        return db

    def add_remote(self, name: str, url: str) -> None:
        """Adds remote ``name`` at ``url`` (or points it there)."""
        self._native.add_remote(name, url)

    def remove_remote(self, name: str) -> None:
        """Removes remote ``name`` and its remote-tracking refs."""
        self._native.remove_remote(name)

    def remotes(self) -> Dict[str, str]:
        """The remotes, name to URL."""
        return dict(self._native.remotes())

    def fetch(
        self,
        remote: str = "origin",
        branches: Optional[List[str]] = None,
        *,
        depth: Optional[int] = None,
        **connect: Any,
    ) -> Report:
        """Fetches ``branches`` (default: every branch) of ``remote`` into
        the remote-tracking refs ``origin/main`` etc. (which ``resolve``,
        ``snapshot``, ``diff`` and ``log`` accept); no local branch moves.
        Only objects this store lacks travel."""
        args = _connect_args(self.connect, connect)
        return self._native.fetch(remote, list(branches or []), depth, args)

    def tracking(self, remote: str = "origin", branch: str = "main") -> Optional[str]:
        """The head ``remote``'s ``branch`` had at the last fetch or push
        (None if never seen)."""
        return self._native.tracking(remote, branch)

    def pull(
        self,
        branch: str = "main",
        remote: str = "origin",
        *,
        remote_branch: Optional[str] = None,
        merge_fns: Optional[Dict[str, BytesMergeFn]] = None,
        default_merge: Optional[BytesMergeFn] = None,
        info: Optional[dict] = None,
        **connect: Any,
    ) -> MergeResult:
        """Fetches ``remote_branch`` (default ``branch``) of ``remote`` and
        merges it into local ``branch``: a fast-forward when possible, else
        a three-way merge with ``merge_fns`` (bytes-level, as for
        ``Versioned.merge``). A missing local branch is created at the
        remote's head. Raises ``MergeConflict`` on unresolved keys."""
        theirs_name = remote_branch or branch
        self.fetch(remote, [theirs_name], **connect)
        theirs = self._native.tracking(remote, theirs_name)
        if theirs is None:
            raise KeyError(f"remote {remote!r} has no branch {theirs_name!r}")
        if self._native.head(branch) is None:
            self._native.create_branch(branch, theirs)
            return MergeResult(True, theirs, "fast_forward", (), ())
        return self.branch(branch).merge(
            commit=theirs, merge_fns=merge_fns, default_merge=default_merge, info=info
        )

    def push(
        self,
        branch: str = "main",
        remote: str = "origin",
        *,
        remote_branch: Optional[str] = None,
        force: bool = False,
        **connect: Any,
    ) -> Report:
        """Sends ``remote`` the objects of ``branch`` it lacks, then moves
        its branch (``remote_branch``, default the same name) by
        compare-and-swap from the head last seen there. Raises
        ``PushRejected`` (a ``ConcurrencyError``) when that is not a
        fast-forward, unless ``force``; ``ValidationError`` when the
        remote's hooks refuse it."""
        args = _connect_args(self.connect, connect)
        return self._native.push(branch, remote, remote_branch, force, args)

    # -- maintenance --

    def sweep(self) -> int:
        """Deletes what no branch or tag reaches; the objects freed."""
        return self._native.sweep()

    def compact(self) -> Optional[Tuple[int, int]]:
        """Rewrites the store's files to hold only live data, giving the
        space of swept objects back to the file system (run it after
        ``sweep``): ``(bytes before, bytes after)``, or None for a store
        that does not compact this way (in memory, PostgreSQL)."""
        return self._native.compact()

    def flush(self) -> None:
        """Writes buffered bookkeeping to the store."""
        self._native.flush()

    def __repr__(self) -> str:
        return f"Db(branches={self.branches()!r})"
