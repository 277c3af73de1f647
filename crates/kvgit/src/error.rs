//! The facade's error type.

use kvgit_core::ObjectId;
pub use kvgit_merge::Conflict;

/// Everything that can go wrong through the `kvgit` API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing the store failed, or the input was invalid (a
    /// corrupt object, an unknown commit, an invalid name, a store held by
    /// another process, ...).
    #[error(transparent)]
    Core(#[from] kvgit_core::Error),
    /// Keys changed differently by this commit and by a concurrent one (or
    /// by two merged branches), with no merge function to reconcile them.
    /// Every conflicting key is listed; the message also says what
    /// happened and what to do about it.
    #[error("{}", conflict_list(.0))]
    Conflicts(Vec<Conflict>),
    /// Every attempt to move the branch lost to another writer.
    #[error("branch {branch} moved during each of {attempts} commit attempts")]
    Contended {
        /// The branch.
        branch: String,
        /// How many attempts were made.
        attempts: u32,
    },
    /// A validation hook rejected the commit.
    #[error("commit to {branch} rejected by {hook}: {message}")]
    Rejected {
        /// The branch.
        branch: String,
        /// The hook's name.
        hook: String,
        /// Why it rejected the commit.
        message: String,
    },
    /// There is no store at this path ([`Db::open_existing`](crate::Db::open_existing)).
    #[error("no store at {0}")]
    NoStore(String),
    /// No branch has this name.
    #[error("no branch named {0}")]
    NoSuchBranch(String),
    /// No tag has this name.
    #[error("no tag named {0}")]
    NoSuchTag(String),
    /// A name or commit id did not resolve to a commit.
    #[error("{0:?} is not a branch, tag or commit id")]
    UnknownRevision(String),
    /// The branch was deleted while a transaction on it was committing.
    #[error("branch {0} was deleted")]
    BranchDeleted(String),
    /// Garbage collection failed (a rebase, a sweep, or access recency).
    #[error("garbage collection: {0}")]
    Gc(String),
    /// A typed value could not be encoded or decoded.
    #[error("codec error for key {key:?}: {message}")]
    Codec {
        /// The key (lossy UTF-8).
        key: String,
        /// What the codec said.
        message: String,
    },
}

/// The facade's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn conflict_list(conflicts: &[Conflict]) -> String {
    let keys: Vec<String> = conflicts
        .iter()
        .map(|c| {
            let mut s = String::from_utf8_lossy(&c.key).into_owned();
            if let Some(reason) = &c.reason {
                s.push_str(&format!(" ({reason})"));
            }
            s
        })
        .collect();
    let n = conflicts.len();
    let (s, them) = if n == 1 { ("", "it") } else { ("s", "them") };
    format!(
        "merge conflict on {n} key{s}: {}\n\
         what happened: the key{s} changed differently on the two sides of a merge \
         and no merge function reconciled {them}. In a commit, another writer committed \
         a different value to the same key{s} since this transaction began; in a branch \
         merge, both branches changed {them} since their merge base.\n\
         what to do: register a merge function for the key{s} \
         (`db.merge_fns().set(key, ...)`, e.g. a counter, last-writer-wins or max); \
         or make the change with `Branch::update`, which re-reads and reruns it on the new \
         head; or retry the transaction (a branch merge: reconcile the branches, then merge again).",
        keys.join(", ")
    )
}

impl From<kvgit_merge::Error> for Error {
    fn from(e: kvgit_merge::Error) -> Self {
        match e {
            kvgit_merge::Error::Conflicts(c) => Error::Conflicts(c),
            kvgit_merge::Error::Contended { ref_name, attempts } => Error::Contended {
                branch: ref_name
                    .strip_prefix(kvgit_core::refs::HEADS)
                    .unwrap_or(&ref_name)
                    .to_string(),
                attempts,
            },
            kvgit_merge::Error::Core(e) => Error::Core(e),
            other => Error::Core(kvgit_core::Error::Storage(other.to_string())),
        }
    }
}

impl From<kvgit_gc::RebaseError> for Error {
    fn from(e: kvgit_gc::RebaseError) -> Self {
        match e {
            kvgit_gc::RebaseError::Core(e) => Error::Core(e),
            kvgit_gc::RebaseError::UnknownBranch(b) => Error::NoSuchBranch(b),
            other => Error::Gc(other.to_string()),
        }
    }
}

impl From<kvgit_gc::SweepError> for Error {
    fn from(e: kvgit_gc::SweepError) -> Self {
        match e {
            kvgit_gc::SweepError::Core(e) => Error::Core(e),
            other => Error::Gc(other.to_string()),
        }
    }
}

impl From<kvgit_gc::AccessError> for Error {
    fn from(e: kvgit_gc::AccessError) -> Self {
        Error::Gc(e.to_string())
    }
}

impl Error {
    /// The conflicts, if this is [`Error::Conflicts`].
    pub fn conflicts(&self) -> Option<&[Conflict]> {
        match self {
            Error::Conflicts(c) => Some(c),
            _ => None,
        }
    }

    pub(crate) fn unknown_commit(id: &ObjectId) -> Self {
        Error::Core(kvgit_core::Error::UnknownCommit(id.to_hex()))
    }
}
