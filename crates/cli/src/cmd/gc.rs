//! `kvgit gc` and `kvgit sweep`.

use anyhow::{bail, Result};

use crate::store::Ctx;

/// High/low-water rebase of the branch.
pub fn gc(ctx: &Ctx, high: u64, low: Option<u64>) -> Result<()> {
    let _ = (ctx.open()?, high, low);
    bail!("kvgit gc is not available yet")
}

/// Deletes unreachable objects.
pub fn sweep(ctx: &Ctx, dry_run: bool) -> Result<()> {
    let _ = (ctx.open()?, dry_run);
    bail!("kvgit sweep is not available yet")
}
