//! Garbage collection: a branch used as a cache keeps its size between two
//! water marks by dropping its coldest keys, and a sweep deletes what no
//! branch or tag can reach any more.
//!
//! ```text
//! cargo run -p kvgit --example gc
//! ```
//!
//! Two steps, as in the Python kvgit:
//!
//! - rebase: if a branch holds more value bytes than the high water mark,
//!   drop its least recently used keys (never protected ones: by default,
//!   keys whose last `/`-separated segment starts with `__`) until it holds
//!   at most the low water mark, and commit the survivors as a fresh root
//!   commit. Its old history is then unreachable.
//! - sweep: delete every object no branch or tag reaches.
//!
//! A rebase cuts the branch's history, so use it on branches that are not
//! merged with others (caches, per-agent state).

use kvgit::Db;

/// Runs the example (`tests/examples.rs` calls it too).
pub fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let db = Db::open(dir.path().join("cache.kvgit"))?;
    let cache = db.branch("cache")?;

    // 50 entries of 1 KiB each, plus a protected bookkeeping key. (Each
    // value differs: equal values would be stored only once.)
    let mut tx = cache.transaction()?;
    for i in 0..50u8 {
        tx.put(format!("page/{i:02}"), vec![i; 1024]);
    }
    tx.put("page/__index", "kept whatever happens");
    tx.commit()?;

    // Reads count as use: pages 40..49 are now the most recently used.
    for i in 40..50 {
        cache.get(format!("page/{i:02}"))?;
    }

    // Rebase by hand: above 40 KiB, drop cold pages down to 20 KiB.
    let report = db.rebase("cache", 40 * 1024, Some(20 * 1024))?;
    println!(
        "rebase: {:?}, dropped {} keys ({} bytes), kept {}, {} -> {} bytes",
        report.status,
        report.dropped.len(),
        report.dropped_bytes,
        report.kept,
        report.bytes_before,
        report.bytes_after
    );
    assert!(report.performed());
    assert!(report.bytes_after <= 20 * 1024);
    assert!(cache.contains("page/49")?, "recently read: kept");
    assert!(!cache.contains("page/00")?, "coldest: dropped");
    assert!(cache.contains("page/__index")?, "protected: kept");
    // The branch now starts at a fresh root commit.
    assert_eq!(cache.log()?.count(), 1);

    // The dropped values and the old commits still take space until a
    // sweep deletes them.
    let sweep = db.sweep()?;
    println!(
        "sweep: freed {} objects ({} bytes), {} reachable",
        sweep.objects_freed, sweep.bytes_freed, sweep.objects_marked
    );
    assert!(sweep.bytes_freed >= report.dropped_bytes);

    // Or let every commit do it: a store opened with water marks rebases a
    // branch automatically after a commit leaves it above the high mark.
    drop(cache);
    drop(db);
    let db = Db::builder()
        .watermarks(16 * 1024, Some(8 * 1024))?
        .open(dir.path().join("auto.kvgit"))?;
    let cache = db.branch("cache")?;
    for i in 0..40u8 {
        let mut tx = cache.transaction()?;
        tx.put(format!("page/{i:02}"), vec![i; 1024]);
        let outcome = tx.commit()?;
        if let Some(gc) = outcome.gc {
            println!(
                "commit {i}: automatic rebase dropped {} keys",
                gc.dropped.len()
            );
        }
    }
    assert!(cache.snapshot()?.value_bytes() <= 16 * 1024);

    // Keep exactly the keys you choose (plus protected ones).
    db.rebase_keep("cache", |key| key.ends_with(b"9"))?;
    println!("after rebase_keep: {} keys", cache.len()?);
    assert!(cache.len()? <= 4);
    db.sweep()?;
    Ok(())
}
