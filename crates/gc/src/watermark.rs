//! Size accounting and the high/low-water marks.
//!
//! A commit's key count and total value bytes come from its root node's
//! aggregates (every internal node carries its subtree's count and bytes),
//! so measuring a branch costs one commit read and one node read, whatever
//! its size.

use kvgit_core::{refs, ObjectId, Repo};

/// The size of one commit's key space.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// How many keys the commit holds.
    pub keys: u64,
    /// The total length of their values in bytes (keys and node overhead
    /// are not counted: this is the figure the watermarks compare with).
    pub value_bytes: u64,
}

/// The thresholds of a high/low-water rebase, in value bytes: once a
/// branch holds more than [`high`](Watermarks::high), a rebase drops cold
/// keys until it holds at most [`low`](Watermarks::low).
///
/// The gap between the two is what keeps a busy branch from being rebased
/// after every commit. The fields are private so that `low <= high` always
/// holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Watermarks {
    high: u64,
    low: u64,
}

/// What can go wrong when measuring or configuring.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WatermarkError {
    /// The low water is above the high water.
    #[error("low water {low} is above high water {high}")]
    LowAboveHigh {
        /// The high water asked for.
        high: u64,
        /// The low water asked for.
        low: u64,
    },
    /// The branch name is invalid or the store failed.
    #[error(transparent)]
    Core(#[from] kvgit_core::Error),
}

impl Watermarks {
    /// The default low water, as a fraction of the high water: 80%.
    pub const DEFAULT_LOW_PERCENT: u64 = 80;

    /// High water `high`, low water 80% of it (rounded down).
    pub fn new(high: u64) -> Self {
        // 128-bit so that any u64 high water scales without overflow; the
        // result is at most `high`, so it fits back into a u64.
        let low = u128::from(high) * u128::from(Self::DEFAULT_LOW_PERCENT) / 100;
        Watermarks {
            high,
            low: u64::try_from(low).expect("80% of a u64 fits in a u64"),
        }
    }

    /// Explicit marks; [`WatermarkError::LowAboveHigh`] unless
    /// `low <= high`.
    pub fn with_low(high: u64, low: u64) -> Result<Self, WatermarkError> {
        if low > high {
            return Err(WatermarkError::LowAboveHigh { high, low });
        }
        Ok(Watermarks { high, low })
    }

    /// The high water: a rebase runs when a branch holds more value bytes
    /// than this.
    pub fn high(&self) -> u64 {
        self.high
    }

    /// The low water: a rebase drops keys until the branch holds at most
    /// this many value bytes.
    pub fn low(&self) -> u64 {
        self.low
    }

    /// True if `usage` is above the high water (strictly: a branch holding
    /// exactly the high water is left alone).
    pub fn exceeded(&self, usage: &Usage) -> bool {
        usage.value_bytes > self.high
    }
}

/// The usage of commit `commit`, in O(1): one commit and one node read.
pub fn usage(repo: &Repo, commit: &ObjectId) -> Result<Usage, WatermarkError> {
    let root = repo.commit_ref(commit)?.root;
    let tree = repo.tree(root)?;
    Ok(Usage {
        keys: tree.len(),
        value_bytes: tree.value_bytes(),
    })
}

/// The head of branch `branch` (a short name such as `main`) and its usage;
/// `None` if the branch does not exist.
pub fn branch_usage(
    repo: &Repo,
    branch: &str,
) -> Result<Option<(ObjectId, Usage)>, WatermarkError> {
    let ref_name = refs::branch_ref(branch)?;
    match repo.get_ref(&ref_name)? {
        Some(head) => Ok(Some((head, usage(repo, &head)?))),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_low_is_80_percent() {
        assert_eq!(Watermarks::new(200).low(), 160);
        assert_eq!(Watermarks::new(0).low(), 0);
        assert_eq!(Watermarks::new(u64::MAX).low(), u64::MAX / 100 * 80 + 12);
        assert_eq!(Watermarks::new(9).low(), 7);
    }

    #[test]
    fn low_must_not_exceed_high() {
        assert!(Watermarks::with_low(200, 100).is_ok());
        assert!(Watermarks::with_low(200, 200).is_ok());
        assert!(matches!(
            Watermarks::with_low(100, 200),
            Err(WatermarkError::LowAboveHigh {
                high: 100,
                low: 200
            })
        ));
    }

    #[test]
    fn exceeded_is_strict() {
        let w = Watermarks::new(100);
        let at = |value_bytes| Usage {
            keys: 1,
            value_bytes,
        };
        assert!(!w.exceeded(&at(100)));
        assert!(w.exceeded(&at(101)));
    }
}
