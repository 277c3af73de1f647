//! `kvgit branch` and `kvgit reset`.

use std::io::Write;

use anyhow::{bail, Result};
use serde_json::{json, Value};

use crate::output::{stdout, write_json};
use crate::store::{existing_branch, resolve, Ctx};

/// `-d` and `--force`.
#[derive(Debug, Clone, Copy)]
pub struct Delete {
    /// Delete the named branch.
    pub delete: bool,
    /// Even if it is the `--branch` branch.
    pub force: bool,
}

/// Creates, deletes or lists branches.
pub fn branch(
    ctx: &Ctx,
    name: Option<String>,
    at: Option<String>,
    list: bool,
    delete: Delete,
    json: bool,
) -> Result<()> {
    let db = ctx.open()?;
    match name {
        Some(name) if delete.delete => {
            let head = existing_branch(&db, &name)?.head()?;
            if name == ctx.branch && !delete.force {
                bail!(
                    "not deleting branch {name}: commands read and write it by default \
                     (--branch, KVGIT_BRANCH, kvgit switch; default main); use --force to delete it anyway"
                );
            }
            db.delete_branch(&name)?;
            crate::outln!("deleted branch {name} (was {head})")?;
        }
        Some(name) => {
            let at = match &at {
                Some(rev) => resolve(&db, rev)?,
                None => ctx.branch(&db)?.head()?,
            };
            if db.get_branch(&name)?.is_some() {
                bail!("branch {name} already exists");
            }
            db.create_branch(&name, &at)?;
            crate::outln!("created branch {name} at {at}")?;
        }
        None => {
            debug_assert!(list || !delete.delete);
            let mut out = stdout();
            let mut listed = Vec::new();
            for name in db.branches()? {
                // A branch deleted meanwhile is skipped.
                let Some(branch) = db.get_branch(&name)? else {
                    continue;
                };
                let head = match branch.head() {
                    Ok(head) => head,
                    Err(kvgit::Error::NoSuchBranch(_)) => continue,
                    Err(e) => return Err(e.into()),
                };
                if json {
                    listed.push(json!({
                        "name": name,
                        "head": head.to_hex(),
                        "current": name == ctx.branch,
                    }));
                } else {
                    let mark = if name == ctx.branch { '*' } else { ' ' };
                    writeln!(out, "{mark} {name} {head}")?;
                }
            }
            if json {
                write_json(&mut out, &Value::Array(listed))?;
            }
            out.flush()?;
        }
    }
    Ok(())
}

/// Moves the `--branch` head to a revision.
pub fn reset(ctx: &Ctx, rev: &str) -> Result<()> {
    let db = ctx.open()?;
    let branch = ctx.branch(&db)?;
    let to = resolve(&db, rev)?;
    let from = branch.head()?;
    branch.reset_to(&to)?;
    crate::outln!("{} moved from {from} to {to}", branch.name())?;
    Ok(())
}
