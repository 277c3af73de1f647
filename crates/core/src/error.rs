//! The error type of kvgit-core.

use crate::id::ObjectId;

/// Everything that can go wrong in kvgit-core.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Stored bytes did not decode into a valid object, or do not hash to
    /// the id they are stored under.
    #[error("corrupt object {id}: {reason}")]
    Corrupt {
        /// The id the object was looked up by.
        id: ObjectId,
        /// What was wrong with it.
        reason: String,
    },
    /// An object that a tree, commit or ref refers to is not in the store.
    #[error("object {0} is missing from the store")]
    MissingObject(ObjectId),
    /// No commit has this id (or it is not a commit).
    #[error("unknown commit {0}")]
    UnknownCommit(String),
    /// A commit id prefix matched more than one commit.
    #[error("ambiguous commit id prefix {prefix}: {candidates} candidates")]
    AmbiguousId {
        /// The prefix given.
        prefix: String,
        /// How many objects matched.
        candidates: usize,
    },
    /// A commit that cannot be written (too many or repeated parents, or
    /// too large).
    #[error("invalid commit: {0}")]
    InvalidCommit(String),
    /// A ref that must not exist exists.
    #[error("{0} already exists")]
    RefExists(String),
    /// A ref that must exist does not.
    #[error("{0} does not exist")]
    UnknownRef(String),
    /// A ref did not hold the value an update expected (another writer
    /// moved it first).
    #[error("{name} was moved concurrently: expected {expected:?}, found {actual:?}")]
    RefMoved {
        /// The ref.
        name: String,
        /// What the update expected.
        expected: Option<ObjectId>,
        /// What the ref held.
        actual: Option<ObjectId>,
    },
    /// A string is not a valid object id.
    #[error("invalid object id {0:?}")]
    InvalidId(String),
    /// A ref name breaks the naming rules.
    #[error("invalid ref name {name:?}: {reason}")]
    InvalidRefName {
        /// The rejected name.
        name: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A key is longer than [`crate::MAX_KEY_LEN`] or empty.
    #[error("invalid key ({len} bytes): keys must be 1 to {max} bytes")]
    InvalidKey {
        /// The key's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A value is longer than [`crate::MAX_VALUE_LEN`].
    #[error("value of {len} bytes is too large: at most {max} bytes")]
    ValueTooLarge {
        /// The value's length.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// Entries given to a bulk build were not strictly sorted by key.
    #[error("entries are not strictly sorted by key at index {index}")]
    Unsorted {
        /// The index of the first entry out of order.
        index: usize,
    },
    /// The store is open in another process (or another `Db` in this one).
    #[error("store at {path} is locked by another process: {detail}")]
    Locked {
        /// The store's path.
        path: String,
        /// What the operating system said.
        detail: String,
    },
    /// The store lost data since it was last closed: its refs differ from
    /// the close record it wrote then (sled drops every log record after a
    /// damaged one), or that record is damaged. Nothing was changed.
    #[error("store at {path} has lost commits: {detail}")]
    RolledBack {
        /// The store's path.
        path: String,
        /// What differs, and what to do about it.
        detail: String,
    },
    /// The underlying storage failed.
    #[error("storage error: {0}")]
    Storage(String),
    /// The store cannot be opened or reached: a bad address, a refused
    /// connection, failed authentication, missing permissions, or a schema
    /// this build does not understand.
    #[error("cannot open store {store}: {detail}")]
    Unavailable {
        /// The store's address (without a password).
        store: String,
        /// What went wrong, and what to do about it.
        detail: String,
    },
    /// An I/O error.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// An I/O error on a named file of a store: what was being done, on
    /// which path, the operating system's error, and what the user can do
    /// about that kind of error.
    #[error("cannot {op} {path}: {cause}{}", io_advice(.cause))]
    IoAt {
        /// What was being done ("read", "open", "lock", ...).
        op: String,
        /// The file or directory.
        path: String,
        /// What the operating system said. (Shown in the message, so it is
        /// not also given as the error's `source`.)
        cause: std::io::Error,
    },
    /// The disk (or the user's quota) is full. Nothing of the failed write
    /// is visible: refs are unchanged.
    #[error("no space left on device (writing to {path})")]
    NoSpace {
        /// The store (or file) being written.
        path: String,
    },
    /// The store can only be read here (opened read-only, a read-only
    /// mount, or no write permission), and a write was asked for.
    #[error("store at {path} is read-only: {detail}")]
    ReadOnly {
        /// The store's path.
        path: String,
        /// Why, and what to do about it.
        detail: String,
    },
    /// The path holds no kvgit store (missing, empty, someone else's files,
    /// or a store whose creation was interrupted).
    #[error("no kvgit store at {path}: {detail}")]
    NotAStore {
        /// The path.
        path: String,
        /// What is there instead, and what to do about it.
        detail: String,
    },
    /// A store was to be created where one already exists.
    #[error("a store already exists at {path}")]
    StoreExists {
        /// The store's path.
        path: String,
    },
}

/// What the user can do about an I/O error of this kind (a leading
/// separator included), for [`Error::IoAt`].
fn io_advice(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::NotFound => {
            " (a file the store needs is missing: the store is damaged; restore it from a backup)"
        }
        std::io::ErrorKind::PermissionDenied => {
            " (this user may not access it: run as the store's owner, or ask them to grant access)"
        }
        _ => "",
    }
}

/// kvgit-core's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Shorthand for a [`Error::Corrupt`].
    pub fn corrupt(id: ObjectId, reason: impl Into<String>) -> Self {
        Error::Corrupt {
            id,
            reason: reason.into(),
        }
    }
}
