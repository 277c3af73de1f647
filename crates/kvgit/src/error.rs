//! The facade's error type: one flat enum, so that what a user handles
//! (a locked store, conflicts, a missing branch, corrupt data, an
//! unreachable store, an invalid key, ...) is one variant to match on,
//! whichever layer found it.

use kvgit_core::ObjectId;
pub use kvgit_merge::Conflict;

/// Everything that can go wrong through the `kvgit` API.
///
/// Errors of the lower layers (kvgit-core, kvgit-merge, kvgit-gc, the
/// PostgreSQL backend) are flattened into these variants, with the same
/// messages; an `std::io::Error` converts too, so `?` works on
/// [`KeyFile`](crate::KeyFile) I/O inside [`Branch::update`](crate::Branch::update).
///
/// ```
/// let db = kvgit::Db::memory();
/// match db.resolve("nope") {
///     Err(kvgit::Error::UnknownRevision(rev)) => assert_eq!(rev, "nope"),
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store is open in another process (or another `Db` in this one).
    #[error("store at {path} is locked by another process: {detail}")]
    Locked {
        /// The store's path.
        path: String,
        /// What the operating system said.
        detail: String,
    },
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
    /// There is no store at this path ([`Db::open_existing`](crate::Db::open_existing)).
    #[error("no store at {0}")]
    NoStore(String),
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
    /// No branch has this name.
    #[error("no branch named {0}")]
    NoSuchBranch(String),
    /// No tag has this name.
    #[error("no tag named {0}")]
    NoSuchTag(String),
    /// A name or commit id did not resolve to a commit.
    #[error("{0:?} is not a branch, tag or commit id")]
    UnknownRevision(String),
    /// No commit has this id (or the object is not a commit).
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
    /// A branch or tag that must not exist exists.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// The branch was deleted while a transaction on it was committing.
    #[error("branch {0} was deleted")]
    BranchDeleted(String),
    /// A key is empty or longer than the limit (4 KiB).
    #[error("invalid key ({len} bytes): keys must be 1 to {max} bytes")]
    InvalidKey {
        /// The key's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A value is larger than the limit (256 MiB).
    #[error("value of {len} bytes is too large: at most {max} bytes")]
    ValueTooLarge {
        /// The value's length.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// A branch or tag name breaks the naming rules.
    #[error("invalid ref name {name:?}: {reason}")]
    InvalidName {
        /// The rejected name.
        name: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A string is not a valid commit id.
    #[error("invalid object id {0:?}")]
    InvalidId(String),
    /// Stored bytes did not decode into a valid object, or do not hash to
    /// the id they are stored under.
    #[error("corrupt object {id}: {reason}")]
    Corrupt {
        /// The object's id.
        id: ObjectId,
        /// What was wrong with it.
        reason: String,
    },
    /// An object that a tree, commit or ref refers to is not in the store
    /// (for a snapshot of a commit no branch or tag reaches: swept).
    #[error("object {0} is missing from the store")]
    MissingObject(ObjectId),
    /// The store lost data since it was last closed (its refs differ from
    /// the close record written then). Nothing was changed.
    #[error("store at {path} has lost commits: {detail}")]
    RolledBack {
        /// The store's path.
        path: String,
        /// What differs, and what to do about it.
        detail: String,
    },
    /// The disk is full: nothing was written, and the store is as it was.
    /// Free some space and try again.
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
    /// The path holds no kvgit store (missing, empty, someone else's
    /// files, or a store whose creation was interrupted).
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
    /// An I/O error on a file or directory of the store; the message says
    /// what was being done, on which path, and what to do about it.
    #[error("{message}")]
    IoAt {
        /// The file or directory.
        path: String,
        /// The kind of the operating system's error.
        kind: std::io::ErrorKind,
        /// The whole message.
        message: String,
    },
    /// A typed value could not be encoded or decoded.
    #[error("codec error for key {key:?}: {message}")]
    Codec {
        /// The key (lossy UTF-8).
        key: String,
        /// What the codec said.
        message: String,
    },
    /// Garbage collection failed (a rebase, a sweep, or access recency),
    /// or its settings are invalid.
    #[error("garbage collection: {0}")]
    Gc(String),
    /// The underlying storage failed, or a commit could not be written.
    #[error("storage error: {0}")]
    Storage(String),
    /// An I/O error.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// A transfer with a remote failed (feature `remote`): the connection,
    /// the peer, a push refused (not a fast-forward, or by the remote's
    /// hooks), a bad URL, an unknown remote or remote branch, an invalid
    /// proof. Failures of the local store are the other variants.
    #[cfg(feature = "remote")]
    #[error(transparent)]
    Remote(kvgit_remote::Error),
}

#[cfg(feature = "remote")]
impl From<kvgit_remote::Error> for Error {
    fn from(e: kvgit_remote::Error) -> Self {
        match e {
            kvgit_remote::Error::Core(e) => e.into(),
            other => Error::Remote(other),
        }
    }
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

impl From<kvgit_core::Error> for Error {
    fn from(e: kvgit_core::Error) -> Self {
        use kvgit_core::Error as E;
        match e {
            E::Corrupt { id, reason } => Error::Corrupt { id, reason },
            E::MissingObject(id) => Error::MissingObject(id),
            E::UnknownCommit(id) => Error::UnknownCommit(id),
            E::AmbiguousId { prefix, candidates } => Error::AmbiguousId { prefix, candidates },
            E::RefExists(name) => Error::AlreadyExists(short_ref(name)),
            E::UnknownRef(name) => match name.strip_prefix(kvgit_core::refs::TAGS) {
                Some(tag) => Error::NoSuchTag(tag.to_string()),
                None => Error::NoSuchBranch(short_ref(name)),
            },
            E::RefMoved { name, .. } => Error::Contended {
                branch: short_ref(name),
                attempts: 1,
            },
            E::InvalidId(id) => Error::InvalidId(id),
            E::InvalidRefName { name, reason } => Error::InvalidName { name, reason },
            E::InvalidKey { len, max } => Error::InvalidKey { len, max },
            E::ValueTooLarge { len, max } => Error::ValueTooLarge { len, max },
            E::Locked { path, detail } => Error::Locked { path, detail },
            E::RolledBack { path, detail } => Error::RolledBack { path, detail },
            E::Unavailable { store, detail } => Error::Unavailable { store, detail },
            E::Io(e) => Error::Io(e),
            E::Storage(message) => Error::Storage(message),
            E::NoSpace { path } => Error::NoSpace { path },
            E::ReadOnly { path, detail } => Error::ReadOnly { path, detail },
            E::NotAStore { path, detail } => Error::NotAStore { path, detail },
            E::StoreExists { path } => Error::StoreExists { path },
            e @ E::IoAt { .. } => {
                let message = e.to_string();
                match e {
                    E::IoAt { path, cause, .. } => Error::IoAt {
                        path,
                        kind: cause.kind(),
                        message,
                    },
                    _ => unreachable!("matched as IoAt above"),
                }
            }
            other => Error::Storage(other.to_string()),
        }
    }
}

/// A branch's short name (`main` for `heads/main`); other refs as they are.
fn short_ref(name: String) -> String {
    match name.strip_prefix(kvgit_core::refs::HEADS) {
        Some(short) => short.to_string(),
        None => name,
    }
}

impl From<kvgit_merge::Error> for Error {
    fn from(e: kvgit_merge::Error) -> Self {
        match e {
            kvgit_merge::Error::Conflicts(c) => Error::Conflicts(c),
            kvgit_merge::Error::Contended { ref_name, attempts } => Error::Contended {
                branch: short_ref(ref_name),
                attempts,
            },
            kvgit_merge::Error::Core(e) => e.into(),
            other => Error::Storage(other.to_string()),
        }
    }
}

impl From<kvgit_gc::RebaseError> for Error {
    fn from(e: kvgit_gc::RebaseError) -> Self {
        match e {
            kvgit_gc::RebaseError::Core(e) => e.into(),
            kvgit_gc::RebaseError::Access(e) => e.into(),
            kvgit_gc::RebaseError::UnknownBranch(b) => Error::NoSuchBranch(b),
            other => Error::Gc(other.to_string()),
        }
    }
}

impl From<kvgit_gc::SweepError> for Error {
    fn from(e: kvgit_gc::SweepError) -> Self {
        match e {
            kvgit_gc::SweepError::Core(e) => e.into(),
            other => Error::Gc(other.to_string()),
        }
    }
}

impl From<kvgit_gc::AccessError> for Error {
    fn from(e: kvgit_gc::AccessError) -> Self {
        match e {
            kvgit_gc::AccessError::Core(e) => e.into(),
            other => Error::Gc(other.to_string()),
        }
    }
}

impl From<kvgit_gc::WatermarkError> for Error {
    fn from(e: kvgit_gc::WatermarkError) -> Self {
        match e {
            kvgit_gc::WatermarkError::Core(e) => e.into(),
            other => Error::Gc(other.to_string()),
        }
    }
}

impl Error {
    /// The conflicts, if this is [`Error::Conflicts`].
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// let main = db.branch("main")?;
    /// main.put("k", "base")?;
    /// let mut tx = main.transaction()?;
    /// tx.put("k", "mine");
    /// main.put("k", "theirs")?; // another writer, no merge function
    /// let err = tx.commit().unwrap_err();
    /// let conflicts = err.conflicts().expect("a conflict");
    /// assert_eq!(conflicts[0].key, b"k".to_vec());
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn conflicts(&self) -> Option<&[Conflict]> {
        match self {
            Error::Conflicts(c) => Some(c),
            _ => None,
        }
    }

    /// True for the errors that say something asked for does not exist: a
    /// branch, a tag, a revision, a commit, or (after a sweep) an object.
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// assert!(db.resolve("nope").unwrap_err().is_not_found());
    /// assert!(db.delete_branch("nope").unwrap_err().is_not_found());
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Error::NoStore(_)
                | Error::NoSuchBranch(_)
                | Error::NoSuchTag(_)
                | Error::UnknownRevision(_)
                | Error::UnknownCommit(_)
                | Error::MissingObject(_)
        )
    }

    pub(crate) fn unknown_commit(id: &ObjectId) -> Self {
        Error::UnknownCommit(id.to_hex())
    }
}
