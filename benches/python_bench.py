"""kvgit through Python: kvgit_rs (the Rust engine) beside the Python kvgit
0.4.3, the same workloads in the same run, both in memory, both through
their user-level API (values pickled by both).

    python benches/python_bench.py [--keys 100000] [--out benches/results/python-DATE.md]

Needs kvgit_rs and kvgit==0.4.3 installed (scripts/python-compat.sh's venv
has kvgit_rs; `pip install kvgit==0.4.3`).
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import platform
import random
import sys
import time

VALUE = b"v" * 100
# Diffs timed: each of a different pair of commits 10 keys apart (one
# diff alone takes tens of microseconds, too short to time once).
DIFFS = 20
# Merges timed, each of a fresh pair of branches (the setup is not timed).
MERGES = 5
TARGETS = {
    "bulk load": 20.0,
    "single-key commits": 20.0,
    "point reads": 1.0,
    "diff of 10 keys": 20.0,
    "merge 100+100+10 counter": 20.0,
    "history walk": None,
}


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def bench_rs(n, reads, commits, walk):
    import kvgit_rs as kvgit

    out = {}
    s = kvgit.store()
    keys = [f"k{i:08d}" for i in range(n)]

    def load():
        for k in keys:
            s[k] = VALUE
        s.commit()

    out["bulk load"] = (n, timed(load), "keys")

    def single():
        for i in range(commits):
            s[f"c{i:08d}"] = VALUE
            s.commit()

    out["single-key commits"] = (commits, timed(single), "commits")

    rnd = random.Random(7)
    sample = [keys[rnd.randrange(n)] for _ in range(reads)]
    s.refresh()

    def read():
        g = s.get
        for k in sample:
            g(k)

    out["point reads"] = (reads, timed(read), "reads")

    pairs = []
    for r in range(DIFFS):
        a = s.current_commit
        for i in range(10):
            s[keys[(r * 10 + i) * 997 % n]] = b"x" * 100
        s.commit()
        pairs.append((a, s.current_commit))

    def diffs():
        d = s.versioned.diff
        for a, b in pairs:
            d(a, b)

    out["diff of 10 keys"] = (DIFFS, timed(diffs), "diffs")

    fns = {f"cnt{i}": kvgit.counter() for i in range(10)}
    merge_secs = 0.0
    for r in range(MERGES):
        for i in range(10):
            s[f"cnt{i}"] = 0
        s.commit()
        dev = s.create_branch(f"dev{r}")
        for i in range(100):
            dev[keys[(r * 1000 + i * 31) % n]] = b"dev" * 30
        for i in range(10):
            dev[f"cnt{i}"] = dev[f"cnt{i}"] + 2
        dev.commit()
        for i in range(100):
            s[keys[(r * 1000 + i * 31 + 13) % n]] = b"main" * 25
        for i in range(10):
            s[f"cnt{i}"] = s[f"cnt{i}"] + 3
        s.commit()
        merge_secs += timed(lambda: s.merge(branch=f"dev{r}", merge_fns=fns))
        assert s["cnt0"] == 5, s["cnt0"]
    out["merge 100+100+10 counter"] = (MERGES, merge_secs, "merges")

    def hist():
        assert len(list(itertools.islice(s.history(), walk))) == walk

    out["history walk"] = (walk, timed(hist), "commits")
    return out


def bench_py(n, reads, commits, walk):
    import kvgit
    from kvgit.content_types import counter

    out = {}
    s = kvgit.open()
    repo = s.repo
    keys = [f"k{i:08d}" for i in range(n)]

    def load():
        for k in keys:
            s[k] = VALUE
        s.commit()

    out["bulk load"] = (n, timed(load), "keys")

    def single():
        for i in range(commits):
            s[f"c{i:08d}"] = VALUE
            s.commit()

    out["single-key commits"] = (commits, timed(single), "commits")

    rnd = random.Random(7)
    sample = [keys[rnd.randrange(n)] for _ in range(reads)]
    s.refresh()

    def read():
        g = s.get
        for k in sample:
            g(k)

    out["point reads"] = (reads, timed(read), "reads")

    pairs = []
    for r in range(DIFFS):
        a = s.head
        for i in range(10):
            s[keys[(r * 10 + i) * 997 % n]] = b"x" * 100
        s.commit()
        pairs.append((a, s.head))

    def diffs():
        for a, b in pairs:
            repo.diff(a, b)

    out["diff of 10 keys"] = (DIFFS, timed(diffs), "diffs")

    fns = {f"cnt{i}": counter() for i in range(10)}
    merge_secs = 0.0
    for r in range(MERGES):
        for i in range(10):
            s[f"cnt{i}"] = 0
        s.commit()
        repo.branches.create(f"dev{r}", at=s.head)
        dev = repo.worktree(f"dev{r}")
        for i in range(100):
            dev[keys[(r * 1000 + i * 31) % n]] = b"dev" * 30
        for i in range(10):
            dev[f"cnt{i}"] = dev[f"cnt{i}"] + 2
        dev.commit()
        for i in range(100):
            s[keys[(r * 1000 + i * 31 + 13) % n]] = b"main" * 25
        for i in range(10):
            s[f"cnt{i}"] = s[f"cnt{i}"] + 3
        s.commit()
        merge_secs += timed(lambda: s.merge(branch=f"dev{r}", merge_fns=fns))
        s.refresh()
        assert s["cnt0"] == 5, s["cnt0"]
    out["merge 100+100+10 counter"] = (MERGES, merge_secs, "merges")

    def hist():
        got = list(repo.log(branch="main", limit=walk, first_parent=True))
        assert len(got) == walk, len(got)

    out["history walk"] = (walk, timed(hist), "commits")
    return out


def fmt(count, secs, unit):
    if count == 1:
        return f"{secs * 1000:.2f} ms"
    if unit in ("diffs", "merges"):
        return f"{secs / count * 1000:.3f} ms per {unit[:-1]}"
    return f"{count / secs:,.0f} {unit}/s"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--reads", type=int, default=100_000)
    ap.add_argument("--commits", type=int, default=1_000)
    ap.add_argument("--out")
    args = ap.parse_args()
    walk = args.commits
    rs = bench_rs(args.keys, args.reads, args.commits, walk)
    py = bench_py(args.keys, args.reads, args.commits, walk)
    import kvgit

    lines = [
        f"# kvgit through Python: kvgit_rs vs Python kvgit {getattr(kvgit, '__version__', '0.4.3')}",
        "",
        f"{datetime.date.today()}, Python {platform.python_version()}, "
        f"{platform.machine()}, memory stores, {args.keys:,} keys `k%08d` with "
        f"100-byte values (pickled by both), `python benches/python_bench.py`.",
        "",
        "| workload | kvgit_rs | kvgit 0.4.3 | speed-up | target |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name in rs:
        c, t_rs, unit = rs[name]
        _, t_py, _ = py[name]
        target = TARGETS[name]
        lines.append(
            f"| {name} | {fmt(c, t_rs, unit)} | {fmt(c, t_py, unit)} | "
            f"{t_py / t_rs:.1f}x | {'' if target is None else f'{target:g}x'} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    sys.exit(main())
