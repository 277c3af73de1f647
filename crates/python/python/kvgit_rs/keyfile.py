"""``kvgit_rs.open``: one key of a branch as a file, committed atomically.

::

    with kvgit_rs.open(db, "config.toml", "r+") as f:
        text = f.read()
        f.seek(0)
        f.truncate()
        f.write(text.replace("debug = false", "debug = true"))

The block reads the key as it is on the branch's head when it opens. When
it exits without an exception, what was written is committed as one
commit (a transaction based on the commit read, so a concurrent change of
the same key raises ``MergeConflict`` instead of being overwritten;
changes to other keys merge). When it exits with an exception, nothing is
committed.

With a remote (``remote="origin"`` on a store that has one, or a
``file://``, ``ssh://`` or ``host:path`` URL as the target), the block
works as gitkv's does: it reads the remote's branch as it is now; on a
clean exit it commits and pushes, and when another clone pushed first it
pulls (a three-way merge) and pushes once more. If that fails too, the
exception propagates and the local branch is put back: the change is on
the remote or nowhere. A URL target in mode ``"r"`` reads the key with a
Merkle proof without copying the store; in a writing mode it works in a
temporary shallow clone, removed afterwards.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
from typing import IO, Any, Dict, Iterator, Optional

from ._native import Store
from .db import Db, _connect_args, _open_store
from .errors import PushRejected
from .versioned import Versioned, _native_of

_MODES = {"r", "w", "a", "r+", "w+", "a+"}


class _Value(io.BytesIO):
    """The file's bytes; keeps them if the file is closed in the block."""

    kept: Optional[bytes] = None

    def close(self) -> None:
        """Keeps the bytes, then closes."""
        if not self.closed:
            self.kept = self.getvalue()
        super().close()


def _store_of(target: Any) -> Any:
    if isinstance(target, str):
        return _open_store(target)
    if isinstance(target, Versioned):
        return target._native
    if isinstance(target, Db):
        return target.native
    return _native_of(target)


def _is_remote_url(target: Any) -> bool:
    """True for a ``file://``, ``ssh://`` or ``host:path`` URL (a store
    reached through ``kvgit serve``, not opened here)."""
    if not isinstance(target, str) or target == ":memory:":
        return False
    try:
        return Store.url_kind(target) in ("file", "ssh")
    except ValueError:
        return False


def _file_over(
    initial: bytes,
    base_mode: str,
    binary: bool,
    encoding: Optional[str],
    errors: Optional[str],
    newline: Optional[str],
) -> "tuple[_Value, Any]":
    raw = _Value(initial)
    if base_mode.startswith("a"):
        raw.seek(0, io.SEEK_END)
    buffer: Any
    if "+" in base_mode:
        buffer = io.BufferedRandom(raw)  # type: ignore[arg-type]
    elif base_mode == "r":
        buffer = io.BufferedReader(raw)  # type: ignore[arg-type]
    else:
        buffer = io.BufferedWriter(raw)  # type: ignore[arg-type]
    f: Any = buffer
    if not binary:
        f = io.TextIOWrapper(
            buffer,
            encoding=encoding or "utf-8",
            errors=errors,
            newline=newline,
            write_through=True,
        )
    return raw, f


