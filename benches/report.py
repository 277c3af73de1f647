#!/usr/bin/env python3
"""Writes kvgit's benchmark table (markdown) from criterion's results.

Reads every `<id>/new/benchmark.json` and `<id>/new/estimates.json` under
criterion's output directory (`target/criterion`), takes each id's mean
(`mean.point_estimate`, in ns) and prints, or writes with `--out`:

- the figures the issues set targets for, each marked reached or not;
- the costs that must not grow with N: 1M over 10k per workload and backend;
- kvgit over raw sled: for every workload measured on raw sled, the ratio of
  each kvgit backend to raw sled at each N;
- PostgreSQL beside sled: for every workload measured on both (the
  `postgres` target's `pg_*`), both means, operations per second and the
  postgres / sled ratio at each N;
- the facade with default options (the `defaults` target, ids
  `facade/<workload>/<backend>/<N>`): every workload at each N with its
  1M / 10k ratio, kvgit over raw sled for each pair of equivalent work,
  durable commits against an fdatasync alone (commits per fsync, 4 threads
  against 1), the headline rates, and the disk footprint lines the target
  printed (from `--log`);
- every id's mean, 95% confidence interval and throughput.

Usage: report.py [--criterion DIR] [--since EPOCH_SECONDS] [--out FILE]
                 [--log FILE] [--note TEXT]...

`--since` keeps only results written at or after that time (run.sh passes
the time its run started, so stale results of ids it did not run are left
out). Python 3 standard library only.
"""

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys

# Workloads whose cost must not grow with N: the 1M / 10k table.
GROWTH = [
    "commit",
    "commit_durable",
    "facade_commit_durable",
    "diff10",
    "merge",
    "update",
    "history",
    "history_cold",
]

KVGIT_BACKENDS = ["memory", "sled"]

# The `defaults` target's criterion group: ids `facade/<workload>/<backend>/<N>`.
FACADE = "facade"

# Its workloads, in report order.
FACADE_ORDER = [
    "bulk_load",
    "put",
    "put_flush",
    "put_fsync",
    "fdatasync",
    "put_4threads",
    "get",
    "snapshot_get",
    "diff10",
    "merge",
    "log",
    "sweep",
    "rebase",
]

# (kvgit workload, kvgit backend, raw sled workload): the same work, kvgit
# through the facade with default options and raw sled beside it. A durable
# `put` on sled is divided by raw sled's insert + flush (what the issue
# names) and by insert + flush + fsync (the durable equivalent).
FACADE_VS_RAW = [
    ("bulk_load", "memory", "bulk_load"),
    ("bulk_load", "sled", "bulk_load"),
    ("put", "memory", "put"),
    ("put", "sled", "put_flush"),
    ("put", "sled", "put_fsync"),
    ("get", "memory", "get"),
    ("get", "sled", "get"),
    ("snapshot_get", "memory", "get"),
    ("snapshot_get", "sled", "get"),
]

# The lines of the `defaults` target's output (`--log`) copied into the
# table: the disk footprint (bytes on disk per logical byte).
FOOTPRINT_TAG = "kvgit-benches: facade footprint "
SIZE_ORDER = {"10k": 0, "100k": 1, "1M": 2}


def size_key(label):
    """Sort key of a size label: 10k, 100k, 1M first, then the rest."""
    if label in SIZE_ORDER:
        return (0, SIZE_ORDER[label], label)
    return (1, 0, label)


def load(root, since):
    """{full_id: {"mean", "low", "high", "elements", "bytes"}} of every
    result under `root` written at or after `since`."""
    results = {}
    for dirpath, _dirnames, filenames in os.walk(root):
        if os.path.basename(dirpath) != "new" or "estimates.json" not in filenames:
            continue
        est_path = os.path.join(dirpath, "estimates.json")
        bench_path = os.path.join(dirpath, "benchmark.json")
        if since is not None and os.path.getmtime(est_path) < since:
            continue
        try:
            with open(est_path) as f:
                est = json.load(f)
            with open(bench_path) as f:
                bench = json.load(f)
        except (OSError, ValueError) as e:
            print(f"report.py: skipping {dirpath}: {e}", file=sys.stderr)
            continue
        mean = est["mean"]
        throughput = bench.get("throughput") or {}
        results[bench["full_id"]] = {
            "mean": mean["point_estimate"],
            "low": mean["confidence_interval"]["lower_bound"],
            "high": mean["confidence_interval"]["upper_bound"],
            "elements": throughput.get("Elements"),
            "bytes": throughput.get("Bytes"),
        }
    return results


