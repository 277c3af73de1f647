//! Serving a store to a peer: answering its requests, and receiving its
//! pushes.

use std::io::{BufReader, BufWriter, Read, Write};
use std::sync::Arc;

use kvgit_core::{CasOutcome, ObjectId, Repo};

use crate::error::{Error, Result};
use crate::protocol::{Channel, Message, RefUpdate, UpdateResult};
use crate::receive::receive;
use crate::source::{answer_want_commits, answer_want_objects, is_ancestor};

/// A push's update of one ref, as the receiving side's hooks see it: the
/// objects are stored, the ref has not moved yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushUpdate {
    /// The full ref name (`heads/main`).
    pub name: String,
    /// What the ref holds now (`None`: it does not exist).
    pub old: Option<ObjectId>,
    /// The commit it moves to.
    pub new: ObjectId,
    /// The pusher forced it (it need not descend from `old`).
    pub forced: bool,
    /// The keys whose values differ between `old`'s tree and `new`'s (every
    /// key of `new` if `old` is `None`), in key order.
    pub changed_keys: Vec<Vec<u8>>,
}

/// A pre-receive hook: `Err(message)` refuses the update, and the message
/// is shown to the pusher.
pub type PreReceive = dyn Fn(&Repo, &PushUpdate) -> std::result::Result<(), String> + Send + Sync;

/// How an accepted update moves the ref: a compare-and-swap from `old` to
/// `new`. The default is [`Repo::move_ref`]; the facade passes its own, so
/// that a received push runs its validation hooks, subscriptions and
/// bookkeeping like any other branch move. [`Error::Rejected`] refuses the
/// update (the pusher sees its reason); any other error ends the session.
pub type ApplyUpdate = dyn Fn(&Repo, &PushUpdate) -> Result<CasOutcome> + Send + Sync;

/// How [`serve`] treats pushes.
#[derive(Clone, Default)]
pub struct ServeOptions {
    /// Refuse every push.
    pub read_only: bool,
    /// Runs on each update before the ref moves.
    pub pre_receive: Option<Arc<PreReceive>>,
    /// Moves the ref (default: [`Repo::move_ref`]).
    pub apply: Option<Arc<ApplyUpdate>>,
}

impl std::fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("read_only", &self.read_only)
            .field("pre_receive", &self.pre_receive.is_some())
            .field("apply", &self.apply.is_some())
            .finish()
    }
}

/// Serves `repo` to the peer on `reader` and `writer` (a child process's
/// stdin and stdout, an ssh session, a pipe) until it says goodbye or
/// closes the connection. Errors the peer caused are sent to it before they
/// are returned.
pub fn serve(
    repo: &Repo,
    reader: impl Read + Send + 'static,
    writer: impl Write + Send + 'static,
    options: &ServeOptions,
) -> Result<()> {
    let mut ch = Channel::new(
        Box::new(BufReader::with_capacity(1 << 16, reader)),
        Box::new(BufWriter::with_capacity(1 << 16, writer)),
    )?;
    let result = serve_channel(repo, &mut ch, options);
    if let Err(e) = &result {
        // The peer learns why (unless the connection itself failed); a
        // failed greeting is answered by ours alone, which tells the peer
        // our version.
        if !matches!(e, Error::Io(_)) {
            let _ = ch.send(&Message::Error(e.to_string()));
        }
        let _ = ch.flush();
    }
    result
}

/// The serve loop on an open channel.
pub fn serve_channel(repo: &Repo, ch: &mut Channel, options: &ServeOptions) -> Result<()> {
    loop {
        let Some(msg) = ch.recv_or_eof()? else {
            return Ok(());
        };
        match msg {
            Message::ListRefs => {
                let mut refs = repo.backend().list_refs(kvgit_core::refs::HEADS)?;
                refs.extend(repo.backend().list_refs(kvgit_core::refs::TAGS)?);
                ch.send(&Message::Refs(refs))?;
                ch.flush()?;
            }
            Message::WantCommits {
                wants,
                haves,
                depth,
            } => {
                answer_want_commits(repo, ch, &wants, &haves, depth)?;
            }
            Message::WantObjects(ids) => {
                answer_want_objects(repo, ch, &ids)?;
            }
            Message::Push(updates) => {
                let results = receive_push(repo, ch, &updates, options)?;
                ch.send(&Message::PushResult(results))?;
                ch.flush()?;
            }
            Message::Prove { name, key } => {
                let reply = crate::proof::answer_prove(repo, &name, &key)?;
                ch.send(&reply)?;
                ch.flush()?;
            }
            Message::Bye => return Ok(()),
            other => {
                return Err(Error::protocol(format!(
                    "unexpected {} from the client",
                    other.name()
                )))
            }
        }
    }
}

