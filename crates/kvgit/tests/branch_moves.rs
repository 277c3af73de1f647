//! Every way a branch moves (a commit, a partial commit, a merge, a
//! fast-forward, a reset, a rebase, a new branch) does the same after-move
//! work: validation with the old and new heads, the compare-and-swap,
//! subscriptions, access recency and automatic garbage collection. And
//! every read of a key's value at a branch head counts as access.

use std::ops::Bound;

use kvgit::merge::Counter;
use kvgit::RebaseStatus;
use kvgit::{ChangeKind, Db, Error, MoveKind};

fn text(v: Option<Vec<u8>>) -> Option<String> {
    v.map(|b| String::from_utf8(b).expect("utf-8"))
}

// ---- 1. a partial commit keeps the staged keys' merge base ----

#[test]
fn commit_keys_keeps_merging_the_staged_keys_against_their_snapshot() {
    let db = Db::memory();
    db.merge_fns().set("hits", Counter);
    let main = db.branch("main").unwrap();
    main.put("hits", "100").unwrap();
    let mut tx = main.transaction().unwrap();
    tx.put("other", "x").put("hits", "115");
    main.put("hits", "120").unwrap(); // another writer
    tx.commit_keys(["other"]).unwrap();
    tx.commit().unwrap();
    // 100 + 15 + 20, exactly what one commit() gives.
    assert_eq!(text(main.get("hits").unwrap()).as_deref(), Some("135"));
    assert_eq!(text(main.get("other").unwrap()).as_deref(), Some("x"));
}

#[test]
fn commit_keys_then_commit_gives_what_one_commit_gives() {
    let one = |partial: bool| {
        let db = Db::memory();
        db.merge_fns().set("hits", Counter);
        let main = db.branch("main").unwrap();
        main.put("hits", "100").unwrap();
        let mut tx = main.transaction().unwrap();
        tx.put("other", "x").put("hits", "120");
        main.put("hits", "120").unwrap(); // the same value, by another writer
        if partial {
            tx.commit_keys(["other"]).unwrap();
        }
        tx.commit().unwrap();
        text(main.get("hits").unwrap())
    };
    // A counter counts two equal increments twice, partial commit or not.
    assert_eq!(one(false).as_deref(), Some("140"));
    assert_eq!(one(true).as_deref(), Some("140"));
}

#[test]
fn commit_keys_then_commit_conflicts_without_a_merge_function() {
    let db = Db::memory();
    let main = db.branch("main").unwrap();
    main.put("hits", "100").unwrap();
    let mut tx = main.transaction().unwrap();
    tx.put("other", "x").put("hits", "115");
    main.put("hits", "120").unwrap();
    tx.commit_keys(["other"]).unwrap();
    match tx.commit() {
        Err(Error::Conflicts(conflicts)) => {
            let keys: Vec<_> = conflicts.iter().map(|c| c.key.clone()).collect();
            assert_eq!(keys, vec![b"hits".to_vec()]);
        }
        other => panic!("expected a conflict on hits, got {other:?}"),
    }
    assert_eq!(text(main.get("hits").unwrap()).as_deref(), Some("120"));
}

#[test]
fn after_commit_keys_the_transaction_reads_the_head_and_its_own_writes() {
    let db = Db::memory();
    db.merge_fns().set("hits", Counter);
    let main = db.branch("main").unwrap();
    main.put("hits", "100").unwrap();
    let mut tx = main.transaction().unwrap();
    tx.put("other", "x").put("hits", "115");
    main.put("seen", "1").unwrap();
    main.put("hits", "120").unwrap();
    tx.commit_keys(["other"]).unwrap();
    // Keys it did not stage: the head it goes on from.
    assert_eq!(text(tx.get("seen").unwrap()).as_deref(), Some("1"));
    assert_eq!(text(tx.get("other").unwrap()).as_deref(), Some("x"));
    assert_eq!(text(tx.get("hits").unwrap()).as_deref(), Some("115"));
    // A staged key that is unstaged reads as it was first read: its base.
    tx.unstage("hits");
    assert_eq!(text(tx.get("hits").unwrap()).as_deref(), Some("100"));
    tx.put("hits", "101");
    tx.commit().unwrap();
    assert_eq!(text(main.get("hits").unwrap()).as_deref(), Some("121"));
}

// ---- 2. the base of a transaction after commit_keys is pinned ----

