//! gitkv-style editing: keys opened as files, edited with `std::io`, and
//! committed atomically, one commit for a whole block of edits.
//!
//! ```text
//! cargo run -p kvgit --example gitkv_open
//! ```
//!
//! In Python's gitkv:
//!
//! ```python
//! with gitkv.Repo(url) as repo:
//!     with repo.open('yourfile', 'a') as f:
//!         f.write('\nAdditional content.')
//!     repo.commit_message = 'Multiple edits'
//! ```
//!
//! Here the repository is a kvgit store, the with-block is a transaction
//! (or `Branch::update`), and `open` gives a `KeyFile`, which implements
//! `Read`, `Write` and `Seek`. Nothing is committed until the transaction
//! is, and a transaction that is dropped (or a closure that fails) leaves
//! the branch as it was.

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};

use kvgit::{Db, OpenMode};

/// Runs the example (`tests/examples.rs` calls it too).
pub fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let db = Db::open(dir.path().join("files.kvgit"))?;
    let main = db.branch("main")?;

    // gitkv.open(url, 'yourfile', 'w'): one file, one commit. `update`
    // commits what the closure staged if it returns Ok.
    main.update(|tx| -> Result<(), Box<dyn std::error::Error>> {
        tx.message("GitKV: yourfile");
        let mut f = tx.open("yourfile", OpenMode::Write)?;
        f.write_all(b"Your content.")?;
        Ok(())
    })?;

    // gitkv.Repo(url) with several edits: all of them in one commit.
    let mut tx = main.transaction()?;
    {
        let mut f = tx.open("yourfile", OpenMode::Append)?;
        f.write_all(b"\nAdditional content.")?;
    } // the file is staged in the transaction when it is dropped
    let mut data = String::new();
    tx.open("yourfile", OpenMode::Read)?
        .read_to_string(&mut data)?;
    let data = data.replace("Your", "My");
    tx.open("yourfile", OpenMode::Write)?
        .write_all(data.as_bytes())?;
    tx.open("anotherfile", OpenMode::Write)?
        .write_all(b"something")?;
    tx.message("Multiple edits");
    tx.commit()?;

    // Files are readable line by line.
    let mut tx = main.transaction()?;
    let lines: Vec<String> = BufReader::new(tx.open("yourfile", OpenMode::Read)?)
        .lines()
        .collect::<Result<_, _>>()?;
    assert_eq!(lines, ["My content.", "Additional content."]);

    // Read, write and seek in one handle.
    {
        let mut f = tx.open("anotherfile", OpenMode::ReadWrite)?;
        f.seek(SeekFrom::End(0))?;
        f.write_all(b" else")?;
        f.seek(SeekFrom::Start(0))?;
        let mut all = String::new();
        f.read_to_string(&mut all)?;
        assert_eq!(all, "something else");
    }
    // A file opened for reading refuses writes.
    assert!(tx
        .open("anotherfile", OpenMode::Read)?
        .write_all(b"x")
        .is_err());
    // Dropping the transaction discards its edits.
    drop(tx);
    assert_eq!(main.get("anotherfile")?.as_deref(), Some(&b"something"[..]));

    // A failing block commits nothing.
    let failed = main.update(|tx| -> Result<(), Box<dyn std::error::Error>> {
        tx.open("yourfile", OpenMode::Write)?
            .write_all(b"half-done")?;
        Err("something went wrong".into())
    });
    assert!(failed.is_err());
    assert!(main.get("yourfile")?.is_some_and(|v| v.starts_with(b"My")));

    // repo.git_log(): the branch's commits, newest first (the first commit
    // of a branch is its empty root).
    let messages: Vec<String> = main
        .log()?
        .map(|info| info.map(|i| i.message().to_string()))
        .collect::<Result<_, _>>()?;
    println!("log: {messages:?}");
    assert_eq!(messages[..2], ["Multiple edits", "GitKV: yourfile"]);

    // f.git_log() and f.show_blob(commit): a key's own history, with its
    // contents at each commit that changed it.
    for entry in main.key_history("yourfile")? {
        let (info, contents) = entry?;
        println!(
            "{} {:16} {:?}",
            info.id.short(12),
            info.message(),
            String::from_utf8_lossy(&contents.unwrap_or_default())
        );
    }
    // Any file at any commit: check out the commit and read the key.
    let first = main.log()?.nth(1).expect("two commits")?;
    let old = db.checkout(&first.id)?;
    assert_eq!(old.get("yourfile")?.as_deref(), Some(&b"Your content."[..]));
    Ok(())
}
