"""Remotes from Python: Db.clone, fetch, pull, push between stores, and
kvgit_rs.open on a remote (gitkv's commit-and-push, retried once through a
merge); a PostgreSQL store opened from Python.

A sled store is held by one opener at a time, so each test lets go of a
store (``_close``) before another opener (a transfer's in-process server,
or a ``kvgit serve`` child) opens it.

``file://`` remotes run ``kvgit serve --stdio``: the tests use the binary
named by ``KVGIT_BIN`` (scripts/python-compat.sh sets it), else ``kvgit``
on the PATH. The PostgreSQL test uses the server at ``KVGIT_TEST_PG_URL``;
with ``KVGIT_PY_REQUIRE_SERVERS=1`` (CI) a missing server or binary fails
the tests instead of skipping them.
"""

import gc
import os
import pickle
import shutil
import subprocess
import uuid

import pytest

import kvgit_rs
from kvgit_rs import Db, MergeConflict, PushRejected, RemoteError, ValidationError


REQUIRED = os.environ.get("KVGIT_PY_REQUIRE_SERVERS") == "1"


def _need(what):
    if REQUIRED:
        pytest.fail(f"{what} is required here (KVGIT_PY_REQUIRE_SERVERS=1)")
    pytest.skip(f"{what} not available")


def _kvgit_bin():
    path = os.environ.get("KVGIT_BIN") or shutil.which("kvgit")
    if not path or not os.access(path, os.X_OK):
        _need("the kvgit binary (KVGIT_BIN)")
    return path


def _close(*objs):
    """Lets go of stores: the caller deletes its names; this collects."""
    del objs
    gc.collect()


def _origin(tmp_path, values):
    """A sled store at tmp_path/origin holding ``values`` on main, closed."""
    path = str(tmp_path / "origin")
    db = Db.open(path)
    db.branch("main").commit(values)
    del db
    _close()
    return path


def _read(path, key, branch="main"):
    """``key`` of ``branch`` in the (closed) store at ``path``."""
    db = Db.open(path)
    try:
        return db.snapshot(branch).get(key)
    finally:
        del db
        _close()


def test_clone_then_push_and_pull_move_changes_both_ways(tmp_path):
    origin = _origin(tmp_path, {"greeting": b"hello"})
    copy = Db.clone(origin, str(tmp_path / "copy"))
    assert copy.remotes() == {"origin": origin}
    assert copy.snapshot("main")["greeting"] == b"hello"
    assert copy.resolve("origin/main") == copy.head("main")

    before = copy.head("main")
    copy.branch("main").commit({"greeting": b"hi"})
    report = copy.push("main")
    assert report["objects_sent"] > 0
    assert report["refs"] == [("heads/main", before, copy.head("main"))]
    del copy
    _close()
    assert _read(origin, "greeting") == b"hi"

    # The origin moves on; a pull brings the change (a fast-forward).
    db = Db.open(origin)
    db.branch("main").commit({"news": b"fresh"})
    del db
    _close()
    copy = Db.open(str(tmp_path / "copy"))
    result = copy.pull("main")
    assert result.strategy == "fast_forward"
    assert copy.snapshot("main")["news"] == b"fresh"
    # Up to date: a fetch moves nothing and receives nothing.
    again = copy.fetch()
    assert again["objects_received"] == 0 and again["refs"] == []


def test_two_clones_push_at_once_one_is_rejected_then_pull_merges_counters(tmp_path):
    origin = _origin(tmp_path, {"hits": b"100"})
    a = Db.clone(origin, str(tmp_path / "a"))
    b = Db.clone(origin, str(tmp_path / "b"))

    def counter(old, ours, theirs):
        base = int(old or b"0")
        return str(int(ours) + int(theirs) - base).encode()

    a.branch("main").commit({"hits": b"115"})
    b.branch("main").commit({"hits": b"120"})
    a.push("main")
    with pytest.raises(PushRejected) as rejected:
        b.push("main")
    assert "pull first" in str(rejected.value)
    assert isinstance(rejected.value, kvgit_rs.ConcurrencyError)

    # Without a merge function the counter is a conflict; with it, 135.
    with pytest.raises(MergeConflict):
        b.pull("main")
    result = b.pull("main", merge_fns={"hits": counter})
    assert result.strategy == "three_way"
    assert b.snapshot("main")["hits"] == b"135"
    b.push("main")
    del a, b
    _close()
    assert _read(origin, "hits") == b"135"


