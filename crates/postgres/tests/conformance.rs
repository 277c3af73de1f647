//! `PgBackend` against the `Backend` contract: every check of
//! `kvgit_core::testkit` on a fresh database, then what only a store shared
//! over the network has to get right: races between connections, ref name
//! order, prefix scans at the 0xff edge, large batches, the `SharedStore`
//! operations (write times, the ref log, monotonic metadata) and the errors
//! of opening a store that cannot be used.
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use kvgit_core::{testkit, Backend, CasOutcome, Error, ObjectId, SharedStore};
use kvgit_postgres::{PgBackend, PgOptions};
use parking_lot::Mutex;

fn open(db: &common::TestDb) -> PgBackend {
    PgBackend::open(&db.url).unwrap_or_else(|e| panic!("{} opens: {e}", db.url))
}

fn id(label: &str) -> ObjectId {
    ObjectId::hash(label.as_bytes())
}

fn all_objects(b: &dyn Backend) -> Vec<(ObjectId, u64)> {
    let mut out = Vec::new();
    b.for_each_object(&mut |id, len| {
        out.push((id, len));
        Ok(true)
    })
    .expect("for_each_object succeeds");
    out
}

/// Bytes that do not compress (PostgreSQL compresses large values).
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

// ---------------------------------------------------------------------------
// The shared suite.

/// Every check of the conformance suite, each on a database of its own.
#[test]
fn every_testkit_check() {
    let dbs = Mutex::new(Vec::new());
    testkit::check_all(|| {
        let db = common::TestDb::new("testkit");
        let backend = open(&db);
        dbs.lock().push(db);
        Arc::new(backend)
    });
    assert_eq!(dbs.lock().len(), 4, "one database per check");
}

/// Writer turns through two backends on one database (two processes, as
/// far as the server can tell).
#[test]
fn writer_turns() {
    let db = common::TestDb::new("turns");
    testkit::check_writer_turns(Arc::new(open(&db)), Arc::new(open(&db)));
}

/// A turn holder that hangs delays the others by bounded waits only, and
/// one whose session dies (its process was killed) frees the turn at once.
#[test]
fn stuck_and_dead_turn_holders() {
    let db = common::TestDb::new("stuck_turn");
    let a = open(&db);
    let b = PgBackend::open_with(
        &db.url,
        PgOptions {
            turn_wait: Duration::from_millis(200),
            ..PgOptions::default()
        },
    )
    .unwrap();
    let (x, y) = (id("x"), id("y"));
    a.put_objects(vec![(x, b"x".to_vec()), (y, b"y".to_vec())])
        .unwrap();
    assert_eq!(
        a.cas_ref("heads/t", None, Some(&x)).unwrap(),
        CasOutcome::Swapped
    );
    let sa = a.shared().unwrap();
    let sb = b.shared().unwrap();
    let held = sa.writer_turn("heads/t").unwrap().expect("granted");

    // The other process gives up waiting for the turn after its wait
    // limit, and its swap goes on after the server-side limit (2 s).
    let started = Instant::now();
    assert!(sb.writer_turn("heads/t").unwrap().is_none());
    let waited = started.elapsed();
    // (less a little: the server's timer is not exact to the microsecond)
    assert!(waited >= Duration::from_millis(190), "waited {waited:?}");
    assert_eq!(
        b.cas_ref("heads/t", Some(&x), Some(&y)).unwrap(),
        CasOutcome::Swapped,
        "a swap does not wait for a stuck holder forever"
    );

    // The holder's session dies: the turn is free at once.
    let mut admin = postgres::Client::connect(&db.url, postgres::NoTls).unwrap();
    let killed: Vec<bool> = admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_locks \
             WHERE locktype = 'advisory' AND granted AND mode = 'ExclusiveLock'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(killed, vec![true], "one session holds the turn");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if sb.writer_turn("heads/t").unwrap().is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a dead holder's turn is never freed"
        );
    }
    // Dropping the dead turn is harmless, and `a` takes turns again.
    drop(held);
    assert!(sa.writer_turn("heads/t").unwrap().is_some());
}

// ---------------------------------------------------------------------------
// Refs.

/// Rounds of `THREADS` threads, released together by a barrier, each
/// swapping the ref from the value of the previous round to a value of its
/// own: in every round exactly one wins, and every loser is told the
/// winner's value. Round 0 creates the ref. The threads share one
/// backend; its pool gives each its own connection.
#[test]
fn cas_race_reports_the_winners_value() {
    const THREADS: usize = 8;
    const ROUNDS: usize = 25;
    let db = common::TestDb::new("cas_winner");
    let b = Arc::new(open(&db));
    let value = |round: usize, t: usize| id(&format!("round {round} thread {t}"));
    let barrier = Barrier::new(THREADS);
    let outcomes: Vec<Vec<CasOutcome>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (b, barrier) = (&b, &barrier);
                s.spawn(move || {
                    let mut current: Option<ObjectId> = None;
                    let mut outcomes = Vec::new();
                    for round in 0..ROUNDS {
                        let mine = value(round, t);
                        barrier.wait();
                        // No panic before the last barrier: it would
                        // leave the other threads waiting for ever.
                        let outcome = b.cas_ref("heads/race", current.as_ref(), Some(&mine));
                        if let Ok(outcome) = &outcome {
                            current = match outcome {
                                CasOutcome::Swapped => Some(mine),
                                CasOutcome::Mismatch { actual } => *actual,
                            };
                        }
                        outcomes.push(outcome);
                    }
                    outcomes
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().into_iter().map(Result::unwrap).collect())
            .collect()
    });
    let mut winner_value = None;
    for round in 0..ROUNDS {
        let winners: Vec<usize> = (0..THREADS)
            .filter(|&t| outcomes[t][round] == CasOutcome::Swapped)
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let won = value(round, winners[0]);
        for (t, thread) in outcomes.iter().enumerate() {
            if t != winners[0] {
                assert_eq!(
                    thread[round],
                    CasOutcome::Mismatch { actual: Some(won) },
                    "round {round}: thread {t} lost and must see the winner's value"
                );
            }
        }
        winner_value = Some(won);
    }
    assert_eq!(b.get_ref("heads/race").unwrap(), winner_value);
}

