//! `kvgit init`.

use anyhow::{anyhow, bail, Result};

use crate::store::{display, is_store, is_url, open_db, Ctx};

/// Creates the store (of `engine`, for a directory) and its `--branch`
/// branch. A store on disk is created atomically: it is complete (with
/// its branch) or absent, whatever happens to the process; an `init`
/// interrupted part way is simply run again.
pub fn run(ctx: &Ctx, engine: kvgit::Engine) -> Result<()> {
    let path = &ctx.store;
    let db = if is_url(path) {
        if is_store(path) {
            bail!("a store already exists at {}", display(path));
        }
        let db = open_db(path)?;
        db.branch(&ctx.branch)?;
        db
    } else {
        use kvgit::Error as E;
        match kvgit::Db::builder()
            .engine(engine)
            .create(path, &ctx.branch)
        {
            Ok(db) => db,
            Err(E::StoreExists { .. }) => {
                bail!("a store already exists at {}", display(path))
            }
            Err(E::NotAStore { .. }) => bail!(
                "{} exists and is not an empty directory; not creating a store there",
                path.display()
            ),
            Err(E::Locked { .. }) => bail!(
                "store at {} is locked by another process (another kvgit command or a \
                 program using the store has it open)",
                path.display()
            ),
            Err(e @ (E::NoSpace { .. } | E::ReadOnly { .. } | E::IoAt { .. })) => {
                return Err(anyhow!("{e}"))
            }
            Err(e) => return Err(anyhow!("cannot create a store at {}: {e}", path.display())),
        }
    };
    let branch = crate::store::existing_branch(&db, &ctx.branch)?;
    crate::outln!(
        "created store at {} with branch {} at {}",
        display(path),
        branch.name(),
        branch.head()?
    )?;
    Ok(())
}