def test_force_push_overwrites_and_unknown_remote_is_a_key_error(tmp_path):
    origin = _origin(tmp_path, {"k": b"0"})
    a = Db.clone(origin, str(tmp_path / "a"))
    b = Db.clone(origin, str(tmp_path / "b"))
    a.branch("main").commit({"k": b"a"})
    a.push("main")
    b.branch("main").commit({"k": b"b"})
    with pytest.raises(PushRejected):
        b.push("main")
    b.push("main", force=True)
    with pytest.raises(KeyError):
        b.push("main", remote="nowhere")
    with pytest.raises(KeyError):
        b.pull("no-such-branch")
    del a, b
    _close()
    assert _read(origin, "k") == b"b"


def test_clone_of_a_missing_store_is_an_error_and_creates_nothing(tmp_path):
    with pytest.raises(kvgit_rs.KvgitError):
        Db.clone(str(tmp_path / "nothing-here"), str(tmp_path / "copy"))
    assert not (tmp_path / "copy").exists()
    with pytest.raises(ValueError):
        Db.clone("ssh://", str(tmp_path / "copy2"))


def test_shallow_clone_and_remote_management(tmp_path):
    origin = _origin(tmp_path, {"a": b"1"})
    db = Db.open(origin)
    db.branch("main").commit({"b": b"2"})
    del db
    _close()
    copy = Db.clone(origin, str(tmp_path / "copy"), depth=1)
    assert len(copy.log("main")) == 1
    assert copy.snapshot("main")["b"] == b"2"
    copy.add_remote("backup", str(tmp_path / "elsewhere"))
    assert copy.remotes() == {"origin": origin, "backup": str(tmp_path / "elsewhere")}
    copy.remove_remote("backup")
    assert copy.remotes() == {"origin": origin}


# -- kvgit_rs.open on a remote: commit, push, retry once through a merge --


def test_open_with_a_remote_commits_and_pushes(tmp_path):
    origin = _origin(tmp_path, {"config": b"debug = false\n"})
    copy = Db.clone(origin, str(tmp_path / "copy"))
    with kvgit_rs.open(copy, "config", "r+", remote="origin") as f:
        text = f.read()
        f.seek(0)
        f.truncate()
        f.write(text.replace("false", "true"))
    assert copy.head("main") == copy.tracking("origin", "main")
    del copy
    _close()
    assert _read(origin, "config") == b"debug = true\n"


def test_open_with_a_remote_retries_once_through_a_merge(tmp_path):
    origin = _origin(tmp_path, {"a": b"0", "b": b"0"})
    other = Db.clone(origin, str(tmp_path / "other"))
    copy = Db.clone(origin, str(tmp_path / "copy"))
    with kvgit_rs.open(copy, "a", "w", remote="origin") as f:
        f.write("mine")
        # Meanwhile another clone pushes a change of another key.
        other.branch("main").commit({"b": b"theirs"})
        other.push("main")
    snap = copy.snapshot("main")
    assert snap["a"] == b"mine" and snap["b"] == b"theirs"
    assert copy.head("main") == copy.tracking("origin", "main")
    del other, copy, snap
    _close()
    assert _read(origin, "a") == b"mine"
    assert _read(origin, "b") == b"theirs"


def test_open_with_a_remote_that_changed_the_same_key_puts_the_branch_back(tmp_path):
    origin = _origin(tmp_path, {"a": b"0"})
    other = Db.clone(origin, str(tmp_path / "other"))
    copy = Db.clone(origin, str(tmp_path / "copy"))
    before = copy.head("main")
    with pytest.raises(MergeConflict):
        with kvgit_rs.open(copy, "a", "w", remote="origin") as f:
            f.write("mine")
            other.branch("main").commit({"a": b"theirs"})
            other.push("main")
    # Nothing of the block stays: not here, not there.
    assert copy.head("main") == before
    assert copy.snapshot("main")["a"] == b"0"
    del other, copy
    _close()
    assert _read(origin, "a") == b"theirs"


