//! The [`Backend`] conformance suite, for anyone implementing a backend.
//!
//! Every backend of this workspace (memory, sled, PostgreSQL) runs these
//! checks; a new backend should too. Enable the `testkit` feature in the
//! backend crate's dev-dependencies and hand [`check_all`] a function that
//! opens a fresh, empty store:
//!
//! ```toml
//! [dev-dependencies]
//! kvgit-core = { version = "0.1", features = ["testkit"] }
//! ```
//!
//! ```no_run
//! use std::sync::Arc;
//! use kvgit_core::{Backend, MemoryBackend};
//!
//! // In a test of the backend's crate, with its own backend type:
//! kvgit_core::testkit::check_all(|| Arc::new(MemoryBackend::new()) as Arc<dyn Backend>);
//! ```
//!
//! Each check takes an empty backend, panics on the first violation of the
//! contract with a message saying what was expected, and covers:
//!
//! - [`check_objects`]: writes (idempotent, batched, empty batches), reads,
//!   `for_each_object` (id order, sizes, early stop, visitor errors),
//!   `for_each_object_in` (exactly a range of ids, early stop),
//!   deletes, rewrites after a delete, large objects, both barriers;
//! - [`check_refs`]: compare-and-swap (create, move, delete, mismatches
//!   reporting the actual value), `list_refs` (sorted, by prefix) and
//!   `put_objects_and_cas` (objects written whether or not it swaps);
//! - [`check_meta`]: batched writes and deletes, reads and prefix scans;
//! - [`check_cas_race`]: threads racing to advance a counter held in a ref,
//!   retrying on mismatch: no update is lost and no state is advanced twice.
//!
//! The checks use only the [`Backend`] trait, so they run unchanged on a
//! networked store. Of a shared store's extra operations
//! ([`crate::SharedStore`]), [`check_writer_turns`] checks the turns, given
//! two handles on one store; the others depend on the store's clock and are
//! left to its own tests.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::{Backend, CasOutcome, Durability, Error, ObjectId};

/// Runs every check of the suite, each on a fresh, empty backend from
/// `make`. Panics on the first violation.
pub fn check_all(make: impl Fn() -> Arc<dyn Backend>) {
    check_objects(make());
    check_refs(make());
    check_meta(make());
    check_cas_race(make());
}

/// Test object number `n`: its id and bytes.
fn object(n: u32) -> (ObjectId, Vec<u8>) {
    let bytes = format!("object number {n}").into_bytes();
    (ObjectId::hash(&bytes), bytes)
}

/// Every stored object with its size, as `for_each_object` reports them.
fn all_objects(b: &dyn Backend) -> Vec<(ObjectId, u64)> {
    let mut out = Vec::new();
    b.for_each_object(&mut |id, len| {
        out.push((id, len));
        Ok(true)
    })
    .expect("for_each_object succeeds");
    out
}

