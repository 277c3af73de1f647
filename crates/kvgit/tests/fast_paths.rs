//! The fast paths stay correct: reads at a branch head served from the
//! repo's ref cache see every move, access recency is off unless asked
//! for, and a bulk transaction built in one pass has the root id editing
//! would give.

#![allow(clippy::unwrap_used)] // test helpers, not only #[test] functions

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use kvgit::advanced::{Backend, MemoryBackend, Repo};
use kvgit::Db;

fn value(i: u64) -> Vec<u8> {
    format!("value {i:06}").into_bytes()
}

/// Every way a branch moves, and a read after each through one `Branch`
/// handle kept from the start (and a clone of the `Db`).
fn reads_see_every_move(db: &Db) {
    let main = db.branch("main").unwrap();
    assert_eq!(main.get("k").unwrap(), None);
    let first = main.put("k", "1").unwrap();
    assert_eq!(main.get("k").unwrap().as_deref(), Some(&b"1"[..]));

    // Another clone of the Db, and another handle on the branch.
    let clone = db.clone();
    clone.branch("main").unwrap().put("k", "2").unwrap();
    assert_eq!(main.get("k").unwrap().as_deref(), Some(&b"2"[..]));
    assert!(main.contains("k").unwrap());
    assert_eq!(main.len().unwrap(), 1);

    // A transaction, a merge, a reset.
    let mut tx = main.transaction().unwrap();
    tx.put("t", "x");
    tx.commit().unwrap();
    assert_eq!(main.get("t").unwrap().as_deref(), Some(&b"x"[..]));
    let dev = main.fork("dev").unwrap();
    dev.put("k", "3").unwrap();
    main.merge_from(&dev).unwrap();
    assert_eq!(main.get("k").unwrap().as_deref(), Some(&b"3"[..]));
    main.reset_to(&first).unwrap();
    assert_eq!(main.get("k").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(main.get("t").unwrap(), None);
    assert!(!main.contains("t").unwrap());

    // Garbage collection: a rebase that drops the key, then a sweep.
    main.put("k", "4").unwrap();
    main.put("other", "y").unwrap();
    let report = db.rebase_keep("main", |k| k == b"other").unwrap();
    assert!(report.performed());
    db.sweep().unwrap();
    assert_eq!(main.get("k").unwrap(), None);
    assert_eq!(main.get("other").unwrap().as_deref(), Some(&b"y"[..]));
    assert_eq!(main.len().unwrap(), 1);

    // Deleted, then created again.
    db.delete_branch("main").unwrap();
    assert!(matches!(
        main.get("other"),
        Err(kvgit::Error::NoSuchBranch(_))
    ));
    let again = db.branch("main").unwrap();
    assert_eq!(main.get("other").unwrap(), None);
    again.put("other", "z").unwrap();
    assert_eq!(main.get("other").unwrap().as_deref(), Some(&b"z"[..]));
}

#[test]
fn branch_reads_see_every_move_in_memory() {
    reads_see_every_move(&Db::memory());
}

#[test]
fn branch_reads_see_every_move_on_sled() {
    let dir = tempfile::tempdir().unwrap();
    reads_see_every_move(&Db::open(dir.path()).unwrap());
}

/// Two `Db`s over one backend (each with its own repo and caches), and the
/// backend's own compare-and-swap: a read through either sees the other's
/// moves.
#[test]
fn branch_reads_see_moves_by_another_db_over_the_same_backend() {
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let a = Db::builder().backend(backend.clone()).unwrap();
    let b = Db::builder().backend(backend.clone()).unwrap();
    let main_a = a.branch("main").unwrap();
    let main_b = b.branch("main").unwrap();
    main_a.put("k", "a").unwrap();
    assert_eq!(main_b.get("k").unwrap().as_deref(), Some(&b"a"[..]));
    let from_b = main_b.put("k", "b").unwrap();
    assert_eq!(main_a.get("k").unwrap().as_deref(), Some(&b"b"[..]));
    assert_eq!(main_a.head().unwrap(), from_b);

    // Straight through the backend, below both repos.
    let c = main_a.put("k", "c").unwrap();
    let outcome = backend
        .cas_ref("heads/main", Some(&c), Some(&from_b))
        .unwrap();
    assert_eq!(outcome, kvgit::advanced::CasOutcome::Swapped);
    assert_eq!(main_a.get("k").unwrap().as_deref(), Some(&b"b"[..]));
    assert_eq!(main_b.get("k").unwrap().as_deref(), Some(&b"b"[..]));
}

/// `Repo::get_ref` and `Repo::head` agree with the backend after every
/// move made through the repo (create, set, delete).
#[test]
fn repo_ref_cache_follows_ref_moves() {
    let repo = Repo::memory();
    let tree = repo
        .build_tree(vec![(b"a".to_vec(), b"1".to_vec())])
        .unwrap();
    let spec = kvgit::advanced::CommitSpec::default();
    let c1 = repo.write_commit(&tree, &spec).unwrap();
    let empty = repo.empty_tree().unwrap();
    let c2 = repo.write_commit(&empty, &spec).unwrap();
    assert_eq!(repo.get_ref("heads/x").unwrap(), None);
    assert!(repo.head("heads/x").unwrap().is_none());
    repo.create_ref("heads/x", &c1).unwrap();
    assert_eq!(repo.get_ref("heads/x").unwrap(), Some(c1));
    assert_eq!(repo.head("heads/x").unwrap(), Some((c1, tree)));
    repo.set_ref("heads/x", Some(&c1), &c2).unwrap();
    assert_eq!(repo.head("heads/x").unwrap(), Some((c2, empty)));
    assert_eq!(repo.get_ref("heads/x").unwrap(), Some(c2));
    repo.delete_ref("heads/x", None).unwrap();
    assert_eq!(repo.get_ref("heads/x").unwrap(), None);
    assert!(repo.head("heads/x").unwrap().is_none());
}

/// A reader keeps reading one key while another thread rewrites it,
/// rebases the branch to a fresh root and sweeps the old history: every
/// read gives a value that was written (never an error, never garbage).
#[test]
fn branch_reads_racing_rebase_and_sweep_give_written_values() {
    let db = Db::memory();
    let main = db.branch("main").unwrap();
    main.put("k", value(0)).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let main = main.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            let mut reads = 0u64;
            while !done.load(Ordering::Relaxed) || reads == 0 {
                let v = main.get("k").unwrap().expect("k is never dropped");
                assert!(v.starts_with(b"value "), "{v:?}");
                reads += 1;
            }
        })
    };
    for i in 1..=60 {
        main.put("k", value(i)).unwrap();
        db.rebase_keep("main", |_| true).unwrap();
        db.sweep().unwrap();
    }
    done.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    assert_eq!(main.get("k").unwrap(), Some(value(60)));
}