/// `staged` is new; `hits` changed on the branch after the transaction
/// read it, so the base it goes on from is a commit of its own (the head,
/// with `hits` as first read): both must survive the rebase and the sweep.
fn commit_keys_survives_rebase_and_sweep(db: &Db) -> kvgit::Result<()> {
    db.merge_fns().set("hits", Counter);
    let main = db.branch("main")?;
    main.put("cold1", [b'a'; 100])?;
    main.put("cold2", [b'b'; 100])?;
    main.put("hits", "100")?;
    let mut tx = main.transaction()?;
    tx.put("other", "x").put("staged", "y").put("hits", "115");
    main.put("hits", "120")?;
    tx.commit_keys(["other"])?;
    let report = db.rebase("main", 150, Some(120))?;
    assert_eq!(report.status, RebaseStatus::Rebased);
    assert_eq!(report.dropped, vec![b"cold1".to_vec()]);
    db.sweep()?;
    tx.commit()?;
    assert_eq!(text(main.get("staged")?).as_deref(), Some("y"));
    assert_eq!(text(main.get("other")?).as_deref(), Some("x"));
    assert_eq!(text(main.get("hits")?).as_deref(), Some("135"));
    assert_eq!(main.get("cold1")?, None);
    Ok(())
}

#[test]
fn commit_keys_base_survives_rebase_and_sweep_in_memory() {
    commit_keys_survives_rebase_and_sweep(&Db::memory()).unwrap();
}

#[test]
fn commit_keys_base_survives_rebase_and_sweep_on_sled() {
    let dir = tempfile::tempdir().unwrap();
    commit_keys_survives_rebase_and_sweep(&Db::open(dir.path().join("db")).unwrap()).unwrap();
}

// ---- 3. automatic GC runs after every move ----

fn gc_db() -> Db {
    Db::builder()
        .watermarks(200, Some(130))
        .expect("valid water marks")
        .memory()
}

/// main holds `a`, dev holds `b`, 120 bytes each: neither is above the
/// high water alone; merged, they are.
fn diverged(db: &Db) -> kvgit::Result<(kvgit::Branch, kvgit::Branch)> {
    let main = db.branch("main")?;
    let dev = main.fork("dev")?;
    main.put("a", [b'a'; 120])?;
    dev.put("b", [b'b'; 120])?;
    Ok((main, dev))
}

#[test]
fn merge_from_runs_automatic_gc() {
    let db = gc_db();
    let (main, dev) = diverged(&db).unwrap();
    let outcome = main.merge_from(&dev).unwrap();
    assert!(main.snapshot().unwrap().value_bytes() <= 130);
    let gc = outcome
        .gc
        .expect("the merge left main above the high water");
    assert_eq!(gc.status, RebaseStatus::Rebased);
    assert_eq!(Some(outcome.head), gc.commit);
    assert_eq!(main.head().unwrap(), outcome.head);
}

#[test]
fn merge_commit_runs_automatic_gc() {
    let db = gc_db();
    let (main, dev) = diverged(&db).unwrap();
    main.merge_commit(&dev.head().unwrap()).unwrap();
    assert!(main.snapshot().unwrap().value_bytes() <= 130);
}

#[test]
fn reset_to_runs_automatic_gc() {
    // Two handles on one store: one without water marks makes a commit
    // above the high water; the other resets its branch to it.
    let backend = std::sync::Arc::new(kvgit_core::MemoryBackend::new());
    let plain = Db::builder().backend(backend.clone()).unwrap();
    let db = Db::builder()
        .watermarks(200, Some(130))
        .unwrap()
        .backend(backend)
        .unwrap();
    let big = plain.branch("big").unwrap();
    big.put("a", [b'a'; 120]).unwrap();
    let head = big.put("b", [b'b'; 120]).unwrap();
    let main = db.branch("main").unwrap();
    main.reset_to(&head).unwrap();
    assert!(main.snapshot().unwrap().value_bytes() <= 130);
    assert_ne!(main.head().unwrap(), head);
}

// ---- 4. validation hooks see every move ----

fn no_removals(db: &Db) {
    db.add_validator("no-removals", |c| {
        match c.changes.iter().any(|ch| ch.kind == ChangeKind::Removed) {
            true => Err("keys are never removed".to_string()),
            false => Ok(()),
        }
    });
}

#[test]
fn a_validator_can_refuse_reset_to() {
    let db = Db::memory();
    let main = db.branch("main").unwrap();
    let c1 = main.put("a", "1").unwrap();
    let c2 = main.put("b", "2").unwrap();
    no_removals(&db);
    let err = main.reset_to(&c1).unwrap_err();
    assert!(
        matches!(&err, Error::Rejected { hook, .. } if hook == "no-removals"),
        "{err}"
    );
    assert_eq!(main.head().unwrap(), c2);
}