/// Objects: writes (idempotent, batched, empty), reads, `for_each_object`
/// (every object once, in id order, with its size; early stop; a visitor
/// error stops the walk and is returned), deletes (absent ids ignored), a
/// rewrite after a delete, a 300 KiB object, and both durability barriers.
/// `b` must be empty.
pub fn check_objects(b: Arc<dyn Backend>) {
    let objs: Vec<_> = (0..50).map(object).collect();
    assert!(
        !b.has_object(&objs[0].0).expect("has_object succeeds"),
        "a new backend has no objects"
    );
    assert_eq!(
        b.get_object(&objs[0].0).expect("get_object succeeds"),
        None,
        "reading an absent object gives None"
    );
    assert!(
        all_objects(&*b).is_empty(),
        "for_each_object on a new backend visits nothing"
    );

    b.put_objects(objs.clone())
        .expect("put_objects of 50 objects succeeds");
    // Writing them again (and an empty batch) is harmless.
    b.put_objects(objs[..10].to_vec())
        .expect("writing objects that exist succeeds");
    b.put_objects(Vec::new())
        .expect("writing an empty batch succeeds");
    for (i, (id, bytes)) in objs.iter().enumerate() {
        assert!(
            b.has_object(id).expect("has_object succeeds"),
            "object {i} is present after put_objects"
        );
        assert_eq!(
            b.get_object(id).expect("get_object succeeds").as_deref(),
            Some(&bytes[..]),
            "object {i} reads back unchanged"
        );
    }

    // for_each_object: every object once, in id order, with its size.
    let mut expected: Vec<(ObjectId, u64)> =
        objs.iter().map(|(id, b)| (*id, b.len() as u64)).collect();
    expected.sort();
    assert_eq!(
        all_objects(&*b),
        expected,
        "for_each_object visits every object once, in id order, with its size"
    );

    // for_each_object_in: exactly the ids in the range, in id order.
    let ranges = [
        (expected[10].0, Some(expected[20].0)),
        (expected[0].0, None),
        (expected[49].0, None),
        (ObjectId([0; 32]), Some(expected[0].0)),
        (expected[5].0, Some(expected[5].0)),
        (ObjectId::hex_prefix_range("8").expect("hex").0, None),
        (
            ObjectId([0; 32]),
            ObjectId::hex_prefix_range("8").expect("hex").1,
        ),
    ];
    for (start, end) in ranges {
        let mut seen = Vec::new();
        b.for_each_object_in(&start, end.as_ref(), &mut |id, len| {
            seen.push((id, len));
            Ok(true)
        })
        .expect("for_each_object_in succeeds");
        let want: Vec<_> = expected
            .iter()
            .filter(|(id, _)| *id >= start && end.is_none_or(|e| *id < e))
            .copied()
            .collect();
        assert_eq!(
            seen, want,
            "for_each_object_in({start}, {end:?}) visits the ids in that range, in order"
        );
    }
    let mut visited = 0;
    b.for_each_object_in(&expected[10].0, None, &mut |_, _| {
        visited += 1;
        Ok(visited < 3)
    })
    .expect("for_each_object_in succeeds");
    assert_eq!(
        visited, 3,
        "for_each_object_in stops when the visitor says so"
    );

    // Early stop.
    let mut seen = Vec::new();
    b.for_each_object(&mut |id, _| {
        seen.push(id);
        Ok(seen.len() < 7)
    })
    .expect("for_each_object stopped early succeeds");
    assert_eq!(
        seen,
        expected[..7].iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        "for_each_object stops as soon as the visitor returns false"
    );

    // An error from the visitor stops the walk and is returned.
    let err = b
        .for_each_object(&mut |_, _| Err(Error::Storage("stop".into())))
        .expect_err("for_each_object returns the visitor's error");
    assert!(
        matches!(err, Error::Storage(ref s) if s == "stop"),
        "for_each_object returns the visitor's error unchanged, got {err:?}"
    );

    // Delete some, including an absent id.
    let gone: Vec<ObjectId> = objs[..20]
        .iter()
        .map(|(id, _)| *id)
        .chain([object(999).0])
        .collect();
    b.delete_objects(&gone)
        .expect("delete_objects (with an absent id) succeeds");
    b.delete_objects(&[])
        .expect("delete_objects of nothing succeeds");
    for (i, (id, _)) in objs.iter().enumerate() {
        assert_eq!(
            b.has_object(id).expect("has_object succeeds"),
            i >= 20,
            "object {i} after deleting objects 0..20"
        );
    }
    assert_eq!(
        all_objects(&*b).len(),
        30,
        "for_each_object after deleting 20 of 50 objects"
    );

    // A deleted object can be written again.
    b.put_objects(vec![objs[0].clone()])
        .expect("rewriting a deleted object succeeds");
    assert_eq!(
        b.get_object(&objs[0].0)
            .expect("get_object succeeds")
            .as_deref(),
        Some(&objs[0].1[..]),
        "a deleted object written again reads back"
    );

    // Large objects survive unchanged.
    let big = vec![0xabu8; 300 << 10];
    let big_id = ObjectId::hash(&big);
    b.put_objects(vec![(big_id, big.clone())])
        .expect("writing a 300 KiB object succeeds");
    assert_eq!(
        b.get_object(&big_id).expect("get_object succeeds"),
        Some(big),
        "a 300 KiB object reads back unchanged"
    );
    b.flush(Durability::Durable)
        .expect("the durable barrier succeeds");
    b.flush(Durability::Eventual)
        .expect("the eventual barrier succeeds");
}

