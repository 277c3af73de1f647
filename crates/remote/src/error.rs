//! The error type of kvgit-remote.

use kvgit_core::ObjectId;

/// Everything that can go wrong in a transfer between stores.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The local store failed (or holds damaged data).
    #[error(transparent)]
    Core(#[from] kvgit_core::Error),
    /// Reading from or writing to the connection failed.
    #[error("connection to the peer failed: {0}")]
    Io(#[from] std::io::Error),
    /// The peer broke the protocol: a malformed, truncated or oversized
    /// frame, an unexpected message, an object it was not asked for, or a
    /// requested object it did not send. Nothing it sent was stored under a
    /// wrong id, and no ref moved.
    #[error("the peer broke the protocol: {0}")]
    Protocol(String),
    /// The peer sent an object whose bytes do not match its id, or that
    /// does not decode as what it must be. It was not stored.
    #[error("the peer sent a bad object {id}: {reason}")]
    BadObject {
        /// The id it was sent under.
        id: ObjectId,
        /// What was wrong with it.
        reason: String,
    },
    /// The peer speaks another version of the protocol.
    #[error("the peer speaks kvgit protocol version {theirs}; this kvgit speaks version {ours}")]
    Version {
        /// Our version.
        ours: u32,
        /// The peer's.
        theirs: u32,
    },
    /// The peer is not a kvgit protocol endpoint (its first bytes are not
    /// the greeting): for ssh, often a login message or a missing `kvgit`.
    #[error("the peer is not speaking the kvgit protocol: {0}")]
    NotKvgit(String),
    /// The peer reported an error of its own.
    #[error("the peer reported: {0}")]
    Remote(String),
    /// A push was refused because the remote branch holds commits the
    /// pushed one does not contain (or moved since it was last seen).
    #[error(
        "push to {name} refused: not a fast-forward (the remote branch is at {}); \
         pull first to merge its changes, or push with force to overwrite them",
        actual.map_or_else(|| "nothing".to_string(), |id| id.short(12))
    )]
    NotFastForward {
        /// The remote ref.
        name: String,
        /// What the remote ref holds.
        actual: Option<ObjectId>,
    },
    /// The receiving side's validation (a pre-receive hook) refused a push.
    #[error("push to {name} refused by the remote: {reason}")]
    Rejected {
        /// The remote ref.
        name: String,
        /// The hook's message.
        reason: String,
    },
    /// A remote URL that cannot be parsed or used.
    #[error("invalid remote URL {url:?}: {reason}")]
    BadUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No remote of that name is configured.
    #[error("no remote named {0:?} (kvgit remote add NAME URL)")]
    UnknownRemote(String),
    /// The remote has no branch of that name.
    #[error("the remote has no branch {0:?}")]
    UnknownRemoteBranch(String),
    /// A clone's destination already holds refs.
    #[error("the destination store is not empty (it has {0} refs)")]
    NotEmpty(usize),
    /// A Merkle proof did not check out.
    #[error("invalid proof: {0}")]
    BadProof(String),
}

/// kvgit-remote's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn protocol(reason: impl Into<String>) -> Self {
        Error::Protocol(reason.into())
    }

    pub(crate) fn bad_object(id: ObjectId, reason: impl Into<String>) -> Self {
        Error::BadObject {
            id,
            reason: reason.into(),
        }
    }
}
