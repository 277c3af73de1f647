//! The public API of issue #19: one flat error to match on, consistent
//! lengths and keys across branches, snapshots, transactions and
//! namespaces, lazy transaction scans, merge functions per transaction,
//! one `Counter` for text and typed values, and progress callbacks.

use std::io::{Read, Write};
use std::ops::Bound;
use std::sync::{Arc, Mutex};

use kvgit::merge::{Counter, LastWriterWins, Max};
use kvgit::{Db, Error, GcPhase, OpenMode, Progress, SweepOptions};

type R = Result<(), Error>;

// ---- One flat error (item 1) ----

#[test]
fn a_locked_store_is_one_variant_to_match() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store");
    let _db = Db::open(&path).expect("first open");
    match Db::open(&path) {
        Err(Error::Locked { path: p, .. }) => assert!(p.contains("store"), "{p}"),
        other => panic!("expected Error::Locked, got {other:?}"),
    }
}

#[test]
fn not_found_and_invalid_input_are_flat_variants() {
    let db = Db::memory();
    db.branch("main").expect("main");
    assert!(matches!(db.resolve("nope"), Err(Error::UnknownRevision(r)) if r == "nope"));
    assert!(matches!(db.delete_branch("gone"), Err(Error::NoSuchBranch(b)) if b == "gone"));
    assert!(matches!(db.delete_tag("gone"), Err(Error::NoSuchTag(t)) if t == "gone"));
    assert!(matches!(db.branch("a..b"), Err(Error::InvalidName { .. })));
    let main = db.branch("main").expect("main");
    assert!(matches!(
        main.put("", "v"),
        Err(Error::InvalidKey { len: 0, .. })
    ));
    let head = main.head().expect("head");
    assert!(matches!(
        db.create_branch("main", &head),
        Err(Error::AlreadyExists(b)) if b == "main"
    ));
    assert!(db.resolve("nope").unwrap_err().is_not_found());
    // The messages stay as they were.
    assert_eq!(
        db.resolve("nope").unwrap_err().to_string(),
        "\"nope\" is not a branch, tag or commit id"
    );
}

#[test]
fn conflicts_are_one_variant_listing_the_keys() -> R {
    let db = Db::memory();
    let main = db.branch("main")?;
    main.put("k", "0")?;
    let mut a = main.transaction()?;
    let mut b = main.transaction()?;
    a.put("k", "1");
    b.put("k", "2");
    a.commit()?;
    match b.commit() {
        Err(Error::Conflicts(c)) => assert_eq!(c[0].key, b"k"),
        other => panic!("expected Error::Conflicts, got {other:?}"),
    }
    Ok(())
}

#[test]
fn io_errors_convert_so_key_files_work_with_question_marks_in_update() -> R {
    let db = Db::memory();
    let main = db.branch("main")?;
    main.put("doc", "hello")?;
    main.update(|tx| {
        let mut f = tx.open("doc", OpenMode::Append)?;
        f.write_all(b" world")?; // io::Error -> kvgit::Error
        Ok::<_, Error>(())
    })?;
    assert_eq!(main.get("doc")?.as_deref(), Some(&b"hello world"[..]));
    // A failing write (read mode) is an `Error::Io` the closure returns.
    let err = main
        .update(|tx| {
            let mut f = tx.open("doc", OpenMode::Read)?;
            let mut s = String::new();
            f.read_to_string(&mut s)?;
            f.write_all(b"no")?;
            Ok::<_, Error>(())
        })
        .unwrap_err();
    assert!(matches!(err, Error::Io(_)), "{err:?}");
    assert_eq!(main.get("doc")?.as_deref(), Some(&b"hello world"[..]));
    Ok(())
}

// ---- Consistent types (item 3) ----

#[test]
fn lengths_are_u64_everywhere() -> R {
    let db = Db::memory();
    let main = db.branch("main")?;
    main.put("ns/a", "1")?;
    main.put("ns/b", "2")?;
    main.put("ns/sub/c", "3")?;
    let branch_len: u64 = main.len()?;
    let snapshot_len: u64 = main.snapshot()?.len();
    let namespace_len: u64 = main.namespace("ns").len()?;
    let mut tx = main.transaction()?;
    tx.put("new", "x").delete("ns/a").delete("absent");
    let tx_len: u64 = tx.len()?;
    assert_eq!(
        (branch_len, snapshot_len, namespace_len, tx_len),
        (3, 3, 2, 3)
    );
    assert!(!tx.is_empty()?);
    Ok(())
}

