//! Writers committing on several branches while rebases and sweeps run in
//! a loop. Afterwards every ref's whole history and tree reads back, every
//! object hashes to its id, the store holds exactly the reachable objects,
//! and no writer's commit was lost (each writer's protected state key holds
//! its last write).
//!
//! A few seconds by default; `KVGIT_STRESS=1` runs it longer (on sled too).

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{check_store, reachable, stored, Store};
use kvgit_core::Repo;
use kvgit_gc::{rebase, rebase_keep, sweep, RebaseOptions, SweepOptions, Watermarks};

const WRITERS: u64 = 4;

fn long() -> bool {
    std::env::var_os("KVGIT_STRESS").is_some_and(|v| v == "1")
}

/// A small deterministic generator (xorshift), one per thread.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn run(store: Store, duration: Duration) {
    // The branches that GC works on exist from the start.
    store.put("main", b"k0", b"seed");
    store.put("dev", b"k0", b"seed");
    let store = Arc::new(store);
    let stop = Arc::new(AtomicBool::new(false));
    let rebases = Arc::new(AtomicU64::new(0));
    let sweeps = Arc::new(AtomicU64::new(0));

    let writers: Vec<_> = (0..WRITERS)
        .map(|t| {
            let store = store.clone();
            let stop = stop.clone();
            std::thread::spawn(move || writer(&store, t, &stop))
        })
        .collect();
    let reader = {
        let store = store.clone();
        let stop = stop.clone();
        std::thread::spawn(move || reader(&store.repo, &stop))
    };
    let gc = {
        let (store, stop) = (store.clone(), stop.clone());
        let (rebases, sweeps) = (rebases.clone(), sweeps.clone());
        std::thread::spawn(move || {
            let marks = Watermarks::with_low(40_000, 20_000).unwrap();
            let options = RebaseOptions::default();
            let mut round = 0u64;
            while !stop.load(Ordering::Relaxed) {
                round += 1;
                let r = rebase(&store.repo, "main", &marks, &store.access, &options).unwrap();
                if r.performed() {
                    rebases.fetch_add(1, Ordering::Relaxed);
                }
                if round % 3 == 0 {
                    rebase_keep(&store.repo, "dev", |k| k.len() % 2 == 0, &options).unwrap();
                    rebases.fetch_add(1, Ordering::Relaxed);
                }
                sweep(&store.repo, &SweepOptions::default()).unwrap();
                sweeps.fetch_add(1, Ordering::Relaxed);
            }
        })
    };

    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    let last_states: Vec<u64> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    reader.join().unwrap();
    gc.join().unwrap();
    eprintln!(
        "stress: {} rebases, {} sweeps, final states {last_states:?}",
        rebases.load(Ordering::Relaxed),
        sweeps.load(Ordering::Relaxed)
    );
    assert!(rebases.load(Ordering::Relaxed) > 0, "no rebase ran");
    assert!(sweeps.load(Ordering::Relaxed) > 1, "too few sweeps ran");

    let repo = &store.repo;
    check_store(repo);
    for (t, last) in last_states.iter().enumerate() {
        let key = format!("w{t}/__state");
        let value = common::get(repo, "main", key.as_bytes());
        assert_eq!(value, Some(last.to_string().into_bytes()), "{key}");
    }
    sweep(repo, &SweepOptions::default()).unwrap();
    assert_eq!(stored(repo), reachable(repo));
    check_store(repo);
}

/// Commits until stopped; returns the last value it committed for its
/// protected state key on `main` (only this writer writes that key, and
/// no rebase may drop it or overwrite a commit, so `main` must hold it).
fn writer(store: &Store, t: u64, stop: &AtomicBool) -> u64 {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (t + 1).wrapping_mul(0x2545_F491_4F6C_DD1D));
    let state_key = format!("w{t}/__state");
    let mut n = 0u64;
    let mut last_on_main = 0;
    let tmp = format!("tmp{t}");
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let branch = match rng.below(4) {
            0 | 1 => "main",
            2 => "dev",
            _ => tmp.as_str(),
        };
        let mut edits: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
        for _ in 0..1 + rng.below(8) {
            let key = format!("k{}", rng.below(400)).into_bytes();
            let value = match rng.below(10) {
                0 => None,
                1 => Some(vec![t as u8; 300 + rng.below(700) as usize]), // a blob
                _ => Some(vec![n as u8; 20 + rng.below(200) as usize]),
            };
            edits.push((key, value));
        }
        if branch == "main" {
            edits.push((
                state_key.clone().into_bytes(),
                Some(n.to_string().into_bytes()),
            ));
        }
        let refs: Vec<(&[u8], Option<&[u8]>)> = edits
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_deref()))
            .collect();
        store.write(branch, &refs);
        if branch == "main" {
            last_on_main = n;
        }
        if branch == tmp && rng.below(3) == 0 {
            store
                .repo
                .delete_ref(&format!("heads/{tmp}"), None)
                .unwrap();
        }
    }
    last_on_main
}

/// Reads keys at branch heads without any fence. A read may only fail
/// with a missing object if the head it started from has been replaced
/// (a rebase cut its history and a sweep freed it).
fn reader(repo: &Repo, stop: &AtomicBool) {
    let mut rng = Rng(0xDEAD_BEEF);
    while !stop.load(Ordering::Relaxed) {
        for branch in ["main", "dev"] {
            let ref_name = format!("heads/{branch}");
            let Some(head) = repo.get_ref(&ref_name).unwrap() else {
                continue;
            };
            let key = format!("k{}", rng.below(400));
            let result = repo
                .commit_ref(&head)
                .and_then(|c| repo.tree(c.root))
                .and_then(|tree| repo.get(&tree, key.as_bytes()));
            match result {
                Ok(_) => {}
                Err(kvgit_core::Error::MissingObject(_) | kvgit_core::Error::UnknownCommit(_)) => {
                    assert_ne!(
                        repo.get_ref(&ref_name).unwrap(),
                        Some(head),
                        "a read of the current head failed"
                    );
                }
                Err(e) => panic!("read failed: {e}"),
            }
        }
    }
}

#[test]
fn writers_rebases_and_sweeps_together_in_memory() {
    let secs = if long() { 30 } else { 3 };
    run(Store::memory(), Duration::from_secs(secs));
}

#[test]
fn writers_rebases_and_sweeps_together_on_sled() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let started = Instant::now();
    let secs = if long() { 30 } else { 2 };
    {
        let repo = kvgit_core::Repo::new(
            Arc::new(
                kvgit_core::SledBackend::open(&path, kvgit_core::SledOptions::default()).unwrap(),
            ),
            kvgit_core::RepoOptions {
                durability: kvgit_core::Durability::Eventual,
                ..kvgit_core::RepoOptions::default()
            },
        );
        run(Store::over(repo), Duration::from_secs(secs));
    }
    // And once more after reopening.
    let repo = Repo::open(&path).unwrap();
    check_store(&repo);
    assert_eq!(stored(&repo), reachable(&repo));
    assert!(started.elapsed() < Duration::from_secs(secs * 20 + 60));
}
