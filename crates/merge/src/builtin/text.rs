//! The line diff and three-way line merge behind [`TextMerge`](super::TextMerge).
//!
//! The diff is Myers' O((N + M) D) algorithm in linear space: trim the
//! common prefix and suffix, find the middle snake of an optimal edit path
//! by searching forward and backward at once, split there and recurse on
//! both halves. It yields a longest common subsequence of lines, from which
//! the changed regions (hunks) follow.

use std::collections::HashMap;

/// Both sides changed base lines `first..=last` (1-based) differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Overlap {
    pub(crate) first: usize,
    pub(crate) last: usize,
}

/// A changed region: base lines `b0..b1` became side lines `s0..s1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Hunk {
    pub(crate) b0: usize,
    pub(crate) b1: usize,
    pub(crate) s0: usize,
    pub(crate) s1: usize,
}

/// The lines of `text`, each with its `\n` (the last may have none).
fn lines(text: &[u8]) -> Vec<&[u8]> {
    text.split_inclusive(|&b| b == b'\n').collect()
}

/// Three-way merge of `base`, `ours` and `theirs` by lines.
pub(crate) fn merge3(base: &[u8], ours: &[u8], theirs: &[u8]) -> Result<Vec<u8>, Overlap> {
    let (b, o, t) = (lines(base), lines(ours), lines(theirs));
    // Compare lines as small integers.
    let mut ids: HashMap<&[u8], u32> = HashMap::new();
    let (bi, oi, ti) = (
        intern(&mut ids, &b),
        intern(&mut ids, &o),
        intern(&mut ids, &t),
    );
    let ours_hunks = hunks(&bi, &oi);
    let theirs_hunks = hunks(&bi, &ti);

    let mut out: Vec<&[u8]> = Vec::with_capacity(b.len().max(o.len()).max(t.len()));
    let mut pos = 0; // base lines before `pos` are emitted
    let (mut i, mut j) = (0, 0);
    while i < ours_hunks.len() || j < theirs_hunks.len() {
        let (gi, gj) = (i, j);
        // Start a group with the hunk that starts first, then pull in
        // every hunk of either side that starts before the group ends
        // (touching counts: changes to adjacent lines, or insertions at
        // the same place, cannot be ordered safely).
        let first = match (ours_hunks.get(i), theirs_hunks.get(j)) {
            (Some(x), Some(y)) if x.b0 <= y.b0 => {
                i += 1;
                x
            }
            (Some(x), None) => {
                i += 1;
                x
            }
            (_, Some(y)) => {
                j += 1;
                y
            }
            (None, None) => break,
        };
        let (g0, mut g1) = (first.b0, first.b1);
        loop {
            if let Some(h) = ours_hunks.get(i).filter(|h| h.b0 <= g1) {
                g1 = g1.max(h.b1);
                i += 1;
            } else if let Some(h) = theirs_hunks.get(j).filter(|h| h.b0 <= g1) {
                g1 = g1.max(h.b1);
                j += 1;
            } else {
                break;
            }
        }
        out.extend_from_slice(&b[pos..g0]);
        pos = g1;
        let ours_in = &ours_hunks[gi..i];
        let theirs_in = &theirs_hunks[gj..j];
        if theirs_in.is_empty() {
            out.extend(side_lines(ours_in, g0, g1, &b, &o));
        } else if ours_in.is_empty() {
            out.extend(side_lines(theirs_in, g0, g1, &b, &t));
        } else {
            let mine = side_lines(ours_in, g0, g1, &b, &o);
            let other = side_lines(theirs_in, g0, g1, &b, &t);
            if mine != other {
                return Err(Overlap {
                    first: g0 + 1,
                    last: g1.max(g0 + 1),
                });
            }
            out.extend(mine);
        }
    }
    out.extend_from_slice(&b[pos..]);
    Ok(out.concat())
}

/// Numbers lines so that equal lines get equal numbers.
fn intern<'a>(ids: &mut HashMap<&'a [u8], u32>, lines: &[&'a [u8]]) -> Vec<u32> {
    lines
        .iter()
        .map(|l| {
            let next = u32::try_from(ids.len()).unwrap_or(u32::MAX);
            *ids.entry(l).or_insert(next)
        })
        .collect()
}

