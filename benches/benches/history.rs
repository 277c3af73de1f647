//! kvgit's history benchmarks: walk 1,000 commits of first-parent history
//! on a branch of single-key commits over the N-key tree, on the in-memory
//! and sled backends (commit cache warm, and cold), beside raw sled reading
//! 1,000 keys one after another. Ids `history/backend/N` and
//! `history_cold/backend/N`; see `benches/README.md`.

mod common;

use std::cell::OnceCell;

use criterion::{BatchSize, Criterion, Throughput};
use kvgit_benches::history::{HistoryCase, RawHistoryCase, HISTORY_COMMITS};
use kvgit_benches::{backends_from_env, sizes_from_env, BackendKind, Fixtures};
use kvgit_core::Durability;

use common::{id, small_group, test_mode};

/// Seed of the history's random choices (the data set has its own).
const HISTORY_SEED: u64 = 5;

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let backends = backends_from_env();
    for n in sizes_from_env(test_mode()) {
        let fx = Fixtures::new(n);
        let cases = Cases::default();
        history(&mut c, &fx, &cases, &backends);
        history_cold(&mut c, &fx, &cases, &backends);
        fx.close();
    }
    c.final_summary();
}

/// The history branch of each kvgit store, made on first use and shared by
/// both workloads.
#[derive(Default)]
struct Cases {
    memory: OnceCell<HistoryCase>,
    sled: OnceCell<HistoryCase>,
}

impl Cases {
    fn get(&self, fx: &Fixtures, kind: BackendKind) -> &HistoryCase {
        let cell = match kind {
            BackendKind::Memory => &self.memory,
            BackendKind::Sled => &self.sled,
            BackendKind::RawSled | BackendKind::Journal => {
                panic!("{} has no history case here", kind.name())
            }
        };
        cell.get_or_init(|| HistoryCase::new(fx.kv(kind), HISTORY_SEED))
    }
}

/// `history/*/N`: the 1,000 commits are made once (untimed); each
/// iteration walks them from the head with `Repo::first_parent_log`
/// (commits come from the decoded-commit cache after the first
/// iteration). Raw sled: 1,000 `Tree::get`s in turn, page cache warm.
/// Throughput: commits (keys) read per second.
fn history(c: &mut Criterion, fx: &Fixtures, cases: &Cases, backends: &[BackendKind]) {
    let mut group = small_group(c, "history");
    group.throughput(Throughput::Elements(HISTORY_COMMITS as u64));
    for &kind in backends {
        match kind {
            BackendKind::Memory | BackendKind::Sled => {
                group.bench_function(id(kind, fx.n), |b| {
                    let store = fx.kv(kind);
                    let case = cases.get(fx, kind);
                    b.iter(|| {
                        let walked = case.walk(&store.repo);
                        assert_eq!(walked, HISTORY_COMMITS);
                        walked
                    })
                });
            }
            // The journal store is measured by the `defaults` target.
            BackendKind::Journal => {}
            BackendKind::RawSled => {
                let mut case = None;
                group.bench_function(id(kind, fx.n), |b| {
                    let raw = fx.raw();
                    let case = case.get_or_insert_with(|| {
                        raw.warm();
                        RawHistoryCase::new(raw, HISTORY_SEED)
                    });
                    b.iter(|| {
                        let read = case.walk(raw);
                        assert_eq!(read, HISTORY_COMMITS);
                        read
                    })
                });
            }
        }
    }
    group.finish();
}

/// `history_cold/*/N`: the same walk through a fresh repo over the store's
/// backend, so that every commit is read from the backend, hash-checked
/// and decoded (making the repo and dropping it are untimed). Its raw sled
/// counterpart is `history/raw_sled/N`.
fn history_cold(c: &mut Criterion, fx: &Fixtures, cases: &Cases, backends: &[BackendKind]) {
    let mut group = small_group(c, "history_cold");
    group.throughput(Throughput::Elements(HISTORY_COMMITS as u64));
    for &kind in backends {
        if kind == BackendKind::RawSled {
            continue;
        }
        group.bench_function(id(kind, fx.n), |b| {
            let store = fx.kv(kind);
            let case = cases.get(fx, kind);
            b.iter_batched(
                || store.repo_with(Durability::Eventual),
                |repo| {
                    let walked = case.walk(&repo);
                    assert_eq!(walked, HISTORY_COMMITS);
                    repo
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}
