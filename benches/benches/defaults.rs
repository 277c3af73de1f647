//! kvgit as a user calls it: the criterion group `facade`, every workload
//! through the public `kvgit` facade (`Db`, `Branch`, `Transaction`,
//! `Snapshot`) with default options, on `Db::memory()` and `Db::open(dir)`
//! (sled), beside raw sled (`sled::open(dir)`) where it has an equivalent,
//! and an fdatasync alone (the disk's floor). Ids
//! `facade/<workload>/<backend>/<N>`; see `benches/README.md`. The
//! workloads themselves are in `kvgit_benches::defaults`.

mod common;

use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BatchSize, BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput};
use kvgit_benches::defaults::{
    DefaultStores, DiffCase, FacadeStore, FsyncProbe, GetRunner, GroupRunner, LogCase, MergeCase,
    PutRunner, RawDefaultSled, RawOp, RawRunner, RebaseCase, SweepRunner, LOG_COMMITS,
};
use kvgit_benches::{backends_from_env_or, size_label, sizes_from_env, BackendKind};

use common::test_mode;

/// The criterion group of every benchmark of this target.
const GROUP: &str = "facade";

/// Seeds of the workloads' random choices (the data set has its own).
const GET_SEED: u64 = 21;
const SNAPSHOT_GET_SEED: u64 = 22;
const DIFF_SEED: u64 = 23;
const MERGE_SEED: u64 = 24;
const LOG_SEED: u64 = 25;
const PUT_SEED: u64 = 26;
const FSYNC_SEED: u64 = 27;
const GROUP_SEED: u64 = 28;
const SWEEP_SEED: u64 = 29;

/// The kvgit backends.
const KV: [BackendKind; 3] = [BackendKind::Memory, BackendKind::Sled, BackendKind::Journal];

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let backends = backends_from_env_or(&[
        BackendKind::Memory,
        BackendKind::Sled,
        BackendKind::Journal,
        BackendKind::RawSled,
    ]);
    let kv: Vec<BackendKind> = KV.into_iter().filter(|k| backends.contains(k)).collect();
    let raw = backends.contains(&BackendKind::RawSled);
    for n in sizes_from_env(test_mode()) {
        let st = DefaultStores::new(n);
        bulk_load(&mut c, &st, &kv, raw);
        reads(&mut c, &st, &kv, raw);
        diff10(&mut c, &st, &kv);
        merge(&mut c, &st, &kv);
        log(&mut c, &st, &kv);
        put(&mut c, &st, &kv, raw);
        if kv.contains(&BackendKind::Sled) || raw {
            fdatasync(&mut c, &st);
        }
        put_4threads(&mut c, &st, &kv);
        sweep(&mut c, &st, &kv);
        rebase(&mut c, &st, &kv);
        st.close();
    }
    c.final_summary();
}

/// `workload/backend` and N: the id `facade/workload/backend/N`.
fn id(workload: &str, backend: &str, n: usize) -> BenchmarkId {
    BenchmarkId::new(format!("{workload}/{backend}"), size_label(n))
}

/// Workloads of microseconds to milliseconds: 20 samples, 0.5 s of
/// warm-up, 2 s of measurement.
fn fast(c: &mut Criterion, throughput: Option<u64>) -> BenchmarkGroup<'_, WallTime> {
    let mut group = c.benchmark_group(GROUP);
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    if let Some(t) = throughput {
        group.throughput(Throughput::Elements(t));
    }
    group
}

/// Workloads of milliseconds to seconds: 10 flat samples (the least
/// criterion takes), one warm-up iteration, and `measurement` as the
/// target time, so that a slow iteration runs 11 times in all (criterion
/// then warns that it cannot complete 10 samples in that time: expected).
fn slow(
    c: &mut Criterion,
    measurement: Duration,
    throughput: Option<u64>,
) -> BenchmarkGroup<'_, WallTime> {
    let mut group = c.benchmark_group(GROUP);
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(measurement);
    if let Some(t) = throughput {
        group.throughput(Throughput::Elements(t));
    }
    group
}

