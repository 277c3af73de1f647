//! Key history: every commit is kept, so the past values of a key, the
//! commits that changed it, and the whole state at any commit can be read.
//!
//! ```text
//! cargo run -p kvgit --example key_history
//! ```

use kvgit::Db;

/// Runs the example (`tests/examples.rs` calls it too).
pub fn main() -> kvgit::Result<()> {
    let db = Db::memory();
    let main = db.branch("main")?;

    // A few commits, with messages and metadata.
    let mut tx = main.transaction()?;
    tx.message("set the price").metadata("author", "alice");
    tx.put("price", "10");
    tx.put("name", "widget");
    tx.commit()?;

    let mut tx = main.transaction()?;
    tx.message("price rise");
    tx.put("price", "12");
    let rise = tx.commit()?.commit.expect("committed");

    let mut tx = main.transaction()?;
    tx.message("rename");
    tx.put("name", "gadget"); // does not touch "price"
    tx.commit()?;

    let mut tx = main.transaction()?;
    tx.message("discontinued");
    tx.delete("price");
    tx.commit()?;

    // The commits where "price" changed, newest first, with its value
    // there (`None`: deleted in that commit).
    println!("history of price:");
    let mut values = Vec::new();
    for entry in main.key_history("price")? {
        let (info, value) = entry?;
        let shown = value
            .as_deref()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_else(|| "(deleted)".into());
        println!("  {}  {:14} {}", info.id.short(12), info.message(), shown);
        values.push(value);
    }
    assert_eq!(
        values,
        vec![None, Some(b"12".to_vec()), Some(b"10".to_vec())]
    );

    // The whole log: ids, messages, metadata, times, parents.
    for info in main.log()? {
        let info = info?;
        println!(
            "{} {:?} {:?} parents={}",
            info.id, // the full id: 64 hex digits
            info.message(),
            info.metadata(),
            info.parents().len()
        );
    }

    // The state at an old commit, read-only.
    let then = db.checkout(&rise)?;
    assert_eq!(then.get("price")?.as_deref(), Some(&b"12"[..]));
    assert_eq!(then.get("name")?.as_deref(), Some(&b"widget"[..]));

    // A commit can be named by a unique prefix of its id, as in git.
    let prefix = rise.short(8);
    assert_eq!(db.resolve(&prefix)?, rise);

    // What changed between two commits.
    for change in db.diff(&rise, &main.head()?)? {
        println!(
            "{:?} {}: {:?} -> {:?}",
            change.kind,
            String::from_utf8_lossy(&change.key),
            change.old.map(|v| String::from_utf8_lossy(&v).into_owned()),
            change.new.map(|v| String::from_utf8_lossy(&v).into_owned()),
        );
    }
    Ok(())
}