/// Many threads, each with a backend (a pool, a connection) of its own as
/// separate processes would have, create the same refs at once: for each
/// ref exactly one wins and the others are told its value.
#[test]
fn concurrent_creation_of_one_ref() {
    const THREADS: usize = 12;
    const REFS: usize = 15;
    let db = common::TestDb::new("cas_create");
    let value = |r: usize, t: usize| id(&format!("ref {r} thread {t}"));
    let barrier = Barrier::new(THREADS);
    let outcomes: Vec<Vec<CasOutcome>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (db, barrier) = (&db, &barrier);
                s.spawn(move || {
                    // No panic before the last barrier: it would leave the
                    // other threads waiting for ever.
                    let b = PgBackend::open(&db.url);
                    (0..REFS)
                        .map(|r| {
                            barrier.wait();
                            let b = b.as_ref().map_err(|e| format!("opening: {e}"))?;
                            b.cas_ref(&format!("heads/new{r}"), None, Some(&value(r, t)))
                                .map_err(|e| e.to_string())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().into_iter().map(Result::unwrap).collect())
            .collect()
    });
    let b = open(&db);
    for r in 0..REFS {
        let winners: Vec<usize> = (0..THREADS)
            .filter(|&t| outcomes[t][r] == CasOutcome::Swapped)
            .collect();
        assert_eq!(winners.len(), 1, "ref {r}: winners {winners:?}");
        let won = value(r, winners[0]);
        for (t, thread) in outcomes.iter().enumerate() {
            if t != winners[0] {
                assert_eq!(
                    thread[r],
                    CasOutcome::Mismatch { actual: Some(won) },
                    "ref {r}: thread {t} lost the creation and must see the winner's value"
                );
            }
        }
        assert_eq!(b.get_ref(&format!("heads/new{r}")).unwrap(), Some(won));
    }
    // A creation never logs: no ref moved away from anything.
    assert!(b.recent_ref_targets_all().is_empty());
}

/// Reading the whole ref log through the `SharedStore` view.
trait RefLog {
    fn recent_ref_targets_all(&self) -> BTreeSet<ObjectId>;
}

impl RefLog for PgBackend {
    fn recent_ref_targets_all(&self) -> BTreeSet<ObjectId> {
        let shared = self.shared().expect("PgBackend is a shared store");
        let targets = shared
            .recent_ref_targets(Duration::from_secs(3600))
            .expect("recent_ref_targets succeeds");
        let set: BTreeSet<ObjectId> = targets.iter().copied().collect();
        assert_eq!(set.len(), targets.len(), "duplicates in {targets:?}");
        set
    }
}

/// CAS with `new = None` deletes, only from the right value, logs the
/// deleted value, lets the ref be created again; of threads racing to
/// delete, exactly one succeeds and the others are told the ref is gone.
#[test]
fn deleting_refs_by_cas() {
    const THREADS: usize = 6;
    let db = common::TestDb::new("cas_delete");
    let b = Arc::new(open(&db));
    let (v1, v2) = (id("v1"), id("v2"));
    assert_eq!(
        b.cas_ref("heads/d", None, Some(&v1)).unwrap(),
        CasOutcome::Swapped
    );
    assert_eq!(
        b.cas_ref("heads/d", Some(&v2), None).unwrap(),
        CasOutcome::Mismatch { actual: Some(v1) }
    );
    assert_eq!(
        b.cas_ref("heads/d", None, None).unwrap(),
        CasOutcome::Mismatch { actual: Some(v1) }
    );
    assert_eq!(
        b.cas_ref("heads/d", Some(&v1), None).unwrap(),
        CasOutcome::Swapped
    );
    assert_eq!(b.get_ref("heads/d").unwrap(), None);
    assert!(b.list_refs("").unwrap().is_empty());
    assert_eq!(
        b.recent_ref_targets_all(),
        BTreeSet::from([v1]),
        "the deleted value is logged"
    );
    // Deleting again: the ref is gone.
    assert_eq!(
        b.cas_ref("heads/d", Some(&v1), None).unwrap(),
        CasOutcome::Mismatch { actual: None }
    );
    assert_eq!(
        b.cas_ref("heads/d", None, None).unwrap(),
        CasOutcome::Swapped
    );
    // Created again after the delete.
    assert_eq!(
        b.cas_ref("heads/d", None, Some(&v2)).unwrap(),
        CasOutcome::Swapped
    );
    assert_eq!(b.get_ref("heads/d").unwrap(), Some(v2));

    let barrier = Barrier::new(THREADS);
    for round in 0..10 {
        let v = id(&format!("delete round {round}"));
        assert_eq!(
            b.cas_ref("heads/gone", None, Some(&v)).unwrap(),
            CasOutcome::Swapped
        );
        let outcomes: Vec<CasOutcome> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..THREADS)
                .map(|_| {
                    let (b, barrier) = (&b, &barrier);
                    s.spawn(move || {
                        barrier.wait();
                        b.cas_ref("heads/gone", Some(&v), None).unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let swapped = outcomes
            .iter()
            .filter(|o| **o == CasOutcome::Swapped)
            .count();
        assert_eq!(swapped, 1, "round {round}: {outcomes:?}");
        assert!(
            outcomes.iter().all(|o| matches!(
                o,
                CasOutcome::Swapped | CasOutcome::Mismatch { actual: None }
            )),
            "round {round}: a losing delete must see the ref gone: {outcomes:?}"
        );
        assert_eq!(b.get_ref("heads/gone").unwrap(), None);
    }
}

/// A database whose default collation sorts text as people do ("a" before
/// "B"), not bytewise: ICU's English where the server has it, else a plain
/// one.
fn linguistic_db(hint: &str) -> common::TestDb {
    let plain = common::TestDb::new(hint);
    let name = format!("{}_icu", plain.name);
    let created = common::admin().batch_execute(&format!(
        "CREATE DATABASE {name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' \
         LOCALE 'C.UTF-8' ENCODING 'UTF8'"
    ));
    match created {
        Ok(()) => common::TestDb {
            url: common::with_database(common::server_url(), &name),
            name,
        },
        Err(e) => {
            eprintln!("no ICU database ({e}); the default collation will do");
            plain
        }
    }
}

/// `list_refs` sorts names bytewise (as Rust sorts `String`s) even where
/// the database's collation does not, and filters by a plain prefix (no
/// LIKE patterns).
#[test]
fn ref_names_sort_bytewise() {
    let db = linguistic_db("ref_order");
    let b = open(&db);
    let mut client = postgres::Client::connect(&db.url, postgres::NoTls).unwrap();
    let linguistic: bool = client.query_one("SELECT 'a' < 'B'", &[]).unwrap().get(0);
    eprintln!("database collation sorts 'a' before 'B': {linguistic}");
    let names = [
        "heads/a",
        "heads/B",
        "heads/Z",
        "heads/_x",
        "heads/-x",
        "heads/a-b",
        "heads/a/b",
        "heads/a.b",
        "heads/ab",
        "heads/aB",
        "heads/a_b",
        "heads/a%b",
        "heads/%",
        "heads/é",
        "heads/e",
        "heads/f",
        "heads/ä",
        "heads/z",
        "heads/日本",
        "heads/~",
        "heads/A",
        "heads/a b",
        "Heads/x",
        "heads",
        "heads0",
        "heads/\u{10ffff}",
        "tags/1",
        "tags/10",
        "tags/9",
    ];
    for (i, name) in names.iter().enumerate() {
        let target = id(&format!("target {i}"));
        assert_eq!(
            b.cas_ref(name, None, Some(&target)).unwrap(),
            CasOutcome::Swapped,
            "{name}"
        );
    }
    let model: BTreeMap<String, ObjectId> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.to_string(), id(&format!("target {i}"))))
        .collect();
    for prefix in [
        "",
        "h",
        "H",
        "heads",
        "heads/",
        "heads/a",
        "heads/a_",
        "heads/a%",
        "heads/%",
        "heads/_",
        "heads/é",
        "heads/日",
        "heads/\u{10ffff}",
        "tags/",
        "tags/1",
        "nothing",
    ] {
        let want: Vec<(String, ObjectId)> = model
            .iter()
            .filter(|(n, _)| n.starts_with(prefix))
            .map(|(n, t)| (n.clone(), *t))
            .collect();
        assert_eq!(b.list_refs(prefix).unwrap(), want, "list_refs({prefix:?})");
    }
}

// ---------------------------------------------------------------------------
// Metadata.

/// Prefix scans where the prefix's successor needs a carry (trailing 0xff
/// bytes) or does not exist (all 0xff), and the empty prefix.
#[test]
fn meta_prefix_scans_at_the_ff_edge() {
    let db = common::TestDb::new("meta_ff");
    let b = open(&db);
    let keys: Vec<Vec<u8>> = vec![
        vec![0x00],
        vec![0x00, 0xff],
        vec![0x01],
        vec![0x01, 0x00],
        vec![0x01, 0xff],
        vec![0x01, 0xff, 0xff],
        vec![0x02],
        vec![0x02, 0x00],
        vec![0x7f, 0xff, 0xff],
        vec![0x80],
        vec![0xfe],
        vec![0xfe, 0xff],
        vec![0xfe, 0xff, 0x01],
        vec![0xfe, 0xff, 0xff],
        vec![0xff],
        vec![0xff, 0x00],
        vec![0xff, 0xfe],
        vec![0xff, 0xff],
        vec![0xff, 0xff, 0xff],
        vec![0xff, 0xff, 0xff, 0xff, 0xff],
    ];
    let model: BTreeMap<Vec<u8>, Vec<u8>> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.clone(), vec![i as u8; i % 3]))
        .collect();
    b.put_meta(
        model
            .iter()
            .rev()
            .map(|(k, v)| (k.clone(), Some(v.clone())))
            .collect(),
    )
    .unwrap();
    for (k, v) in &model {
        assert_eq!(b.get_meta(k).unwrap().as_ref(), Some(v), "get_meta({k:x?})");
    }
    let prefixes: Vec<Vec<u8>> = vec![
        vec![],
        vec![0x00],
        vec![0x01],
        vec![0x01, 0xff],
        vec![0x01, 0xff, 0xff],
        vec![0x02],
        vec![0x7f],
        vec![0x7f, 0xff],
        vec![0xfe],
        vec![0xfe, 0xff],
        vec![0xfe, 0xff, 0xff],
        vec![0xff],
        vec![0xff, 0xff],
        vec![0xff, 0xff, 0xff],
        vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        vec![0x03],
    ];
    for p in &prefixes {
        let want: Vec<(Vec<u8>, Vec<u8>)> = model
            .iter()
            .filter(|(k, _)| k.starts_with(p))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(b.scan_meta(p).unwrap(), want, "scan_meta({p:x?})");
    }
    // Deleting the all-0xff keys empties their scan.
    b.put_meta(vec![
        (vec![0xff, 0xff], None),
        (vec![0xff, 0xff, 0xff], None),
        (vec![0xff, 0xff, 0xff, 0xff, 0xff], None),
    ])
    .unwrap();
    assert!(b.scan_meta(&[0xff, 0xff]).unwrap().is_empty());
    assert_eq!(b.scan_meta(&[0xff]).unwrap().len(), 3);
    assert_eq!(b.scan_meta(&[]).unwrap().len(), keys.len() - 3);

    // A key written several times in one batch: the last write wins, as on
    // the embedded backends.
    b.put_meta(vec![
        (b"x".to_vec(), Some(b"1".to_vec())),
        (b"x".to_vec(), None),
        (b"y".to_vec(), None),
        (b"y".to_vec(), Some(b"2".to_vec())),
        (b"z".to_vec(), Some(b"3".to_vec())),
        (b"z".to_vec(), Some(b"4".to_vec())),
    ])
    .unwrap();
    assert_eq!(
        b.scan_meta(b"x").unwrap(),
        vec![],
        "written, then deleted in one batch"
    );
    assert_eq!(b.get_meta(b"y").unwrap(), Some(b"2".to_vec()));
    assert_eq!(b.get_meta(b"z").unwrap(), Some(b"4".to_vec()));
}

