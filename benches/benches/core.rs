//! kvgit's core benchmarks: bulk load, single-key commit (eventual and
//! durable), point read at the head, and diff of two commits 10 keys apart,
//! on the in-memory and sled backends beside raw sled doing the nearest
//! equivalent work. Ids are `workload/backend/N`; see `benches/README.md`.

mod common;

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, SamplingMode, Throughput};
use kvgit_benches::{
    backends_from_env, diff_count, memory_repo, sizes_from_env, sled_repo, temp_dir, BackendKind,
    CommitRunner, Fixtures, RawCommitRunner, RawSled, XorShift,
};
use kvgit_core::Durability;

use common::{id, small_group, test_mode};

/// Seeds of the workloads' random choices (the data set has its own).
const COMMIT_SEED: u64 = 1;
const GET_SEED: u64 = 2;
const DIFF_SEED: u64 = 3;

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let backends = backends_from_env();
    for n in sizes_from_env(test_mode()) {
        let fx = Fixtures::new(n);
        bulk_load(&mut c, &fx, &backends);
        commit(&mut c, &fx, &backends, Durability::Eventual);
        commit(&mut c, &fx, &backends, Durability::Durable);
        get(&mut c, &fx, &backends);
        diff10(&mut c, &fx, &backends);
        fx.close();
    }
    c.final_summary();
}

/// `bulk_load/*/N`: build the N-entry store from the sorted entries, into a
/// fresh, empty store each iteration (making it and cloning the entries is
/// not timed, nor is dropping the result).
fn bulk_load(c: &mut Criterion, fx: &Fixtures, backends: &[BackendKind]) {
    let n = fx.n;
    let mut group = c.benchmark_group("bulk_load");
    // Each iteration takes milliseconds to seconds: ten samples of equal
    // iteration counts, the least criterion allows.
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(match n {
            0..=10_000 => 2,
            10_001..=100_000 => 5,
            _ => 20,
        }))
        .throughput(Throughput::Elements(n as u64));
    for &kind in backends {
        match kind {
            // `Repo::build_tree` on a new in-memory repo.
            BackendKind::Memory => group.bench_function(id(kind, n), |b| {
                b.iter_batched(
                    || (memory_repo(), fx.entries().to_vec()),
                    |(repo, entries)| {
                        let tree = repo.build_tree(entries).expect("bulk load");
                        (repo, tree)
                    },
                    BatchSize::PerIteration,
                )
            }),
            // `Repo::build_tree` on a new sled store, then the durable
            // barrier (sled flush + fsync), as a commit of it would end.
            BackendKind::Sled => group.bench_function(id(kind, n), |b| {
                b.iter_batched(
                    || {
                        let dir = temp_dir();
                        let repo = sled_repo(dir.path(), Durability::Eventual);
                        (repo, dir, fx.entries().to_vec())
                    },
                    |(repo, dir, entries)| {
                        let tree = repo.build_tree(entries).expect("bulk load");
                        repo.backend().flush(Durability::Durable).expect("flush");
                        (repo, dir, tree)
                    },
                    BatchSize::PerIteration,
                )
            }),
            // The journal store is measured by the `defaults` target.
            BackendKind::Journal => continue,
            // The same entries into a new sled tree, in batches of
            // `RAW_BATCH`, then sled's flush.
            BackendKind::RawSled => group.bench_function(id(kind, n), |b| {
                b.iter_batched(
                    || (RawSled::open(), fx.entries().to_vec()),
                    |(raw, entries)| {
                        raw.bulk_load(entries);
                        raw
                    },
                    BatchSize::PerIteration,
                )
            }),
        };
    }
    group.finish();
}

/// `commit/*/N` (eventual) and `commit_durable/*/N`: one single-key commit
/// on the N-key head, each building on the previous one.
fn commit(c: &mut Criterion, fx: &Fixtures, backends: &[BackendKind], durability: Durability) {
    let n = fx.n;
    let durable = durability == Durability::Durable;
    let mut group = small_group(c, if durable { "commit_durable" } else { "commit" });
    group.throughput(Throughput::Elements(1));
    for &kind in backends {
        match kind {
            // The in-memory backend's barrier is a no-op either way: it has
            // no durable variant.
            BackendKind::Memory if durable => {}
            BackendKind::Memory | BackendKind::Sled => {
                let mut runner: Option<CommitRunner<'_>> = None;
                group.bench_function(id(kind, n), |b| {
                    let runner = runner.get_or_insert_with(|| {
                        let mut runner = CommitRunner::new(fx.kv(kind), durability, COMMIT_SEED);
                        if !durable {
                            runner.probe();
                        }
                        runner
                    });
                    b.iter_custom(|iters| runner.run(iters))
                });
                // Dropping the runner puts the store back to its base.
                drop(runner);
            }
            // The journal store is measured by the `defaults` target.
            BackendKind::Journal => {}
            BackendKind::RawSled => {
                let mut runner: Option<RawCommitRunner<'_>> = None;
                group.bench_function(id(kind, n), |b| {
                    let runner = runner.get_or_insert_with(|| {
                        RawCommitRunner::new(fx.raw(), durable, COMMIT_SEED)
                    });
                    b.iter_custom(|iters| runner.run(iters))
                });
            }
        }
    }
    group.finish();
}

/// `get/*/N`: a point read of a random key at the head, after one full scan
/// has loaded every node (kvgit's node cache; sled's page cache).
fn get(c: &mut Criterion, fx: &Fixtures, backends: &[BackendKind]) {
    let n = fx.n as u64;
    let mut group = small_group(c, "get");
    group.throughput(Throughput::Elements(1));
    for &kind in backends {
        let mut rng = XorShift::new(GET_SEED);
        let mut warm = false;
        match kind {
            BackendKind::Memory | BackendKind::Sled => {
                group.bench_function(id(kind, fx.n), |b| {
                    let store = fx.kv(kind);
                    if !warm {
                        store.warm();
                        warm = true;
                    }
                    b.iter(|| black_box(store.get(rng.below(n))).expect("present"))
                });
            }
            // The journal store is measured by the `defaults` target.
            BackendKind::Journal => {}
            BackendKind::RawSled => {
                group.bench_function(id(kind, fx.n), |b| {
                    let raw = fx.raw();
                    if !warm {
                        raw.warm();
                        warm = true;
                    }
                    b.iter(|| black_box(raw.get(rng.below(n))).expect("present"))
                });
            }
        }
    }
    group.finish();
}

/// `diff10/*/N`: the full diff of the head's tree against the same tree
/// with 10 keys modified, every change read (nodes cached after the first
/// iteration). Raw sled has no equivalent: it keeps no versions to diff.
fn diff10(c: &mut Criterion, fx: &Fixtures, backends: &[BackendKind]) {
    let mut group = small_group(c, "diff10");
    for &kind in backends {
        if kind == BackendKind::RawSled {
            continue;
        }
        let mut pair = None;
        group.bench_function(id(kind, fx.n), |b| {
            let store = fx.kv(kind);
            let (a, b_tree) = *pair.get_or_insert_with(|| store.diff_pair(DIFF_SEED));
            b.iter(|| {
                let changes = diff_count(&store.repo, &a, &b_tree);
                assert_eq!(changes, 10);
                changes
            })
        });
    }
    group.finish();
}
