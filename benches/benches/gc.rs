//! kvgit's garbage-collection benchmarks (kvgit-gc): the sweep of a store
//! with 1,000 commits on 10 branches (objects marked per second), and the
//! high/low-water rebase of the N-key branch dropping 10% of its bytes, on
//! the in-memory and sled backends. Ids `sweep/backend/N`,
//! `rebase/backend/N`; see `benches/README.md`.

mod common;

use std::time::Duration;

use criterion::{BatchSize, Criterion, SamplingMode, Throughput};
use kvgit_benches::gc::{RebaseCase, SweepCase};
use kvgit_benches::{backends_from_env, size_label, sizes_from_env, BackendKind, Fixtures};

use common::{id, selected, test_mode};

/// Seeds of the workloads' random choices (the data set has its own).
const SWEEP_SEED: u64 = 9;
const REBASE_SEED: u64 = 10;

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let backends = backends_from_env();
    for n in sizes_from_env(test_mode()) {
        let fx = Fixtures::new(n);
        // The sweep first: it would free what the rebases leave behind.
        sweep(&mut c, &fx, &backends);
        rebase(&mut c, &fx, &backends);
        fx.close();
    }
    c.final_summary();
}

/// Ten samples of equal iteration counts, for workloads of milliseconds to
/// seconds.
fn slow_group<'a>(
    c: &'a mut Criterion,
    name: &str,
    n: usize,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(match n {
            0..=10_000 => 2,
            10_001..=100_000 => 5,
            _ => 20,
        }));
    group
}

/// `sweep/*/N`: `kvgit_gc::sweep` of the store (the N-key `main` plus 10
/// branches of 100 single-key commits each, made untimed). Every object is
/// reachable (the first, untimed sweep freed nothing), so each iteration
/// marks the whole store, lists every object and deletes nothing.
/// Throughput: objects marked per second.
fn sweep(c: &mut Criterion, fx: &Fixtures, backends: &[BackendKind]) {
    let mut group = slow_group(c, "sweep", fx.n);
    for &kind in backends {
        if kind == BackendKind::RawSled {
            continue;
        }
        let bench_id = id(kind, fx.n);
        // The throughput (objects marked) is known once the store is made,
        // and must be set before the benchmark is registered: make it now,
        // unless criterion's filter leaves this benchmark out.
        if !selected(&format!("sweep/{}/{}", kind.name(), size_label(fx.n))) {
            continue;
        }
        let store = fx.kv(kind);
        let case = SweepCase::new(store, SWEEP_SEED);
        group.throughput(Throughput::Elements(case.marked));
        group.bench_function(bench_id, |b| b.iter(|| case.sweep(store)));
    }
    group.finish();
}

/// `rebase/*/N`: `kvgit_gc::rebase` of `main` (every key touched once
/// beforehand, untimed), with the high water just under the branch's value
/// bytes and the low water 10% under them: it drops the coldest 10% of the
/// bytes and commits the other 90% as a fresh root commit. `main` is moved
/// back before each iteration, untimed.
fn rebase(c: &mut Criterion, fx: &Fixtures, backends: &[BackendKind]) {
    let mut group = slow_group(c, "rebase", fx.n);
    group.throughput(Throughput::Elements(fx.n as u64));
    for &kind in backends {
        if kind == BackendKind::RawSled {
            continue;
        }
        let mut case = None;
        group.bench_function(id(kind, fx.n), |b| {
            let store = fx.kv(kind);
            let case = case.get_or_insert_with(|| RebaseCase::new(store, REBASE_SEED));
            b.iter_batched(
                || case.reset(store),
                |()| case.rebase(store),
                BatchSize::PerIteration,
            )
        });
        // Leave `main` at the store's head.
        if let Some(case) = &case {
            case.reset(fx.kv(kind));
        }
    }
    group.finish();
}
