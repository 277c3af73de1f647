//! Built-in merge functions.
//!
//! Each one is a unit struct implementing [`MergeFn`]; register it with
//! [`Registry::set`](crate::Registry::set) and friends. They are only
//! consulted for keys that both sides changed differently.
//!
//! | function | result | encoding |
//! |---|---|---|
//! | [`Counter`] | ours + theirs - base | decimal `i64` text, absent = 0 |
//! | [`LastWriterWins`] | theirs | any |
//! | [`Ours`], [`Theirs`] | that side | any |
//! | [`Max`], [`Min`] | the greater / smaller | decimal `i64` text compared as numbers, anything else as bytes |
//! | [`SetUnion`] | base + both sides' additions - both sides' removals | newline-separated elements |
//! | [`TextMerge`] | line-based three-way merge | UTF-8 text |

use std::cmp::Ordering;
use std::collections::BTreeSet;

use crate::resolve::{MergeFn, Resolution};

mod text;

/// Parses the integer encoding shared by [`Counter`], [`Max`] and [`Min`]:
/// an `i64` as decimal ASCII digits with an optional sign (`"115"`,
/// `"-3"`), surrounding ASCII whitespace ignored. `None` if `value` is not
/// one.
///
/// ```
/// use kvgit_merge::parse_integer;
/// assert_eq!(parse_integer(b"115"), Some(115));
/// assert_eq!(parse_integer(b" -3\n"), Some(-3));
/// assert_eq!(parse_integer(b"1.5"), None);
/// assert_eq!(parse_integer(b"99999999999999999999"), None); // not an i64
/// ```
pub fn parse_integer(value: &[u8]) -> Option<i64> {
    std::str::from_utf8(value).ok()?.trim_ascii().parse().ok()
}

/// Adds up concurrent increments: ours + theirs - base.
///
/// Encoding: decimal ASCII `i64` text as read by [`parse_integer`]
/// (`"115"`); the result is written in the same form without whitespace.
/// An absent value counts as 0, so deleting a counter on one side resets
/// that side's contribution: base 100, ours deleted, theirs 120 merges to
/// 20. A value that is not an integer, or a result that overflows `i64`,
/// is a conflict with the reason.
///
/// A counter is also merged when both sides reach the same value (see
/// [`MergeFn::merge_equal_changes`]): two writers that each add 1 to 100
/// both write 101, and the merge gives 102. The flip side is that the
/// merge base must really be the last state both sides share: in a
/// criss-cross history (see [`merge_base`](crate::merge_base)), where each
/// side has already merged the other's increment, the chosen base can be
/// older than that and shared increments count twice.
///
/// ```
/// use kvgit_merge::{Counter, MergeFn, Resolution};
/// assert_eq!(
///     Counter.merge(b"hits", Some(b"100"), Some(b"115"), Some(b"120")),
///     Resolution::Value(b"135".to_vec())
/// );
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Counter;

impl MergeFn for Counter {
    fn merge(
        &self,
        _key: &[u8],
        base: Option<&[u8]>,
        ours: Option<&[u8]>,
        theirs: Option<&[u8]>,
    ) -> Resolution {
        let parse = |side: &str, v: Option<&[u8]>| match v {
            None => Ok(0i128),
            Some(v) => parse_integer(v).map(i128::from).ok_or_else(|| {
                format!(
                    "counter: {side} value {:?} is not a decimal integer",
                    String::from_utf8_lossy(v)
                )
            }),
        };
        let (b, o, t) = match (
            parse("base", base),
            parse("ours", ours),
            parse("theirs", theirs),
        ) {
            (Ok(b), Ok(o), Ok(t)) => (b, o, t),
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                return Resolution::Conflict(Some(e))
            }
        };
        match i64::try_from(o + t - b) {
            Ok(sum) => Resolution::Value(sum.to_string().into_bytes()),
            Err(_) => Resolution::conflict(format!("counter: {o} + {t} - {b} overflows i64")),
        }
    }

    /// True: both sides adding the same amount is two increments, not one.
    fn merge_equal_changes(&self) -> bool {
        true
    }
}

