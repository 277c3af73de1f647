"""kvgit error types (kvgit 0.1.3's, plus the engine's base class)."""

from __future__ import annotations

from typing import Dict, Optional, Set


class KvgitError(Exception):
    """Base class of the errors the kvgit engine reports (storage errors,
    corrupt data, a store held by another process, ...)."""


class ValidationError(KvgitError):
    """A validation hook rejected a commit."""


class ConcurrencyError(KvgitError):
    """Raised when a concurrent write conflict occurs during merge.

    Another writer moved HEAD to a commit that shares no history with
    ours, or kept moving it through every retry. The caller should
    refresh and retry.
    """


class MergeConflict(KvgitError):
    """Raised when a three-way merge encounters unresolvable conflicts.

    Attributes:
        conflicting_keys: The set of keys that could not be auto-merged.
        merge_errors: The exception each failing merge function raised,
            by key.
    """

    def __init__(
        self,
        conflicting_keys: Set[str],
        merge_errors: Optional[Dict[str, BaseException]] = None,
    ) -> None:
        self.conflicting_keys = set(conflicting_keys)
        self.merge_errors = dict(merge_errors or {})
        keys_str = ", ".join(sorted(self.conflicting_keys))
        super().__init__(f"Merge conflict on keys: {keys_str}")


class PushRejected(ConcurrencyError):
    """A push was refused because it is not a fast-forward: the remote
    branch holds commits this one lacks (another clone pushed first).
    Pull to merge them, then push again (or push with ``force=True``)."""


class RemoteError(KvgitError):
    """A transfer with a remote failed: the connection, the peer (a bad
    object, a broken protocol, another protocol version), or the remote
    reported an error of its own."""
