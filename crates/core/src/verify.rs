//! Checking a whole store: every ref, every commit they reach, every tree
//! node and blob.
//!
//! Objects are read straight from the backend (never the node cache) and
//! decoded with the checked decoders, which verify the hash. Each node is
//! checked against its parent's entry by the same rules the readers apply
//! on the way down ([`check_child`], [`check_root`]); here they are applied
//! to whole subtrees, summarised once each, so a subtree shared by many
//! commits is read once.

use std::collections::{HashMap, HashSet};

use crate::error::Result;
use crate::id::ObjectId;
use crate::object::{decode_blob, Commit, Node, ValueRef};
use crate::repo::Repo;
use crate::store::Backend;
use crate::tree::{check_child, check_root, Claim, Shape};

/// What [`Repo::verify`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// How many refs were walked.
    pub refs: usize,
    /// How many commits were reached (damaged ones included).
    pub commits: usize,
    /// How many tree nodes were reached (damaged ones included).
    pub nodes: usize,
    /// How many blobs were reached (damaged ones included).
    pub blobs: usize,
    /// The bytes of the objects read.
    pub bytes: u64,
    /// Objects in the store that no ref reaches (garbage for a sweep).
    pub unreachable: u64,
    /// Every problem found, one line each; empty for a sound store.
    pub problems: Vec<String>,
}

impl VerifyReport {
    /// True if no problem was found.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

impl Repo {
    /// Checks the whole store: every object reachable from a ref exists,
    /// decodes, hashes to its id and agrees with what points at it (the
    /// tree rules of FORMAT.md, commit heights, blob lengths). Problems
    /// are listed in the report; an error means the store could not be
    /// read at all.
    pub fn verify(&self) -> Result<VerifyReport> {
        self.verify_with(&mut || {})
    }

    /// Like [`Repo::verify`], calling `on_object` after each object read
    /// (for a progress display).
    pub fn verify_with(&self, on_object: &mut dyn FnMut()) -> Result<VerifyReport> {
        let backend: &dyn Backend = self.backend().as_ref();
        let mut v = Verifier {
            backend,
            on_object,
            problems: Vec::new(),
            commits: HashMap::new(),
            nodes: HashMap::new(),
            roots: HashSet::new(),
            blobs: HashSet::new(),
            bytes: 0,
            read_errors: 0,
            shallow: HashSet::new(),
        };
        // Commits a shallow fetch stored without their parents: their
        // history ends there by design.
        v.shallow.extend(self.shallow_commits()?);
        let refs = backend.list_refs("")?;
        for (name, head) in &refs {
            v.walk_commits(*head, name)?;
        }
        v.check_heights();
        let mut unreachable = 0u64;
        let listed = backend.for_each_object(&mut |id, _| {
            let reached =
                v.commits.contains_key(&id) || v.nodes.contains_key(&id) || v.blobs.contains(&id);
            if !reached {
                unreachable += 1;
            }
            Ok(true)
        });
        if let Err(e) = listed {
            // The walk from the refs is done: report what it found, with
            // the listing's failure as one more problem.
            v.problems
                .push(format!("cannot list the store's objects: {e}"));
        }
        Ok(VerifyReport {
            refs: refs.len(),
            commits: v.commits.len(),
            nodes: v.nodes.len(),
            blobs: v.blobs.len(),
            bytes: v.bytes,
            unreachable,
            problems: v.problems,
        })
    }
}

/// What a subtree that decoded says about itself.
#[derive(Clone)]
struct Summary {
    level: u8,
    entries: usize,
    count: u64,
    bytes: u64,
    first_key: Option<Vec<u8>>,
    /// The subtree's greatest key (as far as its nodes could be read).
    max_key: Option<Vec<u8>>,
    /// A node on the subtree's last path has a single entry: allowed only
    /// if the subtree is at the end of its level.
    spine_single: bool,
    /// Summarised without its children (it sat at the wrong level, which
    /// its parent reports); read again if met where it belongs.
    shallow: bool,
}

impl Summary {
    fn shape(&self) -> Shape<'_> {
        Shape {
            level: self.level,
            entries: self.entries,
            count: self.count,
            bytes: self.bytes,
            first_key: self.first_key.as_deref(),
            last_key: self.max_key.as_deref(),
            single: self.spine_single,
        }
    }
}

struct Verifier<'a> {
    backend: &'a dyn Backend,
    on_object: &'a mut dyn FnMut(),
    problems: Vec<String>,
    /// Every commit reached: its height and parents, `None` if it is
    /// missing or corrupt.
    commits: HashMap<ObjectId, Option<(u64, Vec<ObjectId>)>>,
    /// Every node reached, `None` if it is missing or corrupt.
    nodes: HashMap<ObjectId, Option<Summary>>,
    /// Roots already checked as roots.
    roots: HashSet<ObjectId>,
    blobs: HashSet<ObjectId>,
    /// Bytes of the objects read.
    bytes: u64,
    /// Objects the backend failed to read, so far.
    read_errors: usize,
    /// Commits stored without their parents (a shallow fetch's cut).
    shallow: HashSet<ObjectId>,
}