/// Refs: compare-and-swap creates (expected `None`), moves (including to
/// the same value) and deletes (new `None`, also of an absent ref); a
/// mismatch changes nothing and reports the actual value; `list_refs`
/// filters by prefix and sorts by name. `b` must be empty.
pub fn check_refs(b: Arc<dyn Backend>) {
    let cas = |name: &str, expected: Option<&ObjectId>, new: Option<&ObjectId>| {
        b.cas_ref(name, expected, new).expect("cas_ref succeeds")
    };
    let get = |name: &str| b.get_ref(name).expect("get_ref succeeds");
    let (a, _) = object(1);
    let (c, _) = object(2);
    let (d, _) = object(3);
    assert_eq!(get("heads/main"), None, "a new backend has no refs");

    // Create: expected None.
    assert_eq!(
        cas("heads/main", None, Some(&a)),
        CasOutcome::Swapped,
        "creating a ref (expected None) swaps"
    );
    assert_eq!(get("heads/main"), Some(a), "a created ref reads back");

    // Creating again fails and reports the actual value.
    assert_eq!(
        cas("heads/main", None, Some(&c)),
        CasOutcome::Mismatch { actual: Some(a) },
        "creating a ref that exists fails and reports its value"
    );
    // A wrong expectation fails and reports the actual value.
    assert_eq!(
        cas("heads/main", Some(&c), Some(&d)),
        CasOutcome::Mismatch { actual: Some(a) },
        "a wrong expectation fails and reports the actual value"
    );
    assert_eq!(get("heads/main"), Some(a), "a failed swap changes nothing");
    // Expecting a ref that does not exist reports None.
    assert_eq!(
        cas("heads/nope", Some(&a), Some(&c)),
        CasOutcome::Mismatch { actual: None },
        "expecting a value of an absent ref fails and reports None"
    );
    assert_eq!(
        get("heads/nope"),
        None,
        "a failed swap does not create the ref"
    );

    // Move, then a no-op move to the same value.
    assert_eq!(
        cas("heads/main", Some(&a), Some(&c)),
        CasOutcome::Swapped,
        "moving a ref from its value swaps"
    );
    assert_eq!(
        cas("heads/main", Some(&c), Some(&c)),
        CasOutcome::Swapped,
        "moving a ref to the value it holds swaps"
    );
    assert_eq!(get("heads/main"), Some(c), "a moved ref reads back");

    // list_refs: sorted by name, filtered by prefix.
    for (name, id) in [
        ("heads/zeta", d),
        ("tags/v1", a),
        ("heads/alpha", a),
        ("heads", d),
        ("headsx", c),
    ] {
        assert_eq!(
            cas(name, None, Some(&id)),
            CasOutcome::Swapped,
            "creating ref {name}"
        );
    }
    assert_eq!(
        b.list_refs("heads/").expect("list_refs succeeds"),
        vec![
            ("heads/alpha".to_string(), a),
            ("heads/main".to_string(), c),
            ("heads/zeta".to_string(), d)
        ],
        "list_refs(\"heads/\"): the refs under heads/, sorted by name"
    );
    let all: Vec<String> = b
        .list_refs("")
        .expect("list_refs succeeds")
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        all,
        [
            "heads",
            "heads/alpha",
            "heads/main",
            "heads/zeta",
            "headsx",
            "tags/v1"
        ],
        "list_refs(\"\"): every ref, sorted by name"
    );
    assert!(
        b.list_refs("remotes/")
            .expect("list_refs succeeds")
            .is_empty(),
        "list_refs of a prefix no ref has is empty"
    );

    // Delete: new None, only from the right value.
    assert_eq!(
        cas("heads/main", Some(&a), None),
        CasOutcome::Mismatch { actual: Some(c) },
        "deleting a ref from a wrong value fails and reports the actual value"
    );
    assert_eq!(
        cas("heads/main", Some(&c), None),
        CasOutcome::Swapped,
        "deleting a ref from its value swaps"
    );
    assert_eq!(get("heads/main"), None, "a deleted ref is gone");
    // Deleting a missing ref expecting None succeeds and changes nothing.
    assert_eq!(
        cas("heads/main", None, None),
        CasOutcome::Swapped,
        "deleting an absent ref expecting None swaps"
    );
    assert_eq!(
        get("heads/main"),
        None,
        "deleting an absent ref does not create it"
    );
    assert_eq!(
        b.list_refs("heads/").expect("list_refs succeeds").len(),
        2,
        "list_refs no longer lists a deleted ref"
    );

    // put_objects_and_cas: the objects are written whether or not the
    // swap succeeds, and the swap is exactly cas_ref's.
    let commit =
        |objects: Vec<(ObjectId, Vec<u8>)>, expected: Option<&ObjectId>, new: &ObjectId| {
            b.put_objects_and_cas(objects, &[], "heads/commit", expected, Some(new))
                .expect("put_objects_and_cas succeeds")
        };
    let batch: Vec<_> = (100..110).map(object).collect();
    let first = batch[0].0;
    let mut with_repeat = batch.clone();
    with_repeat.push(batch[3].clone());
    assert_eq!(
        commit(with_repeat, None, &first),
        CasOutcome::Swapped,
        "put_objects_and_cas creates a ref (an id given twice is written once)"
    );
    assert_eq!(
        get("heads/commit"),
        Some(first),
        "the ref holds the new value"
    );
    for (id, bytes) in &batch {
        assert_eq!(
            b.get_object(id).expect("get_object succeeds").as_deref(),
            Some(&bytes[..]),
            "put_objects_and_cas wrote its objects"
        );
    }
    let losing: Vec<_> = (110..115).map(object).collect();
    assert_eq!(
        commit(losing.clone(), Some(&losing[0].0), &losing[1].0),
        CasOutcome::Mismatch {
            actual: Some(first)
        },
        "put_objects_and_cas reports the actual value when the swap loses"
    );
    assert_eq!(
        get("heads/commit"),
        Some(first),
        "a lost swap moves nothing"
    );
    for (id, _) in &losing {
        assert!(
            b.has_object(id).expect("has_object succeeds"),
            "a lost swap still writes its objects"
        );
    }
    assert_eq!(
        commit(Vec::new(), Some(&first), &losing[0].0),
        CasOutcome::Swapped,
        "put_objects_and_cas with no objects is a plain swap"
    );
    assert_eq!(get("heads/commit"), Some(losing[0].0));
    assert_eq!(
        b.put_objects_and_cas(Vec::new(), &[], "heads/absent", Some(&first), Some(&first))
            .expect("put_objects_and_cas succeeds"),
        CasOutcome::Mismatch { actual: None },
        "expecting a value of an absent ref loses, reporting None"
    );
    assert_eq!(get("heads/absent"), None);
}

