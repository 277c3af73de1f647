//! `Branch::transaction_at`: a transaction based on a given commit.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use kvgit::{Db, Error, MoveKind, Strategy};

#[test]
fn transaction_at_the_head_fast_forwards() -> kvgit::Result<()> {
    let db = Db::memory();
    let main = db.branch("main")?;
    let head = main.put("a", "1")?;
    let mut tx = main.transaction_at(&head)?;
    tx.put("b", "2");
    let out = tx.commit()?;
    assert_eq!(out.strategy, Strategy::FastForward);
    assert_eq!(Some(main.head()?), out.commit);
    assert_eq!(
        db.checkout(&main.head()?)?.get("a")?.as_deref(),
        Some(&b"1"[..])
    );
    Ok(())
}

#[test]
fn transaction_at_an_older_commit_reads_it_and_merges_onto_the_head() -> kvgit::Result<()> {
    let db = Db::memory();
    let main = db.branch("main")?;
    let first = main.put("a", "1")?;
    main.put("b", "2")?;
    let mut tx = main.transaction_at(&first)?;
    assert_eq!(tx.get("b")?, None);
    tx.put("c", "3");
    let out = tx.commit()?;
    assert_eq!(out.strategy, Strategy::ThreeWay);
    // Merged onto the head before the first compare-and-swap: one try.
    assert_eq!(out.attempts, 1);
    assert_eq!(main.get("b")?.as_deref(), Some(&b"2"[..]));
    assert_eq!(main.get("c")?.as_deref(), Some(&b"3"[..]));
    Ok(())
}

#[test]
fn transaction_at_an_older_commit_reports_conflicts() -> kvgit::Result<()> {
    let db = Db::memory();
    let main = db.branch("main")?;
    let first = main.put("a", "1")?;
    main.put("a", "2")?;
    let mut tx = main.transaction_at(&first)?;
    tx.put("a", "3");
    assert!(matches!(tx.commit(), Err(Error::Conflicts(_))));
    assert_eq!(main.get("a")?.as_deref(), Some(&b"2"[..]));
    Ok(())
}

#[test]
fn transaction_at_goes_through_validation_hooks_and_subscriptions() -> kvgit::Result<()> {
    let db = Db::memory();
    let main = db.branch("main")?;
    let first = main.put("a", "1")?;
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    db.add_validator("no-x", move |c| {
        counter.fetch_add(1, Ordering::SeqCst);
        assert_eq!(c.kind, MoveKind::Commit);
        match c.changes.iter().any(|ch| ch.key == b"x") {
            true => Err("no x".into()),
            false => Ok(()),
        }
    });
    let heads = db.subscribe("main")?;
    let mut tx = main.transaction_at(&first)?;
    tx.put("x", "1");
    assert!(matches!(tx.commit(), Err(Error::Rejected { .. })));
    assert_eq!(main.head()?, first);
    let mut tx = main.transaction_at(&first)?;
    tx.put("y", "1");
    let head = tx.commit()?.commit.expect("committed");
    assert_eq!(heads.try_recv().ok(), Some(head));
    assert_eq!(seen.load(Ordering::SeqCst), 2);
    Ok(())
}

#[test]
fn transaction_at_an_unknown_commit_is_an_error() -> kvgit::Result<()> {
    let db = Db::memory();
    let main = db.branch("main")?;
    let other = Db::memory().branch("main")?.put("a", "1")?;
    assert!(matches!(
        main.transaction_at(&other),
        Err(Error::UnknownCommit(_))
    ));
    Ok(())
}

#[test]
fn transaction_at_an_older_commit_is_validated_once() -> kvgit::Result<()> {
    let db = Db::memory();
    let main = db.branch("main")?;
    let first = main.put("a", "1")?;
    main.put("b", "2")?;
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    db.add_validator("count", move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
        Ok(())
    });
    let mut tx = main.transaction_at(&first)?;
    tx.put("c", "3");
    tx.commit()?;
    assert_eq!(seen.load(Ordering::SeqCst), 1);
    Ok(())
}