// ---------------------------------------------------------------------------
// Objects.

/// A batch over the 8 MiB statement limit is split, an object over it goes
/// alone, duplicate ids in one batch are written once, and objects over
/// 1 MiB come back byte for byte.
#[test]
fn large_batches_and_objects() {
    let db = common::TestDb::new("big_batch");
    let b = open(&db);
    let mut batch: Vec<(ObjectId, Vec<u8>)> = (0..10u64)
        .map(|i| {
            let bytes = noise(i, (1 << 20) + 1000 * i as usize);
            (ObjectId::hash(&bytes), bytes)
        })
        .collect();
    let huge = noise(99, 9 << 20);
    batch.push((ObjectId::hash(&huge), huge));
    for i in 0..50u64 {
        let bytes = noise(1000 + i, 100);
        batch.push((ObjectId::hash(&bytes), bytes));
    }
    let total: usize = batch.iter().map(|(_, b)| b.len()).sum();
    assert!(total > 2 * (8 << 20), "{total} bytes");
    b.put_objects(batch.clone()).unwrap();
    for (i, (id, bytes)) in batch.iter().enumerate() {
        let got = b
            .get_object(id)
            .unwrap()
            .unwrap_or_else(|| panic!("object {i} is missing"));
        assert!(got == *bytes, "object {i} ({} bytes) changed", bytes.len());
    }
    let mut want: Vec<(ObjectId, u64)> =
        batch.iter().map(|(id, b)| (*id, b.len() as u64)).collect();
    want.sort();
    assert_eq!(all_objects(&b), want);

    // Duplicate ids within one batch (and one already stored).
    let (x, y) = (noise(5000, 64), noise(5001, 64));
    let (xid, yid) = (ObjectId::hash(&x), ObjectId::hash(&y));
    b.put_objects(vec![
        (xid, x.clone()),
        (yid, y.clone()),
        (xid, x.clone()),
        (batch[0].0, batch[0].1.clone()),
        (xid, x.clone()),
    ])
    .unwrap();
    assert_eq!(b.get_object(&xid).unwrap(), Some(x));
    assert_eq!(b.get_object(&yid).unwrap(), Some(y));
    assert_eq!(all_objects(&b).len(), batch.len() + 2);
    // A large batch made only of duplicates of one object.
    let big = noise(6000, 3 << 20);
    let big_id = ObjectId::hash(&big);
    b.put_objects(vec![(big_id, big.clone()); 4]).unwrap();
    assert_eq!(b.get_object(&big_id).unwrap(), Some(big));
    assert!(b.size_on_disk().unwrap() > 0);

    // A commit of over 8 MiB: the first parts are written on their own,
    // the rest with the swap.
    let commit: Vec<(ObjectId, Vec<u8>)> = (0..6u64)
        .map(|i| {
            let bytes = noise(7000 + i, 3 << 20);
            (ObjectId::hash(&bytes), bytes)
        })
        .collect();
    let head = commit[5].0;
    assert_eq!(
        b.put_objects_and_cas(commit.clone(), &[], "heads/big", None, Some(&head))
            .unwrap(),
        CasOutcome::Swapped
    );
    assert_eq!(b.get_ref("heads/big").unwrap(), Some(head));
    for (i, (id, bytes)) in commit.iter().enumerate() {
        let got = b.get_object(id).unwrap();
        assert!(got.as_ref() == Some(bytes), "object {i} of the big commit");
    }
}

