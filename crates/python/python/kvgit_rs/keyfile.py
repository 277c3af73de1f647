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
"""

from __future__ import annotations

import contextlib
import io
from typing import IO, Any, Iterator, Optional

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
        from .db import _open_store

        return _open_store(target)
    if isinstance(target, Versioned):
        return target._native
    return _native_of(target)


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

    Yields:
        A file object over the key's value.

    Raises:
        FileNotFoundError: Mode ``"r"`` or ``"r+"`` and the key is absent.
        ValueError: An unknown mode.
        MergeConflict: On exit, if another writer changed the key since
            the block read it.
        ValidationError: On exit, if a validation hook refused the commit.
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
    versioned = Versioned(_store_of(target), branch=branch)
    current = versioned.get(key)
    if base_mode.startswith("r") and current is None:
        raise FileNotFoundError(f"no key {key!r} on branch {branch!r}")
    initial = b"" if base_mode.startswith("w") else (current or b"")
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
                versioned.commit({key: data}, info=info)
    finally:
        if not f.closed:
            f.close()