// ---- access recency: off unless asked for ----

fn access_entries(db: &Db) -> usize {
    db.flush().unwrap();
    kvgit::advanced::repo(db)
        .backend()
        .scan_meta(kvgit_gc::ACCESS_PREFIX)
        .unwrap()
        .len()
}

fn read_and_write(db: &Db) {
    let main = db.branch("main").unwrap();
    main.put("a", "1").unwrap();
    main.get("a").unwrap();
    main.snapshot().unwrap().get("a").unwrap();
}

#[test]
fn access_is_not_tracked_by_default_without_watermarks() {
    let db = Db::memory();
    assert_eq!(db.options().track_access, None);
    read_and_write(&db);
    assert_eq!(access_entries(&db), 0);
}

#[test]
fn access_is_tracked_by_default_with_watermarks() {
    let db = Db::builder().watermarks(1 << 30, None).unwrap().memory();
    read_and_write(&db);
    assert_eq!(access_entries(&db), 1);
}

#[test]
fn access_is_tracked_when_asked_for_and_not_when_refused() {
    let on = Db::builder().track_access(true).memory();
    read_and_write(&on);
    assert_eq!(access_entries(&on), 1);
    let off = Db::builder()
        .watermarks(1 << 30, None)
        .unwrap()
        .track_access(false)
        .memory();
    read_and_write(&off);
    assert_eq!(access_entries(&off), 0);
}

