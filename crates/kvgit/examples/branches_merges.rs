//! Branches and merges: fork a branch, change both sides, merge them, deal
//! with a conflict, tag a commit, reset and delete a branch.
//!
//! ```text
//! cargo run -p kvgit --example branches_merges
//! ```

use kvgit::merge::{Max, TextMerge};
use kvgit::Strategy;
use kvgit::{ChangeKind, Db, Error};

/// Runs the example (`tests/examples.rs` calls it too).
pub fn main() -> kvgit::Result<()> {
    let db = Db::memory();
    let main = db.branch("main")?;
    main.put("title", "Notes")?;
    main.put("doc", "one\ntwo\nthree\n")?;
    main.put("version", "1")?;

    // `fork` makes a new branch at this branch's head (`create_branch`
    // does the same at any commit).
    let dev = main.fork("dev")?;
    println!("branches: {:?}", db.branches()?);

    // Work on dev does not show on main until it is merged.
    dev.put("feature", "on")?;
    assert!(!main.contains("feature")?);

    // main has not moved since the fork: the merge is a fast-forward (main
    // simply moves to dev's head, no merge commit).
    let outcome = main.merge_from(&dev)?;
    assert_eq!(outcome.strategy, Strategy::FastForward);
    assert_eq!(main.head()?, dev.head()?);

    // Now both sides change things. Keys changed on one side only merge by
    // themselves; the same key changed differently on both sides needs a
    // merge function, or it is a conflict.
    main.put("title", "Team notes")?;
    main.put("doc", "ONE\ntwo\nthree\n")?;
    main.put("version", "3")?;
    dev.put("doc", "one\ntwo\nTHREE\n")?;
    dev.put("version", "2")?;
    dev.put("owner", "dev team")?;

    match main.merge_from(&dev) {
        Err(Error::Conflicts(conflicts)) => {
            // Every conflicting key is listed; nothing was changed.
            let keys: Vec<String> = conflicts
                .iter()
                .map(|c| String::from_utf8_lossy(&c.key).into_owned())
                .collect();
            println!("conflicts: {keys:?}");
            assert_eq!(keys, ["doc", "version"]);
            assert!(!main.contains("owner")?);
        }
        other => panic!("expected conflicts, got {other:?}"),
    }

    // Tell the store how to merge those keys: a line-based text merge for
    // the document (as git merges files), the greater number for the
    // version. Then merge again: a three-way merge, recorded as a commit
    // with two parents.
    db.merge_fns().set("doc", TextMerge);
    db.merge_fns().set("version", Max);
    let outcome = main.merge_from(&dev)?;
    assert_eq!(outcome.strategy, Strategy::ThreeWay);
    println!(
        "merged at {} (base {})",
        outcome.head.short(12),
        outcome.base.map(|b| b.short(12)).unwrap_or_default()
    );
    assert_eq!(main.get("doc")?.as_deref(), Some(&b"ONE\ntwo\nTHREE\n"[..]));
    assert_eq!(main.get("version")?.as_deref(), Some(&b"3"[..]));
    assert_eq!(main.get("owner")?.as_deref(), Some(&b"dev team"[..]));
    assert_eq!(main.get("title")?.as_deref(), Some(&b"Team notes"[..]));

    // A tag names a commit for good (and keeps it from garbage collection).
    db.tag("v1", &main.head()?)?;

    // What changed on main since the fork-time state of dev?
    let fork_point = outcome.base.expect("the branches share history");
    for change in db.diff(&fork_point, &main.head()?)? {
        let kind = match change.kind {
            ChangeKind::Added => "added",
            ChangeKind::Removed => "removed",
            ChangeKind::Modified => "modified",
        };
        println!("  {kind:8} {}", String::from_utf8_lossy(&change.key));
    }

    // Undo: move main back to an earlier commit; `resolve` reads a branch
    // name, a tag, or a commit id (or a unique prefix of one).
    main.put("oops", "mistake")?;
    main.reset_to(&db.resolve("v1")?)?;
    assert!(!main.contains("oops")?);

    // A branch that is no longer needed.
    dev.delete_branch()?;
    assert_eq!(db.branches()?, vec!["main".to_string()]);
    assert!(db.get_branch("dev")?.is_none());
    Ok(())
}
