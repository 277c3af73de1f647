//! Merge functions and the registry that picks one for a key.
//!
//! A three-way merge settles most keys by itself: a key changed on one side
//! only takes that side's change, a key changed the same way on both sides
//! takes it once. Only a key changed *differently* on both sides needs a
//! decision, and that is what a [`MergeFn`] makes: it sees the key's base,
//! ours and theirs values and returns a [`Resolution`].
//!
//! A [`Registry`] maps keys to [`Policy`]s: the exact key first, then the
//! longest registered prefix, then a default. A policy is a merge function,
//! or one of the two policies that decide outright which side a key takes
//! ([`Policy::Ours`], [`Policy::Theirs`]) without looking at any value.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use parking_lot::RwLock;

/// What a merge function decided for one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// The key takes this value.
    Value(Vec<u8>),
    /// The key is deleted.
    Delete,
    /// The function cannot merge these values: the key is reported as a
    /// conflict, with the reason if one is given.
    Conflict(Option<String>),
}

impl Resolution {
    /// A conflict with a reason.
    ///
    /// ```
    /// use kvgit_merge::Resolution;
    /// assert_eq!(Resolution::conflict("both renamed"), Resolution::Conflict(Some("both renamed".into())));
    /// ```
    pub fn conflict(reason: impl Into<String>) -> Self {
        Resolution::Conflict(Some(reason.into()))
    }
}

/// Merges the values of one key that both sides changed differently.
///
/// `base`, `ours` and `theirs` are the key's values in the merge base and
/// in the two trees being merged; `None` means the key is absent there
/// (never added, or deleted). The function is called for a key whose
/// `ours` and `theirs` differ (so at most one of them is `None`), and for
/// a key both sides changed identically only if
/// [`merge_equal_changes`](MergeFn::merge_equal_changes) says so.
///
/// A function must not panic; if it does anyway, the panic is caught and
/// the key is reported as a conflict naming the panic message (the panic
/// hook still runs, so the message is also printed as usual).
///
/// Closures with the same signature are merge functions:
///
/// ```
/// use kvgit_merge::{MergeFn, Resolution};
///
/// let longest = |_key: &[u8], _base: Option<&[u8]>, ours: Option<&[u8]>, theirs: Option<&[u8]>| {
///     match (ours, theirs) {
///         (Some(o), Some(t)) => Resolution::Value(if o.len() >= t.len() { o } else { t }.to_vec()),
///         _ => Resolution::conflict("deleted on one side"),
///     }
/// };
/// assert_eq!(
///     longest.merge(b"k", None, Some(b"abc"), Some(b"de")),
///     Resolution::Value(b"abc".to_vec())
/// );
/// ```
pub trait MergeFn: Send + Sync {
    /// Decides the merged value of `key`.
    ///
    /// ```
    /// use kvgit_merge::{MergeFn, Resolution};
    ///
    /// /// Concatenates both sides' additions to an append-only log.
    /// struct AppendLog;
    ///
    /// impl MergeFn for AppendLog {
    ///     fn merge(
    ///         &self,
    ///         _key: &[u8],
    ///         base: Option<&[u8]>,
    ///         ours: Option<&[u8]>,
    ///         theirs: Option<&[u8]>,
    ///     ) -> Resolution {
    ///         let base = base.unwrap_or_default();
    ///         match (ours, theirs) {
    ///             (Some(o), Some(t)) if o.starts_with(base) && t.starts_with(base) => {
    ///                 let mut merged = o.to_vec();
    ///                 merged.extend_from_slice(&t[base.len()..]);
    ///                 Resolution::Value(merged)
    ///             }
    ///             _ => Resolution::conflict("the log was rewritten, not appended to"),
    ///         }
    ///     }
    /// }
    ///
    /// assert_eq!(
    ///     AppendLog.merge(b"log", Some(b"a\n"), Some(b"a\nb\n"), Some(b"a\nc\n")),
    ///     Resolution::Value(b"a\nb\nc\n".to_vec())
    /// );
    /// assert!(matches!(
    ///     AppendLog.merge(b"log", Some(b"a\n"), Some(b"x\n"), Some(b"a\nc\n")),
    ///     Resolution::Conflict(Some(_))
    /// ));
    /// ```
    fn merge(
        &self,
        key: &[u8],
        base: Option<&[u8]>,
        ours: Option<&[u8]>,
        theirs: Option<&[u8]>,
    ) -> Resolution;