/// Theirs wins, whatever ours did (an absent theirs deletes the key).
///
/// "Last writer" is meant in the sense of the Python `kvgit` library,
/// whose `last_writer_wins` also returns theirs: theirs is the state the
/// merge is reconciling with. Which writer that is depends on the caller:
/// in [`merge_into_ref`](crate::merge_into_ref) it is the commit being
/// merged in; in a transaction that lost its compare-and-swap and merges
/// with the branch head (base = its snapshot, ours = its tree, theirs =
/// the head), it is the head, so the value already committed stands and
/// the retrying transaction's write to that key is dropped. A caller that
/// wants its own write to win registers [`Ours`] instead.
///
/// ```
/// use kvgit_merge::{LastWriterWins, MergeFn, Resolution};
/// assert_eq!(
///     LastWriterWins.merge(b"k", Some(b"base"), Some(b"mine"), Some(b"theirs")),
///     Resolution::Value(b"theirs".to_vec())
/// );
/// // Theirs deleted the key: it stays deleted.
/// assert_eq!(
///     LastWriterWins.merge(b"k", Some(b"base"), Some(b"mine"), None),
///     Resolution::Delete
/// );
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct LastWriterWins;

impl MergeFn for LastWriterWins {
    fn merge(
        &self,
        _: &[u8],
        _: Option<&[u8]>,
        _: Option<&[u8]>,
        theirs: Option<&[u8]>,
    ) -> Resolution {
        side(theirs)
    }
}

/// Ours wins on keys both sides changed (an absent ours deletes the key).
///
/// Unlike [`Policy::Ours`](crate::Policy::Ours), which decides every key it
/// covers, this function only decides keys changed on both sides: a key
/// only theirs changed still takes theirs' change.
///
/// ```
/// use kvgit_merge::{MergeFn, Ours, Resolution};
/// assert_eq!(
///     Ours.merge(b"k", Some(b"base"), Some(b"mine"), Some(b"theirs")),
///     Resolution::Value(b"mine".to_vec())
/// );
/// assert_eq!(Ours.merge(b"k", Some(b"base"), None, Some(b"theirs")), Resolution::Delete);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Ours;

impl MergeFn for Ours {
    fn merge(
        &self,
        _: &[u8],
        _: Option<&[u8]>,
        ours: Option<&[u8]>,
        _: Option<&[u8]>,
    ) -> Resolution {
        side(ours)
    }
}

/// Theirs wins on keys both sides changed (an absent theirs deletes the
/// key). The same rule as [`LastWriterWins`]; see [`Ours`] for how it
/// differs from [`Policy::Theirs`](crate::Policy::Theirs).
///
/// ```
/// use kvgit_merge::{MergeFn, Resolution, Theirs};
/// assert_eq!(
///     Theirs.merge(b"k", Some(b"base"), Some(b"mine"), Some(b"theirs")),
///     Resolution::Value(b"theirs".to_vec())
/// );
/// assert_eq!(Theirs.merge(b"k", Some(b"base"), Some(b"mine"), None), Resolution::Delete);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Theirs;

impl MergeFn for Theirs {
    fn merge(
        &self,
        _: &[u8],
        _: Option<&[u8]>,
        _: Option<&[u8]>,
        theirs: Option<&[u8]>,
    ) -> Resolution {
        side(theirs)
    }
}

fn side(v: Option<&[u8]>) -> Resolution {
    match v {
        Some(v) => Resolution::Value(v.to_vec()),
        None => Resolution::Delete,
    }
}

/// Compares two values: as numbers when both are integers in the
/// [`parse_integer`] encoding, otherwise as bytes (lexicographically).
/// Numerically equal values with different bytes (`"7"`, `"07"`) are
/// ordered by their bytes, so the order is total and the result of
/// [`Max`] and [`Min`] does not depend on which side is ours.
fn compare(a: &[u8], b: &[u8]) -> Ordering {
    match (parse_integer(a), parse_integer(b)) {
        (Some(x), Some(y)) => x.cmp(&y).then_with(|| a.cmp(b)),
        _ => a.cmp(b),
    }
}

