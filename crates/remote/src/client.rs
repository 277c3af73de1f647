//! Clone, fetch and push over a [`Connection`].

use std::collections::BTreeMap;

use kvgit_core::refs::{self, HEADS};
use kvgit_core::{CasOutcome, ObjectId, Repo};

use crate::error::{Error, Result};
use crate::protocol::{Message, RefUpdate, UpdateResult};
use crate::receive::receive;
use crate::report::{Phase, Progress, RefChange, Report};
use crate::source::{answer_want_commits, answer_want_objects, is_ancestor, Sent};
use crate::transport::Connection;

/// Options of [`fetch`] and [`clone`].
#[derive(Default)]
pub struct FetchOptions<'a> {
    /// Fetch only this many commits of each branch's history (a shallow
    /// fetch); `None`: all of it.
    pub depth: Option<u32>,
    /// Called as objects arrive.
    pub progress: Option<&'a mut dyn FnMut(&Progress)>,
}

impl std::fmt::Debug for FetchOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FetchOptions")
            .field("depth", &self.depth)
            .finish_non_exhaustive()
    }
}

/// Called as a push sends objects.
pub type PushProgress = dyn Fn(&Progress) + Send + Sync;

/// Options of [`push`].
#[derive(Default)]
pub struct PushOptions {
    /// Move the remote branch even if it is not an ancestor of the pushed
    /// commit (its commits are lost there).
    pub force: bool,
    /// The commit the remote branch must hold for the push to apply
    /// (`Some(None)`: it must not exist). Default: what the remote reports
    /// at the start of the push. The command line passes the
    /// remote-tracking ref, the head the client last saw.
    pub expected: Option<Option<ObjectId>>,
    /// The branch's name on the remote (default: the local name).
    pub remote_branch: Option<String>,
    /// The remote's name here: its tracking ref
    /// `remotes/<remote>/<branch>` is moved to the pushed commit.
    pub remote_name: Option<String>,
    /// Called as objects are sent (phase [`Phase::Sending`]).
    pub progress: Option<std::sync::Arc<PushProgress>>,
}

impl std::fmt::Debug for PushOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushOptions")
            .field("force", &self.force)
            .field("expected", &self.expected)
            .field("remote_branch", &self.remote_branch)
            .field("remote_name", &self.remote_name)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// The remote's branches and tags, full names.
pub fn list_refs(conn: &mut Connection) -> Result<BTreeMap<String, ObjectId>> {
    conn.ch.send(&Message::ListRefs)?;
    match conn.ch.recv()? {
        Message::Refs(refs) => {
            let mut out = BTreeMap::new();
            for (name, id) in refs {
                refs::check_full_name(&name)
                    .map_err(|e| Error::protocol(format!("the peer listed an invalid ref: {e}")))?;
                out.insert(name, id);
            }
            Ok(out)
        }
        other => Err(Error::protocol(format!(
            "expected Refs, got {}",
            other.name()
        ))),
    }
}

/// Fetches `branches` (all the remote's branches if empty) into the
/// remote-tracking refs `remotes/<remote>/<branch>`: receives the objects
/// the store lacks, stores them, then moves each tracking ref by
/// compare-and-swap. An up-to-date fetch is one round trip.
pub fn fetch(
    repo: &Repo,
    conn: &mut Connection,
    remote: &str,
    branches: &[String],
    options: FetchOptions<'_>,
) -> Result<Report> {
    refs::validate_remote_name(remote)?;
    let remote_refs = list_refs(conn)?;
    let mut selected: Vec<(String, ObjectId)> = Vec::new();
    if branches.is_empty() {
        for (name, id) in &remote_refs {
            if let Some(branch) = name.strip_prefix(HEADS) {
                selected.push((branch.to_string(), *id));
            }
        }
    } else {
        for branch in branches {
            let id = remote_refs
                .get(&format!("{HEADS}{branch}"))
                .ok_or_else(|| Error::UnknownRemoteBranch(branch.clone()))?;
            selected.push((branch.clone(), *id));
        }
    }
    let wants: Vec<ObjectId> = selected.iter().map(|(_, id)| *id).collect();
    let haves = local_heads(repo)?;
    let mut noop = |_: &Progress| {};
    let progress = match options.progress {
        Some(p) => p,
        None => &mut noop,
    };
    let received = receive(repo, &mut conn.ch, &wants, &haves, options.depth, progress)?;
    if !received.shallow.is_empty() {
        record_shallow(repo, &received.shallow)?;
    }
    let mut report = Report {
        objects_received: received.objects,
        bytes_received: received.bytes,
        shallow: received.shallow,
        ..Report::default()
    };
    for (branch, id) in selected {
        let name = refs::remote_ref(remote, &branch)?;
        let old = repo.get_ref(&name)?;
        if old == Some(id) {
            continue;
        }
        match repo.move_ref(&name, old.as_ref(), Some(&id))? {
            CasOutcome::Swapped => report.refs.push(RefChange {
                name,
                old,
                new: Some(id),
            }),
            CasOutcome::Mismatch { actual } => {
                return Err(kvgit_core::Error::RefMoved {
                    name,
                    expected: old,
                    actual,
                }
                .into())
            }
        }
    }
    fill_traffic(&mut report, conn);
    Ok(report)
}

