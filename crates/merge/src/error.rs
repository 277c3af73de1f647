//! The error type of merges, and the conflict report.

use std::fmt;

/// A key that both sides changed differently and that no merge function
/// settled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// The key.
    pub key: Vec<u8>,
    /// Its value in the merge base (`None`: absent).
    pub base: Option<Vec<u8>>,
    /// Its value in ours (`None`: absent or deleted).
    pub ours: Option<Vec<u8>>,
    /// Its value in theirs (`None`: absent or deleted).
    pub theirs: Option<Vec<u8>>,
    /// Why the merge function gave up, if one was registered and said so
    /// (or failed); `None` when no registry entry covers the key.
    pub reason: Option<String>,
}

/// Everything that can make a merge fail.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Keys changed differently on both sides could not be merged; every
    /// such key is listed, in key order.
    #[error("{}", ConflictList(.0))]
    Conflicts(Vec<Conflict>),
    /// The ref kept moving: every attempt of
    /// [`merge_into_ref`](crate::merge_into_ref) lost its compare-and-swap.
    #[error("ref {ref_name} moved during each of {attempts} merge attempts")]
    Contended {
        /// The ref merged into.
        ref_name: String,
        /// How many merges were tried.
        attempts: u32,
    },
    /// Reading or writing the store failed.
    #[error(transparent)]
    Core(#[from] kvgit_core::Error),
}

impl Error {
    /// The conflicts, if this is a conflict error.
    pub fn conflicts(&self) -> Option<&[Conflict]> {
        match self {
            Error::Conflicts(c) => Some(c),
            _ => None,
        }
    }
}

struct ConflictList<'a>(&'a [Conflict]);

impl fmt::Display for ConflictList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "merge conflict on {n} key{}:",
            if n == 1 { "" } else { "s" }
        )?;
        for c in self.0 {
            write!(
                f,
                "\n  {}: base {}, ours {}, theirs {}",
                Shown(Some(&c.key)),
                Shown(c.base.as_deref()),
                Shown(c.ours.as_deref()),
                Shown(c.theirs.as_deref()),
            )?;
            match &c.reason {
                Some(reason) => write!(f, " ({reason})")?,
                None => f.write_str(" (no merge function)")?,
            }
        }
        Ok(())
    }
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        ConflictList(std::slice::from_ref(self)).fmt(f)
    }
}

/// Bytes shown as a quoted string: printable ASCII as is, anything else
/// escaped, long values cut short.
struct Shown<'a>(Option<&'a [u8]>);

const SHOWN_MAX: usize = 48;

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(bytes) = self.0 else {
            return f.write_str("(absent)");
        };
        f.write_str("\"")?;
        for &b in bytes.iter().take(SHOWN_MAX) {
            write!(f, "{}", std::ascii::escape_default(b))?;
        }
        f.write_str("\"")?;
        if bytes.len() > SHOWN_MAX {
            write!(f, "... ({} bytes)", bytes.len())?;
        }
        Ok(())
    }
}