def test_open_with_a_remote_whose_hook_refuses_the_push(tmp_path):
    origin = _origin(tmp_path, {"a": b"0"})
    copy = Db.clone(origin, str(tmp_path / "copy"))
    before = copy.head("main")
    del copy
    _close()
    # The origin is served by this process (a path remote), so a hook
    # added to it here does not apply; serve it with a pre-receive command
    # instead, through file://.
    kvgit = _kvgit_bin()
    hook = tmp_path / "hook.sh"
    hook.write_text("#!/bin/sh\necho 'no writes today' >&2\nexit 1\n")
    hook.chmod(0o755)
    wrapper = tmp_path / "serve.sh"
    # Called as `PROGRAM serve --stdio PATH`.
    wrapper.write_text(f'#!/bin/sh\nexec {kvgit} serve --pre-receive {hook} --stdio "$3"\n')
    wrapper.chmod(0o755)
    copy = Db.open(str(tmp_path / "copy"))
    copy.add_remote("origin", "file://" + origin)
    with pytest.raises(ValidationError) as refused:
        with kvgit_rs.open(
            copy, "a", "w", remote="origin", connect={"serve_program": str(wrapper)}
        ) as f:
            f.write("mine")
    assert "no writes today" in str(refused.value)
    assert copy.head("main") == before
    del copy
    _close()
    assert _read(origin, "a") == b"0"


def test_open_on_a_file_url_reads_by_proof_and_writes_through_a_clone(tmp_path):
    kvgit = _kvgit_bin()
    origin = _origin(tmp_path, {"notes": b"one\n"})
    url = "file://" + origin
    connect = {"serve_program": kvgit}
    with kvgit_rs.open(url, "notes", connect=connect) as f:
        assert f.read() == "one\n"
    with pytest.raises(FileNotFoundError):
        with kvgit_rs.open(url, "missing", connect=connect):
            pass
    with kvgit_rs.open(url, "notes", "a", connect=connect) as f:
        f.write("two\n")
    assert _read(origin, "notes") == b"one\ntwo\n"
    # A block that raises pushes nothing.
    with pytest.raises(RuntimeError):
        with kvgit_rs.open(url, "notes", "w", connect=connect) as f:
            f.write("lost")
            raise RuntimeError("boom")
    assert _read(origin, "notes") == b"one\ntwo\n"
    # Nothing is left behind in the temporary directory's parent.
    assert not any(p.name.startswith("kvgit-open-") for p in tmp_path.iterdir())


def test_a_broken_peer_is_a_remote_error(tmp_path):
    origin = _origin(tmp_path, {"a": b"0"})
    copy = Db.clone(origin, str(tmp_path / "copy"))
    fake = tmp_path / "fake.sh"
    fake.write_text("#!/bin/sh\necho 'this is not kvgit'\n")
    fake.chmod(0o755)
    copy.add_remote("fake", "file://" + origin)
    with pytest.raises(RemoteError):
        copy.fetch("fake", serve_program=str(fake))
    assert copy.snapshot("main")["a"] == b"0"


# -- PostgreSQL from Python --


def _pg_database():
    url = os.environ.get("KVGIT_TEST_PG_URL", "").strip()
    psql = shutil.which("psql")
    if not url or not psql:
        _need("a PostgreSQL server (KVGIT_TEST_PG_URL) and psql")
    name = f"kvgit_py_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    subprocess.run([psql, url, "-q", "-c", f"CREATE DATABASE {name}"], check=True)
    base, _, query = url.partition("?")
    scheme, _, rest = base.partition("://")
    host = rest.split("/", 1)[0]
    db_url = f"{scheme}://{host}/{name}" + (f"?{query}" if query else "")
    return psql, url, name, db_url


def test_a_postgres_store_from_python_commits_and_clones_to_disk(tmp_path):
    psql, admin, name, url = _pg_database()
    try:
        db = Db.open(url)
        main = db.branch("main")
        main.commit({"k": pickle.dumps(1)})
        s = kvgit_rs.Staged(db.branch("main"))
        s["k"] = s["k"] + 1
        s.commit()
        assert pickle.loads(db.snapshot()["k"]) == 2
        # A second opener of the same PostgreSQL store sees it (no lock).
        other = Db.open(url)
        assert pickle.loads(other.snapshot()["k"]) == 2
        copy = Db.clone(url, str(tmp_path / "copy"))
        assert pickle.loads(copy.snapshot()["k"]) == 2
        copy.branch("main").commit({"k": pickle.dumps(3)})
        copy.push("main")
        assert pickle.loads(Db.open(url).snapshot()["k"]) == 3
        del db, main, s, other, copy
        _close()
    finally:
        subprocess.run(
            [psql, admin, "-q", "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"],
            check=False,
        )