    /// Whether the function is also consulted for a key both sides changed
    /// to the *same* value. Default: false, and the shared value is taken
    /// once, as for keys without a function.
    ///
    /// A function whose values accumulate changes relative to base must
    /// say true: two writers that each add 1 to a counter at 100 both
    /// write 101, and the merge must give 102, not 101. [`Counter`]
    /// does.
    ///
    /// [`Counter`]: crate::Counter
    ///
    /// ```
    /// use kvgit_merge::{Counter, MergeFn, Max, Resolution};
    /// assert!(Counter.merge_equal_changes());
    /// assert!(!Max.merge_equal_changes());
    /// // Both sides went from 100 to 101: two increments.
    /// assert_eq!(
    ///     Counter.merge(b"hits", Some(b"100"), Some(b"101"), Some(b"101")),
    ///     Resolution::Value(b"102".to_vec())
    /// );
    /// ```
    fn merge_equal_changes(&self) -> bool {
        false
    }
}

impl<F> MergeFn for F
where
    F: Fn(&[u8], Option<&[u8]>, Option<&[u8]>, Option<&[u8]>) -> Resolution + Send + Sync,
{
    fn merge(
        &self,
        key: &[u8],
        base: Option<&[u8]>,
        ours: Option<&[u8]>,
        theirs: Option<&[u8]>,
    ) -> Resolution {
        self(key, base, ours, theirs)
    }
}

/// How a registry entry settles the keys it covers.
#[derive(Clone)]
pub enum Policy {
    /// Every key covered keeps ours' state (value or absence), whatever
    /// either side changed: theirs' changes under it are not taken, even
    /// where ours did not touch the key. No value is read.
    Ours,
    /// Every key covered takes theirs' state (value or absence), whatever
    /// either side changed: ours' changes under it are reverted to theirs,
    /// even where theirs did not touch the key. No value is read.
    Theirs,
    /// Keys changed on one side only take that change; a key changed
    /// differently on both sides goes to the function.
    Fn(Arc<dyn MergeFn>),
}

impl Policy {
    /// A [`Policy::Fn`] holding `f`.
    ///
    /// ```
    /// use kvgit_merge::{Counter, Policy, Registry};
    /// let registry = Registry::new();
    /// registry.set_policy("hits", Policy::func(Counter)); // the same as registry.set("hits", Counter)
    /// assert!(matches!(registry.lookup(b"hits"), Some(Policy::Fn(_))));
    /// ```
    pub fn func(f: impl MergeFn + 'static) -> Self {
        Policy::Fn(Arc::new(f))
    }
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Policy::Ours => f.write_str("Ours"),
            Policy::Theirs => f.write_str("Theirs"),
            Policy::Fn(_) => f.write_str("Fn(..)"),
        }
    }
}

/// Which policy governs which keys: the exact key first, then the longest
/// registered prefix the key starts with, then the default. A key that no
/// entry covers, changed differently on both sides, is a conflict.
///
/// A `Registry` is cheap to clone and clones share their entries, so
/// entries can be set and removed at run time from any thread. A merge
/// works on a snapshot taken when it starts: changes made meanwhile apply
/// to the next merge.
///
/// ```
/// use kvgit_merge::{Counter, Policy, Registry};
///
/// let registry = Registry::new();
/// registry.set("hits", Counter);
/// registry.set_prefix_policy("cache/", Policy::Theirs);
/// assert!(matches!(registry.lookup(b"hits"), Some(Policy::Fn(_))));
/// assert!(matches!(registry.lookup(b"cache/x"), Some(Policy::Theirs)));
/// assert!(registry.lookup(b"other").is_none());
/// ```
#[derive(Clone, Default)]
pub struct Registry {
    entries: Arc<RwLock<Arc<Entries>>>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries = self.snapshot();
        f.debug_struct("Registry")
            .field("exact", &entries.exact.len())
            .field("prefixes", &entries.prefixes.len())
            .field("default", &entries.default)
            .finish()
    }
}

/// The entries of a registry at one moment.
#[derive(Clone, Default)]
pub(crate) struct Entries {
    exact: BTreeMap<Vec<u8>, Policy>,
    prefixes: BTreeMap<Vec<u8>, Policy>,
    /// The distinct lengths of the registered prefixes, so that a lookup
    /// probes one map entry per length instead of scanning.
    prefix_lens: BTreeSet<usize>,
    default: Option<Policy>,
    /// Summaries of the entries, kept current by every update so that a
    /// merge can check them in O(1).
    flags: Flags,
}