/// Metadata: a batch of writes (including an empty value), reads, prefix
/// scans sorted by key, and a batch mixing an overwrite, a delete and the
/// delete of an absent key. `b` must be empty.
pub fn check_meta(b: Arc<dyn Backend>) {
    let get = |key: &[u8]| b.get_meta(key).expect("get_meta succeeds");
    let scan = |prefix: &[u8]| b.scan_meta(prefix).expect("scan_meta succeeds");
    assert_eq!(get(b"gc/a"), None, "a new backend has no metadata");
    b.put_meta(vec![
        (b"gc/b".to_vec(), Some(b"2".to_vec())),
        (b"gc/a".to_vec(), Some(b"1".to_vec())),
        (b"format".to_vec(), Some(b"v1".to_vec())),
        (b"gc".to_vec(), Some(b"root".to_vec())),
        (b"gd".to_vec(), Some(vec![])),
    ])
    .expect("put_meta succeeds");
    b.put_meta(Vec::new())
        .expect("put_meta of an empty batch succeeds");
    assert_eq!(
        get(b"gc/a"),
        Some(b"1".to_vec()),
        "a written entry reads back"
    );
    assert_eq!(get(b"gd"), Some(vec![]), "an empty value is stored as such");
    assert_eq!(
        scan(b"gc/"),
        vec![
            (b"gc/a".to_vec(), b"1".to_vec()),
            (b"gc/b".to_vec(), b"2".to_vec())
        ],
        "scan_meta(\"gc/\"): the entries under gc/, sorted by key"
    );
    assert_eq!(scan(b"").len(), 5, "scan_meta(\"\") gives every entry");

    // One batch: overwrite, delete, delete of an absent key.
    b.put_meta(vec![
        (b"gc/a".to_vec(), Some(b"one".to_vec())),
        (b"gc/b".to_vec(), None),
        (b"nothing".to_vec(), None),
    ])
    .expect("put_meta with deletes succeeds");
    assert_eq!(get(b"gc/b"), None, "a deleted entry is gone");
    let keys: Vec<Vec<u8>> = scan(b"g").into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        keys,
        vec![b"gc".to_vec(), b"gc/a".to_vec(), b"gd".to_vec()],
        "scan_meta(\"g\") after the batch"
    );
    assert_eq!(
        get(b"gc/a"),
        Some(b"one".to_vec()),
        "an overwritten entry reads back the new value"
    );
    assert!(
        scan(b"zzz").is_empty(),
        "scan_meta of a prefix no key has is empty"
    );
}