#[test]
fn a_validator_can_refuse_a_rebase() {
    let db = Db::memory();
    let main = db.branch("main").unwrap();
    main.put("a", [b'a'; 100]).unwrap();
    let head = main.put("b", [b'b'; 100]).unwrap();
    no_removals(&db);
    let err = db.rebase("main", 150, None).unwrap_err();
    assert!(
        matches!(&err, Error::Rejected { hook, .. } if hook == "no-removals"),
        "{err}"
    );
    let err = db.rebase_keep("main", |k| k == b"a").unwrap_err();
    assert!(matches!(&err, Error::Rejected { .. }), "{err}");
    assert_eq!(main.head().unwrap(), head);
}

#[test]
fn a_refused_automatic_gc_leaves_the_commit_in_place() {
    let db = gc_db();
    let main = db.branch("main").unwrap();
    no_removals(&db);
    main.put("a", [b'a'; 120]).unwrap();
    let mut tx = main.transaction().unwrap();
    tx.put("b", [b'b'; 120]);
    let outcome = tx.commit().unwrap();
    assert!(outcome.committed);
    assert_eq!(outcome.gc, None);
    assert_eq!(main.head().unwrap(), outcome.commit.unwrap());
    assert!(main.contains("a").unwrap() && main.contains("b").unwrap());
}

#[test]
fn a_validator_sees_the_kind_and_the_old_and_new_heads_of_every_move() {
    use std::sync::{Arc, Mutex};
    type Seen = (
        MoveKind,
        Option<kvgit::CommitId>,
        Option<kvgit::CommitId>,
        usize,
    );
    let db = Db::memory();
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let log = seen.clone();
    db.add_validator("log", move |c| {
        log.lock()
            .unwrap()
            .push((c.kind, c.old_head, c.new_head, c.changes.len()));
        Ok(())
    });
    let main = db.branch("main").unwrap();
    let c0 = main.head().unwrap();
    let c1 = main.put("a", "1").unwrap();
    let dev = main.fork("dev").unwrap();
    let d1 = dev.put("b", "2").unwrap();
    main.merge_from(&dev).unwrap(); // fast-forward
    main.reset_to(&c1).unwrap();
    main.put("c", "3").unwrap();
    let merged = main.merge_from(&dev).unwrap();
    let rebased = db.rebase_keep("main", |k| k != b"c").unwrap();
    dev.delete_branch().unwrap();
    let seen = seen.lock().unwrap().clone();
    let kinds: Vec<MoveKind> = seen.iter().map(|s| s.0).collect();
    assert_eq!(
        kinds,
        vec![
            MoveKind::Create,
            MoveKind::Commit,
            MoveKind::Create,
            MoveKind::Commit,
            MoveKind::FastForward,
            MoveKind::Reset,
            MoveKind::Commit,
            MoveKind::Merge,
            MoveKind::Rebase,
            MoveKind::Delete,
        ]
    );
    assert_eq!(seen[0].1, None);
    assert_eq!(seen[0].2, Some(c0));
    assert_eq!((seen[1].1, seen[1].2, seen[1].3), (Some(c0), Some(c1), 1));
    assert_eq!((seen[2].1, seen[2].2), (None, Some(c1)));
    assert_eq!((seen[4].1, seen[4].2, seen[4].3), (Some(c1), Some(d1), 1));
    assert_eq!((seen[5].1, seen[5].2, seen[5].3), (Some(d1), Some(c1), 1));
    assert_eq!((seen[7].2, seen[7].3), (Some(merged.head), 1));
    assert_eq!(
        (seen[8].1, seen[8].2, seen[8].3),
        (Some(merged.head), rebased.commit, 1)
    );
    // dev held a and b: its deletion removes both.
    assert_eq!((seen[9].1, seen[9].2, seen[9].3), (Some(d1), None, 2));
}

#[test]
fn deleting_a_branch_is_a_move_hooks_can_refuse_and_subscribers_see_end() {
    let db = Db::memory();
    let main = db.branch("main").unwrap();
    let tmp = main.fork("tmp").unwrap();
    tmp.put("x", "1").unwrap();
    let head = tmp.head().unwrap();
    let updates = db.subscribe("tmp").unwrap();
    db.add_validator("keep tmp", |c| match (c.kind, c.branch) {
        (MoveKind::Delete, "tmp") => Err("tmp is kept".into()),
        _ => Ok(()),
    });
    let refused = db.delete_branch("tmp").unwrap_err();
    assert!(
        matches!(&refused, kvgit::Error::Rejected { hook, .. } if hook == "keep tmp"),
        "{refused:?}"
    );
    let kept = db.get_branch("tmp").unwrap().expect("tmp is still there");
    assert_eq!(kept.head().unwrap(), head, "nothing moved");
    db.remove_validator("keep tmp");
    db.delete_branch("tmp").unwrap();
    assert!(db.get_branch("tmp").unwrap().is_none());
    // The subscription ends with the branch.
    assert!(updates
        .recv_timeout(std::time::Duration::from_secs(5))
        .is_err());
    assert!(matches!(
        db.delete_branch("tmp"),
        Err(kvgit::Error::NoSuchBranch(_))
    ));
}

