//! The sending side of a transfer: answering a receiver's requests for
//! commits and objects from a store.

use std::collections::{BinaryHeap, HashMap};

use kvgit_core::{Commit, ObjectId, Repo};

use crate::error::{Error, Result};
use crate::protocol::{Channel, Message, WireObject, BATCH_BYTES, MAX_IDS};

/// The most haves a request may carry (a receiver sends its ref heads).
pub(crate) const MAX_HAVES: usize = 1024;

/// Answers [`Message::WantCommits`]: every commit reachable from `wants`
/// and not from `haves`, newest first, in batches, then
/// [`Message::ObjectsEnd`].
pub(crate) fn answer_want_commits(
    repo: &Repo,
    ch: &mut Channel,
    wants: &[ObjectId],
    haves: &[ObjectId],
    depth: Option<u32>,
) -> Result<Sent> {
    if wants.len() > MAX_IDS || haves.len() > MAX_HAVES {
        return Err(Error::protocol(format!(
            "a commit request of {} wants and {} haves is over the limits ({MAX_IDS}, {MAX_HAVES})",
            wants.len(),
            haves.len()
        )));
    }
    let mut batch = Batch::default();
    for id in missing_commits(repo, wants, haves, depth)? {
        let bytes = repo.object_bytes(&id)?;
        batch.push(ch, id, bytes)?;
    }
    batch.finish(ch)
}

/// Answers [`Message::WantObjects`]: the objects, in the order asked, in
/// batches, then [`Message::ObjectsEnd`].
pub(crate) fn answer_want_objects(repo: &Repo, ch: &mut Channel, ids: &[ObjectId]) -> Result<Sent> {
    if ids.len() > MAX_IDS {
        return Err(Error::protocol(format!(
            "a request for {} objects is over the limit of {MAX_IDS}",
            ids.len()
        )));
    }
    let mut batch = Batch::default();
    for id in ids {
        let bytes = repo
            .backend()
            .get_object(id)?
            .ok_or_else(|| Error::Remote(format!("object {id} is not in the store")))?;
        batch.push(ch, *id, bytes)?;
    }
    batch.finish(ch)
}

/// Objects and their bytes sent in answer to a request.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Sent {
    pub(crate) objects: u64,
    pub(crate) bytes: u64,
}

/// Objects gathered into frames of about [`BATCH_BYTES`].
#[derive(Default)]
struct Batch {
    objects: Vec<WireObject>,
    bytes: usize,
    sent: Sent,
}

impl Batch {
    fn push(&mut self, ch: &mut Channel, id: ObjectId, bytes: Vec<u8>) -> Result<()> {
        if self.bytes > 0 && self.bytes + bytes.len() > BATCH_BYTES {
            self.send(ch)?;
        }
        self.bytes += bytes.len() + 40;
        self.sent.objects += 1;
        self.sent.bytes += bytes.len() as u64;
        self.objects.push(WireObject { id, bytes });
        Ok(())
    }

    fn send(&mut self, ch: &mut Channel) -> Result<()> {
        if !self.objects.is_empty() {
            ch.send(&Message::Objects(std::mem::take(&mut self.objects)))?;
            self.bytes = 0;
        }
        Ok(())
    }

    fn finish(mut self, ch: &mut Channel) -> Result<Sent> {
        self.send(ch)?;
        ch.send(&Message::ObjectsEnd)?;
        ch.flush()?;
        Ok(self.sent)
    }
}

const WANT: u8 = 1;
const HAVE: u8 = 2;
/// Popped from the queue: never marked again (heights are input, so this
/// does not rely on them being right).
const DONE: u8 = 4;

