"""Alias package for running kvgit 0.1.3's own tests against kvgit_rs:
``import kvgit`` and every ``kvgit.*`` submodule resolve to kvgit_rs's.
Only on sys.path for that run (scripts/python-compat.sh)."""

import importlib
import sys

import kvgit_rs

_SUBMODULES = [
    "content_types",
    "errors",
    "gc",
    "kv",
    "kv.base",
    "kv.composite",
    "kv.disk",
    "kv.memory",
    "live",
    "namespaced",
    "staged",
    "store",
    "versioned",
]

for _name in _SUBMODULES:
    sys.modules[f"{__name__}.{_name}"] = importlib.import_module(f"kvgit_rs.{_name}")
sys.modules[__name__] = kvgit_rs
