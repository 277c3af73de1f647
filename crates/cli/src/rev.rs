//! Revisions as git users write them: a base (a branch, a tag, `HEAD` for
//! the current branch, or a commit id or a unique prefix of one) followed
//! by any number of `~N` (the Nth first-parent ancestor) and `^N` (the Nth
//! parent, `^0` the commit itself) steps; and ids abbreviated as git does,
//! to the shortest unique prefix of at least 7 hex digits.
//!
//! `store::resolve`, the one place commands resolve revisions, calls
//! [`resolve`].

use std::sync::OnceLock;

use anyhow::{anyhow, bail, Result};
use kvgit::{CommitId, Db};

/// The current branch, which `HEAD` names (set once by `main`).
static HEAD: OnceLock<String> = OnceLock::new();

/// Sets the branch `HEAD` names.
pub fn set_head(branch: &str) {
    let _ = HEAD.set(branch.to_string());
}

/// One `~N` or `^N` step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// `~N`: N times the first parent.
    Ancestor(u32),
    /// `^N`: the Nth parent (0: the commit itself).
    Parent(u32),
}

/// Splits `rev` into its base and steps.
fn parse(rev: &str) -> Result<(&str, Vec<Step>)> {
    let split = rev.find(['~', '^']).unwrap_or(rev.len());
    let (base, mut rest) = rev.split_at(split);
    if base.is_empty() {
        bail!("bad revision {rev:?}: nothing before {rest:?}");
    }
    let mut steps = Vec::new();
    while let Some(c) = rest.chars().next() {
        rest = &rest[1..];
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (n, tail) = rest.split_at(digits);
        let n = match n {
            "" => 1,
            n => n
                .parse()
                .map_err(|_| anyhow!("bad revision {rev:?}: {n} is too large"))?,
        };
        steps.push(match c {
            '~' => Step::Ancestor(n),
            '^' => Step::Parent(n),
            other => bail!(
                "bad revision {rev:?}: unexpected {other:?} (after a name come only ~N and ^N)"
            ),
        });
        rest = tail;
    }
    Ok((base, steps))
}

/// Resolves `rev` (see the module documentation); `base` resolves the
/// part before the first `~` or `^` (a branch, tag or id).
pub fn resolve(
    db: &Db,
    rev: &str,
    base: impl FnOnce(&Db, &str) -> Result<CommitId>,
) -> Result<CommitId> {
    let (name, steps) = parse(rev)?;
    let mut id = match name {
        "HEAD" | "@" => {
            let branch = HEAD.get().map_or("main", String::as_str);
            match db.get_branch(branch)? {
                Some(b) => b.head()?,
                None => bail!("HEAD names the current branch {branch}, which does not exist"),
            }
        }
        name => base(db, name)?,
    };
    let mut walked = name.to_string();
    for step in steps {
        match step {
            Step::Parent(0) => {}
            Step::Parent(n) => {
                let parents = db.checkout(&id)?.info()?.parents().to_vec();
                id = match parents.get(n as usize - 1) {
                    Some(p) => *p,
                    None => bail!(
                        "revision {rev:?}: {walked} ({}) has {} parent{}, not {n}",
                        short(&id),
                        parents.len(),
                        if parents.len() == 1 { "" } else { "s" }
                    ),
                };
                walked.push_str(&format!("^{n}"));
            }
            Step::Ancestor(n) => {
                for i in 0..n {
                    let parents = db.checkout(&id)?.info()?.parents().to_vec();
                    id = match parents.first() {
                        Some(p) => *p,
                        None => bail!(
                            "revision {rev:?}: {walked}~{i} ({}) is a root commit: the line \
                             has only {i} ancestor{} there",
                            short(&id),
                            if i == 1 { "" } else { "s" }
                        ),
                    };
                }
                walked.push_str(&format!("~{n}"));
            }
        }
    }
    Ok(id)
}

/// The first 12 hex digits, for messages.
fn short(id: &CommitId) -> String {
    id.to_hex()[..12].to_string()
}

/// The shortest prefix of `id` of at least 7 hex digits that no other
/// object in the store shares (git's abbreviation), so that it resolves
/// back to `id`.
pub fn abbrev(db: &Db, id: &CommitId) -> Result<String> {
    let hex = id.to_hex();
    let backend = kvgit::advanced::repo(db).backend();
    for len in 7..hex.len() {
        let prefix = &hex[..len];
        let Some((start, end)) = CommitId::hex_prefix_range(prefix) else {
            break;
        };
        let mut others = 0usize;
        backend.for_each_object_in(&start, end.as_ref(), &mut |other, _| {
            if other != *id {
                others += 1;
            }
            Ok(others == 0)
        })?;
        if others == 0 {
            return Ok(prefix.to_string());
        }
    }
    Ok(hex)
}

#[cfg(test)]
mod tests {
    use super::{parse, Step};

    #[test]
    fn revisions_parse_as_git_writes_them() {
        assert_eq!(parse("main").unwrap(), ("main", vec![]));
        assert_eq!(parse("main~").unwrap(), ("main", vec![Step::Ancestor(1)]));
        assert_eq!(parse("HEAD~3").unwrap(), ("HEAD", vec![Step::Ancestor(3)]));
        assert_eq!(
            parse("a1b2^2~1^").unwrap(),
            (
                "a1b2",
                vec![Step::Parent(2), Step::Ancestor(1), Step::Parent(1)]
            )
        );
        assert_eq!(parse("v1^0").unwrap(), ("v1", vec![Step::Parent(0)]));
        assert!(parse("~1").is_err());
        assert!(parse("main~99999999999").is_err());
        assert!(parse("main~1x").is_err());
    }
}