#[test]
fn namespace_keys_are_bytes_with_a_text_convenience() -> R {
    let db = Db::memory();
    let main = db.branch("main")?;
    let ns = main.namespace("bin");
    ns.put(b"\xff\x00k", "binary")?;
    ns.put("text", "t")?;
    let keys: Vec<Vec<u8>> = ns.keys()?.collect::<kvgit::Result<_>>()?;
    assert_eq!(keys, vec![b"text".to_vec(), b"\xff\x00k".to_vec()]);
    assert_eq!(ns.get(b"\xff\x00k")?.as_deref(), Some(&b"binary"[..]));
    // Text keys only through `keys_str`: a binary key is an error, not a
    // lossy string.
    assert!(matches!(ns.keys_str(), Err(Error::Codec { .. })));
    ns.delete(b"\xff\x00k")?;
    assert_eq!(ns.keys_str()?, vec!["text".to_string()]);
    Ok(())
}

#[test]
fn transaction_scans_are_lazy_and_see_staged_writes() -> R {
    let db = Db::memory();
    let main = db.branch("main")?;
    let mut setup = main.transaction()?;
    for i in 0..2000u32 {
        setup.put(format!("k/{i:05}"), "base");
    }
    setup.commit()?;
    let mut tx = main.transaction()?;
    tx.put("k/00001", "staged")
        .delete("k/00002")
        .put("k/00002a", "new")
        .put("l", "outside");
    // Iterators, consumed as far as needed.
    let first: Vec<_> = tx.scan_prefix("k/").take(3).collect::<kvgit::Result<_>>()?;
    assert_eq!(
        first,
        vec![
            (b"k/00000".to_vec(), b"base".to_vec()),
            (b"k/00001".to_vec(), b"staged".to_vec()),
            (b"k/00002a".to_vec(), b"new".to_vec()),
        ]
    );
    assert_eq!(tx.scan_prefix("k/").count(), 2000);
    let range: Vec<_> = tx
        .range((Bound::Included(&b"k/01999"[..]), Bound::Unbounded))
        .map(|e| e.map(|(k, _)| k))
        .collect::<kvgit::Result<_>>()?;
    assert_eq!(range, vec![b"k/01999".to_vec(), b"l".to_vec()]);
    let keys: Vec<Vec<u8>> = tx.keys().collect::<kvgit::Result<_>>()?;
    assert_eq!(keys.len() as u64, tx.len()?);
    assert_eq!(keys.len(), 2001);
    assert!(keys.windows(2).all(|w| w[0] < w[1]));
    Ok(())
}

#[test]
fn message_and_metadata_take_mut_self() -> R {
    let db = Db::memory();
    let main = db.branch("main")?;
    let mut tx = main.transaction()?;
    tx.put("k", "v").message("set k").metadata("by", "test");
    let id = tx.commit()?.commit.expect("committed");
    let info = db.checkout(&id)?.info()?;
    assert_eq!(info.message(), "set k");
    assert_eq!(info.metadata().get("by").map(String::as_str), Some("test"));
    Ok(())
}

#[test]
fn merge_functions_can_be_set_for_one_transaction() -> R {
    let db = Db::memory();
    db.merge_fns().set("hits", LastWriterWins);
    let main = db.branch("main")?;
    main.put("hits", "10")?;
    main.put("free", "a")?;

    // The transaction's counter wins over the store's last-writer-wins.
    let mut tx = main.transaction()?;
    main.put("hits", "11")?;
    tx.put("hits", "15").merge_fn("hits", Counter);
    tx.commit()?;
    assert_eq!(main.get("hits")?.as_deref(), Some(&b"16"[..]));

    // A default for this commit only; the next transaction has none.
    let mut tx = main.transaction()?;
    main.put("free", "b")?;
    tx.put("free", "c").default_merge(kvgit::merge::Ours);
    tx.commit()?;
    assert_eq!(main.get("free")?.as_deref(), Some(&b"c"[..]));
    let mut tx = main.transaction()?;
    main.put("free", "d")?;
    tx.put("free", "e");
    assert!(matches!(tx.commit(), Err(Error::Conflicts(_))));

    // By prefix.
    let mut tx = main.transaction()?;
    main.put("n/x", "1")?;
    tx.put("n/x", "5").merge_fn_prefix("n/", Max);
    tx.commit()?;
    assert_eq!(main.get("n/x")?.as_deref(), Some(&b"5"[..]));
    Ok(())
}

