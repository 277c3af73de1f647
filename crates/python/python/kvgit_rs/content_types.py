"""Merge functions for typed values."""

from __future__ import annotations

from typing import Any, Callable, Optional

MergeFn = Callable[[Optional[Any], Any, Any], Any]
"""Merge function: (old_value | None, our_value, their_value) -> merged_value.

Any argument can be None (key absent or removed on that side). A function
with a true ``merge_equal_changes`` attribute is also called when both
sides changed a key to the same value (as accumulating functions need).
"""


def counter() -> MergeFn:
    """Counter merge: ours + theirs - old.

    Called even when both sides wrote the same value, so two equal
    increments both count.
    """

    def merge(old: Optional[int], ours: Optional[int], theirs: Optional[int]) -> int:
        """ours + theirs - old (an absent old value counts as 0)."""
        base = old if old is not None else 0
        return ours + theirs - base  # type: ignore[operator]

    merge.merge_equal_changes = True  # type: ignore[attr-defined]
    return merge


def last_writer_wins() -> MergeFn:
    """Last-writer-wins: always returns theirs (the branch head's value)."""
    return lambda old, ours, theirs: theirs