#[test]
fn set_track_access_turns_recording_on_and_off_at_run_time() {
    let db = Db::memory();
    read_and_write(&db);
    assert_eq!(access_entries(&db), 0);
    db.set_track_access(true);
    read_and_write(&db);
    assert_eq!(access_entries(&db), 1);
    let off = Db::builder().track_access(true).memory();
    off.set_track_access(false);
    read_and_write(&off);
    assert_eq!(access_entries(&off), 0);
}

/// Without recorded recency every key is equally cold: a rebase drops the
/// largest first, then in key order.
#[test]
fn an_untracked_rebase_drops_the_largest_then_in_key_order() {
    let db = Db::memory();
    let main = db.branch("main").unwrap();
    main.put("c", [b'x'; 30]).unwrap();
    main.put("b", [b'x'; 30]).unwrap();
    main.put("a", [b'x'; 10]).unwrap();
    main.put("d", [b'x'; 50]).unwrap();
    // Read "d" and "b" a lot: not recorded, so it changes nothing.
    for _ in 0..10 {
        main.get("d").unwrap();
        main.get("b").unwrap();
    }
    // 120 bytes; down to 50: drop d (largest), then b (30, before c).
    let report = db.rebase("main", 100, Some(50)).unwrap();
    assert_eq!(report.dropped, vec![b"d".to_vec(), b"b".to_vec()]);
}

// ---- a bulk transaction is built in one pass, with editing's root id ----

/// The root a tree of exactly `entries` has.
fn built_root(entries: &std::collections::BTreeMap<Vec<u8>, Vec<u8>>) -> kvgit::CommitId {
    Repo::memory().build_tree(entries.clone()).unwrap().root()
}

#[test]
fn bulk_transactions_give_the_root_of_their_content() {
    let db = Db::memory();
    let main = db.branch("main").unwrap();
    let mut model = std::collections::BTreeMap::new();

    // Into an empty branch: the one-pass build.
    let mut tx = main.transaction().unwrap();
    for i in 0..5000u64 {
        let key = format!("k{i:08}").into_bytes();
        tx.put(&key, value(i));
        model.insert(key, value(i));
    }
    tx.commit().unwrap();
    assert_eq!(
        kvgit::advanced::tree(&main.snapshot().unwrap()).root(),
        built_root(&model)
    );

    // More edits than keys, with deletions, overwrites, new keys and a
    // blob: the one-pass build again, over the base's entries.
    let mut tx = main.transaction().unwrap();
    for i in (0..12000u64).step_by(2) {
        let key = format!("k{i:08}").into_bytes();
        if i % 6 == 0 {
            tx.delete(&key);
            model.remove(&key);
        } else {
            tx.put(&key, value(i + 1));
            model.insert(key, value(i + 1));
        }
    }
    let blob = vec![7u8; 20_000];
    tx.put("k00000001", &blob);
    model.insert(b"k00000001".to_vec(), blob);
    tx.commit().unwrap();
    let root = kvgit::advanced::tree(&main.snapshot().unwrap()).root();
    assert_eq!(root, built_root(&model));

    // A few edits on a large tree: applied, and the same root as a build.
    main.put("k00000003", "small").unwrap();
    model.insert(b"k00000003".to_vec(), b"small".to_vec());
    assert_eq!(
        kvgit::advanced::tree(&main.snapshot().unwrap()).root(),
        built_root(&model)
    );
    for (k, v) in model.iter().step_by(997) {
        assert_eq!(main.get(k).unwrap().as_ref(), Some(v));
    }
    assert_eq!(main.len().unwrap(), model.len() as u64);
}

/// The one-pass build refuses a deletion of an over-long key as editing
/// does, and a bad key among the puts, with nothing committed.
#[test]
fn bulk_transactions_check_keys_as_edits_do() {
    let db = Db::memory();
    let main = db.branch("main").unwrap();
    let head = main.head().unwrap();
    let mut tx = main.transaction().unwrap();
    for i in 0..2000u64 {
        tx.put(format!("k{i:08}"), "v");
    }
    tx.delete(vec![b'x'; 5000]);
    assert!(tx.commit().is_err());
    assert_eq!(main.head().unwrap(), head);
}