/// `bulk_load/*/N`: each iteration a fresh store (`Db::memory()`, or
/// `Db::open` of a new temporary directory, untimed), then `branch`, one
/// transaction putting the N entries and its commit; raw sled: N
/// `insert`s into a fresh `sled::open`, `flush()` and an fsync. The last
/// store built is kept as the store of that backend for the other
/// workloads. Throughput: keys/s.
fn bulk_load(c: &mut Criterion, st: &DefaultStores, kv: &[BackendKind], raw: bool) {
    let mut group = slow(c, Duration::from_secs(1), Some(st.n as u64));
    for &kind in kv {
        let mut kept: Option<(FacadeStore, Duration)> = None;
        group.bench_function(id("bulk_load", kind.name(), st.n), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    // Drop the previous store before building the next.
                    kept = None;
                    let (store, took) = FacadeStore::bulk_load(kind, st.entries());
                    total += took;
                    kept = Some((store, took));
                }
                total
            })
        });
        if let Some((store, took)) = kept {
            st.keep_kv(store, took);
        }
    }
    if raw {
        let mut kept: Option<(RawDefaultSled, Duration)> = None;
        group.bench_function(id("bulk_load", "raw_sled", st.n), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    kept = None;
                    let (store, took) = RawDefaultSled::bulk_load(st.entries());
                    total += took;
                    kept = Some((store, took));
                }
                total
            })
        });
        if let Some((store, took)) = kept {
            st.keep_raw(store, took);
        }
    }
    group.finish();
}

/// `get/*/N`: `Branch::get` of a random key of `main`; `snapshot_get/*/N`:
/// `Snapshot::get` on one snapshot of `main`; raw sled: `get`. Every store
/// is read through once first, untimed.
fn reads(c: &mut Criterion, st: &DefaultStores, kv: &[BackendKind], raw: bool) {
    let mut group = fast(c, Some(1));
    for &kind in kv {
        let mut runner: Option<GetRunner<'_>> = None;
        group.bench_function(id("get", kind.name(), st.n), |b| {
            let runner = runner.get_or_insert_with(|| GetRunner::new(st.kv(kind), false, GET_SEED));
            b.iter_custom(|iters| runner.run(iters))
        });
    }
    if raw {
        let mut runner: Option<RawRunner<'_>> = None;
        group.bench_function(id("get", "raw_sled", st.n), |b| {
            let runner =
                runner.get_or_insert_with(|| RawRunner::new(st.raw(), RawOp::Get, GET_SEED));
            b.iter_custom(|iters| runner.run(iters))
        });
    }
    for &kind in kv {
        let mut runner: Option<GetRunner<'_>> = None;
        group.bench_function(id("snapshot_get", kind.name(), st.n), |b| {
            let runner =
                runner.get_or_insert_with(|| GetRunner::new(st.kv(kind), true, SNAPSHOT_GET_SEED));
            b.iter_custom(|iters| runner.run(iters))
        });
    }
    group.finish();
}

/// `diff10/*/N`: `Db::diff` of the base commit and a commit 10 changed keys
/// away (on a fork), values loaded.
fn diff10(c: &mut Criterion, st: &DefaultStores, kv: &[BackendKind]) {
    let mut group = fast(c, None);
    for &kind in kv {
        let mut case: Option<DiffCase<'_>> = None;
        group.bench_function(id("diff10", kind.name(), st.n), |b| {
            let case = case.get_or_insert_with(|| DiffCase::new(st.kv(kind), DIFF_SEED));
            b.iter(|| case.diff())
        });
    }
    group.finish();
}

/// `merge/*/N`: `Branch::merge_from` of two branches with 100 distinct
/// changed keys each and 10 shared counter keys under `Counter`; `ours` is
/// reset before each merge, untimed.
fn merge(c: &mut Criterion, st: &DefaultStores, kv: &[BackendKind]) {
    let mut group = fast(c, None);
    for &kind in kv {
        let mut case: Option<MergeCase<'_>> = None;
        group.bench_function(id("merge", kind.name(), st.n), |b| {
            let case = case.get_or_insert_with(|| MergeCase::new(st.kv(kind), MERGE_SEED));
            b.iter_batched(|| case.reset(), |()| case.merge(), BatchSize::PerIteration)
        });
    }
    group.finish();
}

/// `log/*/N`: `Branch::log` of a fork holding 1,000 single-key commits,
/// the 1,000 read. Throughput: commits/s.
fn log(c: &mut Criterion, st: &DefaultStores, kv: &[BackendKind]) {
    let mut group = fast(c, Some(LOG_COMMITS as u64));
    for &kind in kv {
        let mut case: Option<LogCase> = None;
        group.bench_function(id("log", kind.name(), st.n), |b| {
            let case = case.get_or_insert_with(|| LogCase::new(st.kv(kind), LOG_COMMITS, LOG_SEED));
            b.iter(|| case.walk())
        });
    }
    group.finish();
}

