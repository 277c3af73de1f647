//! Ref names: validation and the namespaces for branches, tags and
//! remote-tracking branches.
//!
//! A ref name is stored in the backend in full: `heads/<branch>`,
//! `tags/<tag>` or `remotes/<remote>/<branch>` (where a fetch from remote
//! `<remote>` records the remote's branch `<branch>`). The short names users
//! give follow git's rules in a stricter form (see [`validate_name`]).

use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::repo::Repo;
use crate::store::CasOutcome;

/// The prefix of branch refs.
pub const HEADS: &str = "heads/";
/// The prefix of tag refs.
pub const TAGS: &str = "tags/";
/// The prefix of remote-tracking refs: `remotes/<remote>/<branch>`.
pub const REMOTES: &str = "remotes/";
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

/// Checks a short name for a new branch or tag: [`validate_name`], and
/// nothing a revision could read as something else. Refused: `HEAD` (in
/// any case), names containing `..` (a range), names whose first component
/// is a ref namespace (`refs/`, `heads/`, `tags/`, `remotes/`), and names
/// of 4 to 64 hex digits (a commit id prefix). The characters git gives a
/// meaning in revisions (`@ ~ ^ : { }`, spaces) are already outside the
/// name alphabet.
///
/// Only creation applies these rules: a ref an older version created under
/// a name they refuse stays readable, movable and deletable.
pub fn validate_new_name(name: &str) -> Result<()> {
    validate_name(name)?;
    let bad = |reason| {
        Err(Error::InvalidRefName {
            name: name.to_string(),
            reason,
        })
    };
    if name.eq_ignore_ascii_case("HEAD") {
        return bad("HEAD is reserved (in git it names the current commit); choose another name");
    }
    if name.contains("..") {
        return bad("'..' reads as a revision range (a..b); choose a name without it");
    }
    let first = name.split('/').next().unwrap_or(name);
    if ["refs", "heads", "tags", "remotes"]
        .iter()
        .any(|ns| first.eq_ignore_ascii_case(ns))
    {
        return bad(
            "refs/, heads/, tags/ and remotes/ name ref namespaces; give the short name \
             (main, not heads/main)",
        );
    }
    if (4..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_hexdigit()) {
        return bad(
            "4 to 64 hex digits read as a commit id prefix; add a letter after f or a \
             separator (e.g. v-2024)",
        );
    }
    Ok(())
}

/// Checks a full ref name before a compare-and-swap: [`check_full_name`],
/// and [`validate_new_name`] when the swap creates the ref (`creates`:
/// it expects no current value and sets one). Every ref update passes
/// here ([`Repo::move_ref`], [`Repo::commit_with`]).
pub fn check_update(full_name: &str, creates: bool) -> Result<()> {
    check_full_name(full_name)?;
    if creates {
        let short = full_name
            .split_once('/')
            .map_or(full_name, |(_, short)| short);
        validate_new_name(short)?;
    }
    Ok(())
}

/// The full ref name of a branch, after validating the short name.
pub fn branch_ref(name: &str) -> Result<String> {
    validate_name(name)?;
    Ok(format!("{HEADS}{name}"))
}

/// The full ref name of remote `remote`'s branch `branch` as a fetch
/// records it (`remotes/<remote>/<branch>`), after validating both: the
/// remote's name is one component ([`validate_new_name`] without `/`), the
/// branch's a valid short name.
pub fn remote_ref(remote: &str, branch: &str) -> Result<String> {
    validate_remote_name(remote)?;
    validate_name(branch)?;
    Ok(format!("{REMOTES}{remote}/{branch}"))
}

