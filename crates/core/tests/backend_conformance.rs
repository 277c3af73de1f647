//! The `Backend` contract (`kvgit_core::testkit`), checked against the
//! embedded backends: objects, refs (compare-and-swap, including a race
//! between threads) and metadata.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use kvgit_core::testkit;
use kvgit_core::{
    Backend, JournalBackend, JournalOptions, MemoryBackend, SledBackend, SledOptions,
};

/// Runs `check` against a fresh memory backend, a fresh sled backend and a
/// fresh journal backend.
fn on_every_backend(check: impl Fn(Arc<dyn Backend>)) {
    check(Arc::new(MemoryBackend::new()));
    let dir = tempfile::tempdir().expect("a temporary directory");
    let sled = SledBackend::open(dir.path().join("store"), SledOptions::default())
        .expect("a new sled store opens");
    check(Arc::new(sled));
    let journal = JournalBackend::open(dir.path().join("journal"), JournalOptions::default())
        .expect("a new journal store opens");
    check(Arc::new(journal));
}

#[test]
fn objects() {
    on_every_backend(testkit::check_objects);
}

#[test]
fn refs() {
    on_every_backend(testkit::check_refs);
}

#[test]
fn meta() {
    on_every_backend(testkit::check_meta);
}

#[test]
fn cas_race() {
    on_every_backend(testkit::check_cas_race);
}

/// `check_all` hands each check a fresh store of its own.
#[test]
fn check_all_on_fresh_stores() {
    testkit::check_all(|| Arc::new(MemoryBackend::new()));
    let dir = tempfile::tempdir().expect("a temporary directory");
    let n = AtomicUsize::new(0);
    testkit::check_all(|| {
        let path = dir
            .path()
            .join(format!("store{}", n.fetch_add(1, Ordering::Relaxed)));
        Arc::new(SledBackend::open(path, SledOptions::default()).expect("a new sled store opens"))
    });
    testkit::check_all(|| {
        let path = dir
            .path()
            .join(format!("journal{}", n.fetch_add(1, Ordering::Relaxed)));
        Arc::new(
            JournalBackend::open(path, JournalOptions::default())
                .expect("a new journal store opens"),
        )
    });
}