/// What one side made of base lines `g0..g1`, given its hunks there.
fn side_lines<'a>(
    hunks: &[Hunk],
    g0: usize,
    g1: usize,
    base: &[&'a [u8]],
    side: &[&'a [u8]],
) -> Vec<&'a [u8]> {
    let mut v = Vec::new();
    let mut p = g0;
    for h in hunks {
        v.extend_from_slice(&base[p..h.b0]);
        v.extend_from_slice(&side[h.s0..h.s1]);
        p = h.b1;
    }
    v.extend_from_slice(&base[p..g1]);
    v
}

/// The maximal changed regions between `a` (base) and `b` (a side), in
/// order; consecutive hunks are separated by at least one common line.
pub(crate) fn hunks(a: &[u32], b: &[u32]) -> Vec<Hunk> {
    let mut matches = Vec::new();
    lcs(a, b, 0, 0, &mut matches);
    let mut out = Vec::new();
    let (mut pa, mut pb) = (0, 0);
    for (x, y) in matches.into_iter().chain([(a.len(), b.len())]) {
        if x > pa || y > pb {
            out.push(Hunk {
                b0: pa,
                b1: x,
                s0: pb,
                s1: y,
            });
        }
        pa = x + 1;
        pb = y + 1;
    }
    out
}

/// Appends to `out`, in increasing order, the index pairs of a longest
/// common subsequence of `a` and `b` (offset by `ao`, `bo`).
pub(crate) fn lcs(a: &[u32], b: &[u32], ao: usize, bo: usize, out: &mut Vec<(usize, usize)>) {
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    out.extend((0..prefix).map(|i| (ao + i, bo + i)));
    let (a, b) = (&a[prefix..], &b[prefix..]);
    let suffix = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (a, b) = (&a[..a.len() - suffix], &b[..b.len() - suffix]);
    let (ao, bo) = (ao + prefix, bo + prefix);
    if !a.is_empty() && !b.is_empty() {
        if let Some((x, y)) = middle_snake(a, b) {
            lcs(&a[..x], &b[..y], ao, bo, out);
            lcs(&a[x..], &b[y..], ao + x, bo + y, out);
        }
    }
    out.extend((0..suffix).map(|i| (ao + a.len() + i, bo + b.len() + i)));
}