// ---- 5. every read of a value at a branch head counts as access ----

/// `a`, `b`, `c` are written in that order (40 bytes each), then `a` is
/// read by `read`; a rebase down to two keys must drop `b`, now the
/// coldest, and keep `a`.
fn a_only() -> (Bound<&'static [u8]>, Bound<&'static [u8]>) {
    (Bound::Included(b"a"), Bound::Excluded(b"b"))
}

/// A store that records access (without water marks it would not, by
/// default).
fn tracked() -> Db {
    Db::builder().track_access(true).memory()
}

fn check_read_counts(name: &str, read: impl Fn(&Db, &kvgit::Branch)) {
    let db = tracked();
    let main = db.branch("main").expect("create main");
    for key in ["a", "b", "c"] {
        main.put(key, [b'x'; 40]).expect("put");
    }
    read(&db, &main);
    let report = db.rebase("main", 100, Some(80)).expect("rebase");
    assert_eq!(report.dropped, vec![b"b".to_vec()], "read through {name}");
}

#[test]
fn every_read_at_a_branch_head_counts_as_access() {
    check_read_counts("get", |_, b| {
        b.get("a").unwrap();
    });
    check_read_counts("range", |_, b| {
        let r: Vec<_> = b.range(a_only()).unwrap().collect();
        assert_eq!(r.len(), 1);
    });
    check_read_counts("scan_prefix", |_, b| {
        assert_eq!(b.scan_prefix("a").unwrap().count(), 1);
    });
    check_read_counts("contains", |_, b| {
        assert!(b.contains("a").unwrap());
    });
    check_read_counts("snapshot get", |_, b| {
        b.snapshot().unwrap().get("a").unwrap();
    });
    check_read_counts("snapshot range", |_, b| {
        let s = b.snapshot().unwrap();
        assert_eq!(s.range(a_only()).count(), 1);
    });
    check_read_counts("snapshot contains", |_, b| {
        assert!(b.snapshot().unwrap().contains("a").unwrap());
    });
    check_read_counts("transaction range", |_, b| {
        let tx = b.transaction().unwrap();
        assert_eq!(tx.scan_prefix("a").count(), 1);
    });
    check_read_counts("transaction contains", |_, b| {
        assert!(b.transaction().unwrap().contains("a").unwrap());
    });
}

#[test]
fn reads_through_a_namespace_count_as_access() {
    let db = tracked();
    let main = db.branch("main").unwrap();
    for key in ["ns/a", "ns/b", "ns/c"] {
        main.put(key, [b'x'; 40]).unwrap();
    }
    assert!(main.namespace("ns").contains("a").unwrap());
    let report = db.rebase("main", 100, Some(80)).unwrap();
    assert_eq!(report.dropped, vec![b"ns/b".to_vec()]);
}

#[test]
fn reading_an_old_commit_is_not_access_at_the_head() {
    let db = Db::memory();
    let main = db.branch("main").unwrap();
    let first = main.put("a", [b'x'; 40]).unwrap();
    for key in ["b", "c"] {
        main.put(key, [b'x'; 40]).unwrap();
    }
    db.checkout(&first).unwrap().get("a").unwrap();
    let report = db.rebase("main", 100, Some(80)).unwrap();
    assert_eq!(report.dropped, vec![b"a".to_vec()]);
}

// ---- every move is announced ----

#[test]
fn subscribers_see_every_move() {
    let db = Db::memory();
    let main = db.branch("main").unwrap();
    let heads = main.subscribe().unwrap();
    let c1 = main.put("a", [b'a'; 100]).unwrap();
    let dev = main.fork("dev").unwrap();
    let d1 = dev.put("b", "1").unwrap();
    main.merge_from(&dev).unwrap();
    main.reset_to(&c1).unwrap();
    let rebased = db.rebase_keep("main", |_| false).unwrap();
    let seen: Vec<_> = heads.try_iter().collect();
    assert_eq!(seen, vec![c1, d1, c1, rebased.commit.unwrap()]);
}
