//! `kvgit verify`: walks every ref, every commit they reach, every tree
//! node and blob, and checks each object exists, decodes, hashes to its id
//! and agrees with what points at it.
//!
//! Objects are read straight from the backend (never the node cache) and
//! decoded with the checked decoders, which verify the hash.

use std::collections::{HashMap, HashSet};
use std::io::Write;

use anyhow::{bail, Result};
use kvgit::core::object::{decode_blob, Node, ValueRef};
use kvgit::core::{Backend, Commit};
use kvgit::ObjectId;

use crate::output::stdout;
use crate::progress;
use crate::store::Ctx;

/// Checks the store; lists each problem on standard error.
pub fn run(ctx: &Ctx) -> Result<()> {
    let db = ctx.open_read_only()?;
    let backend: &dyn Backend = db.repo().backend().as_ref();
    let pb = progress::spinner("objects");
    pb.set_message("verifying");
    let mut v = Verifier {
        backend,
        problems: Vec::new(),
        commits: HashMap::new(),
        nodes: HashMap::new(),
        blobs: HashSet::new(),
        bytes: 0,
        pb: &pb,
    };
    let refs = backend.list_refs("")?;
    for (name, head) in &refs {
        v.walk_commits(*head, name)?;
    }
    v.check_heights();
    let reached: HashSet<ObjectId> = v
        .commits
        .keys()
        .chain(v.nodes.keys())
        .chain(v.blobs.iter())
        .copied()
        .collect();
    let mut unreachable = 0u64;
    backend.for_each_object(&mut |id, _| {
        if !reached.contains(&id) {
            unreachable += 1;
        }
        Ok(true)
    })?;
    pb.finish_and_clear();

    if !v.problems.is_empty() {
        let mut err = std::io::stderr().lock();
        for problem in &v.problems {
            writeln!(err, "{problem}")?;
        }
        bail!(
            "verify found {} problem{} in {}",
            v.problems.len(),
            if v.problems.len() == 1 { "" } else { "s" },
            crate::store::display(&ctx.store)
        );
    }
    let mut out = stdout();
    writeln!(
        out,
        "ok: {} refs, {} commits, {} tree nodes, {} blobs ({} bytes) verified; \
         {unreachable} unreachable objects (kvgit sweep deletes them)",
        refs.len(),
        v.commits.len(),
        v.nodes.len(),
        v.blobs.len(),
        v.bytes
    )?;
    out.flush()?;
    Ok(())
}

/// What a parent's child entry claims about a node.
struct Claim {
    level: u8,
    first_key: Vec<u8>,
    count: u64,
    bytes: u64,
}

/// What a node that decoded says about itself.
#[derive(Clone)]
struct Summary {
    level: u8,
    first_key: Option<Vec<u8>>,
    count: u64,
    bytes: u64,
}

struct Verifier<'a> {
    backend: &'a dyn Backend,
    problems: Vec<String>,
    /// Every commit reached: its height and parents, `None` if it is
    /// missing or corrupt.
    commits: HashMap<ObjectId, Option<(u64, Vec<ObjectId>)>>,
    /// Every node reached, `None` if it is missing or corrupt.
    nodes: HashMap<ObjectId, Option<Summary>>,
    blobs: HashSet<ObjectId>,
    /// Bytes of the objects read.
    bytes: u64,
    pb: &'a indicatif::ProgressBar,
}

