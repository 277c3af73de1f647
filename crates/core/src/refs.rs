//! Ref names: validation and the namespaces for branches and tags.
//!
//! A ref name is stored in the backend in full: `heads/<branch>` or
//! `tags/<tag>`. The short names users give follow git's rules in a
//! stricter form (see [`validate_name`]).

use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::repo::Repo;
use crate::store::CasOutcome;

/// The prefix of branch refs.
pub const HEADS: &str = "heads/";
/// The prefix of tag refs.
pub const TAGS: &str = "tags/";
/// The longest accepted short name, in bytes.
pub const MAX_NAME_LEN: usize = 200;

/// Checks a branch or tag short name: 1 to 200 bytes of ASCII letters,
/// digits and `-_./`, made of `/`-separated components that are non-empty,
/// do not start with `.` or `-`, and do not end with `.lock`.
pub fn validate_name(name: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::InvalidRefName {
            name: name.chars().take(MAX_NAME_LEN + 20).collect(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > MAX_NAME_LEN {
        return bad("longer than 200 bytes");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'))
    {
        return bad("only ASCII letters, digits and - _ . / are allowed");
    }
    for part in name.split('/') {
        if part.is_empty() {
            return bad("empty path component (leading, trailing or double '/')");
        }
        if part.starts_with('.') || part.starts_with('-') {
            return bad("a component starts with '.' or '-'");
        }
        if part.ends_with(".lock") {
            return bad("a component ends with '.lock'");
        }
    }
    Ok(())
}

/// The full ref name of a branch, after validating the short name.
pub fn branch_ref(name: &str) -> Result<String> {
    validate_name(name)?;
    Ok(format!("{HEADS}{name}"))
}

/// The full ref name of a tag, after validating the short name.
pub fn tag_ref(name: &str) -> Result<String> {
    validate_name(name)?;
    Ok(format!("{TAGS}{name}"))
}

impl Repo {
    /// Creates ref `full_name` (e.g. `heads/dev`) at commit `target`; an
    /// [`Error::RefExists`] if it exists, [`Error::UnknownCommit`] if the
    /// commit does not.
    pub fn create_ref(&self, full_name: &str, target: &ObjectId) -> Result<()> {
        check_full_name(full_name)?;
        self.read_commit(target)?;
        match self.move_ref(full_name, None, Some(target))? {
            CasOutcome::Swapped => Ok(()),
            CasOutcome::Mismatch { .. } => Err(Error::RefExists(full_name.to_string())),
        }
    }

    /// Points ref `full_name` at `target` if it still holds `expected`
    /// (`None`: it must not exist); [`Error::RefMoved`] otherwise.
    pub fn set_ref(
        &self,
        full_name: &str,
        expected: Option<&ObjectId>,
        target: &ObjectId,
    ) -> Result<()> {
        check_full_name(full_name)?;
        self.read_commit(target)?;
        match self.move_ref(full_name, expected, Some(target))? {
            CasOutcome::Swapped => Ok(()),
            CasOutcome::Mismatch { actual } => Err(Error::RefMoved {
                name: full_name.to_string(),
                expected: expected.copied(),
                actual,
            }),
        }
    }

    /// Deletes ref `full_name`, which must exist; if `expected` is given
    /// the ref must still hold it. Returns the commit it pointed at.
    pub fn delete_ref(&self, full_name: &str, expected: Option<&ObjectId>) -> Result<ObjectId> {
        check_full_name(full_name)?;
        let current = self
            .get_ref(full_name)?
            .ok_or_else(|| Error::UnknownRef(full_name.to_string()))?;
        let expected = expected.copied().unwrap_or(current);
        match self.move_ref(full_name, Some(&expected), None)? {
            CasOutcome::Swapped => Ok(expected),
            CasOutcome::Mismatch { actual: None } => Err(Error::UnknownRef(full_name.to_string())),
            CasOutcome::Mismatch { actual } => Err(Error::RefMoved {
                name: full_name.to_string(),
                expected: Some(expected),
                actual,
            }),
        }
    }

    /// The refs under `prefix` (e.g. [`HEADS`]) as (short name, commit),
    /// sorted by name.
    pub fn list_refs(&self, prefix: &str) -> Result<Vec<(String, ObjectId)>> {
        Ok(self
            .backend()
            .list_refs(prefix)?
            .into_iter()
            .map(|(name, id)| (name[prefix.len()..].to_string(), id))
            .collect())
    }
}

/// Checks a full ref name: a known namespace and a valid short name.
pub fn check_full_name(full_name: &str) -> Result<()> {
    match full_name.split_once('/') {
        Some((ns, short)) if ns == "heads" || ns == "tags" => validate_name(short),
        _ => Err(Error::InvalidRefName {
            name: full_name.chars().take(MAX_NAME_LEN + 20).collect(),
            reason: "a full ref name starts with heads/ or tags/",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["main", "dev/alice", "v1.0", "feature_x-2"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "/main", "main/", "a//b", ".hidden", "-x", "a b", "x.lock", "é", "a/../b",
        ] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
        assert!(validate_name(&"a".repeat(201)).is_err());
    }

    #[test]
    fn ref_lifecycle() {
        let repo = Repo::memory();
        let tree = repo.empty_tree().unwrap();
        let c = repo
            .write_commit(&tree, &crate::CommitSpec::default())
            .unwrap();
        repo.create_ref("heads/dev", &c).unwrap();
        assert!(matches!(
            repo.create_ref("heads/dev", &c),
            Err(Error::RefExists(_))
        ));
        assert!(matches!(
            repo.create_ref("heads/../x", &c),
            Err(Error::InvalidRefName { .. })
        ));
        assert!(matches!(
            repo.create_ref("other/x", &c),
            Err(Error::InvalidRefName { .. })
        ));
        let missing = ObjectId::hash(b"none");
        assert!(matches!(
            repo.create_ref("heads/y", &missing),
            Err(Error::UnknownCommit(_))
        ));
        repo.create_ref("tags/v1", &c).unwrap();
        assert_eq!(repo.list_refs(HEADS).unwrap(), vec![("dev".to_string(), c)]);
        assert_eq!(repo.list_refs(TAGS).unwrap(), vec![("v1".to_string(), c)]);
        let c2 = repo
            .write_commit(
                &tree,
                &crate::CommitSpec {
                    parents: vec![c],
                    ..Default::default()
                },
            )
            .unwrap();
        assert!(matches!(
            repo.set_ref("heads/dev", Some(&c2), &c2),
            Err(Error::RefMoved { .. })
        ));
        repo.set_ref("heads/dev", Some(&c), &c2).unwrap();
        assert_eq!(repo.delete_ref("heads/dev", None).unwrap(), c2);
        assert!(matches!(
            repo.delete_ref("heads/dev", None),
            Err(Error::UnknownRef(_))
        ));
    }
}