#[derive(Clone, Copy, Default)]
struct Flags {
    ours: bool,
    theirs: bool,
    equal_changes: bool,
}

impl Registry {
    /// An empty registry: every key changed differently on both sides is a
    /// conflict.
    ///
    /// ```
    /// use kvgit_merge::Registry;
    /// let registry = Registry::new();
    /// assert!(registry.lookup(b"any key").is_none());
    /// ```
    pub fn new() -> Self {
        Registry::default()
    }

    fn update(&self, edit: impl FnOnce(&mut Entries)) {
        let mut guard = self.entries.write();
        let entries = Arc::make_mut(&mut guard);
        edit(entries);
        let all = || {
            entries
                .exact
                .values()
                .chain(entries.prefixes.values())
                .chain(entries.default.iter())
        };
        entries.flags = Flags {
            ours: all().any(|p| matches!(p, Policy::Ours)),
            theirs: all().any(|p| matches!(p, Policy::Theirs)),
            equal_changes: all().any(|p| matches!(p, Policy::Fn(f) if f.merge_equal_changes())),
        };
    }

    /// A new registry holding the entries this one holds now, not shared
    /// with it: changes to either leave the other alone (for overrides
    /// that apply to one merge).
    ///
    /// ```
    /// use kvgit_merge::{Counter, Policy, Registry};
    /// let registry = Registry::new();
    /// registry.set("hits", Counter);
    /// let once = registry.fork();
    /// once.set_policy("owner", Policy::Ours);
    /// assert!(once.lookup(b"hits").is_some()); // what it held when forked
    /// assert!(registry.lookup(b"owner").is_none()); // not shared back
    /// ```
    pub fn fork(&self) -> Registry {
        Registry {
            entries: Arc::new(RwLock::new(self.snapshot())),
        }
    }

    pub(crate) fn snapshot(&self) -> Arc<Entries> {
        self.entries.read().clone()
    }

    /// Sets the merge function of exactly `key`.
    ///
    /// ```
    /// use kvgit_merge::{Counter, Policy, Registry, Resolution};
    /// let registry = Registry::new();
    /// registry.set("hits", Counter);
    /// let Some(Policy::Fn(f)) = registry.lookup(b"hits") else { panic!("registered") };
    /// assert_eq!(f.merge(b"hits", Some(b"1"), Some(b"2"), Some(b"3")), Resolution::Value(b"4".to_vec()));
    /// assert!(registry.lookup(b"hits2").is_none()); // exactly that key
    /// ```
    pub fn set(&self, key: impl AsRef<[u8]>, f: impl MergeFn + 'static) {
        self.set_policy(key, Policy::func(f));
    }

    /// Sets the policy of exactly `key`.
    ///
    /// ```
    /// use kvgit_merge::{Policy, Registry};
    /// let registry = Registry::new();
    /// registry.set_policy("owner", Policy::Ours);
    /// assert!(matches!(registry.lookup(b"owner"), Some(Policy::Ours)));
    /// ```
    pub fn set_policy(&self, key: impl AsRef<[u8]>, policy: Policy) {
        let key = key.as_ref().to_vec();
        self.update(|e| {
            e.exact.insert(key, policy);
        });
    }

    /// Sets the merge function of every key starting with `prefix` (a
    /// longer registered prefix, or the exact key, takes precedence).
    ///
    /// ```
    /// use kvgit_merge::{Counter, Max, MergeFn, Policy, Registry, Resolution};
    /// let registry = Registry::new();
    /// registry.set_prefix("stats/", Counter);
    /// registry.set_prefix("stats/max/", Max); // longer prefix wins
    /// let decide = |key: &[u8]| match registry.lookup(key) {
    ///     Some(Policy::Fn(f)) => f.merge(key, Some(b"5"), Some(b"7"), Some(b"6")),
    ///     _ => panic!("covered"),
    /// };
    /// assert_eq!(decide(b"stats/hits"), Resolution::Value(b"8".to_vec())); // 7 + 6 - 5
    /// assert_eq!(decide(b"stats/max/latency"), Resolution::Value(b"7".to_vec()));
    /// ```
    pub fn set_prefix(&self, prefix: impl AsRef<[u8]>, f: impl MergeFn + 'static) {
        self.set_prefix_policy(prefix, Policy::func(f));
    }

