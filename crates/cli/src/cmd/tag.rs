//! `kvgit tag`: create, list and delete tags (immutable names of commits).

use std::io::Write;

use anyhow::{bail, Result};
use serde_json::{json, Value};

use crate::output::{paint, painted, stdout, write_json};
use crate::store::{resolve, Ctx};

/// `tag NAME [REV]` creates, `tag -d NAME` deletes, `tag` lists.
pub fn run(
    ctx: &Ctx,
    name: Option<String>,
    rev: Option<String>,
    delete: bool,
    json: bool,
) -> Result<()> {
    match name {
        Some(name) if delete => {
            let db = ctx.open()?;
            let Some(at) = db.tags()?.into_iter().find(|(n, _)| *n == name) else {
                bail!("no tag named {name}");
            };
            match db.delete_tag(&name) {
                Ok(()) => {}
                Err(kvgit::Error::NoSuchTag(_)) => bail!("no tag named {name}"),
                Err(e) => return Err(e.into()),
            }
            crate::outln!("deleted tag {name} (was {})", at.1)?;
        }
        Some(name) => {
            let db = ctx.open()?;
            let at = match &rev {
                Some(rev) => resolve(&db, rev)?,
                None => ctx.branch(&db)?.head()?,
            };
            if db.tags()?.iter().any(|(n, _)| *n == name) {
                bail!("tag {name} already exists (tags never move; delete it first with -d)");
            }
            match db.tag(&name, &at) {
                Ok(()) => {}
                Err(kvgit::Error::AlreadyExists(_)) => {
                    bail!("tag {name} already exists")
                }
                Err(e) => return Err(e.into()),
            }
            crate::outln!("tagged {at} as {name}")?;
        }
        None => {
            let db = ctx.open_read_only()?;
            let mut out = stdout();
            let tags = db.tags()?;
            if json {
                let listed: Vec<Value> = tags
                    .iter()
                    .map(|(name, id)| json!({"name": name, "commit": id.to_hex()}))
                    .collect();
                write_json(&mut out, &Value::Array(listed))?;
            } else {
                for (name, id) in tags {
                    writeln!(out, "{name} {}", painted(paint::ID, &id.to_hex()))?;
                }
            }
            out.flush()?;
        }
    }
    Ok(())
}