/// The greater of ours and theirs.
///
/// Two decimal integers (the [`parse_integer`] encoding) compare as
/// numbers (`"10"` > `"9"`); any other pair compares as bytes. An absent
/// side is no candidate: the present value wins.
///
/// ```
/// use kvgit_merge::{Max, MergeFn, Resolution};
/// // Numbers compare as numbers...
/// assert_eq!(Max.merge(b"k", None, Some(b"9"), Some(b"10")), Resolution::Value(b"10".to_vec()));
/// // ...anything else as bytes.
/// assert_eq!(Max.merge(b"k", None, Some(b"apple"), Some(b"pear")), Resolution::Value(b"pear".to_vec()));
/// // A deleted side is no candidate.
/// assert_eq!(Max.merge(b"k", Some(b"5"), None, Some(b"3")), Resolution::Value(b"3".to_vec()));
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Max;

impl MergeFn for Max {
    fn merge(
        &self,
        _: &[u8],
        _: Option<&[u8]>,
        ours: Option<&[u8]>,
        theirs: Option<&[u8]>,
    ) -> Resolution {
        pick(ours, theirs, Ordering::Greater)
    }
}

/// The smaller of ours and theirs, with the comparison of [`Max`]. An
/// absent side is no candidate: the present value wins.
///
/// ```
/// use kvgit_merge::{MergeFn, Min, Resolution};
/// assert_eq!(Min.merge(b"k", None, Some(b"9"), Some(b"10")), Resolution::Value(b"9".to_vec()));
/// assert_eq!(Min.merge(b"k", None, Some(b"-2"), Some(b"-1")), Resolution::Value(b"-2".to_vec()));
/// assert_eq!(Min.merge(b"k", Some(b"5"), Some(b"7"), None), Resolution::Value(b"7".to_vec()));
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Min;

impl MergeFn for Min {
    fn merge(
        &self,
        _: &[u8],
        _: Option<&[u8]>,
        ours: Option<&[u8]>,
        theirs: Option<&[u8]>,
    ) -> Resolution {
        pick(ours, theirs, Ordering::Less)
    }
}

fn pick(ours: Option<&[u8]>, theirs: Option<&[u8]>, want: Ordering) -> Resolution {
    match (ours, theirs) {
        (Some(o), Some(t)) => {
            let winner = if compare(o, t) == want { o } else { t };
            Resolution::Value(winner.to_vec())
        }
        (Some(v), None) | (None, Some(v)) => Resolution::Value(v.to_vec()),
        (None, None) => Resolution::Delete,
    }
}

/// A set merge: base plus both sides' additions minus both sides'
/// removals.
///
/// Encoding: the elements separated by `\n` (UTF-8 text in practice, but
/// any bytes other than `\n` work); empty lines are ignored, so `""` is the
/// empty set and a trailing newline is allowed. An absent value is the
/// empty set. The result lists the elements sorted by bytes, deduplicated,
/// joined by `\n` with no trailing newline; if it is empty and one side
/// deleted the key, the key is deleted.
///
/// ```
/// use kvgit_merge::{MergeFn, Resolution, SetUnion};
/// assert_eq!(
///     SetUnion.merge(b"tags", Some(b"a\nb"), Some(b"a\nb\nc"), Some(b"b\nd")),
///     Resolution::Value(b"b\nc\nd".to_vec())
/// );
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct SetUnion;

fn elements(v: Option<&[u8]>) -> BTreeSet<&[u8]> {
    v.map(|v| v.split(|&b| b == b'\n').filter(|e| !e.is_empty()).collect())
        .unwrap_or_default()
}

impl MergeFn for SetUnion {
    fn merge(
        &self,
        _key: &[u8],
        base: Option<&[u8]>,
        ours: Option<&[u8]>,
        theirs: Option<&[u8]>,
    ) -> Resolution {
        let (b, o, t) = (elements(base), elements(ours), elements(theirs));
        // An element of base survives if neither side removed it; any other
        // element survives if either side added it.
        let merged: Vec<&[u8]> = o
            .union(&t)
            .copied()
            .filter(|e| !b.contains(e) || (o.contains(e) && t.contains(e)))
            .collect();
        if merged.is_empty() && (ours.is_none() || theirs.is_none()) {
            return Resolution::Delete;
        }
        Resolution::Value(merged.join(&b'\n'))
    }
}