/// The commits reachable from `wants` and not from `haves`, newest first
/// (by height), at most `depth` deep from each want.
///
/// A walk in height order from both sides at once ("painting down"): a
/// commit is popped only after every commit above it, so by then it knows
/// whether some have reaches it. The walk stops as soon as nothing queued
/// is wanted-only, so its cost is the commits between the two sides, not
/// the history. Haves this store does not hold are ignored.
pub(crate) fn missing_commits(
    repo: &Repo,
    wants: &[ObjectId],
    haves: &[ObjectId],
    depth: Option<u32>,
) -> Result<Vec<ObjectId>> {
    struct State {
        flags: u8,
        depth: u32,
    }
    let mut state: HashMap<ObjectId, State> = HashMap::new();
    let mut queue: BinaryHeap<(u64, ObjectId)> = BinaryHeap::new();
    // Queued entries that are wanted and not (yet) known to be had.
    let mut want_only = 0usize;
    let mut commits: HashMap<ObjectId, std::sync::Arc<Commit>> = HashMap::new();
    let mut load = |id: &ObjectId| -> Result<Option<std::sync::Arc<Commit>>> {
        if let Some(c) = commits.get(id) {
            return Ok(Some(c.clone()));
        }
        match repo.commit_ref(id) {
            Ok(c) => {
                commits.insert(*id, c.clone());
                Ok(Some(c))
            }
            Err(kvgit_core::Error::UnknownCommit(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    };
    for have in haves {
        if let Some(c) = load(have)? {
            if state
                .insert(
                    *have,
                    State {
                        flags: HAVE,
                        depth: 0,
                    },
                )
                .is_none()
            {
                queue.push((c.height, *have));
            }
        }
    }
    for want in wants {
        let c = load(want)?
            .ok_or_else(|| Error::Remote(format!("commit {want} is not in the store")))?;
        match state.get_mut(want) {
            Some(s) => s.flags |= WANT,
            None => {
                state.insert(
                    *want,
                    State {
                        flags: WANT,
                        depth: 1,
                    },
                );
                queue.push((c.height, *want));
                want_only += 1;
            }
        }
    }
    let mut out = Vec::new();
    while want_only > 0 {
        let Some((_, id)) = queue.pop() else { break };
        let (flags, d) = {
            let s = state.get_mut(&id).expect("queued commits have a state");
            if s.flags & DONE != 0 {
                continue;
            }
            s.flags |= DONE;
            (s.flags, s.depth)
        };
        let commit = load(&id)?.expect("queued commits were loaded");
        if flags & HAVE != 0 {
            for p in &commit.parents {
                mark(
                    &mut state,
                    &mut queue,
                    &mut want_only,
                    &mut load,
                    p,
                    HAVE,
                    0,
                )?;
            }
            continue;
        }
        want_only -= 1;
        out.push(id);
        if depth.is_some_and(|max| d >= max) {
            continue;
        }
        for p in &commit.parents {
            mark(
                &mut state,
                &mut queue,
                &mut want_only,
                &mut load,
                p,
                WANT,
                d + 1,
            )?;
        }
    }
    return Ok(out);

    fn mark(
        state: &mut HashMap<ObjectId, State>,
        queue: &mut BinaryHeap<(u64, ObjectId)>,
        want_only: &mut usize,
        load: &mut dyn FnMut(&ObjectId) -> Result<Option<std::sync::Arc<Commit>>>,
        id: &ObjectId,
        flag: u8,
        depth: u32,
    ) -> Result<()> {
        match state.get_mut(id) {
            Some(s) if s.flags & DONE != 0 => {}
            Some(s) => {
                if flag == HAVE && s.flags == WANT {
                    *want_only -= 1;
                }
                s.flags |= flag;
                if flag == WANT {
                    s.depth = s.depth.min(depth);
                }
            }
            None => {
                // A parent this store lacks (a shallow history): nothing
                // below it can be sent or compared.
                let Some(c) = load(id)? else { return Ok(()) };
                state.insert(*id, State { flags: flag, depth });
                queue.push((c.height, *id));
                if flag == WANT {
                    *want_only += 1;
                }
            }
        }
        Ok(())
    }
}

/// True if commit `ancestor` is `descendant` or one of its ancestors. Walks
/// down from `descendant`, never below `ancestor`'s height; a commit this
/// store lacks (a shallow history) ends its path.
pub fn is_ancestor(repo: &Repo, ancestor: &ObjectId, descendant: &ObjectId) -> Result<bool> {
    if ancestor == descendant {
        return Ok(true);
    }
    let floor = repo.commit_ref(ancestor)?.height;
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![*descendant];
    while let Some(id) = stack.pop() {
        let commit = match repo.commit_ref(&id) {
            Ok(c) => c,
            Err(kvgit_core::Error::UnknownCommit(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        for p in &commit.parents {
            if p == ancestor {
                return Ok(true);
            }
            if seen.insert(*p) {
                match repo.commit_ref(p) {
                    Ok(pc) if pc.height > floor => stack.push(*p),
                    Ok(_) | Err(kvgit_core::Error::UnknownCommit(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    Ok(false)
}