/// The encoding of a counter state; the ref points at its hash.
fn counter_object(n: u64) -> (ObjectId, Vec<u8>) {
    let mut bytes = b"counter ".to_vec();
    bytes.extend_from_slice(&n.to_le_bytes());
    (ObjectId::hash(&bytes), bytes)
}

fn read_counter(b: &dyn Backend, id: &ObjectId) -> u64 {
    let bytes = b
        .get_object(id)
        .expect("get_object succeeds")
        .expect("the ref's object is stored before the ref moves");
    assert_eq!(
        ObjectId::hash(&bytes),
        *id,
        "an object's bytes hash to its id"
    );
    u64::from_le_bytes(bytes[8..].try_into().expect("8 counter bytes"))
}

/// 8 threads x 200 increments of a counter held in a ref, each a
/// read / write-object / CAS loop retried on mismatch (half the threads
/// write and swap in one `put_objects_and_cas`). No update is lost,
/// every state has exactly one successor, and a lost swap reports a newer
/// value than the one expected. `b` must be empty.
pub fn check_cas_race(b: Arc<dyn Backend>) {
    const THREADS: usize = 8;
    const ROUNDS: usize = 200;
    const TOTAL: usize = THREADS * ROUNDS;
    let (zero, bytes) = counter_object(0);
    b.put_objects(vec![(zero, bytes)])
        .expect("put_objects succeeds");
    assert_eq!(
        b.cas_ref("heads/counter", None, Some(&zero))
            .expect("cas_ref succeeds"),
        CasOutcome::Swapped,
        "creating the counter ref swaps"
    );

    // winners[n]: 1 + the thread that moved the counter from n to n + 1.
    let winners: Arc<Vec<AtomicUsize>> =
        Arc::new((0..TOTAL).map(|_| AtomicUsize::new(0)).collect());
    let mismatches = Arc::new(AtomicUsize::new(0));
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let b = b.clone();
            let winners = winners.clone();
            let mismatches = mismatches.clone();
            s.spawn(move || {
                let mut current = b
                    .get_ref("heads/counter")
                    .expect("get_ref succeeds")
                    .expect("the counter ref exists");
                for _ in 0..ROUNDS {
                    loop {
                        let n = read_counter(&*b, &current);
                        let (next, bytes) = counter_object(n + 1);
                        // Half the threads write and swap in one call,
                        // each batch with an object every thread writes.
                        let outcome = if t % 2 == 0 {
                            b.put_objects(vec![(next, bytes)])
                                .expect("put_objects succeeds");
                            b.cas_ref("heads/counter", Some(&current), Some(&next))
                                .expect("cas_ref succeeds")
                        } else {
                            let objects = vec![(next, bytes), object(999_999)];
                            // The state it replaces is present: a shared
                            // store's check of `refs` passes.
                            b.put_objects_and_cas(
                                objects,
                                &[current],
                                "heads/counter",
                                Some(&current),
                                Some(&next),
                            )
                            .expect("put_objects_and_cas succeeds")
                        };
                        match outcome {
                            CasOutcome::Swapped => {
                                let prev = winners[n as usize].swap(t + 1, Ordering::SeqCst);
                                assert_eq!(prev, 0, "state {n} was advanced twice");
                                current = next;
                                break;
                            }
                            CasOutcome::Mismatch { actual } => {
                                mismatches.fetch_add(1, Ordering::Relaxed);
                                let actual = actual.expect("the counter ref is never deleted");
                                assert_ne!(
                                    actual, current,
                                    "a lost swap reports the value it expected as the actual one"
                                );
                                // The counter only moves forward.
                                assert!(
                                    read_counter(&*b, &actual) > n,
                                    "a lost swap reports an older state than state {n}"
                                );
                                current = actual;
                            }
                        }
                    }
                }
            });
        }
    });
    let last = b
        .get_ref("heads/counter")
        .expect("get_ref succeeds")
        .expect("the counter ref exists");
    assert_eq!(
        last,
        counter_object(TOTAL as u64).0,
        "the counter ref ends at state {TOTAL}"
    );
    assert_eq!(
        read_counter(&*b, &last),
        TOTAL as u64,
        "no increment was lost"
    );
    let mut per_thread = [0usize; THREADS];
    for (n, w) in winners.iter().enumerate() {
        let w = w.load(Ordering::SeqCst);
        assert!(w > 0, "state {n} was never advanced");
        per_thread[w - 1] += 1;
    }
    assert_eq!(
        per_thread, [ROUNDS; THREADS],
        "every thread made each of its increments exactly once"
    );
    // Not asserted (scheduling decides), but a race that never races
    // tests little: print it for the curious.
    eprintln!(
        "cas_race: {} mismatches",
        mismatches.load(Ordering::Relaxed)
    );
}

