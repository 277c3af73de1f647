//! `kvgit branch` and `kvgit reset`.

use std::io::Write;

use anyhow::{bail, Result};
use serde_json::{json, Value};

use crate::output::{stdout, write_json};
use crate::store::{existing_branch, resolve, Ctx};

/// Creates, deletes or lists branches.
pub fn branch(
    ctx: &Ctx,
    name: Option<String>,
    at: Option<String>,
    list: bool,
    delete: bool,
    json: bool,
) -> Result<()> {
    let db = ctx.open()?;
    match name {
        Some(name) if delete => {
            let head = existing_branch(&db, &name)?.head()?;
            db.delete_branch(&name)?;
            println!("deleted branch {name} (was {head})");
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
            println!("created branch {name} at {at}");
        }
        None => {
            debug_assert!(list || !delete);
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
    println!("{} moved from {from} to {to}", branch.name());
    Ok(())
}
