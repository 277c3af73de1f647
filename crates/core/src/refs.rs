//! Ref names: validation and the namespaces for branches and tags.
//!
//! A ref name is stored in the backend in full: `heads/<branch>` or
//! `tags/<tag>`. The short names users give follow git's rules in a
//! stricter form (see [`validate_name`]).

use crate::error::{Error, Result};

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
}