/// A point `(x, y)` on an optimal edit path from `(0, 0)` to
/// `(a.len(), b.len())` strictly between the two ends, found where the
/// forward and backward searches meet; `None` if the sequences have no
/// element in common (or no such point exists).
fn middle_snake(a: &[u32], b: &[u32]) -> Option<(usize, usize)> {
    let n = isize::try_from(a.len()).ok()?;
    let m = isize::try_from(b.len()).ok()?;
    let at = |x: isize| usize::try_from(x).ok().and_then(|x| a.get(x));
    let bt = |y: isize| usize::try_from(y).ok().and_then(|y| b.get(y));
    let max_d = (n + m + 1) / 2;
    let offset = max_d;
    let v_len = 2 * max_d + 2;
    let slot = |k: isize| usize::try_from(offset + k).ok();
    // v1[k]: furthest x reached forward on diagonal k = x - y; v2 likewise
    // backward, with x counted from the end. -1: not reached.
    let mut v1 = vec![-1isize; usize::try_from(v_len).ok()?];
    let mut v2 = v1.clone();
    let get = |v: &[isize], k: isize| slot(k).and_then(|i| v.get(i).copied()).unwrap_or(-1);
    let start = slot(1)?;
    v1[start] = 0;
    v2[start] = 0;
    let delta = n - m;
    // With an odd delta the paths meet on a forward step, else backward.
    let front = delta % 2 != 0;
    let (mut k1start, mut k1end, mut k2start, mut k2end) = (0isize, 0isize, 0isize, 0isize);
    let split = |x: isize, y: isize| -> Option<(usize, usize)> {
        let (x, y) = (usize::try_from(x).ok()?, usize::try_from(y).ok()?);
        let inner = (x, y) != (0, 0) && (x, y) != (a.len(), b.len());
        (inner && x <= a.len() && y <= b.len()).then_some((x, y))
    };
    for d in 0..max_d {
        let mut k1 = -d + k1start;
        while k1 <= d - k1end {
            let mut x1 = if k1 == -d || (k1 != d && get(&v1, k1 - 1) < get(&v1, k1 + 1)) {
                get(&v1, k1 + 1)
            } else {
                get(&v1, k1 - 1) + 1
            };
            let mut y1 = x1 - k1;
            while x1 < n && y1 < m && y1 >= 0 && at(x1).is_some() && at(x1) == bt(y1) {
                x1 += 1;
                y1 += 1;
            }
            if let Some(s) = slot(k1).filter(|&s| s < v1.len()) {
                v1[s] = x1;
            }
            if x1 > n {
                k1end += 2;
            } else if y1 > m {
                k1start += 2;
            } else if front {
                let k2 = delta - k1;
                if get(&v2, k2) != -1 {
                    let x2 = n - get(&v2, k2);
                    if x1 >= x2 {
                        return split(x1, y1);
                    }
                }
            }
            k1 += 2;
        }
        let mut k2 = -d + k2start;
        while k2 <= d - k2end {
            let mut x2 = if k2 == -d || (k2 != d && get(&v2, k2 - 1) < get(&v2, k2 + 1)) {
                get(&v2, k2 + 1)
            } else {
                get(&v2, k2 - 1) + 1
            };
            let mut y2 = x2 - k2;
            while x2 < n
                && y2 < m
                && y2 >= 0
                && at(n - x2 - 1).is_some()
                && at(n - x2 - 1) == bt(m - y2 - 1)
            {
                x2 += 1;
                y2 += 1;
            }
            if let Some(s) = slot(k2).filter(|&s| s < v2.len()) {
                v2[s] = x2;
            }
            if x2 > n {
                k2end += 2;
            } else if y2 > m {
                k2start += 2;
            } else if !front {
                let k1 = delta - k2;
                if get(&v1, k1) != -1 {
                    let x1 = get(&v1, k1);
                    let y1 = x1 - k1;
                    if x1 >= n - x2 {
                        return split(x1, y1);
                    }
                }
            }
            k2 += 2;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The LCS length by dynamic programming, for checking.
    fn lcs_len(a: &[u32], b: &[u32]) -> usize {
        let mut dp = vec![vec![0usize; b.len() + 1]; a.len() + 1];
        for i in (0..a.len()).rev() {
            for j in (0..b.len()).rev() {
                dp[i][j] = if a[i] == b[j] {
                    dp[i + 1][j + 1] + 1
                } else {
                    dp[i + 1][j].max(dp[i][j + 1])
                };
            }
        }
        dp[0][0]
    }

    fn seq() -> impl Strategy<Value = Vec<u32>> {
        (1u32..8).prop_flat_map(|alphabet| prop::collection::vec(0..alphabet, 0..50))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(
            std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(256)
        ))]

        #[test]
        fn lcs_is_a_longest_common_subsequence(a in seq(), b in seq()) {
            let mut m = Vec::new();
            lcs(&a, &b, 0, 0, &mut m);
            for w in m.windows(2) {
                prop_assert!(w[0].0 < w[1].0 && w[0].1 < w[1].1, "{m:?}");
            }
            for &(x, y) in &m {
                prop_assert_eq!(a[x], b[y]);
            }
            prop_assert_eq!(m.len(), lcs_len(&a, &b));
        }

        #[test]
        fn hunks_rebuild_the_side(a in seq(), b in seq()) {
            let mut rebuilt = Vec::new();
            let mut p = 0;
            for h in hunks(&a, &b) {
                rebuilt.extend_from_slice(&a[p..h.b0]);
                rebuilt.extend_from_slice(&b[h.s0..h.s1]);
                p = h.b1;
            }
            rebuilt.extend_from_slice(&a[p..]);
            prop_assert_eq!(rebuilt, b);
        }

        #[test]
        fn merging_with_an_unchanged_side_gives_the_other(
            base in prop::collection::vec("[abc]{0,2}\n", 0..12),
            side in prop::collection::vec("[abc]{0,2}\n", 0..12),
        ) {
            let (base, side) = (base.concat().into_bytes(), side.concat().into_bytes());
            prop_assert_eq!(merge3(&base, &side, &base), Ok(side.clone()));
            prop_assert_eq!(merge3(&base, &base, &side), Ok(side.clone()));
            prop_assert_eq!(merge3(&base, &side, &side), Ok(side));
        }
    }
}