def split(full_id):
    """`workload/backend/N` -> (workload, backend, N); None otherwise."""
    parts = full_id.split("/")
    if len(parts) != 3:
        return None
    return tuple(parts)


def split_facade(full_id):
    """`facade/workload/backend/N` -> (workload, backend, N); None otherwise."""
    parts = full_id.split("/")
    if len(parts) != 4 or parts[0] != FACADE:
        return None
    return tuple(parts[1:])


def facade_by(res):
    """{(workload, backend): {N: result}} of the `facade/...` ids."""
    by = {}
    for i, r in res.items():
        p = split_facade(i)
        if p:
            by.setdefault((p[0], p[1]), {})[p[2]] = r
    return by


def facade_sizes(by):
    """Every N measured, in size order."""
    return sorted({n for means in by.values() for n in means}, key=size_key)


def facade_order(workload):
    if workload in FACADE_ORDER:
        return (FACADE_ORDER.index(workload), workload)
    return (len(FACADE_ORDER), workload)


def fmt_time(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def fmt_rate(per_second, unit):
    for prefix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if per_second >= scale:
            return f"{per_second / scale:.3g} {prefix}{unit}/s"
    return f"{per_second:.3g} {unit}/s"


def throughput(r):
    if r["elements"]:
        return fmt_rate(r["elements"] / (r["mean"] * 1e-9), "elem")
    if r["bytes"]:
        return fmt_rate(r["bytes"] / (r["mean"] * 1e-9), "B")
    return ""


def fmt_ratio(x):
    return f"{x:.2f}x"


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def targets(res):
    """Rows (figure, target, measured, reached) for the figures the issues
    name, where measured."""
    rows = []

    def mean(i):
        return res[i]["mean"] if i in res else None

    # Issue 3: merge at 1M within 2x of 10k and under 2 ms.
    for b in KVGIT_BACKENDS:
        m1, m10 = mean(f"merge/{b}/1M"), mean(f"merge/{b}/10k")
        if m1 is not None:
            rows.append((f"`merge/{b}/1M`", "< 2 ms", fmt_time(m1), m1 < 2e6))
        if m1 is not None and m10 is not None:
            r = m1 / m10
            rows.append(
                (f"`merge/{b}`: 1M / 10k", "<= 2x", fmt_ratio(r), r <= 2.0)
            )
    # Issue 5: durable facade commit within 1.25x of raw sled.
    sizes = sorted(
        {split(i)[2] for i in res if split(i) and split(i)[0] == "facade_commit_durable"},
        key=size_key,
    )
    for n in sizes:
        k, raw = mean(f"facade_commit_durable/sled/{n}"), mean(
            f"facade_commit_durable/raw_sled/{n}"
        )
        if k is not None and raw is not None:
            r = k / raw
            rows.append(
                (
                    f"`facade_commit_durable` at {n}: sled / raw_sled",
                    "<= 1.25x",
                    fmt_ratio(r),
                    r <= 1.25,
                )
            )
    # Issue 5: group commit, 4 threads at least 2x the commits/s of 1.
    one, four = mean("group_commit/sled/1threads"), mean("group_commit/sled/4threads")
    if one is not None and four is not None:
        r = one / four
        rows.append(
            (
                "`group_commit/sled`: commits/s of 4 threads / 1 thread",
                ">= 2x",
                f"{fmt_ratio(r)} ({fmt_rate(1e9 / four, 'commit')} vs {fmt_rate(1e9 / one, 'commit')})",
                r >= 2.0,
            )
        )
    # Issue 5: update() of one key on a 1M-key branch, eventual mode.
    for b in KVGIT_BACKENDS:
        m = mean(f"update/{b}/1M")
        if m is not None:
            rate = 1e9 / m
            rows.append(
                (
                    f"`update/{b}/1M` (eventual)",
                    ">= 30,000/s",
                    fmt_rate(rate, "update"),
                    rate >= 30_000,
                )
            )
    return [(f, t, m, "yes" if ok else "**no**") for f, t, m, ok in rows]


def growth(res):
    rows = []
    by = {}
    for i, r in res.items():
        p = split(i)
        if p and p[0] in GROWTH:
            by.setdefault((p[0], p[1]), {})[p[2]] = r["mean"]
    for (w, b), means in sorted(by.items(), key=lambda kv: (GROWTH.index(kv[0][0]), kv[0][1])):
        cells = [fmt_time(means[n]) if n in means else "" for n in ("10k", "100k", "1M")]
        ratio = fmt_ratio(means["1M"] / means["10k"]) if "1M" in means and "10k" in means else ""
        rows.append([f"`{w}`", b] + cells + [ratio])
    return rows


def versus_raw(res):
    rows = []
    by = {}
    for i, r in res.items():
        p = split(i)
        if p:
            by.setdefault((p[0], p[2]), {})[p[1]] = r["mean"]
    for (w, n), means in sorted(by.items(), key=lambda kv: (kv[0][0], size_key(kv[0][1]))):
        raw = means.get("raw_sled")
        if raw is None or not any(b in means for b in KVGIT_BACKENDS):
            continue
        row = [f"`{w}`", n]
        row += [fmt_time(means[b]) if b in means else "" for b in KVGIT_BACKENDS + ["raw_sled"]]
        row += [fmt_ratio(means[b] / raw) if b in means else "" for b in KVGIT_BACKENDS]
        rows.append(row)
    return rows


def versus_sled(res):
    """Rows for every (workload, N) measured on both `postgres` and `sled`."""
    rows = []
    by = {}
    for i, r in res.items():
        p = split(i)
        if p and p[1] in ("sled", "postgres"):
            by.setdefault((p[0], p[2]), {})[p[1]] = r
    for (w, n), rs in sorted(by.items(), key=lambda kv: (kv[0][0], size_key(kv[0][1]))):
        sled, pg = rs.get("sled"), rs.get("postgres")
        if sled is None or pg is None:
            continue

        def rate(r):
            return fmt_rate((r["elements"] or 1) / (r["mean"] * 1e-9), "op")

        rows.append(
            [
                f"`{w}`",
                n,
                fmt_time(sled["mean"]),
                rate(sled),
                fmt_time(pg["mean"]),
                rate(pg),
                fmt_ratio(pg["mean"] / sled["mean"]),
            ]
        )
    return rows


def facade_growth(by):
    """Every facade (workload, backend): its mean at 10k, 100k, 1M (and any
    other N measured) and 1M / 10k."""
    sizes = facade_sizes(by)
    cols = ["10k", "100k", "1M"] + [n for n in sizes if n not in ("10k", "100k", "1M")]
    rows = []
    for (w, b), rs in sorted(by.items(), key=lambda kv: (facade_order(kv[0][0]), kv[0][1])):
        cells = [fmt_time(rs[n]["mean"]) if n in rs else "" for n in cols]
        ratio = fmt_ratio(rs["1M"]["mean"] / rs["10k"]["mean"]) if "1M" in rs and "10k" in rs else ""
        rows.append([f"`{w}`", b] + cells + [ratio])
    return cols, rows


def facade_vs_raw(by):
    rows = []
    for w, b, rw in FACADE_VS_RAW:
        kv, raw = by.get((w, b), {}), by.get((rw, "raw_sled"), {})
        for n in sorted(set(kv) & set(raw), key=size_key):
            k, r = kv[n]["mean"], raw[n]["mean"]
            rows.append([f"`{w}/{b}`", f"`{rw}/raw_sled`", n, fmt_time(k), fmt_time(r), fmt_ratio(k / r)])
    return rows


def facade_durability(by):
    """Per N: fdatasync alone against durable commits (one thread, four
    threads, raw sled's insert + flush + fsync)."""
    fsync = by.get(("fdatasync", "disk"), {})
    one = by.get(("put", "sled"), {})
    four = by.get(("put_4threads", "sled"), {})
    raw = by.get(("put_fsync", "raw_sled"), {})
    rows = []
    for n in sorted(set(fsync) | set(one) | set(four) | set(raw), key=size_key):
        f = fsync[n]["mean"] if n in fsync else None

        def cell(rs):
            return fmt_time(rs[n]["mean"]) if n in rs else ""

        def per_fsync(rs):
            return f"{f / rs[n]['mean']:.2f}" if f is not None and n in rs else ""

        gain = fmt_ratio(one[n]["mean"] / four[n]["mean"]) if n in one and n in four else ""
        rows.append(
            [n, fmt_time(f) if f is not None else "", cell(one), per_fsync(one), cell(four), per_fsync(four), gain, cell(raw), per_fsync(raw)]
        )
    return rows


def facade_rates(by):
    """The headline rates: single-key commits/s, reads/s and bulk-load
    keys/s at each N."""
    sizes = facade_sizes(by)
    rows = []
    for (w, b), unit in [
        (("put", "memory"), "commit"),
        (("put", "sled"), "commit"),
        (("put_4threads", "sled"), "commit"),
        (("get", "memory"), "get"),
        (("get", "sled"), "get"),
        (("bulk_load", "memory"), "key"),
        (("bulk_load", "sled"), "key"),
        (("bulk_load", "raw_sled"), "key"),
    ]:
        rs = by.get((w, b))
        if not rs:
            continue
        cells = []
        for n in sizes:
            r = rs.get(n)
            cells.append(fmt_rate((r["elements"] or 1) / (r["mean"] * 1e-9), unit) if r else "")
        rows.append([f"`{w}/{b}`"] + cells)
    return sizes, rows


def footprint_lines(log):
    """The disk footprint lines the `defaults` target printed in `log`."""
    try:
        with open(log, errors="replace") as f:
            return [line.strip()[len(FOOTPRINT_TAG):] for line in f if line.startswith(FOOTPRINT_TAG)]
    except OSError as e:
        print(f"report.py: cannot read {log}: {e}", file=sys.stderr)
        return []


def facade_section(res, log):
    by = facade_by(res)
    lines = footprint_lines(log) if log else []
    if not by and not lines:
        return []
    out = [
        "",
        "## The facade with default options (`defaults` target)",
        "",
        "Ids `facade/<workload>/<backend>/<N>` (see `benches/README.md`): through "
        "`kvgit::Db` / `Branch` / `Transaction` / `Snapshot` with default options "
        "(durable commits, no water marks and so no access recency) on `Db::memory()` and `Db::open(dir)` "
        "(`sled`), beside raw sled (`sled::open`) and an fdatasync alone (`disk`).",
    ]
    if by:
        cols, rows = facade_growth(by)
        out += ["", "### Every workload, and growth with N", "", table(["workload", "backend"] + cols + ["1M / 10k"], rows)]
        v = facade_vs_raw(by)
        if v:
            out += [
                "",
                "### kvgit over raw sled (same work, same run)",
                "",
                table(["kvgit", "raw sled", "N", "kvgit mean", "raw sled mean", "kvgit / raw"], v),
            ]
        d = facade_durability(by)
        if d:
            out += [
                "",
                "### Durable commits against the disk's floor",
                "",
                "Commits per fsync: the time of one fdatasync alone divided by the time per commit "
                "(above 1 only when commits share fsyncs).",
                "",
                table(
                    [
                        "N",
                        "fdatasync",
                        "`put/sled`",
                        "commits per fsync",
                        "`put_4threads/sled`",
                        "commits per fsync",
                        "4 threads / 1 (commits/s)",
                        "`put_fsync/raw_sled`",
                        "commits per fsync",
                    ],
                    d,
                ),
            ]
        sizes, r = facade_rates(by)
        if r:
            out += ["", "### Rates", "", table(["figure"] + sizes, r)]
    if lines:
        out += ["", "### Disk footprint (printed by the target)", ""] + [f"- {line}" for line in lines]
    return out


def all_rows(res):
    def key(i):
        p = split(i)
        if p:
            return (p[0], size_key(p[2]), p[1])
        p = split_facade(i)
        if p:
            return (f"{FACADE}/{p[0]}", size_key(p[2]), p[1])
        return (i, (0, 0, ""), "")

    return [
        [f"`{i}`", fmt_time(r["mean"]), f"{fmt_time(r['low'])} .. {fmt_time(r['high'])}", throughput(r)]
        for i, r in sorted(res.items(), key=lambda kv: key(kv[0]))
    ]


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"^model name\s*:\s*(.+)$", f.read(), re.M)
            if m:
                cpu = m.group(1).strip()
    except OSError:
        pass
    try:
        rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    except OSError:
        rustc = "rustc (unknown)"
    return f"{cpu}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}; {rustc}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--criterion", default=None, help="criterion's output directory (default: <target>/criterion)")
    ap.add_argument("--since", type=float, default=None, help="only results written at or after this Unix time")
    ap.add_argument("--out", default=None, help="write the table here instead of stdout")
    ap.add_argument("--note", action="append", default=[], help="a line to add under the title (repeatable)")
    ap.add_argument("--log", default=None, help="the run's output, for the lines the targets print (disk footprint)")
    args = ap.parse_args()

    root = args.criterion
    if root is None:
        target = os.environ.get("CARGO_TARGET_DIR")
        if not target:
            try:
                meta = subprocess.run(
                    ["cargo", "metadata", "--format-version", "1", "--no-deps"],
                    capture_output=True, text=True, check=True,
                ).stdout
                target = json.loads(meta)["target_directory"]
            except (OSError, subprocess.CalledProcessError, ValueError, KeyError):
                target = "target"
        root = os.path.join(target, "criterion")
    res = load(root, args.since)
    if not res:
        sys.exit(f"report.py: no criterion results under {root}")

    today = datetime.date.today().isoformat()
    out = [f"# kvgit benchmarks, {today}", ""]
    out.append(f"Machine: {machine()}.")
    out += [""] + [f"{n}" for n in args.note] + ([""] if args.note else [])
    out.append(
        "Means of criterion's estimates (`target/criterion/<id>/new/estimates.json`); "
        "ids are `workload/backend/N` (see `benches/README.md`). "
        "Ratios divide means."
    )
    t = targets(res)
    if t:
        out += ["", "## Targets named in the issues", "", table(["figure", "target", "measured", "reached"], t)]
    g = growth(res)
    if g:
        out += [
            "",
            "## Growth with N (costs that must not grow with N)",
            "",
            table(["workload", "backend", "10k", "100k", "1M", "1M / 10k"], g),
        ]
    v = versus_raw(res)
    if v:
        out += [
            "",
            "## kvgit over raw sled (same work, same run)",
            "",
            table(["workload", "N", "memory", "sled", "raw_sled", "memory / raw", "sled / raw"], v),
        ]
    s = versus_sled(res)
    if s:
        out += [
            "",
            "## PostgreSQL beside sled (same work, same run)",
            "",
            table(["workload", "N", "sled", "sled ops/s", "postgres", "postgres ops/s", "postgres / sled"], s),
        ]
    out += facade_section(res, args.log)
    out += ["", "## Every result", "", table(["id", "mean", "95% CI of the mean", "throughput"], all_rows(res)), ""]
    text = "\n".join(out)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            f.write(text)
        print(f"report.py: wrote {args.out} ({len(res)} results)", file=sys.stderr)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
