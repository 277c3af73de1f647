//! [`Branch::transaction_at`]: a transaction whose base is a given commit
//! rather than the branch's head (a writer that keeps its own place on a
//! branch, such as the Python binding's `Versioned`).

use crate::branch::Branch;
use crate::db::CommitId;
use crate::error::{Error, Result};
use crate::snapshot::Snapshot;
use crate::tx::Transaction;

impl Branch {
    /// A transaction on commit `base` instead of the head: it reads `base`
    /// under its staged writes, and its commit is compared with `base` as
    /// a head that moved meanwhile, so if the branch no longer holds
    /// `base` the commit merges three-way onto the head (base: `base`),
    /// as a transaction that lost a race does (the head read here is
    /// merged onto before the first compare-and-swap, and any head that
    /// moves later is merged onto at once). The commit then moves
    /// the branch like any other (validation hooks, subscriptions, access
    /// recency, automatic garbage collection). `base` is pinned against
    /// garbage collection while the transaction lives.
    ///
    /// ```
    /// let db = kvgit::Db::memory();
    /// let main = db.branch("main")?;
    /// let first = main.put("a", "1")?;
    /// main.put("b", "2")?;
    /// let mut tx = main.transaction_at(&first)?;
    /// assert_eq!(tx.get("b")?, None);
    /// tx.put("c", "3");
    /// tx.commit()?;
    /// assert_eq!(main.get("b")?.as_deref(), Some(&b"2"[..]));
    /// assert_eq!(main.get("c")?.as_deref(), Some(&b"3"[..]));
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    ///
    /// Fails with [`Error::UnknownCommit`] if `base` is no commit of the
    /// store, and [`Error::NoSuchBranch`] if the branch was deleted.
    pub fn transaction_at(&self, base: &CommitId) -> Result<Transaction> {
        let db = self.db();
        let repo = &db.inner.repo;
        let _fence = repo.write_fence();
        let commit = repo
            .commit_ref(base)
            .map_err(|_| Error::unknown_commit(base))?;
        let tree = repo.tree(commit.root)?;
        let pin = repo.pin(*base);
        let head = self.head()?;
        let snapshot = Snapshot::pinned(db.clone(), *base, tree, pin, self.name());
        Ok(Transaction::on(self.clone(), snapshot, head))
    }
}