/// A line-based three-way merge of UTF-8 text, as git merges files.
///
/// The lines of base (each with its `\n`, the last one possibly without)
/// are diffed against ours and against theirs (Myers' diff, from the
/// `similar` crate, which also lays out the regions). The
/// changed regions (hunks) of the two sides are then laid side by side
/// over base: a region only one side changed takes that side's lines, a
/// region both sides changed identically takes those lines once, and a
/// region both sides changed differently is a conflict. As in git, hunks
/// that touch (changes to adjacent lines, or insertions at the same place)
/// count as overlapping.
///
/// An absent base is empty text (both sides added the key). A key deleted
/// on one side and edited on the other is a conflict, as is a value that
/// is not UTF-8. The conflict reason names the base lines in question; no
/// conflict markers are ever written into a value.
///
/// ```
/// use kvgit_merge::{MergeFn, Resolution, TextMerge};
/// let base = b"one\ntwo\nthree\n";
/// let ours = b"ONE\ntwo\nthree\n";
/// let theirs = b"one\ntwo\nTHREE\n";
/// assert_eq!(
///     TextMerge.merge(b"doc", Some(base), Some(ours), Some(theirs)),
///     Resolution::Value(b"ONE\ntwo\nTHREE\n".to_vec())
/// );
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct TextMerge;