// ---------------------------------------------------------------------------
// The SharedStore operations.

/// The age the sweeping tests use: what was written (or moved) within it
/// is young. Generous, so that a slow statement on a loaded machine never
/// makes a young object look old.
const AGE: Duration = Duration::from_millis(600);
/// Longer than `AGE`: what was written before a pause of it is old.
const PAUSE: Duration = Duration::from_millis(800);

/// `delete_objects_written_before` deletes only objects last written more
/// than the age ago; writing an object again makes it young.
#[test]
fn sweeping_by_write_time() {
    let db = common::TestDb::new("write_time");
    let b = open(&db);
    let shared: &dyn SharedStore = b.shared().expect("PgBackend is a shared store");
    assert_eq!(shared.default_grace(), Duration::from_secs(3600));
    let obj = |label: &str| {
        let bytes = format!("object {label}").into_bytes();
        (ObjectId::hash(&bytes), bytes)
    };
    let (old, refreshed, young, absent) =
        (obj("old"), obj("refreshed"), obj("young"), obj("absent"));
    b.put_objects(vec![old.clone(), refreshed.clone()]).unwrap();
    std::thread::sleep(PAUSE);
    // Writing an object that exists refreshes its write time.
    b.put_objects(vec![young.clone(), refreshed.clone()])
        .unwrap();
    let ids = [old.0, refreshed.0, young.0, absent.0];
    let delete = |age| {
        let mut deleted = shared.delete_objects_written_before(&ids, age).unwrap();
        deleted.sort();
        deleted
    };
    assert!(shared
        .delete_objects_written_before(&[], AGE)
        .unwrap()
        .is_empty());
    assert!(
        delete(Duration::from_secs(3600)).is_empty(),
        "nothing is an hour old"
    );
    assert_eq!(delete(AGE), vec![old.0], "it names what it deleted");
    assert!(
        !b.has_object(&old.0).unwrap(),
        "an object older than the age is deleted"
    );
    assert!(
        b.has_object(&refreshed.0).unwrap(),
        "a rewritten object is young again"
    );
    assert!(b.has_object(&young.0).unwrap(), "a young object is kept");
    assert!(delete(AGE).is_empty());
    // Once old enough, they go too.
    std::thread::sleep(PAUSE);
    let mut both = vec![refreshed.0, young.0];
    both.sort();
    assert_eq!(delete(AGE), both);
    assert!(all_objects(&b).is_empty());
}

