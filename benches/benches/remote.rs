//! kvgit's remote benchmarks (kvgit-remote through the facade), over
//! `file://`: the transfer runs through a child process speaking the
//! protocol on pipes, as over ssh, without ssh. Ids:
//!
//! - `clone/file/N`: a clone of an N-key store (objects per second; the MB
//!   per second is printed), beside `clone/cp_r/N`, `cp -r` of the same
//!   store directory, in the same run.
//! - `fetch10/file/N`: a fetch of 10 single-key commits made on the
//!   N-key source since the last fetch (objects and bytes printed).
//! - `push10/file/N`: a push of 10 single-key commits.
//! - `fetch10/git/N`: `git fetch` over `file://` of 10 single-file commits
//!   from a git repository holding the same keys as files (when `git` is
//!   installed; the benchmark installs it with apt-get when missing).
//!
//! The serving process is this benchmark binary itself: started as
//! `BENCH serve --stdio PATH`, it serves the store with `Db::serve` and
//! exits, so no `kvgit` binary needs to be built.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, SamplingMode, Throughput};
use kvgit::remote::{ConnectOptions, FetchOptions, PushOptions};
use kvgit::Db;
use kvgit_benches::{size_label, sizes_from_env};

use common::{selected, test_mode};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("serve") {
        serve(&args);
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    for n in sizes_from_env(test_mode()) {
        let dir = tempfile::tempdir().expect("temp dir");
        let source = dir.path().join("source");
        make_store(&source, n);
        clone(&mut c, &source, n);
        fetch_push(&mut c, &source, n);
        git_fetch(&mut c, dir.path(), n);
    }
    c.final_summary();
}

/// `BENCH serve --stdio PATH`: the server side of a `file://` transfer.
fn serve(args: &[String]) {
    let path = args.last().expect("a store path");
    let db = Db::open_existing(path).expect("the store opens");
    db.serve(std::io::stdin(), std::io::stdout(), &Default::default())
        .expect("serve");
}

fn connect() -> ConnectOptions {
    ConnectOptions {
        serve_program: std::env::current_exe()
            .expect("this benchmark's path")
            .to_string_lossy()
            .into_owned(),
        ..ConnectOptions::default()
    }
}

fn url(path: &Path) -> String {
    format!("file://{}", path.display())
}

fn key(i: usize) -> String {
    format!("key/{:03}/{i:08}", i % 1000)
}

/// An N-key store at `path` (100-byte values), closed.
fn make_store(path: &Path, n: usize) {
    let db = Db::open(path).expect("store");
    let main = db.branch("main").expect("main");
    let mut done = 0;
    while done < n {
        let mut tx = main.transaction().expect("tx");
        for i in done..(done + 100_000).min(n) {
            tx.put(key(i), format!("{i:0100}"));
        }
        tx.commit().expect("commit");
        done = (done + 100_000).min(n);
    }
    db.flush().expect("flush");
}

fn slow_group<'a>(
    c: &'a mut Criterion,
    name: &str,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    group
}