/// Writer turns ([`crate::SharedStore::writer_turn`]) through two handles
/// `a` and `b` on one empty shared store, standing for two processes:
///
/// - a turn is granted at once when no one holds it, and excludes turns on
///   the same ref through either handle until dropped; turns on other refs
///   do not wait;
/// - while `a` holds a ref's turn, `a`'s own swaps of that ref go through
///   at once, and `b`'s wait for the turn to be dropped, then see the
///   holder's value;
/// - waiters get the turn once it is dropped.
///
/// "Waits" is checked as "has not finished after 300 ms", so a slow
/// machine cannot make this check fail, only a turn that does not exclude.
pub fn check_writer_turns(a: Arc<dyn Backend>, b: Arc<dyn Backend>) {
    use std::sync::mpsc::{channel, RecvTimeoutError};
    use std::time::Duration;
    const PATIENCE: Duration = Duration::from_millis(300);
    const LIMIT: Duration = Duration::from_secs(30);

    let sa = a.shared().expect("check_writer_turns needs a shared store");
    let sb = b.shared().expect("check_writer_turns needs a shared store");
    let objects: Vec<_> = (1..=3).map(object).collect();
    a.put_objects(objects.clone())
        .expect("put_objects succeeds");
    let (x, y, z) = (objects[0].0, objects[1].0, objects[2].0);
    assert_eq!(
        a.cas_ref("heads/turns", None, Some(&x))
            .expect("cas_ref succeeds"),
        CasOutcome::Swapped
    );

    let turn = sa
        .writer_turn("heads/turns")
        .expect("writer_turn succeeds")
        .expect("a turn no one holds is granted");
    let other = sb
        .writer_turn("heads/other")
        .expect("writer_turn succeeds")
        .expect("a turn on another ref is granted while one is held");
    drop(other);

    std::thread::scope(|s| {
        let (cas_done, cas_rx) = channel();
        let b_cas = b.clone();
        s.spawn(move || {
            let r = b_cas.cas_ref("heads/turns", Some(&x), Some(&y));
            cas_done.send(r).expect("the test waits for the swap");
        });
        assert!(
            matches!(
                cas_rx.recv_timeout(PATIENCE),
                Err(RecvTimeoutError::Timeout)
            ),
            "another handle's swap went through while the ref's turn was held"
        );

        let (turn_done, turn_rx) = channel();
        s.spawn(move || {
            let t = sb.writer_turn("heads/turns").expect("writer_turn succeeds");
            let granted = t.is_some();
            turn_done
                .send(granted)
                .expect("the test waits for the turn");
            drop(t);
        });
        assert!(
            matches!(
                turn_rx.recv_timeout(PATIENCE),
                Err(RecvTimeoutError::Timeout)
            ),
            "another handle got a turn that was held"
        );

        assert_eq!(
            a.cas_ref("heads/turns", Some(&x), Some(&z))
                .expect("cas_ref succeeds"),
            CasOutcome::Swapped,
            "the turn holder's own swap goes through"
        );
        drop(turn);

        let r = cas_rx
            .recv_timeout(LIMIT)
            .expect("the waiting swap finishes once the turn is dropped")
            .expect("cas_ref succeeds");
        assert_eq!(
            r,
            CasOutcome::Mismatch { actual: Some(z) },
            "the waiting swap sees the holder's value"
        );
        assert!(
            turn_rx
                .recv_timeout(LIMIT)
                .expect("the waiting turn is granted once the turn is dropped"),
            "the waiting turn is granted once the turn is dropped"
        );
    });
    let again = sa.writer_turn("heads/turns").expect("writer_turn succeeds");
    assert!(again.is_some(), "a dropped turn can be taken again");
}
