"""Store factory function."""

from __future__ import annotations

import pickle
from typing import Any, Callable, Dict, Optional

from .gc import GCVersioned
from .kv.memory import Memory
from .staged import Staged
from .versioned import Versioned


def store(
    kind: str = "memory",
    *,
    path: Optional[str] = None,
    branch: str = "main",
    encoder: Callable[[Any], bytes] = pickle.dumps,
    decoder: Callable[[bytes], Any] = pickle.loads,
    high_water_bytes: Optional[int] = None,
    low_water_bytes: Optional[int] = None,
    is_protected: Optional[Callable[[str], bool]] = None,
) -> Staged:
    """Create a Staged store with sensible defaults.

    Args:
        kind: ``"memory"`` (default) or ``"disk"`` (a sled store at
            ``path``).
        path: Required when ``kind="disk"``: the store's directory.
        branch: Branch name (default ``"main"``).
        encoder: Value encoder (default ``pickle.dumps``).
        decoder: Value decoder (default ``pickle.loads``).
        high_water_bytes: Enable GC with this high-water threshold.
        low_water_bytes: GC low-water threshold (default 80% of high).
        is_protected: Keys GC never drops (default: keys whose last
            ``/`` segment starts with ``__``).

    Returns:
        A ``Staged`` store instance.
    """
    if kind == "memory":
        backend: Any = Memory()
    elif kind == "disk":
        if path is None:
            raise ValueError("path is required when kind='disk'")
        from .kv.disk import Disk

        backend = Disk(path, size_limit=0)
    else:
        raise ValueError(f"Unknown kind: {kind!r}")

    if high_water_bytes is not None:
        gc_kwargs: Dict[str, Any] = {
            "branch": branch,
            "high_water_bytes": high_water_bytes,
            "low_water_bytes": low_water_bytes,
        }
        if is_protected is not None:
            gc_kwargs["is_protected"] = is_protected
        versioned: Versioned = GCVersioned(backend, **gc_kwargs)
    else:
        versioned = Versioned(backend, branch=branch)
    return Staged(versioned, encoder=encoder, decoder=decoder)