#[test]
fn counter_adds_up_values_written_with_put_as() -> R {
    let db = Db::memory();
    db.merge_fns().set("hits", Counter);
    let main = db.branch("main")?;
    main.put_as("hits", &100i64)?;
    let mut a = main.transaction()?;
    let mut b = main.transaction()?;
    a.put_as("hits", &115i64)?;
    b.put_as("hits", &120i64)?;
    a.commit()?;
    b.commit()?;
    assert_eq!(main.get_as::<i64>("hits")?, Some(135));
    // Two equal increments count twice, as with text.
    let mut a = main.transaction()?;
    let mut b = main.transaction()?;
    a.put_as("hits", &136i64)?;
    b.put_as("hits", &136i64)?;
    a.commit()?;
    b.commit()?;
    assert_eq!(main.get_as::<i64>("hits")?, Some(137));
    // Text counters work as before.
    main.put("hits", "100")?;
    let mut a = main.transaction()?;
    a.put("hits", "101");
    main.put("hits", "102")?;
    a.commit()?;
    assert_eq!(main.get("hits")?.as_deref(), Some(&b"103"[..]));
    Ok(())
}

#[test]
fn max_compares_put_as_integers_as_numbers() -> R {
    let db = Db::memory();
    db.merge_fns().set("best", Max);
    let main = db.branch("main")?;
    main.put_as("best", &100i64)?;
    let mut a = main.transaction()?;
    a.put_as("best", &300i64)?;
    main.put_as("best", &-5i64)?;
    a.commit()?;
    assert_eq!(main.get_as::<i64>("best")?, Some(300));
    Ok(())
}

// ---- Progress callbacks (item 6) ----

/// What a progress callback heard.
type Heard = Arc<Mutex<Vec<(GcPhase, u64)>>>;

fn recorder() -> (Progress, Heard) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let into = seen.clone();
    let progress = Progress::new(move |phase, n| into.lock().expect("lock").push((phase, n)));
    (progress, seen)
}

#[test]
fn rebase_sweep_verify_and_stats_report_progress() -> R {
    let db = Db::memory();
    let main = db.branch("main")?;
    for i in 0..20 {
        main.put(format!("k{i}"), vec![b'x'; 100])?;
    }

    let (progress, seen) = recorder();
    let report = db.rebase_with_progress("main", 1000, None, progress)?;
    assert!(report.performed());
    let phases: Vec<GcPhase> = seen.lock().expect("lock").iter().map(|p| p.0).collect();
    assert!(phases.contains(&GcPhase::Plan), "{phases:?}");
    assert!(phases.contains(&GcPhase::Write), "{phases:?}");
    assert_eq!(phases.last(), Some(&GcPhase::Done));

    let (progress, seen) = recorder();
    let swept = db.sweep_with(SweepOptions {
        progress,
        ..SweepOptions::default()
    })?;
    let seen = seen.lock().expect("lock").clone();
    for phase in [
        GcPhase::Mark,
        GcPhase::Fence,
        GcPhase::List,
        GcPhase::Delete,
    ] {
        assert!(seen.iter().any(|p| p.0 == phase), "{phase:?} in {seen:?}");
    }
    assert_eq!(seen.last(), Some(&(GcPhase::Done, swept.objects_freed)));

    let (progress, seen) = recorder();
    let stats = db.stats(progress)?;
    assert_eq!((stats.branches, stats.tags), (1, 0));
    assert!(stats.commits >= 1 && stats.objects > 0);
    assert_eq!(
        seen.lock().expect("lock").last(),
        Some(&(GcPhase::Done, stats.objects))
    );

    let report = db.verify()?;
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    Ok(())
}

#[cfg(feature = "json")]
#[test]
fn import_reports_progress() -> R {
    let db = Db::memory();
    let main = db.branch("main")?;
    let mut tx = main.transaction()?;
    let lines = b"{\"key\":\"a\",\"value\":\"1\"}\n{\"key\":\"b\",\"value\":\"2\"}\n";
    let mut calls = 0;
    let options = kvgit::jsonl::ImportOptions {
        progress: Some(Box::new(|_| calls += 1)),
        ..Default::default()
    };
    kvgit::jsonl::import(&mut tx, &lines[..], options).expect("import");
    assert_eq!(calls, 2);
    Ok(())
}