/// `put/*/N`: `Branch::put` of one random key on `main` (on sled a durable
/// commit, the default); raw sled: `insert` (`put`), `insert` + `flush()`
/// (`put_flush`), and `insert` + `flush()` + fsync of the data file
/// (`put_fsync`). Throughput: commits/s.
fn put(c: &mut Criterion, st: &DefaultStores, kv: &[BackendKind], raw: bool) {
    let mut group = fast(c, Some(1));
    for &kind in kv {
        let mut runner: Option<PutRunner<'_>> = None;
        group.bench_function(id("put", kind.name(), st.n), |b| {
            let runner = runner.get_or_insert_with(|| PutRunner::new(st.kv(kind), PUT_SEED));
            b.iter_custom(|iters| runner.run(iters))
        });
        // Dropping the runner puts `main` back and sweeps.
        drop(runner);
    }
    if raw {
        for (workload, op) in [
            ("put", RawOp::Put),
            ("put_flush", RawOp::PutFlush),
            ("put_fsync", RawOp::PutFsync),
        ] {
            let mut runner: Option<RawRunner<'_>> = None;
            group.bench_function(id(workload, "raw_sled", st.n), |b| {
                let runner = runner.get_or_insert_with(|| RawRunner::new(st.raw(), op, PUT_SEED));
                b.iter_custom(|iters| runner.run(iters))
            });
        }
    }
    group.finish();
}

/// `fdatasync/disk/N`: a 100-byte write and an fdatasync of a file of its
/// own on the stores' file system: the floor of a durable commit, measured
/// at each N beside the commits. Throughput: fsyncs/s.
fn fdatasync(c: &mut Criterion, st: &DefaultStores) {
    let mut group = fast(c, Some(1));
    let mut probe: Option<FsyncProbe> = None;
    group.bench_function(id("fdatasync", "disk", st.n), |b| {
        let probe = probe.get_or_insert_with(|| FsyncProbe::new(FSYNC_SEED));
        b.iter_custom(|iters| probe.run(iters))
    });
    group.finish();
}

/// `put_4threads/*/N`: `Branch::put`s by 4 threads at once, each on a
/// branch of its own; one iteration is one commit (of any thread), so the
/// mean is wall time per commit. Compare with `put` (one thread).
/// Throughput: commits/s.
fn put_4threads(c: &mut Criterion, st: &DefaultStores, kv: &[BackendKind]) {
    let mut group = fast(c, Some(1));
    for &kind in kv {
        let mut runner: Option<GroupRunner<'_>> = None;
        group.bench_function(id("put_4threads", kind.name(), st.n), |b| {
            let runner = runner.get_or_insert_with(|| GroupRunner::new(st.kv(kind), GROUP_SEED));
            b.iter_custom(|iters| runner.run(iters))
        });
        // Dropping the runner deletes its branches and sweeps.
        drop(runner);
    }
    group.finish();
}

/// `sweep/*/N`: `Db::sweep` after deleting 4 branches holding 100
/// single-key commits (made and deleted before each sweep, untimed).
fn sweep(c: &mut Criterion, st: &DefaultStores, kv: &[BackendKind]) {
    let mut group = slow(c, Duration::from_millis(100), None);
    for &kind in kv {
        let mut runner: Option<SweepRunner<'_>> = None;
        group.bench_function(id("sweep", kind.name(), st.n), |b| {
            let runner = runner.get_or_insert_with(|| SweepRunner::new(st.kv(kind), SWEEP_SEED));
            b.iter_custom(|iters| runner.run(iters))
        });
    }
    group.finish();
}

/// `rebase/*/N`: `Db::rebase` of a fork of `main` to half its value bytes
/// (the coldest half of the keys dropped, the rest committed as a fresh
/// root); the fork is reset before each rebase, untimed. Throughput: keys
/// of the branch/s.
fn rebase(c: &mut Criterion, st: &DefaultStores, kv: &[BackendKind]) {
    let mut group = slow(c, Duration::from_millis(100), Some(st.n as u64));
    for &kind in kv {
        let mut case: Option<RebaseCase<'_>> = None;
        group.bench_function(id("rebase", kind.name(), st.n), |b| {
            let case = case.get_or_insert_with(|| RebaseCase::new(st.kv(kind)));
            b.iter_batched(|| case.reset(), |()| case.rebase(), BatchSize::PerIteration)
        });
    }
    group.finish();
}
