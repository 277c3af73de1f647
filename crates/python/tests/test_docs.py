"""Every public name of the package carries a docstring (issue #17: type
stubs and docstrings on every public name; mypy runs in
scripts/python-compat.sh)."""

import importlib
import inspect
import pkgutil

import kvgit_rs


def _modules():
    yield kvgit_rs
    for info in pkgutil.walk_packages(kvgit_rs.__path__, "kvgit_rs."):
        yield importlib.import_module(info.name)


def _doc(obj):
    if isinstance(obj, (staticmethod, classmethod)):
        obj = obj.__func__
    return (getattr(obj, "__doc__", None) or "").strip()


def test_every_public_name_has_a_docstring():
    missing = []
    modules = list(_modules())
    assert len(modules) > 10  # the package and its submodules were found
    for mod in modules:
        if not _doc(mod):
            missing.append(mod.__name__)
        for name, obj in vars(mod).items():
            if name.startswith("_"):
                continue
            if not (inspect.isclass(obj) or inspect.isroutine(obj)):
                continue
            if getattr(obj, "__module__", "").split(".")[0] != "kvgit_rs":
                continue
            if not _doc(obj):
                missing.append(f"{mod.__name__}.{name}")
            if inspect.isclass(obj):
                for attr, member in vars(obj).items():
                    if attr.startswith("_"):
                        continue
                    if callable(member) or isinstance(
                        member, (property, staticmethod, classmethod)
                    ):
                        if not _doc(member):
                            missing.append(f"{mod.__name__}.{name}.{attr}")
    assert sorted(set(missing)) == []
