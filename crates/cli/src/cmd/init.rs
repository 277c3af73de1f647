//! `kvgit init`.

use anyhow::{bail, Result};

use crate::store::{display, is_store, is_url, open_db, Ctx};

/// Creates the store and its `--branch` branch.
pub fn run(ctx: &Ctx) -> Result<()> {
    let path = &ctx.store;
    if is_store(path) {
        bail!("a store already exists at {}", display(path));
    }
    if !is_url(path) && path.exists() {
        let empty_dir = path.is_dir() && std::fs::read_dir(path)?.next().is_none();
        if !empty_dir {
            bail!(
                "{} exists and is not an empty directory; not creating a store there",
                path.display()
            );
        }
    }
    let db = open_db(path)?;
    let branch = db.branch(&ctx.branch)?;
    println!(
        "created store at {} with branch {} at {}",
        display(path),
        branch.name(),
        branch.head()?
    );
    Ok(())
}
