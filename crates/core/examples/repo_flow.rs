//! kvgit's main job on the embedded default store (sled): open or create a
//! store, commit to `heads/main`, branch `heads/dev` from it, commit on dev,
//! then show the log, the diff between the branches, and values read back.
//!
//! ```text
//! cargo run --release -p kvgit-core --example repo_flow [PATH]
//! ```
//!
//! PATH defaults to `./quickstart.kvgit`. Run it again on the same path: it
//! continues from the commits already there (a `runs` counter goes up).

use std::collections::BTreeMap;

use kvgit_core::tree::Change;
use kvgit_core::{CasOutcome, CommitSpec, ObjectId, Repo, Result, Tree, Value};

const MAIN: &str = "heads/main";
const DEV: &str = "heads/dev";

fn main() -> Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "./quickstart.kvgit".to_string());
    let repo = Repo::open(&path)?;
    println!("opened store at {path}");

    // 1. Commit on main: bump a run counter and (re)write some users. The
    //    edits are computed from the head's tree, so a retry after a lost
    //    race recomputes them from the new head.
    let mut runs = 0;
    let main_id = commit_with(&repo, MAIN, |tree| {
        runs = repo
            .get(tree, b"runs")?
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0)
            + 1;
        let edits = vec![
            put("runs", runs.to_string()),
            put("user/alice", "admin"),
            put("user/bob", "reader"),
            put("config/motd", format!("hello from run {runs}")),
        ];
        Ok((edits, format!("run {runs}: update users")))
    })?;
    println!("main is at {}", main_id.short(12));

    // 2. Point dev at main's head. The CAS names the value dev holds now
    //    (none on the first run), so it never overwrites a concurrent move.
    let dev_before = repo.get_ref(DEV)?;
    match repo.move_ref(DEV, dev_before.as_ref(), Some(&main_id))? {
        CasOutcome::Swapped => println!("dev reset to {}", main_id.short(12)),
        CasOutcome::Mismatch { actual } => {
            println!("dev moved concurrently (now {actual:?}); leaving it")
        }
    }

    // 3. Commit on dev: promote bob, remove the motd, add a large value
    //    (over 256 bytes, so it is stored once as a separate blob).
    let dev_id = commit_with(&repo, DEV, |_| {
        let edits = vec![
            put("user/bob", "admin"),
            put("user/carol", "reader"),
            (b"config/motd".to_vec(), None),
            put("docs/readme", "kvgit ".repeat(60)),
        ];
        Ok((edits, format!("run {runs}: promote bob on dev")))
    })?;
    println!("dev is at {}", dev_id.short(12));

    // 4. History of dev, newest first (first parents only).
    println!("\nlog of dev (newest first, at most 8):");
    for entry in repo.first_parent_log(dev_id).take(8) {
        let (id, commit) = entry?;
        println!(
            "  {}  height {:>3}  {}",
            id.short(12),
            commit.height,
            commit.message
        );
    }

    // 5. What dev changed relative to main.
    let main_tree = commit_tree(&repo, &main_id)?;
    let dev_tree = commit_tree(&repo, &dev_id)?;
    println!("\ndiff main..dev:");
    for change in repo.diff(&main_tree, &dev_tree) {
        match change? {
            Change::Added { key, value } => {
                println!("  + {} = {}", show(&key), show_value(&repo, &value)?)
            }
            Change::Removed { key, value } => {
                println!("  - {} (was {})", show(&key), show_value(&repo, &value)?)
            }
            Change::Modified { key, old, new } => println!(
                "  ~ {}: {} -> {}",
                show(&key),
                show_value(&repo, &old)?,
                show_value(&repo, &new)?
            ),
        }
    }

    // 6. Read values back.
    println!(
        "\ndev holds {} keys, {} value bytes; users:",
        dev_tree.len(),
        dev_tree.value_bytes()
    );
    for item in repo.prefix(&dev_tree, b"user/") {
        let (key, value) = item?;
        println!("  {} = {}", show(&key), show(&value));
    }
    let motd = repo.get(&main_tree, b"config/motd")?;
    println!(
        "config/motd on main: {}",
        motd.as_deref().map_or("(none)".into(), show)
    );
    let readme = repo.get(&dev_tree, b"docs/readme")?.unwrap_or_default();
    println!("docs/readme on dev: {} bytes", readme.len());
    Ok(())
}

/// One edit: `Some(value)` puts, `None` deletes.
type Edit = (Vec<u8>, Option<Vec<u8>>);

fn put(key: &str, value: impl Into<String>) -> Edit {
    (key.as_bytes().to_vec(), Some(value.into().into_bytes()))
}

/// The commit protocol. Under the write fence (which garbage collection
/// respects): read the head of `ref_name`, let `change` turn its tree into
/// edits and a message, apply them, write a commit whose parent is the
/// head, and compare-and-swap the ref from the head to the new commit. If
/// another writer moved the ref in between, start again from its new head.
fn commit_with<F>(repo: &Repo, ref_name: &str, mut change: F) -> Result<ObjectId>
where
    F: FnMut(&Tree) -> Result<(Vec<Edit>, String)>,
{
    let _fence = repo.write_fence();
    loop {
        let head = repo.get_ref(ref_name)?;
        let base = match head {
            Some(id) => commit_tree(repo, &id)?,
            None => repo.empty_tree()?,
        };
        let (edits, message) = change(&base)?;
        let tree = repo.apply(&base, edits)?;
        let spec = CommitSpec {
            parents: head.into_iter().collect(),
            message,
            metadata: BTreeMap::from([("example".to_string(), "quickstart".to_string())]),
            time_micros: None,
        };
        match repo.commit(ref_name, head.as_ref(), &tree, &spec)? {
            (id, CasOutcome::Swapped) => return Ok(id),
            (_, CasOutcome::Mismatch { .. }) => continue,
        }
    }
}

fn commit_tree(repo: &Repo, id: &ObjectId) -> Result<Tree> {
    repo.tree(repo.read_commit(id)?.root)
}

fn show(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    if text.chars().count() > 40 {
        format!(
            "{}... ({} bytes)",
            text.chars().take(40).collect::<String>(),
            bytes.len()
        )
    } else {
        text.into_owned()
    }
}

fn show_value(repo: &Repo, value: &Value) -> Result<String> {
    Ok(show(&repo.read_value(value)?))
}
