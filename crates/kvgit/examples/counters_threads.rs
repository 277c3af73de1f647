//! Concurrent counters across threads: many writers, one branch, no lost
//! increment and no lock held by the application.
//!
//! ```text
//! cargo run -p kvgit --example counters_threads
//! ```
//!
//! A `Db` is cheap to clone and can be shared between threads. Two ways to
//! count concurrently are shown:
//!
//! 1. `Branch::update`: read, compute, write; if another thread committed
//!    first, the closure runs again on the new head.
//! 2. A merge function: each thread commits its own result, and commits
//!    that raced are merged. A counter merge adds both increments up
//!    (ours + theirs - base), so nobody has to retry.

use std::thread;

use kvgit::merge::Counter;
use kvgit::Db;

const THREADS: u64 = 4;
const PER_THREAD: u64 = 25;

/// Runs the example (`tests/examples.rs` calls it too).
pub fn main() -> kvgit::Result<()> {
    // In memory here; `Db::open(path)` works the same on disk.
    let db = Db::memory();
    let main = db.branch("main")?;

    // Merge functions are registered on the store, by key (or by prefix,
    // or as the default). `Counter` adds up integers stored with `put_as`
    // as well as decimal text such as "42".
    db.merge_fns().set("merged_hits", Counter);
    db.merge_fns().set("text_hits", Counter);

    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            // Each thread gets its own handle on the same branch.
            let branch = main.clone();
            thread::spawn(move || -> kvgit::Result<()> {
                for _ in 0..PER_THREAD {
                    // 1. Retry on a lost race.
                    branch.update(|tx| {
                        let n: u64 = tx.get_as("updated_hits")?.unwrap_or(0);
                        tx.put_as("updated_hits", &(n + 1))
                    })?;

                    // 2. Merge on a lost race: a plain transaction. If
                    //    another thread committed since `transaction()`,
                    //    `commit` merges with it using the counter.
                    let mut tx = branch.transaction()?;
                    let n: i64 = tx.get_as("merged_hits")?.unwrap_or(0);
                    tx.put_as("merged_hits", &(n + 1))?;
                    let text: i64 = tx
                        .get("text_hits")?
                        .map(|v| String::from_utf8_lossy(&v).parse().unwrap_or(0))
                        .unwrap_or(0);
                    tx.put("text_hits", (text + 1).to_string());
                    tx.commit()?;
                }
                Ok(())
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("the thread did not panic")?;
    }

    let total = THREADS * PER_THREAD;
    let updated: u64 = main.get_as("updated_hits")?.unwrap_or(0);
    let merged: i64 = main.get_as("merged_hits")?.unwrap_or(0);
    let text = main.get("text_hits")?.unwrap_or_default();
    println!("update():       {updated}");
    println!("typed_counter:  {merged}");
    println!("Counter (text): {}", String::from_utf8_lossy(&text));
    assert_eq!(updated, total);
    assert_eq!(merged, total as i64);
    assert_eq!(text, total.to_string().into_bytes());

    // Without a merge function, a key two writers changed differently is a
    // conflict: the second commit fails and names the key.
    let mut a = main.transaction()?;
    let mut b = main.transaction()?;
    a.put("owner", "alice");
    b.put("owner", "bob");
    a.commit()?;
    let err = b.commit().expect_err("a conflict");
    println!("without a merge function: {err}");
    assert_eq!(err.conflicts().map(|c| c.len()), Some(1));
    Ok(())
}
