//! Quick start: open a store on disk, write, read, commit several changes
//! at once, look at the history, and open the store again.
//!
//! ```text
//! cargo run -p kvgit --example quickstart
//! ```
//!
//! The store lives in a temporary directory that is removed at the end.

use kvgit::Db;

/// Runs the example (`tests/examples.rs` calls it too).
pub fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("data.kvgit");

    {
        // `Db::open` creates the store if it is missing (`Db::memory()`
        // gives one that lives in memory only).
        let db = Db::open(&path)?;

        // A branch is a named line of commits; `branch` creates it empty
        // the first time.
        let main = db.branch("main")?;

        // Keys and values are bytes: anything `AsRef<[u8]>` goes in, and
        // `get` gives back an `Option<Vec<u8>>`. Each `put` is a commit.
        main.put("greeting", "hello")?;
        assert_eq!(main.get("greeting")?.as_deref(), Some(&b"hello"[..]));
        assert_eq!(main.get("missing")?, None);

        // Several changes in one atomic commit: stage them in a
        // transaction (its reads see its own writes), then commit.
        let mut tx = main.transaction()?;
        tx.put("user/alice", "admin");
        tx.put("user/bob", "reader");
        tx.delete("greeting");
        assert!(tx.contains("user/alice")?);
        tx.message("add users");
        let outcome = tx.commit()?;
        println!("committed {}", outcome.commit.expect("committed").short(12));

        // Read-modify-write: `update` runs the closure in a transaction and
        // commits what it staged; if another writer moved the branch in
        // the meantime, it runs the closure again on the new head.
        // `get_as` / `put_as` store typed values (see typed_values.rs).
        for _ in 0..3 {
            main.update(|tx| {
                let visits: u64 = tx.get_as("visits")?.unwrap_or(0);
                tx.put_as("visits", &(visits + 1))
            })?;
        }
        assert_eq!(main.get_as::<u64>("visits")?, Some(3));

        // Every commit stays readable: the log lists them, newest first.
        for info in main.log()? {
            let info = info?;
            let message = match info.message() {
                "" => "(no message)",
                m => m,
            };
            println!("{}  {message}", info.id.short(12));
        }

        // Iterate over the keys under a prefix, in key order.
        for entry in main.scan_prefix("user/")? {
            let (key, value) = entry?;
            println!(
                "{} = {}",
                String::from_utf8_lossy(&key),
                String::from_utf8_lossy(&value)
            );
        }
        // The store is closed when the last handle is dropped.
    }

    // Open it again: everything committed is there.
    let db = Db::open(&path)?;
    let main = db.branch("main")?;
    assert_eq!(main.get("user/bob")?.as_deref(), Some(&b"reader"[..]));
    assert_eq!(main.len()?, 3); // user/alice, user/bob, visits
    println!("reopened: {} keys on main", main.len()?);
    Ok(())
}