    /// Sets the policy of every key starting with `prefix`.
    ///
    /// ```
    /// use kvgit_merge::{Policy, Registry};
    /// let registry = Registry::new();
    /// registry.set_prefix_policy("cache/", Policy::Theirs);
    /// assert!(matches!(registry.lookup(b"cache/page/1"), Some(Policy::Theirs)));
    /// assert!(registry.lookup(b"cached").is_none());
    /// ```
    pub fn set_prefix_policy(&self, prefix: impl AsRef<[u8]>, policy: Policy) {
        let prefix = prefix.as_ref().to_vec();
        self.update(|e| {
            e.prefix_lens.insert(prefix.len());
            e.prefixes.insert(prefix, policy);
        });
    }

    /// Sets the merge function of keys no other entry covers.
    ///
    /// ```
    /// use kvgit_merge::{LastWriterWins, Policy, Registry};
    /// let registry = Registry::new();
    /// registry.set_default(LastWriterWins);
    /// assert!(matches!(registry.lookup(b"anything"), Some(Policy::Fn(_))));
    /// ```
    pub fn set_default(&self, f: impl MergeFn + 'static) {
        self.set_default_policy(Some(Policy::func(f)));
    }

    /// Sets (or with `None`, removes) the policy of keys no other entry
    /// covers.
    ///
    /// ```
    /// use kvgit_merge::{Policy, Registry};
    /// let registry = Registry::new();
    /// registry.set_default_policy(Some(Policy::Ours));
    /// assert!(matches!(registry.lookup(b"anything"), Some(Policy::Ours)));
    /// registry.set_default_policy(None);
    /// assert!(registry.lookup(b"anything").is_none());
    /// ```
    pub fn set_default_policy(&self, policy: Option<Policy>) {
        self.update(|e| e.default = policy);
    }

    /// Removes the entry of exactly `key`; true if there was one.
    ///
    /// ```
    /// use kvgit_merge::{Counter, Registry};
    /// let registry = Registry::new();
    /// registry.set("hits", Counter);
    /// assert!(registry.remove("hits"));
    /// assert!(!registry.remove("hits"));
    /// assert!(registry.lookup(b"hits").is_none());
    /// ```
    pub fn remove(&self, key: impl AsRef<[u8]>) -> bool {
        let mut removed = false;
        self.update(|e| removed = e.exact.remove(key.as_ref()).is_some());
        removed
    }

    /// Removes the entry of `prefix`; true if there was one.
    ///
    /// ```
    /// use kvgit_merge::{Counter, Registry};
    /// let registry = Registry::new();
    /// registry.set_prefix("stats/", Counter);
    /// assert!(registry.remove_prefix("stats/"));
    /// assert!(registry.lookup(b"stats/hits").is_none());
    /// assert!(!registry.remove_prefix("stats/"));
    /// ```
    pub fn remove_prefix(&self, prefix: impl AsRef<[u8]>) -> bool {
        let prefix = prefix.as_ref();
        let mut removed = false;
        self.update(|e| {
            removed = e.prefixes.remove(prefix).is_some();
            if removed && !e.prefixes.keys().any(|p| p.len() == prefix.len()) {
                e.prefix_lens.remove(&prefix.len());
            }
        });
        removed
    }

    /// The policy that governs `key`, if any entry covers it.
    ///
    /// ```
    /// use kvgit_merge::{Counter, Max, Policy, Registry};
    /// let registry = Registry::new();
    /// registry.set_default(Max);
    /// registry.set_prefix_policy("a/", Policy::Ours);
    /// registry.set("a/hits", Counter);
    /// assert!(matches!(registry.lookup(b"a/hits"), Some(Policy::Fn(_)))); // exact key
    /// assert!(matches!(registry.lookup(b"a/other"), Some(Policy::Ours))); // prefix
    /// assert!(matches!(registry.lookup(b"b"), Some(Policy::Fn(_)))); // default
    /// ```
    pub fn lookup(&self, key: &[u8]) -> Option<Policy> {
        self.snapshot().lookup(key).cloned()
    }
}