/// `clone/file/N` and `clone/cp_r/N`.
fn clone(c: &mut Criterion, source: &Path, n: usize) {
    let label = size_label(n);
    // Each copy in its own directory, deleted (untimed) once measured.
    let fresh = || tempfile::tempdir().expect("temp dir");
    let mut group = slow_group(c, "clone");
    if selected(&format!("clone/file/{label}")) {
        let first = fresh();
        let options = FetchOptions {
            connect: connect(),
            ..Default::default()
        };
        let (_db, report) =
            Db::clone_from_with(&url(source), first.path().join("s"), options).expect("clone");
        eprintln!(
            "clone/file/{label}: {} objects, {} bytes ({} on the wire)",
            report.objects_received, report.bytes_received, report.wire_bytes_received
        );
        group.throughput(Throughput::Elements(report.objects_received));
        group.bench_function(criterion::BenchmarkId::new("file", &label), |b| {
            b.iter_batched(
                fresh,
                |dest| {
                    let options = FetchOptions {
                        connect: connect(),
                        ..Default::default()
                    };
                    let (db, _) = Db::clone_from_with(&url(source), dest.path().join("s"), options)
                        .expect("clone");
                    drop(db);
                    dest
                },
                BatchSize::PerIteration,
            )
        });
    }
    if selected(&format!("clone/cp_r/{label}")) {
        group.bench_function(criterion::BenchmarkId::new("cp_r", &label), |b| {
            b.iter_batched(
                fresh,
                |dest| {
                    let ok = Command::new("cp")
                        .arg("-r")
                        .arg(source)
                        .arg(dest.path().join("s"))
                        .status()
                        .expect("cp runs")
                        .success();
                    assert!(ok, "cp -r failed");
                    dest
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

/// Ten single-key commits on `db`'s main.
fn ten_commits(db: &Db, round: u64) {
    let main = db.branch("main").expect("main");
    for i in 0..10u64 {
        main.put(format!("hot/{i}"), format!("{round}-{i}"))
            .expect("put");
    }
}

/// `fetch10/file/N` and `push10/file/N`.
fn fetch_push(c: &mut Criterion, source: &Path, n: usize) {
    let label = size_label(n);
    let scratch = tempfile::tempdir().expect("temp dir");
    let local_path = scratch.path().join("local");
    let options = FetchOptions {
        connect: connect(),
        ..Default::default()
    };
    let (local, _) = Db::clone_from_with(&url(source), &local_path, options).expect("clone");
    let mut round = 0u64;
    let mut group = slow_group(c, "fetch10");
    if selected(&format!("fetch10/file/{label}")) {
        group.bench_function(criterion::BenchmarkId::new("file", &label), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    round += 1;
                    {
                        let src = Db::open_existing(source).expect("source");
                        ten_commits(&src, round);
                    }
                    let start = Instant::now();
                    let options = FetchOptions {
                        connect: connect(),
                        ..Default::default()
                    };
                    let report = local
                        .remote("origin")
                        .expect("origin")
                        .fetch(&[], options)
                        .expect("fetch");
                    total += start.elapsed();
                    if round == 1 {
                        eprintln!(
                            "fetch10/file/{label}: {} objects, {} bytes, {} round trips",
                            report.objects_received, report.bytes_received, report.round_trips
                        );
                    }
                }
                total
            })
        });
    }
    group.finish();
    // The local branch follows the source before pushing.
    let theirs = local
        .remote("origin")
        .expect("origin")
        .tracking("main")
        .expect("tracking")
        .expect("fetched");
    let main = local.branch("main").expect("main");
    main.reset_to(&theirs).expect("reset");
    let mut group = slow_group(c, "push10");
    if selected(&format!("push10/file/{label}")) {
        let mut first = true;
        group.bench_function(criterion::BenchmarkId::new("file", &label), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    round += 1;
                    ten_commits(&local, round);
                    let start = Instant::now();
                    let options = PushOptions {
                        connect: connect(),
                        ..Default::default()
                    };
                    let report = main.push("origin", options).expect("push");
                    total += start.elapsed();
                    if first {
                        first = false;
                        eprintln!(
                            "push10/file/{label}: {} objects, {} bytes sent",
                            report.objects_sent, report.bytes_sent
                        );
                    }
                }
                total
            })
        });
    }
    group.finish();
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn git_found() -> bool {
    Command::new("git")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn have_git() -> bool {
    if git_found() {
        return true;
    }
    eprintln!("git is missing: installing it with apt-get for the fetch10/git benchmark");
    let _ = Command::new("apt-get")
        .args(["install", "-y", "-qq", "git"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status();
    git_found()
}

/// `fetch10/git/N`: the same fetch through git, the peer gitkv users use.
fn git_fetch(c: &mut Criterion, dir: &Path, n: usize) {
    let label = size_label(n);
    if !selected(&format!("fetch10/git/{label}")) || !have_git() {
        return;
    }
    let src: PathBuf = dir.join("git-source");
    std::fs::create_dir_all(&src).expect("git dir");
    git(&src, &["init", "-q", "-b", "main"]);
    git(&src, &["config", "user.email", "bench@example.com"]);
    git(&src, &["config", "user.name", "bench"]);
    for i in 0..n {
        let path = src.join(key(i));
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("dirs");
        std::fs::write(&path, format!("{i:0100}")).expect("file");
    }
    std::fs::create_dir_all(src.join("hot")).expect("hot");
    git(&src, &["add", "-A"]);
    git(&src, &["commit", "-q", "-m", "keys"]);
    let dst = dir.join("git-copy");
    let out = Command::new("git")
        .args(["clone", "-q", "--no-local"])
        .arg(url(&src))
        .arg(&dst)
        .output()
        .expect("git clone");
    assert!(out.status.success(), "git clone failed");
    let mut round = 0u64;
    let mut group = slow_group(c, "fetch10");
    group.bench_function(criterion::BenchmarkId::new("git", &label), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                round += 1;
                for i in 0..10u64 {
                    std::fs::write(src.join(format!("hot/{i}")), format!("{round}-{i}"))
                        .expect("write");
                    git(&src, &["add", "-A"]);
                    git(&src, &["commit", "-q", "-m", "one key"]);
                }
                let start = Instant::now();
                git(&dst, &["fetch", "-q", "origin"]);
                total += start.elapsed();
            }
            total
        })
    });
    group.finish();
}