/// How many objects [`Repo::verify`] lists as unreadable before it takes
/// the whole store as unreadable and returns the error.
const MAX_READ_ERRORS: usize = 100;

impl Verifier<'_> {
    /// The object's bytes; `None` if it is missing, or if the backend
    /// could not read it (then the error is listed as a problem too, so a
    /// damaged store still gets a report; after [`MAX_READ_ERRORS`] the
    /// store is taken as unreadable and the error ends the walk).
    fn read(&mut self, id: &ObjectId) -> Result<Option<Vec<u8>>> {
        let bytes = match self.backend.get_object(id) {
            Ok(bytes) => bytes,
            Err(e) if self.read_errors < MAX_READ_ERRORS => {
                self.read_errors += 1;
                self.problems.push(format!("cannot read object {id}: {e}"));
                (self.on_object)();
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        if let Some(b) = &bytes {
            self.bytes = self.bytes.saturating_add(b.len() as u64);
        }
        (self.on_object)();
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
            if !self.shallow.contains(&id) {
                stack.extend(commit.parents.iter().copied());
            }
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
            let mut max = Some(0u64);
            for p in parents {
                match self.commits.get(p) {
                    Some(Some((h, _))) => max = max.map(|m| m.max(*h)),
                    _ => {
                        max = None;
                        break;
                    }
                }
            }
            let Some(max) = max else { continue };
            match max.checked_add(1) {
                Some(expected) if expected == *height => {}
                Some(expected) => problems.push(format!(
                    "commit {id} has height {height}, but its parents make it {expected}"
                )),
                None => problems.push(format!(
                    "commit {id} has a parent of height {max}, which leaves no room for a child"
                )),
            }
        }
        problems.sort();
        self.problems.extend(problems);
    }

    fn walk_tree(&mut self, root: ObjectId, commit: &ObjectId) -> Result<()> {
        let summary = self.visit(root, None, commit)?;
        if let Some(s) = summary {
            if self.roots.insert(root) {
                if let Err(reason) = check_root(&s.shape()) {
                    self.problems.push(format!(
                        "tree node {root} is a {reason} (tree of commit {commit})"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Reads node `id` and its subtree (once), checking each child against
    /// its entry; returns its summary, `None` if it is missing or corrupt.
    /// `level`: the level its parent expects (children are read only if it
    /// matches, so the recursion is at most 65 deep).
    fn visit(
        &mut self,
        id: ObjectId,
        level: Option<u8>,
        commit: &ObjectId,
    ) -> Result<Option<Summary>> {
        match self.nodes.get(&id) {
            Some(Some(s)) if s.shallow && level == Some(s.level) => {}
            Some(known) => return Ok(known.clone()),
            None => {}
        }
        let Some(bytes) = self.read(&id)? else {
            self.problems
                .push(format!("missing tree node {id} (tree of commit {commit})"));
            self.nodes.insert(id, None);
            return Ok(None);
        };
        let node = match Node::decode_vec(&id, bytes) {
            Ok(node) => node,
            Err(e) => {
                self.problems
                    .push(format!("{e} (a tree node of commit {commit})"));
                self.nodes.insert(id, None);
                return Ok(None);
            }
        };
        let own = Shape::of(&node);
        let mut summary = Summary {
            level: own.level,
            entries: own.entries,
            count: own.count,
            bytes: own.bytes,
            first_key: own.first_key.map(<[u8]>::to_vec),
            max_key: own.last_key.map(<[u8]>::to_vec),
            spine_single: own.single,
            shallow: false,
        };
        if level.is_some_and(|l| l != node.level()) {
            summary.shallow = true;
        } else if node.is_leaf() {
            self.check_blobs(&node, commit)?;
        } else {
            let last = node.len() - 1;
            for (i, child) in node.children().enumerate() {
                let claim = Claim {
                    level: node.level() - 1,
                    key: child.key,
                    count: child.count,
                    bytes: child.bytes,
                    upper: node.key_at(i + 1),
                };
                let Some(s) = self.visit(child.id, Some(claim.level), commit)? else {
                    continue;
                };
                if let Err(wrong) = check_child(&s.shape(), &claim) {
                    self.problems.push(format!(
                        "tree node {} has {} (tree of commit {commit})",
                        child.id,
                        wrong.join(", ")
                    ));
                }
                if i == last {
                    summary.max_key = s.max_key.clone().or(summary.max_key);
                    summary.spine_single |= s.spine_single;
                }
            }
        }
        self.nodes.insert(id, Some(summary.clone()));
        Ok(Some(summary))
    }

    fn check_blobs(&mut self, node: &Node, commit: &ObjectId) -> Result<()> {
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
        Ok(())
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