impl MergeFn for TextMerge {
    fn merge(
        &self,
        _key: &[u8],
        base: Option<&[u8]>,
        ours: Option<&[u8]>,
        theirs: Option<&[u8]>,
    ) -> Resolution {
        let (ours, theirs) = match (ours, theirs) {
            (Some(o), Some(t)) => (o, t),
            (None, None) => return Resolution::Delete,
            _ => return Resolution::conflict("text: deleted on one side, edited on the other"),
        };
        let base = base.unwrap_or_default();
        let utf8 = |side: &str, v| {
            std::str::from_utf8(v).map_err(|_| format!("text: {side} value is not UTF-8"))
        };
        let (base, ours, theirs) = match (
            utf8("base", base),
            utf8("ours", ours),
            utf8("theirs", theirs),
        ) {
            (Ok(b), Ok(o), Ok(t)) => (b, o, t),
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return Resolution::conflict(e),
        };
        match text::merge3(base, ours, theirs) {
            Ok(merged) => Resolution::Value(merged.into_bytes()),
            Err(text::Overlap { first, last }) => Resolution::conflict(if first == last {
                format!("text: both sides changed line {first} differently")
            } else {
                format!("text: both sides changed lines {first}-{last} differently")
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(f: &dyn MergeFn, b: Option<&str>, o: Option<&str>, t: Option<&str>) -> Resolution {
        f.merge(
            b"k",
            b.map(str::as_bytes),
            o.map(str::as_bytes),
            t.map(str::as_bytes),
        )
    }

    fn value(s: &str) -> Resolution {
        Resolution::Value(s.as_bytes().to_vec())
    }

    fn is_conflict(r: &Resolution, needle: &str) -> bool {
        matches!(r, Resolution::Conflict(Some(reason)) if reason.contains(needle))
    }

    #[test]
    fn counter() {
        assert_eq!(
            run(&Counter, Some("100"), Some("115"), Some("120")),
            value("135")
        );
        assert_eq!(run(&Counter, None, Some("3"), Some("5")), value("8"));
        assert_eq!(run(&Counter, Some("100"), None, Some("120")), value("20"));
        assert_eq!(
            run(&Counter, Some(" 1\n"), Some("-4"), Some("+2")),
            value("-3")
        );
        assert!(is_conflict(
            &run(&Counter, Some("1"), Some("x"), Some("2")),
            "ours value \"x\""
        ));
        let max = i64::MAX.to_string();
        assert!(is_conflict(
            &run(&Counter, Some("0"), Some(&max), Some("1")),
            "overflows"
        ));
        // Overflow of an intermediate that fits in the end is fine.
        assert_eq!(run(&Counter, Some("1"), Some(&max), Some("1")), value(&max));
    }

    #[test]
    fn sides_and_extremes() {
        assert_eq!(
            run(&LastWriterWins, Some("a"), Some("b"), Some("c")),
            value("c")
        );
        assert_eq!(
            run(&LastWriterWins, Some("a"), Some("b"), None),
            Resolution::Delete
        );
        assert_eq!(run(&Ours, Some("a"), Some("b"), Some("c")), value("b"));
        assert_eq!(run(&Theirs, Some("a"), None, Some("c")), value("c"));
        assert_eq!(run(&Max, None, Some("9"), Some("10")), value("10"));
        assert_eq!(run(&Min, None, Some("9"), Some("10")), value("9"));
        assert_eq!(run(&Max, None, Some("9"), Some("10x")), value("9"));
        assert_eq!(run(&Max, None, Some("-1"), Some("-2")), value("-1"));
        assert_eq!(run(&Max, Some("1"), None, Some("0")), value("0"));
        assert_eq!(
            run(&Min, None, Some("07"), Some("7")),
            run(&Min, None, Some("7"), Some("07"))
        );
        assert_eq!(
            run(&Max, None, Some("07"), Some("7")),
            run(&Max, None, Some("7"), Some("07"))
        );
    }

    #[test]
    fn set_union() {
        assert_eq!(
            run(&SetUnion, Some("a\nb"), Some("a\nb\nc"), Some("b\nd")),
            value("b\nc\nd")
        );
        assert_eq!(
            run(&SetUnion, None, Some("x\ny\n"), Some("y\nz")),
            value("x\ny\nz")
        );
        assert_eq!(run(&SetUnion, Some("a"), None, Some("a\nb")), value("b"));
        assert_eq!(
            run(&SetUnion, Some("a"), None, Some("")),
            Resolution::Delete
        );
        assert_eq!(run(&SetUnion, Some("a"), Some("a\na"), Some("")), value(""));
    }

    #[test]
    fn text_merge() {
        let r = run(
            &TextMerge,
            Some("a\nb\nc\nd\n"),
            Some("A\nb\nc\nd\n"),
            Some("a\nb\nc\nD\n"),
        );
        assert_eq!(r, value("A\nb\nc\nD\n"));
        // The same hunk on both sides is taken once.
        let r = run(
            &TextMerge,
            Some("a\nb\nc\n"),
            Some("a\nX\nc\nz\n"),
            Some("a\nX\nc\n"),
        );
        assert_eq!(r, value("a\nX\nc\nz\n"));
        // Different changes to one line conflict.
        let r = run(
            &TextMerge,
            Some("a\nb\nc\n"),
            Some("a\nX\nc\n"),
            Some("a\nY\nc\n"),
        );
        assert!(is_conflict(&r, "line 2 "), "{r:?}");
        // Adjacent lines conflict, as in git.
        let r = run(
            &TextMerge,
            Some("a\nb\nc\n"),
            Some("A\nb\nc\n"),
            Some("a\nB\nc\n"),
        );
        assert!(is_conflict(&r, "lines 1-2"), "{r:?}");
        // Both added different text to an absent key.
        let r = run(&TextMerge, None, Some("x\n"), Some("y\n"));
        assert!(is_conflict(&r, "differently"), "{r:?}");
        // Delete vs edit, and not UTF-8.
        assert!(is_conflict(
            &run(&TextMerge, Some("a"), None, Some("b")),
            "deleted"
        ));
        let r = TextMerge.merge(b"k", Some(b"a"), Some(b"\xff"), Some(b"b"));
        assert!(is_conflict(&r, "ours value is not UTF-8"));
        // No trailing newline on the last line.
        let r = run(
            &TextMerge,
            Some("a\nb\nc"),
            Some("a2\nb\nc"),
            Some("a\nb\nc2"),
        );
        assert_eq!(r, value("a2\nb\nc2"));
    }
}
