"""kvgit_rs beyond kvgit 0.1.3: Db (open by path or URL, tags, snapshots,
diff, key history, validation hooks, subscriptions) and kvgit_rs.open; and
that commits from Python go through the engine's one branch-move path."""

import pickle

import pytest

import kvgit_rs
from kvgit_rs import ConcurrencyError, Db, MergeConflict, Staged, ValidationError, Versioned


# -- one rule, one place: Python commits move branches through the facade --


def test_validation_hook_refuses_a_python_commit_and_the_branch_stays():
    db = Db.memory()
    v = db.branch()
    v.commit({"a": b"1"})
    head = db.head()
    seen = []

    def no_secrets(check):
        seen.append(check)
        return not any(k.startswith("secret/") for k, *_ in check["changes"])

    db.add_validator("no-secrets", no_secrets)
    with pytest.raises(ValidationError):
        v.commit({"secret/key": b"x"})
    assert db.head() == head
    assert v.current_commit == head
    assert seen[-1]["kind"] == "commit"
    assert seen[-1]["branch"] == "main"
    assert seen[-1]["changes"] == [("secret/key", "added", None, b"x")]
    v.commit({"public": b"y"})
    assert db.snapshot()["public"] == b"y"


def test_validation_hook_that_raises_refuses_a_staged_commit():
    db = Db.memory()
    s = Staged(db.branch())

    def hook(check):
        raise RuntimeError("read-only today")

    db.add_validator("ro", hook)
    s["k"] = 1
    with pytest.raises(ValidationError, match="read-only today"):
        s.commit()
    db.remove_validator("ro")
    s.commit()
    assert pickle.loads(db.snapshot()["k"]) == 1


def test_validation_hook_sees_a_commit_merged_after_a_lost_race():
    db = Db.memory()
    a, b = db.branch(), db.branch()
    a.commit({"x": b"1"})
    kinds = []
    db.add_validator("log", lambda c: kinds.append(c["kind"]))
    b.commit({"y": b"2"})  # b's commit is based on the empty root: merged
    assert b.last_merge_result.strategy == "three_way"
    assert kinds == ["commit"]
    assert db.snapshot().keys() == ["x", "y"]


def test_subscription_receives_heads_of_python_commits():
    db = Db.memory()
    v = db.branch()
    sub = db.subscribe("main")
    r1 = v.commit({"a": b"1"})
    r2 = v.commit({"b": b"2"})
    assert sub.poll() == [r1.commit, r2.commit]
    assert sub.poll() == []


def test_reset_and_create_branch_go_through_validation_hooks():
    db = Db.memory()
    v = db.branch()
    first = v.commit({"a": b"1"}).commit
    v.commit({"a": b"2"})
    db.add_validator("no-moves", lambda c: c["kind"] == "commit")
    with pytest.raises(ValidationError):
        v.reset_to(first)
    with pytest.raises(ValidationError):
        v.create_branch("other")
    assert "other" not in db.branches()


def test_unrelated_head_still_raises_concurrency_error():
    db = Db.memory()
    v = db.branch()
    v.commit({"a": b"1"})
    other = Db.memory()
    w = Versioned(db.native, branch="main")
    # Point main at a root commit unrelated to v's.
    side = db.branch("side")
    db.native.delete_branch("side")
    assert side.current_commit != v.current_commit
    db.native.set_branch("main", side.current_commit)
    with pytest.raises(ConcurrencyError):
        v.commit({"b": b"2"})
    del other, w


# -- Db --


def test_db_open_directory_persists(tmp_path):
    path = str(tmp_path / "store")
    db = Db.open(path)
    db.branch().commit({"k": b"v"})
    db.flush()
    del db
    again = Db.open(path)
    assert again.snapshot("main")["k"] == b"v"


def test_db_open_memory_url():
    db = Db.open(":memory:")
    assert db.branches() == []
    db.branch("main")
    assert db.branches() == ["main"]


def test_db_open_bad_url_is_an_error_not_a_crash(tmp_path):
    with pytest.raises(Exception):
        Db.open("postgres://nobody@127.0.0.1:1/none?connect_timeout=1")


def test_tags_snapshots_and_diff():
    db = Db.memory()
    v = db.branch()
    first = v.commit({"a": b"1", "b": b"2"}).commit
    db.tag("v1", first)
    v.commit({"a": b"10", "c": b"3"}, removals={"b"})
    assert db.tags() == {"v1": first}
    assert db.resolve("v1") == first
    old = db.snapshot("v1")
    assert old.commit == first
    assert dict(old.items()) == {"a": b"1", "b": b"2"}
    assert "c" not in old and "c" in db.checkout("main")
    d = db.diff("v1", "main")
    assert d.added == {"c"} and d.removed == {"b"} and d.modified == {"a"}
    assert db.resolve(first[:10]) == first
    db.delete_tag("v1")
    assert db.tags() == {}
    with pytest.raises(KeyError):
        db.snapshot("v1")