/// The most updates one push may carry.
const MAX_UPDATES: usize = 1024;

/// Receives a push: for each update, the objects, then the checks (the
/// expected value, fast-forward, the pre-receive hook), then the swap.
fn receive_push(
    repo: &Repo,
    ch: &mut Channel,
    updates: &[RefUpdate],
    options: &ServeOptions,
) -> Result<Vec<UpdateResult>> {
    if updates.len() > MAX_UPDATES {
        return Err(Error::protocol(format!(
            "a push of {} updates is over the limit of {MAX_UPDATES}",
            updates.len()
        )));
    }
    let mut results = Vec::with_capacity(updates.len());
    for update in updates {
        results.push(receive_update(repo, ch, update, options)?);
    }
    Ok(results)
}

fn receive_update(
    repo: &Repo,
    ch: &mut Channel,
    update: &RefUpdate,
    options: &ServeOptions,
) -> Result<UpdateResult> {
    if options.read_only {
        return Ok(UpdateResult::Rejected("this remote is read-only".into()));
    }
    let name = &update.name;
    if !(name.starts_with(kvgit_core::refs::HEADS) || name.starts_with(kvgit_core::refs::TAGS)) {
        return Ok(UpdateResult::Rejected(format!(
            "{name:?}: only branches (heads/) and tags (tags/) can be pushed"
        )));
    }
    if let Err(e) = kvgit_core::refs::check_update(name, update.expected.is_none()) {
        return Ok(UpdateResult::Rejected(e.to_string()));
    }
    let current = repo.get_ref(name)?;
    if current != update.expected {
        return Ok(UpdateResult::NotFastForward { actual: current });
    }
    if current == Some(update.new) {
        return Ok(UpdateResult::Updated);
    }
    let mut haves: Vec<ObjectId> = repo
        .backend()
        .list_refs("")?
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    haves.sort();
    haves.dedup();
    receive(repo, ch, &[update.new], &haves, None, &mut |_| {})?;
    if let Some(old) = current {
        if !update.force && !is_ancestor(repo, &old, &update.new)? {
            return Ok(UpdateResult::NotFastForward { actual: current });
        }
    }
    let changed_keys = changed_keys(repo, current.as_ref(), &update.new)?;
    let push = PushUpdate {
        name: name.clone(),
        old: current,
        new: update.new,
        forced: update.force,
        changed_keys,
    };
    if let Some(hook) = &options.pre_receive {
        if let Err(reason) = hook(repo, &push) {
            return Ok(UpdateResult::Rejected(reason));
        }
    }
    let outcome = match &options.apply {
        Some(apply) => match apply(repo, &push) {
            Ok(outcome) => outcome,
            // The receiving side's own validation refused the move.
            Err(Error::Rejected { reason, .. }) => return Ok(UpdateResult::Rejected(reason)),
            Err(e) => return Err(e),
        },
        None => repo.move_ref(name, current.as_ref(), Some(&push.new))?,
    };
    Ok(match outcome {
        CasOutcome::Swapped => UpdateResult::Updated,
        CasOutcome::Mismatch { actual } => UpdateResult::NotFastForward { actual },
    })
}

/// The keys whose values differ between two commits' trees.
fn changed_keys(repo: &Repo, old: Option<&ObjectId>, new: &ObjectId) -> Result<Vec<Vec<u8>>> {
    let new_tree = repo.tree(repo.commit_ref(new)?.root)?;
    let old_tree = match old {
        Some(old) => repo.tree(repo.commit_ref(old)?.root)?,
        None => repo.empty_tree()?,
    };
    let mut keys = Vec::new();
    for change in repo.diff(&old_tree, &new_tree) {
        keys.push(change?.key().to_vec());
    }
    Ok(keys)
}