/// Checks a remote's name: a name [`validate_new_name`] accepts, made of a
/// single component (no `/`), so that `remotes/<remote>/<branch>` splits
/// one way only.
pub fn validate_remote_name(remote: &str) -> Result<()> {
    validate_new_name(remote)?;
    if remote.contains('/') {
        return Err(Error::InvalidRefName {
            name: remote.to_string(),
            reason: "a remote's name is one component, without '/'",
        });
    }
    Ok(())
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
        Some(("remotes", short)) => match short.split_once('/') {
            Some((_, branch)) => validate_name(short).and_then(|()| validate_name(branch)),
            None => Err(Error::InvalidRefName {
                name: full_name.chars().take(MAX_NAME_LEN + 20).collect(),
                reason: "a remote-tracking ref is remotes/<remote>/<branch>",
            }),
        },
        _ => Err(Error::InvalidRefName {
            name: full_name.chars().take(MAX_NAME_LEN + 20).collect(),
            reason: "a full ref name starts with heads/, tags/ or remotes/",
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
    fn names_that_read_as_revisions_are_refused_on_creation() {
        for bad in [
            "HEAD",
            "head",
            "a..b",
            "v1..",
            "refs/heads/main",
            "heads/main",
            "tags/v1",
            "remotes/origin/main",
            "deadbeef",
            "2024",
            "CAFE",
            &"a".repeat(64),
            "a@b",
            "a~1",
            "a^",
            "a:b",
            "@",
        ] {
            assert!(validate_new_name(bad).is_err(), "{bad}");
        }
        for ok in [
            "main",
            "HEADS-up",
            "dev/head",
            "release/2024",
            "v-2024",
            "abc",
            &"a".repeat(65),
            "deadbeefx",
            "my-refs/x",
        ] {
            assert!(validate_new_name(ok).is_ok(), "{ok}");
        }
        let Err(Error::InvalidRefName { reason, .. }) = validate_new_name("deadbeef") else {
            panic!("refused");
        };
        assert!(reason.contains("commit id prefix"), "{reason}");
    }

    #[test]
    fn refs_created_under_odd_names_stay_usable() {
        let repo = Repo::memory();
        let tree = repo.empty_tree().unwrap();
        let c = repo
            .write_commit(&tree, &crate::CommitSpec::default())
            .unwrap();
        for name in ["HEAD", "deadbeef", "a..b", "heads/x"] {
            let full = format!("{HEADS}{name}");
            assert!(
                matches!(
                    repo.create_ref(&full, &c),
                    Err(Error::InvalidRefName { .. })
                ),
                "{name}"
            );
            assert!(matches!(
                repo.commit(&full, None, &tree, &crate::CommitSpec::default()),
                Err(Error::InvalidRefName { .. })
            ));
            // As an older version (or another tool) wrote it.
            repo.backend().cas_ref(&full, None, Some(&c)).unwrap();
            assert_eq!(repo.get_ref(&full).unwrap(), Some(c));
            let (c2, outcome) = repo
                .commit(&full, Some(&c), &tree, &crate::CommitSpec::default())
                .unwrap();
            assert_eq!(outcome, CasOutcome::Swapped);
            assert_eq!(repo.delete_ref(&full, None).unwrap(), c2);
        }
    }

    #[test]
    fn remote_tracking_refs_live_under_remotes() {
        let repo = Repo::memory();
        let tree = repo.empty_tree().unwrap();
        let c = repo
            .write_commit(&tree, &crate::CommitSpec::default())
            .unwrap();
        let name = remote_ref("origin", "dev/x").unwrap();
        assert_eq!(name, "remotes/origin/dev/x");
        repo.create_ref(&name, &c).unwrap();
        assert_eq!(
            repo.list_refs(REMOTES).unwrap(),
            vec![("origin/dev/x".to_string(), c)]
        );
        assert!(repo.list_refs(HEADS).unwrap().is_empty());
        for bad in [
            "remotes/origin",
            "remotes/",
            "remotes/origin/",
            "remotes//x",
        ] {
            assert!(
                matches!(repo.create_ref(bad, &c), Err(Error::InvalidRefName { .. })),
                "{bad}"
            );
        }
        assert!(remote_ref("a/b", "main").is_err());
        assert!(remote_ref("HEAD", "main").is_err());
        assert!(remote_ref("origin", "").is_err());
        assert_eq!(repo.delete_ref(&name, Some(&c)).unwrap(), c);
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
