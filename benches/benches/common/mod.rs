//! What every benchmark target shares: test-mode detection, ids and
//! group settings. (Each target uses only some of it.)
#![allow(dead_code)]

use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion};
use kvgit_benches::{size_label, BackendKind};

/// True when criterion runs each benchmark once, untimed: under `--test`,
/// and when started by `cargo test` (which does not pass `--bench`).
pub fn test_mode() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.iter().any(|a| a == "--test") || !args.iter().any(|a| a == "--bench")
}

/// The id `backend/N` within a workload's group.
pub fn id(kind: BackendKind, n: usize) -> BenchmarkId {
    BenchmarkId::new(kind.name(), size_label(n))
}

/// A group for a workload costing microseconds to a few milliseconds:
/// 1 s of warm-up, 3 s of measurement.
pub fn small_group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group
}

/// criterion's options that take a value (criterion 0.5), to find the
/// filter among the arguments.
const VALUE_OPTIONS: [&str; 20] = [
    "-c",
    "--color",
    "--colour",
    "-s",
    "--save-baseline",
    "-b",
    "--baseline",
    "--baseline-lenient",
    "--load-baseline",
    "--format",
    "--profile-time",
    "--sample-size",
    "--warm-up-time",
    "--measurement-time",
    "--nresamples",
    "--noise-threshold",
    "--confidence-level",
    "--significance-level",
    "--plotting-backend",
    "--output-format",
];

/// True if criterion's filter (the first positional argument, a regex, or
/// an exact id under `--exact`) selects the benchmark `id`
/// (`workload/backend/N`). For fixtures that must exist before their
/// benchmark is registered (a throughput known only once they are built):
/// a filtered-out benchmark then costs nothing. When in doubt (an option
/// this does not know), it says true.
pub fn selected(id: &str) -> bool {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let exact = args.iter().any(|a| a == "--exact");
    let mut filter = None;
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if VALUE_OPTIONS.contains(&a.as_str()) {
            i += 2;
            continue;
        }
        if !a.starts_with('-') {
            filter = Some(a.clone());
            break;
        }
        i += 1;
    }
    match filter {
        None => true,
        Some(f) if exact => f == id,
        Some(f) => regex::Regex::new(&f).map_or(true, |re| re.is_match(id)),
    }
}