/// A store whose sweeps may use a grace period of `AGE_CHECKED` (one
/// second, the floor), for the checks of a commit's references.
fn open_short_grace(db: &common::TestDb) -> PgBackend {
    let options = PgOptions {
        min_grace: AGE_CHECKED,
        ..PgOptions::default()
    };
    PgBackend::open_with(&db.url, options).expect("the test store opens")
}

const AGE_CHECKED: Duration = Duration::from_secs(1);

/// A commit's swap checks, in its transaction, that everything it refers
/// to is present: after a sweep deleted one of them, the swap fails naming
/// it, writes nothing and moves nothing; the other way round, the swap
/// refreshes what it refers to, and a sweep (with the minimum grace
/// period) that comes after keeps it.
#[test]
fn a_commit_swaps_only_onto_present_objects() {
    let db = common::TestDb::new("refs_checked");
    let b = open_short_grace(&db);
    let shared: &dyn SharedStore = b.shared().expect("PgBackend is a shared store");
    assert_eq!(shared.min_grace(), AGE_CHECKED);
    assert_eq!(
        PgBackend::open(&db.url)
            .unwrap()
            .shared()
            .unwrap()
            .min_grace(),
        kvgit_postgres::MIN_GRACE
    );
    let obj = |label: &str| {
        let bytes = format!("object {label}").into_bytes();
        (ObjectId::hash(&bytes), bytes)
    };
    let (base, old, kept, commit, other) = (
        obj("base"),
        obj("old"),
        obj("kept"),
        obj("commit"),
        obj("other"),
    );
    b.put_objects(vec![base.clone(), old.clone(), kept.clone()])
        .unwrap();
    assert_eq!(
        b.cas_ref("heads/main", None, Some(&base.0)).unwrap(),
        CasOutcome::Swapped
    );
    std::thread::sleep(AGE_CHECKED + Duration::from_millis(300));

    // Sweep first: `old` goes; a commit referring to it is refused.
    assert_eq!(
        shared
            .delete_objects_written_before(&[old.0], AGE_CHECKED)
            .unwrap(),
        vec![old.0]
    );
    let err = b
        .put_objects_and_cas(
            vec![commit.clone()],
            &[base.0, old.0],
            "heads/main",
            Some(&base.0),
            Some(&commit.0),
        )
        .unwrap_err();
    assert!(
        matches!(err, Error::MissingObject(id) if id == old.0),
        "{err:?}"
    );
    assert_eq!(b.get_ref("heads/main").unwrap(), Some(base.0));
    assert!(!b.has_object(&commit.0).unwrap(), "nothing was written");

    // Swap first: `kept` is refreshed by it, and a sweep after keeps it.
    assert_eq!(
        b.put_objects_and_cas(
            vec![commit.clone()],
            &[kept.0, base.0],
            "heads/main",
            Some(&base.0),
            Some(&commit.0),
        )
        .unwrap(),
        CasOutcome::Swapped
    );
    assert!(shared
        .delete_objects_written_before(&[kept.0], AGE_CHECKED)
        .unwrap()
        .is_empty());
    assert!(b.has_object(&kept.0).unwrap());

    // A swap that loses still checks: a missing reference is an error, not
    // a mismatch.
    let err = b
        .put_objects_and_cas(
            vec![other.clone()],
            &[old.0],
            "heads/main",
            Some(&base.0),
            Some(&other.0),
        )
        .unwrap_err();
    assert!(matches!(err, Error::MissingObject(_)), "{err:?}");
    assert_eq!(b.get_ref("heads/main").unwrap(), Some(commit.0));

    // A sweep's delete that a commit holds back waits for it, then finds
    // the object young again.
    std::thread::sleep(AGE_CHECKED + Duration::from_millis(300));
    let mut client = postgres::Client::connect(&db.url, postgres::NoTls).unwrap();
    let mut tx = client.transaction().unwrap();
    let refs: Vec<&[u8]> = vec![kept.0.as_bytes().as_slice()];
    let fresh = i64::try_from(AGE_CHECKED.as_micros() / 2).unwrap();
    tx.execute(
        "SELECT kvgit_hold_objects($1::bytea[], $2::int8)",
        &[&refs, &fresh],
    )
    .unwrap();
    let sweeping = std::thread::spawn({
        let b = open_short_grace(&db);
        let id = kept.0;
        move || {
            b.shared()
                .unwrap()
                .delete_objects_written_before(&[id], AGE_CHECKED)
                .unwrap()
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    tx.commit().unwrap();
    assert!(sweeping.join().unwrap().is_empty(), "the delete kept it");
    assert!(b.has_object(&kept.0).unwrap());
}

/// Successful swaps (moves and deletes) log the value the ref held, failed
/// ones and creations nothing; `recent_ref_targets` reads the log within an
/// age, without duplicates, and `prune_ref_log` forgets what is older.
#[test]
fn the_ref_log() {
    let db = common::TestDb::new("ref_log");
    let b = open(&db);
    let shared: &dyn SharedStore = b.shared().expect("PgBackend is a shared store");
    let (a, c, d, e, f) = (id("a"), id("c"), id("d"), id("e"), id("f"));
    let swap = |name: &str, from: Option<&ObjectId>, to: Option<&ObjectId>| {
        assert_eq!(
            b.cas_ref(name, from, to).unwrap(),
            CasOutcome::Swapped,
            "{name}: {from:?} -> {to:?}"
        );
    };
    swap("heads/r", None, Some(&a));
    swap("heads/r", Some(&a), Some(&c));
    swap("heads/r", Some(&c), Some(&a));
    swap("heads/r", Some(&a), Some(&c));
    swap("heads/r", Some(&c), None);
    swap("heads/s", None, Some(&d));
    swap("heads/s", Some(&d), Some(&e));
    // Failed swaps log nothing.
    assert_eq!(
        b.cas_ref("heads/s", Some(&a), Some(&f)).unwrap(),
        CasOutcome::Mismatch { actual: Some(e) }
    );
    assert_eq!(
        b.cas_ref("heads/s", None, Some(&f)).unwrap(),
        CasOutcome::Mismatch { actual: Some(e) }
    );
    // What the refs moved away from, without duplicates, not what they hold.
    assert_eq!(b.recent_ref_targets_all(), BTreeSet::from([a, c, d]));

    std::thread::sleep(PAUSE);
    swap("heads/s", Some(&e), Some(&f));
    assert_eq!(
        shared.recent_ref_targets(AGE).unwrap(),
        vec![e],
        "only e moved within the age"
    );
    assert_eq!(b.recent_ref_targets_all(), BTreeSet::from([a, c, d, e]));
    assert_eq!(shared.prune_ref_log(Duration::from_secs(3600)).unwrap(), 0);
    // a, c, a, c from heads/r, d from heads/s.
    assert_eq!(shared.prune_ref_log(AGE).unwrap(), 5);
    assert_eq!(shared.prune_ref_log(AGE).unwrap(), 0);
    assert_eq!(b.recent_ref_targets_all(), BTreeSet::from([e]));
    assert_eq!(
        b.get_ref("heads/s").unwrap(),
        Some(f),
        "pruning the log leaves refs alone"
    );
}

/// `put_meta_max` keeps the bytewise greatest value (8-byte big-endian
/// counters), within a batch, across batches and across threads.
#[test]
fn put_meta_max_never_lowers() {
    let db = common::TestDb::new("meta_max");
    let b = Arc::new(open(&db));
    let shared: &dyn SharedStore = b.shared().expect("PgBackend is a shared store");
    let be = |n: u64| n.to_be_bytes().to_vec();
    let get = |k: &[u8]| {
        b.get_meta(k)
            .unwrap()
            .map(|v| u64::from_be_bytes(v.try_into().expect("8 bytes")))
    };
    shared.put_meta_max(Vec::new()).unwrap();
    shared
        .put_meta_max(vec![(b"k1".to_vec(), be(5)), (b"k2".to_vec(), be(255))])
        .unwrap();
    assert_eq!((get(b"k1"), get(b"k2")), (Some(5), Some(255)));
    shared
        .put_meta_max(vec![(b"k1".to_vec(), be(3)), (b"k2".to_vec(), be(256))])
        .unwrap();
    assert_eq!(
        (get(b"k1"), get(b"k2")),
        (Some(5), Some(256)),
        "lower values are ignored, higher written"
    );
    // One key several times in one batch: the greatest wins, in any order.
    shared
        .put_meta_max(vec![
            (b"k3".to_vec(), be(9)),
            (b"k3".to_vec(), be(1 << 40)),
            (b"k3".to_vec(), be(7)),
        ])
        .unwrap();
    assert_eq!(get(b"k3"), Some(1 << 40));
    shared
        .put_meta_max(vec![(b"k1".to_vec(), be(u64::MAX))])
        .unwrap();
    shared
        .put_meta_max(vec![(b"k1".to_vec(), be(1 << 63))])
        .unwrap();
    assert_eq!(get(b"k1"), Some(u64::MAX));
    // put_meta still overwrites.
    b.put_meta(vec![(b"k1".to_vec(), Some(be(1)))]).unwrap();
    assert_eq!(get(b"k1"), Some(1));

    // Threads writing at once: every key ends at the greatest value written.
    const THREADS: u64 = 4;
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let b = &b;
            s.spawn(move || {
                let shared = b.shared().expect("a shared store");
                for i in 0..40u64 {
                    let batch = (0..5u64)
                        .map(|k| {
                            let v = (i * 7919 + t * 104_729 + k * 31) % 1000;
                            (format!("c{k}").into_bytes(), be(v))
                        })
                        .collect();
                    shared.put_meta_max(batch).unwrap();
                }
            });
        }
    });
    for k in 0..5u64 {
        let want = (0..THREADS)
            .flat_map(|t| (0..40u64).map(move |i| (i * 7919 + t * 104_729 + k * 31) % 1000))
            .max();
        assert_eq!(get(format!("c{k}").as_bytes()), want, "key c{k}");
    }
}