def test_key_history():
    db = Db.memory()
    v = db.branch()
    c1 = v.commit({"k": b"1"}).commit
    v.commit({"other": b"x"})
    c3 = v.commit({"k": b"2"}).commit
    c4 = v.commit(removals={"k"}).commit
    assert db.key_history("k") == [(c4, None), (c3, b"2"), (c1, b"1")]
    assert db.key_history("k", limit=1) == [(c4, None)]
    assert db.log()[0] == c4


# -- kvgit_rs.open --


def test_open_write_commits_on_clean_exit():
    db = Db.memory()
    with kvgit_rs.open(db, "notes.txt", "w") as f:
        f.write("hello\n")
    assert db.snapshot()["notes.txt"] == b"hello\n"
    with kvgit_rs.open(db, "notes.txt") as f:
        assert f.read() == "hello\n"


def test_open_discards_on_exception():
    db = Db.memory()
    with kvgit_rs.open(db, "k", "w") as f:
        f.write("kept")
    head = db.head()
    with pytest.raises(RuntimeError):
        with kvgit_rs.open(db, "k", "w") as f:
            f.write("lost")
            raise RuntimeError("boom")
    assert db.head() == head
    assert db.snapshot()["k"] == b"kept"


def test_open_append_and_read_plus_and_binary():
    db = Db.memory()
    with kvgit_rs.open(db, "log", "ab") as f:
        f.write(b"one\n")
    with kvgit_rs.open(db, "log", "a") as f:
        f.write("two\n")
    with kvgit_rs.open(db, "log", "r+") as f:
        text = f.read()
        f.seek(0)
        f.truncate()
        f.write(text.upper())
    with kvgit_rs.open(db, "log", "rb") as f:
        assert f.read() == b"ONE\nTWO\n"


def test_open_read_mode_is_read_only_and_missing_key_is_not_found():
    db = Db.memory()
    with pytest.raises(FileNotFoundError):
        with kvgit_rs.open(db, "missing"):
            pass
    with kvgit_rs.open(db, "k", "w") as f:
        f.write("v")
    head = db.head()
    with kvgit_rs.open(db, "k") as f:
        with pytest.raises(Exception):
            f.write("x")
    assert db.head() == head
    with pytest.raises(ValueError):
        with kvgit_rs.open(db, "k", "rw"):
            pass


def test_open_concurrent_change_of_the_key_is_a_conflict_not_a_lost_write():
    db = Db.memory()
    with kvgit_rs.open(db, "k", "w") as f:
        f.write("0")
    with pytest.raises(MergeConflict):
        with kvgit_rs.open(db, "k", "r+") as f:
            f.read()
            db.branch().commit({"k": b"other writer"})
            f.write("mine")
    assert db.snapshot()["k"] == b"other writer"


def test_open_refused_by_a_validation_hook():
    db = Db.memory()
    db.add_validator("no", lambda c: False)
    with pytest.raises(ValidationError):
        with kvgit_rs.open(db, "k", "w") as f:
            f.write("x")


def test_open_on_a_path(tmp_path):
    path = str(tmp_path / "s")
    with kvgit_rs.open(path, "k", "wb") as f:
        f.write(b"\x00\x01")
    assert Db.open(path).snapshot()["k"] == b"\x00\x01"


def test_open_closing_the_file_inside_the_block_still_commits():
    db = Db.memory()
    with kvgit_rs.open(db, "k", "w") as f:
        f.write("x")
        f.close()
    assert db.snapshot()["k"] == b"x"


def test_gc_rebase_of_python_commits_goes_through_validation_hooks():
    from kvgit_rs.gc import GCVersioned

    db = Db.memory()
    kinds = []
    db.add_validator("log", lambda c: kinds.append(c["kind"]))
    v = GCVersioned(db.native, high_water_bytes=2000, low_water_bytes=1000)
    for i in range(40):
        v.commit({f"k{i:03d}": b"x" * 100})
    assert "commit" in kinds and "rebase" in kinds
    assert v.last_rebase_result is not None
    assert db.head() == v.current_commit
    # Refused rebases leave the branch as it was.
    db.add_validator("no-rebase", lambda c: c["kind"] != "rebase")
    head = db.head()
    with pytest.raises(ValidationError):
        v.rebase()
    assert db.head() == head


def test_sweep_then_compact_gives_the_space_back_and_keeps_main(tmp_path):
    db = Db.open(str(tmp_path / "store"))
    db.branch("main").commit({"keep": b"v"})
    scratch = db.branch("scratch")
    for i in range(50):
        scratch.commit({f"big{i}": bytes([i]) * 20000})
    db.delete_branch("scratch")
    del scratch  # its snapshot keeps its commit from a sweep
    assert db.sweep() > 0
    before, after = db.compact()
    assert after < before
    assert db.snapshot("main")["keep"] == b"v"
    assert Db.memory().compact() is None
