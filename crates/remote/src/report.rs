//! What a transfer reports: progress while it runs, a [`Report`] at the end.

use kvgit_core::ObjectId;

/// The stage a transfer is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Phase {
    /// Receiving commits.
    Commits,
    /// Receiving tree nodes.
    Trees,
    /// Receiving large values.
    Blobs,
    /// Storing the internal nodes and commits.
    Storing,
    /// Everything received is stored and durable.
    Done,
    /// Sending objects (a push).
    Sending,
}

/// A progress update: objects and bytes received (or, for a push, sent)
/// so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// The stage.
    pub phase: Phase,
    /// Objects received (sent) so far.
    pub objects: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// A ref a transfer moved (or found already in place).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefChange {
    /// The full ref name (`remotes/origin/main` for a fetch, the remote's
    /// `heads/main` for a push).
    pub name: String,
    /// What it held before.
    pub old: Option<ObjectId>,
    /// What it holds now.
    pub new: Option<ObjectId>,
}

/// What a clone, fetch or push did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Report {
    /// Objects this side received and stored.
    pub objects_received: u64,
    /// Bytes of those objects.
    pub bytes_received: u64,
    /// Objects this side sent.
    pub objects_sent: u64,
    /// Bytes of those objects.
    pub bytes_sent: u64,
    /// Bytes that went over the connection each way, frames included.
    pub wire_bytes_sent: u64,
    /// See `wire_bytes_sent`.
    pub wire_bytes_received: u64,
    /// Times this side waited for the peer.
    pub round_trips: u64,
    /// Refs moved (a ref already in place is not listed).
    pub refs: Vec<RefChange>,
    /// Commits stored without their parents (a shallow fetch's cut).
    pub shallow: Vec<ObjectId>,
}

impl Report {
    /// True if nothing was transferred and no ref moved.
    pub fn is_up_to_date(&self) -> bool {
        self.refs.is_empty() && self.objects_received == 0 && self.objects_sent == 0
    }
}