// ---------------------------------------------------------------------------
// Errors when opening.

const PASSWORD: &str = "hunter2-s3cret";

/// `url` with its user info replaced by `user:password`.
fn with_credentials(url: &str, user: &str, password: &str) -> String {
    let start = url.find("://").expect("a URL") + 3;
    let authority_end = url[start..]
        .find(['/', '?'])
        .map_or(url.len(), |i| start + i);
    let host = match url[start..authority_end].rfind('@') {
        Some(at) => &url[start + at + 1..],
        None => &url[start..],
    };
    format!("{}{user}:{password}@{host}", &url[..start])
}

/// The user and password of the server URL (a made-up password when it has
/// none: the throwaway server trusts local connections).
fn server_credentials() -> (String, String) {
    let url = common::server_url();
    let start = url.find("://").expect("a URL") + 3;
    let authority_end = url[start..]
        .find(['/', '?'])
        .map_or(url.len(), |i| start + i);
    match url[start..authority_end].rfind('@') {
        Some(at) => {
            let userinfo = &url[start..start + at];
            match userinfo.split_once(':') {
                Some((u, p)) => (u.to_string(), p.to_string()),
                None => (userinfo.to_string(), PASSWORD.to_string()),
            }
        }
        None => ("postgres".to_string(), PASSWORD.to_string()),
    }
}

/// Opens `url`, expecting `Error::Unavailable` with a one-line message
/// that mentions `cause` and not `password`; returns the message.
fn open_fails(url: &str, password: &str, cause: &[&str]) -> String {
    let err = PgBackend::open(url).expect_err("opening must fail");
    let msg = err.to_string();
    assert!(
        matches!(err, Error::Unavailable { .. }),
        "not Unavailable: {err:?}"
    );
    assert!(!msg.contains('\n'), "a one-line message: {msg:?}");
    assert!(!msg.contains(password), "the password leaked: {msg}");
    let lower = msg.to_lowercase();
    assert!(
        cause.iter().any(|c| lower.contains(c)),
        "expected one of {cause:?} in: {msg}"
    );
    eprintln!("{msg}");
    msg
}