impl Entries {
    /// The exact entry, else the longest prefix, else the default.
    pub(crate) fn lookup(&self, key: &[u8]) -> Option<&Policy> {
        if let Some(policy) = self.exact.get(key) {
            return Some(policy);
        }
        for &len in self.prefix_lens.range(..=key.len()).rev() {
            if let Some(policy) = key.get(..len).and_then(|p| self.prefixes.get(p)) {
                return Some(policy);
            }
        }
        self.default.as_ref()
    }

    /// True if some entry is [`Policy::Ours`] (resp. [`Policy::Theirs`]):
    /// then a merge whose theirs (resp. ours) is unchanged can still
    /// differ from the plain fast-forward (resp. no-op).
    pub(crate) fn has_side_policy(&self, side: Side) -> bool {
        match side {
            Side::Ours => self.flags.ours,
            Side::Theirs => self.flags.theirs,
        }
    }

    /// True if some entry's function wants keys both sides changed
    /// identically (see [`MergeFn::merge_equal_changes`]).
    pub(crate) fn has_equal_change_fn(&self) -> bool {
        self.flags.equal_changes
    }

    /// True if some entry is a side policy, so that keys changed on one
    /// side only need a lookup too.
    pub(crate) fn has_any_side_policy(&self) -> bool {
        self.flags.ours || self.flags.theirs
    }
}

/// One side of a merge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    Ours,
    Theirs,
}

/// Calls `f`, turning a panic into a conflict naming the panic message.
pub(crate) fn call_guarded(
    f: &dyn MergeFn,
    key: &[u8],
    base: Option<&[u8]>,
    ours: Option<&[u8]>,
    theirs: Option<&[u8]>,
) -> Resolution {
    match catch_unwind(AssertUnwindSafe(|| f.merge(key, base, ours, theirs))) {
        Ok(resolution) => resolution,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a non-string payload".to_string());
            Resolution::Conflict(Some(format!("merge function panicked: {message}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(v: &'static [u8]) -> impl MergeFn {
        move |_: &[u8], _: Option<&[u8]>, _: Option<&[u8]>, _: Option<&[u8]>| {
            Resolution::Value(v.to_vec())
        }
    }

    fn decide(r: &Registry, key: &[u8]) -> Option<Resolution> {
        match r.lookup(key)? {
            Policy::Fn(f) => Some(f.merge(key, None, None, None)),
            Policy::Ours => Some(Resolution::Value(b"<ours>".to_vec())),
            Policy::Theirs => Some(Resolution::Value(b"<theirs>".to_vec())),
        }
    }

    #[test]
    fn exact_then_longest_prefix_then_default() {
        let r = Registry::new();
        r.set_default(fixed(b"default"));
        r.set_prefix("a", fixed(b"a"));
        r.set_prefix("ab", fixed(b"ab"));
        r.set("abc", fixed(b"exact"));
        r.set_prefix_policy("x/", Policy::Ours);
        let v = |s: &[u8]| Some(Resolution::Value(s.to_vec()));
        assert_eq!(decide(&r, b"abc"), v(b"exact"));
        assert_eq!(decide(&r, b"abcd"), v(b"ab"));
        assert_eq!(decide(&r, b"ab"), v(b"ab"));
        assert_eq!(decide(&r, b"ax"), v(b"a"));
        assert_eq!(decide(&r, b"b"), v(b"default"));
        assert_eq!(decide(&r, b"x/1"), v(b"<ours>"));

        assert!(r.remove("abc"));
        assert!(!r.remove("abc"));
        assert_eq!(decide(&r, b"abc"), v(b"ab"));
        assert!(r.remove_prefix("ab"));
        assert_eq!(decide(&r, b"abc"), v(b"a"));
        r.set_default_policy(None);
        assert_eq!(decide(&r, b"b"), None);
    }

    #[test]
    fn clones_share_entries_and_snapshots_do_not_move() {
        let r = Registry::new();
        let snapshot = r.snapshot();
        let clone = r.clone();
        clone.set("k", fixed(b"1"));
        assert!(r.lookup(b"k").is_some());
        assert!(snapshot.lookup(b"k").is_none());
    }

    #[test]
    fn panics_become_conflicts() {
        let boom = |_: &[u8], _: Option<&[u8]>, _: Option<&[u8]>, _: Option<&[u8]>| -> Resolution {
            panic!("boom {}", 42)
        };
        let r = call_guarded(&boom, b"k", None, None, None);
        assert_eq!(
            r,
            Resolution::Conflict(Some("merge function panicked: boom 42".into()))
        );
    }
}
