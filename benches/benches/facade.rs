//! Benchmarks through the `kvgit` facade (`Db`, `Branch`, `Transaction`):
//! a durable single-key commit beside raw sled writing the same objects,
//! group commit (4 threads on 4 branches against 1 thread), and
//! `Branch::update` of one key in eventual mode. Ids `workload/backend/N`
//! (`group_commit/sled/{1,4}threads`, at N = 10k only); see
//! `benches/README.md`.

mod common;

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use kvgit_benches::facade::{
    CommitShape, FacadeCommitRunner, GroupCommit, RawObjectsCommitRunner, UpdateRunner,
};
use kvgit_benches::{backends_from_env, sizes_from_env, BackendKind, Fixtures, RawCommitRunner};
use kvgit_core::Durability;

use common::{id, small_group, test_mode};

/// Seeds of the workloads' random choices (the data set has its own).
const FACADE_SEED: u64 = 6;
const GROUP_SEED: u64 = 7;
const UPDATE_SEED: u64 = 8;

/// Commits observed to learn what one commit writes.
const PROBE_COMMITS: usize = 32;

/// The thread counts of `group_commit`.
const GROUP_THREADS: [usize; 2] = [1, 4];

/// The store size `group_commit` runs at.
const GROUP_N: usize = 10_000;

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let backends = backends_from_env();
    for n in sizes_from_env(test_mode()) {
        let fx = Fixtures::new(n);
        facade_commit_durable(&mut c, &fx, &backends);
        if n == GROUP_N && backends.contains(&BackendKind::Sled) {
            group_commit(&mut c, &fx);
        }
        update(&mut c, &fx, &backends);
        fx.close();
    }
    c.final_summary();
}

fn probe(fx: &Fixtures) -> CommitShape {
    FacadeCommitRunner::new(fx.kv(BackendKind::Sled), Durability::Durable, FACADE_SEED)
        .probe(PROBE_COMMITS)
}

/// `facade_commit_durable/sled/N`: `Branch::put` of one random key on a
/// durable `Db` over the sled store; `.../raw_sled/N`: raw sled writing the
/// same number of objects of the same mean sizes (observed on
/// `PROBE_COMMITS` kvgit commits first), the ref's compare-and-swap, sled's
/// flush and an fsync of its data file.
fn facade_commit_durable(c: &mut Criterion, fx: &Fixtures, backends: &[BackendKind]) {
    let mut group = small_group(c, "facade_commit_durable");
    group.throughput(Throughput::Elements(1));
    let mut shape: Option<CommitShape> = None;
    if backends.contains(&BackendKind::Sled) {
        let mut runner: Option<FacadeCommitRunner<'_>> = None;
        group.bench_function(id(BackendKind::Sled, fx.n), |b| {
            let runner = runner.get_or_insert_with(|| {
                let store = fx.kv(BackendKind::Sled);
                let mut runner = FacadeCommitRunner::new(store, Durability::Durable, FACADE_SEED);
                shape = Some(runner.probe(PROBE_COMMITS));
                runner
            });
            b.iter_custom(|iters| runner.run(iters))
        });
        // Dropping the runner puts the store back to its base.
        drop(runner);
    }
    if backends.contains(&BackendKind::RawSled) {
        let mut runner: Option<RawObjectsCommitRunner<'_>> = None;
        group.bench_function(id(BackendKind::RawSled, fx.n), |b| {
            let runner = runner.get_or_insert_with(|| {
                let shape = shape.get_or_insert_with(|| probe(fx)).clone();
                RawObjectsCommitRunner::new(fx.raw(), shape, true, FACADE_SEED)
            });
            b.iter_custom(|iters| runner.run(iters))
        });
    }
    group.finish();
}

/// `group_commit/sled/{1,4}threads`: durable `Branch::put`s by 1 thread on
/// one branch, or by 4 threads on 4 branches at once, on the 10k-key sled
/// store. One iteration is one commit (of any thread): the mean is wall
/// time per commit, the throughput commits per second.
fn group_commit(c: &mut Criterion, fx: &Fixtures) {
    let mut group = small_group(c, "group_commit");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(1));
    let max_threads = GROUP_THREADS.iter().copied().max().unwrap_or(1);
    let mut runner: Option<GroupCommit<'_>> = None;
    for threads in GROUP_THREADS {
        let name = BenchmarkId::new(BackendKind::Sled.name(), format!("{threads}threads"));
        group.bench_function(name, |b| {
            let runner = runner.get_or_insert_with(|| {
                GroupCommit::new(fx.kv(BackendKind::Sled), max_threads, GROUP_SEED)
            });
            b.iter_custom(|iters| runner.run(threads, iters))
        });
    }
    group.finish();
    // Dropping the runner puts the store back and deletes its branches.
    drop(runner);
}

/// `update/*/N`: `Branch::update` of one random key in eventual mode (read
/// the value, change a byte, put it back, commit). Raw sled: `Tree::get`,
/// then the same write as `commit/raw_sled` (insert, ref compare-and-swap,
/// flush).
fn update(c: &mut Criterion, fx: &Fixtures, backends: &[BackendKind]) {
    let mut group = small_group(c, "update");
    group.throughput(Throughput::Elements(1));
    for &kind in backends {
        match kind {
            BackendKind::Memory | BackendKind::Sled => {
                let mut runner: Option<UpdateRunner<'_>> = None;
                group.bench_function(id(kind, fx.n), |b| {
                    let runner =
                        runner.get_or_insert_with(|| UpdateRunner::new(fx.kv(kind), UPDATE_SEED));
                    b.iter_custom(|iters| runner.run(iters))
                });
                // Dropping the runner puts the store back to its base.
                drop(runner);
            }
            // The journal store is measured by the `defaults` target.
            BackendKind::Journal => {}
            BackendKind::RawSled => {
                let mut runner: Option<RawCommitRunner<'_>> = None;
                group.bench_function(id(kind, fx.n), |b| {
                    let runner = runner
                        .get_or_insert_with(|| RawCommitRunner::new(fx.raw(), false, UPDATE_SEED));
                    b.iter_custom(|iters| runner.run_updates(iters))
                });
            }
        }
    }
    group.finish();
}