/// A malformed URL, a refused connection and a missing database each give
/// `Error::Unavailable` with a one-line message naming the cause.
#[test]
fn open_errors_name_the_cause() {
    // Malformed URLs.
    open_fails(
        &format!("postgres://kv:{PASSWORD}@127.0.0.1:notaport/kv"),
        PASSWORD,
        &["not a valid postgresql url"],
    );
    open_fails(
        &format!("postgresql://kv:{PASSWORD}@127.0.0.1:5432/kv?nosuchoption=1"),
        PASSWORD,
        &["not a valid postgresql url"],
    );
    open_fails(
        &format!("host=127.0.0.1 password={PASSWORD} nosuchkey=1"),
        PASSWORD,
        &["not a valid postgresql url"],
    );
    // Nothing listens on port 1.
    open_fails(
        &format!("postgres://kv:{PASSWORD}@127.0.0.1:1/kv"),
        PASSWORD,
        &["refused"],
    );
    // A database that does not exist.
    let (user, password) = server_credentials();
    let url = common::with_database(
        &with_credentials(common::server_url(), &user, &password),
        &format!("kvgit_no_such_db_{}", std::process::id()),
    );
    let msg = open_fails(&url, &password, &["does not exist"]);
    assert!(msg.contains("kvgit_no_such_db_"), "{msg}");
}

/// A login role, dropped at the end.
struct Role(String);

impl Drop for Role {
    fn drop(&mut self) {
        let _ = common::admin().batch_execute(&format!("DROP ROLE IF EXISTS {}", self.0));
    }
}

/// A role that may neither create kvgit's tables nor read them gets
/// `Error::Unavailable` saying "permission denied".
#[test]
fn open_errors_without_privileges() {
    let role = Role(format!("kvgit_nopriv_{}", std::process::id()));
    let mut admin = common::admin();
    admin
        .batch_execute(&format!(
            "DROP ROLE IF EXISTS {0}; CREATE ROLE {0} LOGIN PASSWORD '{PASSWORD}'",
            role.0
        ))
        .unwrap();

    // A fresh database: the role may connect but not create tables.
    let db = common::TestDb::new("nopriv");
    let mut db_admin = postgres::Client::connect(&db.url, postgres::NoTls).unwrap();
    // PostgreSQL 15 already denies it; older servers need telling.
    db_admin
        .batch_execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        .unwrap();
    let url = with_credentials(&db.url, &role.0, PASSWORD);
    open_fails(&url, PASSWORD, &["permission denied"]);

    // An existing store whose tables the role may not read.
    drop(open(&db));
    open_fails(&url, PASSWORD, &["permission denied"]);
    drop(db_admin);
    drop(db);
}