impl Verifier<'_> {
    fn read(&mut self, id: &ObjectId) -> Result<Option<Vec<u8>>> {
        let bytes = self.backend.get_object(id)?;
        if let Some(b) = &bytes {
            self.bytes += b.len() as u64;
        }
        self.pb.inc(1);
        Ok(bytes)
    }

    fn walk_commits(&mut self, head: ObjectId, ref_name: &str) -> Result<()> {
        let mut stack = vec![head];
        while let Some(id) = stack.pop() {
            if self.commits.contains_key(&id) {
                continue;
            }
            let Some(bytes) = self.read(&id)? else {
                self.problems
                    .push(format!("missing commit {id} (reachable from {ref_name})"));
                self.commits.insert(id, None);
                continue;
            };
            let commit = match Commit::decode(&id, &bytes) {
                Ok(c) => c,
                Err(e) => {
                    self.problems
                        .push(format!("{e} (a commit reachable from {ref_name})"));
                    self.commits.insert(id, None);
                    continue;
                }
            };
            self.commits
                .insert(id, Some((commit.height, commit.parents.clone())));
            self.walk_tree(commit.root, &id)?;
            stack.extend(commit.parents.iter().copied());
        }
        Ok(())
    }

    /// Every commit's height must be 1 + its greatest parent's height.
    fn check_heights(&mut self) {
        let mut problems = Vec::new();
        for (id, entry) in &self.commits {
            let Some((height, parents)) = entry else {
                continue;
            };
            let mut max = 0;
            for p in parents {
                match self.commits.get(p) {
                    Some(Some((h, _))) => max = max.max(*h),
                    _ => {
                        max = u64::MAX;
                        break;
                    }
                }
            }
            if max != u64::MAX && *height != max + 1 {
                problems.push(format!(
                    "commit {id} has height {height}, but its parents make it {}",
                    max + 1
                ));
            }
        }
        problems.sort();
        self.problems.extend(problems);
    }

    fn walk_tree(&mut self, root: ObjectId, commit: &ObjectId) -> Result<()> {
        let mut stack: Vec<(ObjectId, Option<Claim>)> = vec![(root, None)];
        while let Some((id, claim)) = stack.pop() {
            let summary = match self.nodes.get(&id) {
                Some(known) => known.clone(),
                None => {
                    let summary = self.check_node(&id, commit, &mut stack)?;
                    self.nodes.insert(id, summary.clone());
                    summary
                }
            };
            if let (Some(s), Some(c)) = (summary, claim) {
                let mut wrong = Vec::new();
                if s.level != c.level {
                    wrong.push(format!("level {} (parent says {})", s.level, c.level));
                }
                if s.first_key.as_deref() != Some(&c.first_key[..]) {
                    wrong.push("a first key other than its parent's separator".to_string());
                }
                if s.count != c.count {
                    wrong.push(format!("{} keys (parent says {})", s.count, c.count));
                }
                if s.bytes != c.bytes {
                    wrong.push(format!("{} value bytes (parent says {})", s.bytes, c.bytes));
                }
                if !wrong.is_empty() {
                    self.problems.push(format!(
                        "tree node {id} has {} (tree of commit {commit})",
                        wrong.join(", ")
                    ));
                }
            }
        }
        Ok(())
    }

    /// Reads and decodes one node, checks its blobs, and pushes its
    /// children with what this node claims about them.
    fn check_node(
        &mut self,
        id: &ObjectId,
        commit: &ObjectId,
        stack: &mut Vec<(ObjectId, Option<Claim>)>,
    ) -> Result<Option<Summary>> {
        let Some(bytes) = self.read(id)? else {
            self.problems
                .push(format!("missing tree node {id} (tree of commit {commit})"));
            return Ok(None);
        };
        let node = match Node::decode_vec(id, bytes) {
            Ok(node) => node,
            Err(e) => {
                self.problems
                    .push(format!("{e} (a tree node of commit {commit})"));
                return Ok(None);
            }
        };
        if node.is_leaf() {
            let blobs: Vec<(ObjectId, u64)> = node
                .leaf_entries()
                .filter_map(|(_, v)| match v {
                    ValueRef::Blob { id, len } => Some((id, len)),
                    ValueRef::Inline(_) => None,
                })
                .collect();
            for (blob, len) in blobs {
                self.check_blob(&blob, len, commit)?;
            }
        } else {
            for child in node.children() {
                stack.push((
                    child.id,
                    Some(Claim {
                        level: node.level().wrapping_sub(1),
                        first_key: child.key.to_vec(),
                        count: child.count,
                        bytes: child.bytes,
                    }),
                ));
            }
        }
        Ok(Some(Summary {
            level: node.level(),
            first_key: node.first_key().map(<[u8]>::to_vec),
            count: node.count(),
            bytes: node.value_bytes(),
        }))
    }

    fn check_blob(&mut self, id: &ObjectId, len: u64, commit: &ObjectId) -> Result<()> {
        if !self.blobs.insert(*id) {
            return Ok(());
        }
        let Some(bytes) = self.read(id)? else {
            self.problems
                .push(format!("missing blob {id} (a value in commit {commit})"));
            return Ok(());
        };
        match decode_blob(id, &bytes) {
            Ok(value) if value.len() as u64 != len => self.problems.push(format!(
                "blob {id} holds {} bytes but its leaf says {len} (a value in commit {commit})",
                value.len()
            )),
            Ok(_) => {}
            Err(e) => self
                .problems
                .push(format!("{e} (a value in commit {commit})")),
        }
        Ok(())
    }
}
