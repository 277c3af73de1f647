//! `kvgit switch` and `kvgit status`: the current branch, stored in the
//! store's metadata so that commands without `--branch` use it, as git's
//! `HEAD`.
//!
//! Which branch a command uses: `--branch`, else `KVGIT_BRANCH`, else the
//! stored current branch, else `main` ([`default_branch`], called once by
//! `main`).

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{bail, Result};
use serde_json::json;

use crate::args::Command;
use crate::output::{paint, painted, write_json};
use crate::store::{existing_branch, is_url, Ctx};

/// The metadata key of the current branch.
const CURRENT_BRANCH: &[u8] = b"cli/current-branch";

/// Where the branch of this run came from, for `status`.
static SOURCE: OnceLock<&'static str> = OnceLock::new();

/// The branch commands use: `given` (`--branch` or `KVGIT_BRANCH`), else
/// the store's current branch, else `main`. Commands that never use a
/// branch ([`Command::uses_branch`]) do not read the store for it: a
/// writing command would open the store twice (on a 1M-key store, a
/// `fetch` spent a third of its time on the second open).
pub fn default_branch(store: &Path, given: Option<String>, command: &Command) -> String {
    if let Some(branch) = given {
        let from_env = std::env::var("KVGIT_BRANCH").is_ok_and(|b| b == branch)
            && !std::env::args().any(|a| a == "--branch" || a.starts_with("--branch="));
        let _ = SOURCE.set(if from_env { "KVGIT_BRANCH" } else { "--branch" });
        return branch;
    }
    let skip = !command.uses_branch();
    // `ls --wait` waits here too, for the stored branch.
    let wait = match command {
        Command::Ls { wait, .. } => wait.map(std::time::Duration::from_secs),
        _ => None,
    };
    if !skip {
        if let Some(branch) = stored_branch(store, wait) {
            let _ = SOURCE.set("kvgit switch");
            return branch;
        }
    }
    let _ = SOURCE.set("the default");
    "main".to_string()
}

/// The current branch stored in the store at `path`, if any (a missing,
/// unreadable or locked store has none: the command itself then says what
/// is wrong); `wait`: how long to wait for a store another process holds.
fn stored_branch(path: &Path, wait: Option<std::time::Duration>) -> Option<String> {
    if !is_url(path) && kvgit::advanced::SledBackend::check_exists(path).is_err() {
        return None;
    }
    let ctx = Ctx {
        store: path.to_path_buf(),
        branch: String::new(),
        remote_kvgit: None,
    };
    let db = ctx.open_read_only_waiting(wait).ok()?;
    let value = kvgit::advanced::repo(&db)
        .backend()
        .get_meta(CURRENT_BRANCH)
        .ok()
        .flatten();
    // A read-only command reuses this open instead of opening again.
    crate::store::keep_read_only(path, db);
    String::from_utf8(value?).ok().filter(|b| !b.is_empty())
}

/// Makes `name` the current branch (creating it at the current branch's
/// head first with `create`).
pub fn switch(ctx: &Ctx, name: &str, create: bool) -> Result<()> {
    let db = ctx.open()?;
    if create {
        if db.get_branch(name)?.is_some() {
            bail!("branch {name} already exists (switch to it without -c)");
        }
        let head = ctx.branch(&db)?.head()?;
        db.create_branch(name, &head)?;
        crate::outln!("created branch {name} at {head}")?;
    }
    let branch = match db.get_branch(name)? {
        Some(branch) => branch,
        None => bail!("no branch named {name} (kvgit switch -c {name} creates it)"),
    };
    kvgit::advanced::repo(&db).backend().put_meta(vec![(
        CURRENT_BRANCH.to_vec(),
        Some(name.as_bytes().to_vec()),
    )])?;
    db.flush()?;
    crate::outln!("switched to branch {name} at {}", branch.head()?)?;
    if std::env::var_os("KVGIT_BRANCH").is_some() {
        crate::outln!("note: KVGIT_BRANCH is set, and commands use it instead")?;
    }
    Ok(())
}

/// Shows the branch commands use, why, and its head.
pub fn status(ctx: &Ctx, json: bool) -> Result<()> {
    let db = ctx.open_read_only()?;
    let source = SOURCE.get().copied().unwrap_or("the default");
    let branch = existing_branch(&db, &ctx.branch)?;
    let snapshot = branch.snapshot()?;
    let info = snapshot.info()?;
    let short = crate::rev::abbrev(&db, &info.id)?;
    let message = info.message().lines().next().unwrap_or("").to_string();
    if json {
        let mut out = crate::output::stdout();
        write_json(
            &mut out,
            &json!({
                "branch": branch.name(),
                "from": source,
                "head": info.id.to_hex(),
                "keys": snapshot.len(),
                "value_bytes": snapshot.value_bytes(),
                "message": message,
            }),
        )?;
        std::io::Write::flush(&mut out)?;
        return Ok(());
    }
    crate::outln!("on branch {} (from {source})", branch.name())?;
    crate::outln!("head {} {message}", painted(paint::ID, &short))?;
    crate::outln!(
        "{} keys, {}",
        snapshot.len(),
        indicatif::HumanBytes(snapshot.value_bytes())
    )?;
    Ok(())
}
