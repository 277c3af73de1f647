//! The documented example: high water 200, low water 100, three 40-byte
//! values `a`, `b`, `c` committed in turn (each write touching its key),
//! and `a` is dropped while `c` stays.
//!
//! The arithmetic, taken literally: sizes are value bytes (keys are not
//! counted), and a rebase runs only when a branch holds *more* than the
//! high water. Three 40-byte values hold 120 bytes, which is not above 200,
//! so with those marks nothing happens (first test). The outcome the
//! example describes (`a` dropped, `c` kept) is exactly what happens once
//! the branch is above its high water:
//!
//! - with a high water of 100 (low water 80, the default 80%): 120 > 100,
//!   dropping the coldest key `a` leaves 80 <= 80, so `a` goes and `b`
//!   and `c` stay (second test);
//! - with the stated 200/100, it takes six 40-byte values (240 > 200;
//!   five hold exactly 200, which is not above). Reaching 100 then takes
//!   four drops (240 -> 80), the four coldest: `a`, `b`, `c`, `d`. `c`
//!   stays only if it was read since, which makes it warmer than `d` and
//!   `e` (third test).

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns

mod common;

use common::Store;
use kvgit_gc::{rebase, RebaseOptions, RebaseStatus, Watermarks};

const V40: &[u8] = &[b'v'; 40];

fn rebase_main(store: &Store, marks: &Watermarks) -> kvgit_gc::RebaseReport {
    rebase(
        &store.repo,
        "main",
        marks,
        &store.access,
        &RebaseOptions::default(),
    )
    .unwrap()
}

fn keys(store: &Store) -> Vec<String> {
    store
        .contents("main")
        .into_keys()
        .map(|k| String::from_utf8(k).unwrap())
        .collect()
}

fn dropped(report: &kvgit_gc::RebaseReport) -> Vec<String> {
    report
        .dropped
        .iter()
        .map(|k| String::from_utf8(k.clone()).unwrap())
        .collect()
}

#[test]
fn as_written_120_bytes_stay_below_a_high_water_of_200() {
    let store = Store::memory();
    let marks = Watermarks::with_low(200, 100).unwrap();
    for (i, key) in ["a", "b", "c"].into_iter().enumerate() {
        store.put("main", key.as_bytes(), V40);
        // After each commit, as an automatic GC would: 40, 80, 120 bytes.
        let report = rebase_main(&store, &marks);
        assert_eq!(report.status, RebaseStatus::BelowHighWater);
        assert_eq!(report.bytes_before, 40 * (i as u64 + 1));
        assert!(!report.performed());
    }
    assert_eq!(keys(&store), ["a", "b", "c"]);
}

#[test]
fn above_the_high_water_the_coldest_key_a_goes_and_c_stays() {
    let store = Store::memory();
    // High water 100, low water 80 (the default 80%).
    let marks = Watermarks::new(100);
    assert_eq!(marks.low(), 80);
    let mut reports = Vec::new();
    for key in ["a", "b", "c"] {
        store.put("main", key.as_bytes(), V40);
        reports.push(rebase_main(&store, &marks));
    }
    // 40 and 80 bytes: below. 120 > 100: drop `a` (the coldest), 80 <= 80.
    assert_eq!(reports[0].status, RebaseStatus::BelowHighWater);
    assert_eq!(reports[1].status, RebaseStatus::BelowHighWater);
    let report = &reports[2];
    assert_eq!(report.status, RebaseStatus::Rebased);
    assert_eq!(dropped(report), ["a"]);
    assert_eq!((report.bytes_before, report.bytes_after), (120, 80));
    assert_eq!(report.dropped_bytes, 40);
    assert_eq!(report.kept, 2);
    assert!(report.reached_low);
    assert_eq!(keys(&store), ["b", "c"]);
    // A fresh root commit.
    let head = store.repo.get_ref("heads/main").unwrap().unwrap();
    assert_eq!(report.commit, Some(head));
    assert!(store.repo.read_commit(&head).unwrap().parents.is_empty());
}

#[test]
fn with_200_and_100_it_takes_six_values_and_c_stays_if_read() {
    for read_c in [false, true] {
        let store = Store::memory();
        let marks = Watermarks::with_low(200, 100).unwrap();
        for key in ["a", "b", "c", "d", "e"] {
            store.put("main", key.as_bytes(), V40);
            assert!(!rebase_main(&store, &marks).performed());
        }
        // Five values: exactly 200 bytes, not above the high water.
        assert_eq!(rebase_main(&store, &marks).bytes_before, 200);
        if read_c {
            assert_eq!(store.read("main", b"c").as_deref(), Some(V40));
        }
        store.put("main", b"f", V40);
        let report = rebase_main(&store, &marks);
        assert_eq!(report.status, RebaseStatus::Rebased);
        assert_eq!((report.bytes_before, report.bytes_after), (240, 80));
        if read_c {
            assert_eq!(dropped(&report), ["a", "b", "d", "e"]);
            assert_eq!(keys(&store), ["c", "f"]);
        } else {
            assert_eq!(dropped(&report), ["a", "b", "c", "d"]);
            assert_eq!(keys(&store), ["e", "f"]);
        }
    }
}