/// Processes opening a new store at once take turns creating the schema:
/// every open succeeds, and the schema records one version.
#[test]
fn concurrent_first_opens() {
    const THREADS: usize = 8;
    let db = common::TestDb::new("first_open");
    let barrier = Barrier::new(THREADS);
    let results: Vec<Result<PgBackend, Error>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let (db, barrier) = (&db, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    PgBackend::open(&db.url)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (t, r) in results.iter().enumerate() {
        if let Err(e) = r {
            panic!("thread {t} could not open the new store: {e}");
        }
    }
    let mut db_admin = postgres::Client::connect(&db.url, postgres::NoTls).unwrap();
    let versions: Vec<i32> = db_admin
        .query("SELECT version FROM kvgit_schema", &[])
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(versions, vec![kvgit_postgres::SCHEMA_VERSION]);
}

/// A store of a newer schema version is refused, with advice to upgrade.
#[test]
fn newer_schema_is_refused() {
    let db = common::TestDb::new("schema99");
    drop(open(&db));
    let mut db_admin = postgres::Client::connect(&db.url, postgres::NoTls).unwrap();
    db_admin
        .batch_execute("UPDATE kvgit_schema SET version = 99")
        .unwrap();
    let msg = open_fails(&db.url, PASSWORD, &["schema version 99"]);
    assert!(msg.contains("upgrade"), "{msg}");
    db_admin
        .batch_execute("UPDATE kvgit_schema SET version = 1")
        .unwrap();
    drop(open(&db));
}

/// A store of schema version 1 (whose ref swap has no turn argument) is
/// upgraded in place when opened, even by `open_existing`'s refusal to
/// create; a role that may not create functions is told what to do.
#[test]
fn version_one_schema_is_upgraded() {
    let db = common::TestDb::new("schema1");
    drop(open(&db));
    let mut db_admin = postgres::Client::connect(&db.url, postgres::NoTls).unwrap();
    let downgrade = "DELETE FROM kvgit_schema; INSERT INTO kvgit_schema VALUES (1); \
                     DROP FUNCTION kvgit_commit(bytea[], smallint[], bytea[], text, bytea, bytea, bigint); \
                     DROP FUNCTION kvgit_cas_ref(text, bytea, bytea, bigint); \
                     DROP FUNCTION kvgit_wait_turn(bigint)";
    db_admin.batch_execute(downgrade).unwrap();

    // A role with every table privilege but no right to create.
    let role = Role(format!("kvgit_upgrade_{}", std::process::id()));
    let mut admin = common::admin();
    admin
        .batch_execute(&format!(
            "DROP ROLE IF EXISTS {0}; CREATE ROLE {0} LOGIN PASSWORD '{PASSWORD}'",
            role.0
        ))
        .unwrap();
    db_admin
        .batch_execute(&format!(
            "REVOKE CREATE ON SCHEMA public FROM PUBLIC; \
             GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {0}; \
             GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {0}",
            role.0
        ))
        .unwrap();
    let url = with_credentials(&db.url, &role.0, PASSWORD);
    let msg = open_fails(&url, PASSWORD, &["permission denied", "must be owner"]);
    assert!(
        msg.contains("schema version 1") && msg.contains("upgrading to"),
        "{msg}"
    );

    let b = PgBackend::open_with(
        &db.url,
        PgOptions {
            create: false,
            ..PgOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("the owner upgrades the store: {e}"));
    let version: i32 = db_admin
        .query_one("SELECT max(version) FROM kvgit_schema", &[])
        .unwrap()
        .get(0);
    assert_eq!(version, kvgit_postgres::SCHEMA_VERSION);
    let x = id("x");
    b.put_objects(vec![(x, b"x".to_vec())]).unwrap();
    assert_eq!(
        b.cas_ref("heads/main", None, Some(&x)).unwrap(),
        CasOutcome::Swapped
    );
    let y = id("y");
    assert_eq!(
        b.put_objects_and_cas(
            vec![(y, b"y".to_vec())],
            &[],
            "heads/main",
            Some(&x),
            Some(&y)
        )
        .unwrap(),
        CasOutcome::Swapped
    );
    drop(b);
    drop(db_admin);
    drop(db);
}

/// A version-2 store (no `kvgit_commit`) is upgraded when opened, and a
/// process of the version-2 build, which swaps through `kvgit_cas_ref`,
/// still works beside the new one.
#[test]
fn version_two_schema_is_upgraded() {
    let db = common::TestDb::new("schema2");
    drop(open(&db));
    let mut client = postgres::Client::connect(&db.url, postgres::NoTls).unwrap();
    client
        .batch_execute(
            "DELETE FROM kvgit_schema; INSERT INTO kvgit_schema VALUES (2); \
             DROP FUNCTION kvgit_commit(bytea[], smallint[], bytea[], text, bytea, bytea, bigint)",
        )
        .unwrap();
    let b = open(&db);
    let version: i32 = client
        .query_one("SELECT max(version) FROM kvgit_schema", &[])
        .unwrap()
        .get(0);
    assert_eq!(version, kvgit_postgres::SCHEMA_VERSION);
    let (x, y) = (id("x"), id("y"));
    assert_eq!(
        b.put_objects_and_cas(vec![(x, b"x".to_vec())], &[], "heads/main", None, Some(&x))
            .unwrap(),
        CasOutcome::Swapped
    );
    // What a version-2 process runs to swap.
    let row = client
        .query_one(
            "SELECT swapped FROM kvgit_cas_ref($1, $2, $3, NULL)",
            &[
                &"heads/main",
                &x.as_bytes().as_slice(),
                &y.as_bytes().as_slice(),
            ],
        )
        .unwrap();
    assert!(row.get::<_, bool>(0));
    assert_eq!(b.get_ref("heads/main").unwrap(), Some(y));
}

/// Every way tokio-postgres accepts a password, on a port where nothing
/// listens: the password must not reach the message (nor the store's
/// address, which the message shows).
#[test]
fn open_errors_never_show_the_password() {
    let leaks: Vec<String> = [
        "postgres://kv:pw-LEAK-1@127.0.0.1:1/kv",
        "postgres://kv:pw-LEAK-2@127.0.0.1:1,127.0.0.1:2/kv",
        // tokio-postgres takes the password up to the first '@', so an
        // unencoded '/' or '?' in it still makes a password.
        "postgres://kv:pw/LEAK-3@127.0.0.1:1/kv",
        "postgres://kv:pw?LEAK-4@127.0.0.1:1/kv",
        // The password as a query parameter, as libpq allows.
        "postgres://kv@127.0.0.1:1/kv?password=pw-LEAK-5",
        "postgresql://127.0.0.1:1/kv?user=kv&password=pw-LEAK-6&connect_timeout=5",
        // key=value form: quoted values, spaces around '='.
        "host=127.0.0.1 port=1 password=pw-LEAK-7",
        "host=127.0.0.1 port=1 password='pw LEAK-8'",
        "host=127.0.0.1 port=1 password = pw-LEAK-9",
    ]
    .iter()
    .filter_map(|url| {
        let err = PgBackend::open(url).expect_err("nothing listens on port 1");
        assert!(matches!(err, Error::Unavailable { .. }), "{url}: {err:?}");
        let msg = err.to_string();
        msg.contains("LEAK").then(|| format!("{url}\n    -> {msg}"))
    })
    .collect();
    assert!(
        leaks.is_empty(),
        "passwords in messages:\n{}",
        leaks.join("\n")
    );
}

/// An id-prefix lookup reads the prefix's range through the primary key's
/// index, not the whole table: with 20,000 objects, the plan is an index
/// scan and a 4-digit prefix visits only its few matches.
#[test]
fn object_ranges_use_the_index() {
    let db = common::TestDb::new("ranges");
    let b = open(&db);
    let objects: Vec<(ObjectId, Vec<u8>)> = (0..20_000u32)
        .map(|i| {
            let bytes = format!("object {i}").into_bytes();
            (ObjectId::hash(&bytes), bytes)
        })
        .collect();
    b.put_objects(objects.clone()).unwrap();
    let target = objects[1234].0;
    let prefix = &target.to_hex()[..4];
    let (start, end) = ObjectId::hex_prefix_range(prefix).unwrap();
    let mut visited = Vec::new();
    b.for_each_object_in(&start, end.as_ref(), &mut |id, _| {
        visited.push(id);
        Ok(true)
    })
    .unwrap();
    let want: Vec<ObjectId> = {
        let mut w: Vec<ObjectId> = objects
            .iter()
            .map(|(id, _)| *id)
            .filter(|id| id.has_hex_prefix(prefix))
            .collect();
        w.sort();
        w
    };
    assert_eq!(visited, want);
    assert!(
        visited.contains(&target) && visited.len() < 10,
        "{visited:?}"
    );

    let mut client = postgres::Client::connect(&db.url, postgres::NoTls).unwrap();
    client.batch_execute("ANALYZE kvgit_objects").unwrap();
    let start_bytes: &[u8] = start.as_bytes();
    let end_id = end.unwrap();
    let end_bytes: &[u8] = end_id.as_bytes();
    let plan: Vec<String> = client
        .query(
            "EXPLAIN SELECT id, octet_length(bytes)::int8 FROM kvgit_objects \
             WHERE id >= $1 AND id < $2 ORDER BY id",
            &[&start_bytes, &end_bytes],
        )
        .unwrap()
        .iter()
        .map(|row| row.get::<_, String>(0))
        .collect();
    assert!(
        plan.iter().any(|line| line.contains("Index")),
        "the range is read through the index: {plan:#?}"
    );
}
