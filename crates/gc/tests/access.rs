//! Access recency: ticks order touches, live outside the objects, are
//! written in batches and survive close and reopen.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns

mod common;

use common::{stored, Store};
use kvgit_core::Repo;
use kvgit_gc::{AccessError, AccessOptions, AccessTracker, ACCESS_PREFIX, TICK_KEY};

#[test]
fn ticks_survive_close_and_reopen_on_sled() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let (a, b) = {
        let repo = Repo::open(&path).unwrap();
        let access = AccessTracker::open(&repo, AccessOptions::default()).unwrap();
        access.touch("main", b"a").unwrap();
        access.touch("main", b"b").unwrap();
        access.touch("dev/alice", b"a").unwrap();
        access.flush().unwrap();
        // Not flushed explicitly: written when the tracker is dropped.
        access.touch("main", b"c").unwrap();
        let ticks = (
            access.tick("main", b"a").unwrap(),
            access.tick("main", b"b").unwrap(),
        );
        drop(access);
        drop(repo);
        ticks
    };
    let repo = Repo::open(&path).unwrap();
    let access = AccessTracker::open(&repo, AccessOptions::default()).unwrap();
    assert_eq!(access.tick("main", b"a").unwrap(), a);
    assert_eq!(access.tick("main", b"b").unwrap(), b);
    assert_eq!(access.tick("main", b"c").unwrap(), 4);
    assert_eq!(access.current_tick(), 4);
    // The counter carries on: a new touch is warmer than anything before.
    assert_eq!(access.touch("main", b"a").unwrap(), 5);
    let main: Vec<_> = access.ticks("main").unwrap();
    assert_eq!(
        main,
        vec![(b"a".to_vec(), 5), (b"b".to_vec(), 2), (b"c".to_vec(), 4)]
    );
    // Branches do not mix, even when one name extends the other.
    assert_eq!(access.ticks("dev/alice").unwrap(), vec![(b"a".to_vec(), 3)]);
    assert!(access.ticks("dev").unwrap().is_empty());
}

#[test]
fn touches_never_write_objects_or_refs() {
    let store = Store::memory();
    store.put("main", b"k", b"v");
    let objects = stored(&store.repo);
    let refs = store.repo.backend().list_refs("").unwrap();
    for _ in 0..10_000 {
        assert_eq!(store.read("main", b"k").as_deref(), Some(&b"v"[..]));
    }
    store.access.flush().unwrap();
    assert_eq!(stored(&store.repo), objects);
    assert_eq!(store.repo.backend().list_refs("").unwrap(), refs);
}

#[test]
fn touches_are_written_in_batches() {
    let repo = Repo::memory();
    let access = AccessTracker::open(&repo, AccessOptions { flush_every: 3 }).unwrap();
    let stored_entries = || repo.backend().scan_meta(ACCESS_PREFIX).unwrap().len();
    access.touch("main", b"a").unwrap();
    access.touch("main", b"b").unwrap();
    assert_eq!(stored_entries(), 0);
    access.touch("main", b"c").unwrap();
    assert_eq!(stored_entries(), 3);
    assert_eq!(
        repo.backend().get_meta(TICK_KEY).unwrap(),
        Some(3u64.to_be_bytes().to_vec())
    );
    access.touch_many("main", [&b"d"[..], b"e", b"f"]).unwrap();
    assert_eq!(stored_entries(), 6);
    assert_eq!(access.tick("main", b"f").unwrap(), 6);
}

#[test]
fn forget_keeps_keys_touched_since() {
    let store = Store::memory();
    let access = &store.access;
    let a = access.touch("main", b"a").unwrap();
    let b = access.touch("main", b"b").unwrap();
    access.flush().unwrap();
    let b2 = access.touch("main", b"b").unwrap();
    assert!(b2 > b);
    access
        .forget("main", [(&b"a"[..], a), (&b"b"[..], b)])
        .unwrap();
    assert_eq!(access.tick("main", b"a").unwrap(), 0);
    assert_eq!(access.tick("main", b"b").unwrap(), b2);
    access.flush().unwrap();
    assert_eq!(access.ticks("main").unwrap(), vec![(b"b".to_vec(), b2)]);

    access.touch("other", b"x").unwrap();
    access.flush().unwrap();
    access.touch("other", b"y").unwrap();
    access.forget_branch("other").unwrap();
    assert!(access.ticks("other").unwrap().is_empty());
    assert_eq!(access.ticks("main").unwrap().len(), 1);
}

#[test]
fn concurrent_touches_get_distinct_ticks() {
    let repo = Repo::memory();
    let access = AccessTracker::open(&repo, AccessOptions { flush_every: 50 }).unwrap();
    let threads: Vec<_> = (0..4u8)
        .map(|t| {
            let access = access.clone();
            std::thread::spawn(move || {
                (0..500u32)
                    .map(|i| {
                        let key = format!("{t}/{i}");
                        access.touch("main", key.as_bytes()).unwrap()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut all: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(all, (1..=2000).collect::<Vec<u64>>());
    let ticks = access.ticks("main").unwrap();
    assert_eq!(ticks.len(), 2000);
    assert!(ticks.iter().all(|(_, t)| (1..=2000).contains(t)));
}

#[test]
fn a_corrupt_tick_is_an_error_not_a_panic() {
    let repo = Repo::memory();
    repo.backend()
        .put_meta(vec![(b"gc/access/main:k".to_vec(), Some(vec![1, 2, 3]))])
        .unwrap();
    let access = AccessTracker::open(&repo, AccessOptions::default()).unwrap();
    assert!(matches!(
        access.ticks("main"),
        Err(AccessError::Corrupt { len: 3, .. })
    ));
    repo.backend()
        .put_meta(vec![(TICK_KEY.to_vec(), Some(vec![0; 9]))])
        .unwrap();
    assert!(AccessTracker::open(&repo, AccessOptions::default()).is_err());
}