/// Clones the remote into the empty store `repo`: fetches every branch as
/// remote `remote` (`origin` on the command line), then creates each local
/// branch at its remote-tracking ref.
pub fn clone(
    repo: &Repo,
    conn: &mut Connection,
    remote: &str,
    options: FetchOptions<'_>,
) -> Result<Report> {
    let existing = repo.backend().list_refs("")?;
    if !existing.is_empty() {
        return Err(Error::NotEmpty(existing.len()));
    }
    let mut report = fetch(repo, conn, remote, &[], options)?;
    let prefix = format!("{}{remote}/", refs::REMOTES);
    for (branch, id) in repo.list_refs(&prefix)? {
        let name = format!("{HEADS}{branch}");
        repo.create_ref(&name, &id)?;
        report.refs.push(RefChange {
            name,
            old: None,
            new: Some(id),
        });
    }
    Ok(report)
}

/// Pushes local branch `branch` to the remote: sends the objects the
/// remote lacks (the remote asks for them), then the remote moves its
/// branch by compare-and-swap from the expected head. Refused, before
/// anything is sent, if the remote head is not an ancestor of the local one
/// (unless forced): pull first.
pub fn push(
    repo: &Repo,
    conn: &mut Connection,
    branch: &str,
    options: PushOptions,
) -> Result<Report> {
    let local_name = refs::branch_ref(branch)?;
    let local = repo
        .get_ref(&local_name)?
        .ok_or_else(|| kvgit_core::Error::UnknownRef(local_name.clone()))?;
    let remote_branch = options.remote_branch.as_deref().unwrap_or(branch);
    let name = refs::branch_ref(remote_branch)?;
    let remote_refs = list_refs(conn)?;
    let remote_head = remote_refs.get(&name).copied();
    let expected = options.expected.unwrap_or(remote_head);
    let mut report = Report::default();
    if expected != remote_head {
        return Err(Error::NotFastForward {
            name,
            actual: remote_head,
        });
    }
    if remote_head != Some(local) {
        if let (false, Some(head)) = (options.force, remote_head) {
            let known = repo.backend().has_object(&head)?;
            if !known || !is_ancestor(repo, &head, &local)? {
                return Err(Error::NotFastForward {
                    name,
                    actual: remote_head,
                });
            }
        }
        conn.ch.send(&Message::Push(vec![RefUpdate {
            name: name.clone(),
            expected,
            new: local,
            force: options.force,
        }]))?;
        let mut sent = Sent::default();
        let results = loop {
            match conn.ch.recv()? {
                Message::WantCommits {
                    wants,
                    haves,
                    depth,
                } => add(
                    &mut sent,
                    answer_want_commits(repo, &mut conn.ch, &wants, &haves, depth)?,
                ),
                Message::WantObjects(ids) => {
                    add(&mut sent, answer_want_objects(repo, &mut conn.ch, &ids)?);
                    if let Some(progress) = &options.progress {
                        progress(&Progress {
                            phase: Phase::Sending,
                            objects: sent.objects,
                            bytes: sent.bytes,
                        });
                    }
                }
                Message::PushResult(results) => break results,
                other => {
                    return Err(Error::protocol(format!(
                        "expected requests or PushResult, got {}",
                        other.name()
                    )))
                }
            }
        };
        report.objects_sent = sent.objects;
        report.bytes_sent = sent.bytes;
        match results.as_slice() {
            [UpdateResult::Updated] => report.refs.push(RefChange {
                name: name.clone(),
                old: remote_head,
                new: Some(local),
            }),
            [UpdateResult::NotFastForward { actual }] => {
                return Err(Error::NotFastForward {
                    name,
                    actual: *actual,
                })
            }
            [UpdateResult::Rejected(reason)] => {
                return Err(Error::Rejected {
                    name,
                    reason: reason.clone(),
                })
            }
            _ => {
                return Err(Error::protocol(format!(
                    "a push of one update got {} results",
                    results.len()
                )))
            }
        }
    }
    if let Some(remote) = &options.remote_name {
        let tracking = refs::remote_ref(remote, remote_branch)?;
        let old = repo.get_ref(&tracking)?;
        if old != Some(local) {
            // Best effort: the next fetch corrects a tracking ref that
            // another fetch moved meanwhile.
            let _ = repo.move_ref(&tracking, old.as_ref(), Some(&local))?;
        }
    }
    fill_traffic(&mut report, conn);
    Ok(report)
}

fn add(total: &mut Sent, more: Sent) {
    total.objects += more.objects;
    total.bytes += more.bytes;
}

fn fill_traffic(report: &mut Report, conn: &Connection) {
    let traffic = conn.ch.traffic();
    report.wire_bytes_sent = traffic.bytes_sent;
    report.wire_bytes_received = traffic.bytes_received;
    report.round_trips = traffic.round_trips;
}

/// The commits the store's refs point at (every namespace), deduplicated:
/// what a fetch tells the remote it has.
fn local_heads(repo: &Repo) -> Result<Vec<ObjectId>> {
    let mut heads: Vec<ObjectId> = repo
        .backend()
        .list_refs("")?
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    heads.sort();
    heads.dedup();
    Ok(heads)
}

/// Records commits stored without their parents (the history walks and
/// `verify` stop there: see `kvgit_core::history`).
fn record_shallow(repo: &Repo, ids: &[ObjectId]) -> Result<()> {
    let entries = ids
        .iter()
        .map(|id| (kvgit_core::history::shallow_key(id), Some(Vec::new())))
        .collect();
    repo.backend().put_meta(entries)?;
    Ok(())
}

/// The commits this store holds without their parents (shallow fetches'
/// cuts).
pub fn shallow_commits(repo: &Repo) -> Result<Vec<ObjectId>> {
    Ok(repo.shallow_commits()?)
}