@contextlib.contextmanager
def open(  # noqa: A001 - named after the builtin on purpose
    target: Any,
    key: str,
    mode: str = "r",
    *,
    branch: str = "main",
    encoding: Optional[str] = None,
    errors: Optional[str] = None,
    newline: Optional[str] = None,
    info: Optional[dict] = None,
    remote: Optional[str] = None,
    connect: Optional[Dict[str, Any]] = None,
) -> Iterator[IO[Any]]:
    """Opens ``key`` of ``branch`` as a file, like the builtin ``open``.

    Args:
        target: A ``Db``, a ``Versioned``, a ``KVStore`` or a path or URL.
        key: The key.
        mode: ``"r"``, ``"w"``, ``"a"``, ``"r+"``, ``"w+"`` or ``"a+"``,
            with ``"b"`` for bytes (default text, ``"t"`` allowed).
        branch: The branch (created if missing).
        encoding, errors, newline: As for the builtin, in text mode
            (default encoding UTF-8).
        info: Commit info dict for the commit the block makes.
        remote: A remote of the store (``"origin"``): read its branch as
            it is now, push the commit on exit (see the module's text).
        connect: How to reach ``file://`` and ssh remotes:
            ``serve_program``, ``ssh_program``, ``ssh_args``.

    Yields:
        A file object over the key's value.

    Raises:
        FileNotFoundError: Mode ``"r"`` or ``"r+"`` and the key is absent.
        ValueError: An unknown mode.
        MergeConflict: On exit, if another writer changed the key since
            the block read it.
        ValidationError: On exit, if a validation hook refused the commit
            (here, or the remote's on the push).
        PushRejected: On exit, if the push was refused again after the
            pull and merge.
    """
    if not isinstance(key, str):
        raise TypeError("key must be str")
    if not isinstance(mode, str):
        raise TypeError("mode must be str")
    binary = "b" in mode
    base_mode = mode.replace("b", "").replace("t", "")
    if base_mode not in _MODES or ("b" in mode and "t" in mode) or len(set(mode)) != len(mode):
        raise ValueError(f"invalid mode: {mode!r}")
    if binary and (encoding is not None or errors is not None or newline is not None):
        raise ValueError("binary mode doesn't take an encoding, errors or newline argument")
    connect = _connect_args({}, connect or {})
    url = _is_remote_url(target)
    if base_mode == "r" and (url or remote is not None):
        value = _read_remote(target, key, branch, remote, connect, url)
        if value is None:
            where = target if url else f"{remote}/{branch}"
            raise FileNotFoundError(f"no key {key!r} on {where}")
        _, f = _file_over(value, base_mode, binary, encoding, errors, newline)
        with f:
            yield f
        return
    if url:
        work = tempfile.mkdtemp(prefix="kvgit-open-")
        try:
            clone = Db.clone(target, os.path.join(work, "store"), depth=1, **connect)
            with open(
                clone,
                key,
                mode,
                branch=branch,
                encoding=encoding,
                errors=errors,
                newline=newline,
                info=info,
                remote="origin",
                connect=connect,
            ) as f:
                yield f
            del clone
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return

    native = _store_of(target)
    db = None
    if remote is not None:
        db = Db(native)
        db.connect.update(connect)
        try:
            db.pull(branch, remote)
        except KeyError:
            pass  # the remote has no such branch yet: the push creates it
    versioned = Versioned(native, branch=branch)
    current = versioned.get(key)
    if base_mode.startswith("r") and current is None:
        raise FileNotFoundError(f"no key {key!r} on branch {branch!r}")
    initial = b"" if base_mode.startswith("w") else (current or b"")
    raw, f = _file_over(initial, base_mode, binary, encoding, errors, newline)
    writes = base_mode != "r"
    try:
        yield f
    except BaseException:
        raise
    else:
        if writes:
            if raw.closed:
                data = raw.kept or b""
            else:
                f.flush()
                data = raw.getvalue()
            if data != current:
                before = versioned.base_commit
                versioned.commit({key: data}, info=info)
                if db is not None and remote is not None:
                    _push_or_undo(db, branch, remote, before, versioned.current_commit)
    finally:
        if not f.closed:
            f.close()


def _read_remote(
    target: Any,
    key: str,
    branch: str,
    remote: Optional[str],
    connect: Dict[str, Any],
    url: bool,
) -> Optional[bytes]:
    """``key`` of ``branch`` as the remote has it now: read with its
    Merkle proof from a URL, or fetched from remote ``remote`` of the
    store ``target``."""
    if url:
        value, _ = Store.get_verified(target, branch, key, connect)
        return value
    db = Db(_store_of(target))
    db.connect.update(connect)
    db.fetch(str(remote), [branch])
    head = db.tracking(str(remote), branch)
    return None if head is None else db.snapshot(head).get(key)


def _push_or_undo(db: Any, branch: str, remote: str, before: str, ours: str) -> None:
    """Pushes ``branch``; refused as not a fast-forward, pulls (merging)
    and pushes once more. If that fails, puts the local branch back at
    ``before`` (unless another writer here moved it since) and re-raises."""
    try:
        try:
            db.push(branch, remote)
        except PushRejected:
            db.pull(branch, remote)
            db.push(branch, remote)
    except BaseException:
        head = db.head(branch)
        if head == ours or (head is not None and ours in db.log(head, limit=2)):
            db._native.set_branch(branch, before)
        raise
