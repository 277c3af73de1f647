//! The three-way line merge behind [`TextMerge`](super::TextMerge), on
//! `similar`'s: each side is diffed against base by lines (Myers), and the
//! changed regions are laid side by side over base. Touching regions
//! (changes to adjacent lines, insertions at the same place) overlap, as in
//! git; overlapping regions both sides changed identically are taken once.

use similar::MergeResolution;

/// Both sides changed base lines `first..=last` (1-based) differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Overlap {
    pub(crate) first: usize,
    pub(crate) last: usize,
}

/// Three-way merge of `base`, `ours` and `theirs` by lines (each with its
/// `\n`, the last possibly without): the merged text, or the first region
/// both sides changed differently.
pub(crate) fn merge3(base: &str, ours: &str, theirs: &str) -> Result<String, Overlap> {
    let merge = similar::TextMerge::from_lines(base, ours, theirs);
    if let Some(region) = merge
        .regions()
        .iter()
        .find(|r| r.resolution() == MergeResolution::Conflict)
    {
        let lines = region.base_range();
        return Err(Overlap {
            first: lines.start + 1,
            last: lines.end.max(lines.start + 1),
        });
    }
    // Without conflicts, the merge's text is the regions' lines, no markers.
    Ok(merge.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_overlap_names_the_base_lines() {
        let base = "a\nb\nc\nd\n";
        assert_eq!(
            merge3(base, "a\nB\nC\nd\n", "a\nb2\nc\nd\n"),
            Err(Overlap { first: 2, last: 3 })
        );
        // Two insertions at the same place touch.
        assert_eq!(
            merge3(base, "a\nx\nb\nc\nd\n", "a\ny\nb\nc\nd\n"),
            Err(Overlap { first: 2, last: 2 })
        );
    }

    #[test]
    fn a_last_line_without_newline_is_kept() {
        assert_eq!(
            merge3("a\nb\nc", "A\nb\nc", "a\nb\nC"),
            Ok("A\nb\nC".to_string())
        );
        // A side that ends the last line changes that line: it touches an
        // edit of the line before it.
        assert_eq!(
            merge3("a\nb", "A\nb", "a\nb\nc"),
            Err(Overlap { first: 1, last: 2 })
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(
            std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(256)
        ))]

        #[test]
        fn merging_with_an_unchanged_side_gives_the_other(
            base in prop::collection::vec("[abc]{0,2}\n", 0..12),
            side in prop::collection::vec("[abc]{0,2}\n", 0..12),
        ) {
            let (base, side) = (base.concat(), side.concat());
            prop_assert_eq!(merge3(&base, &side, &base), Ok(side.clone()));
            prop_assert_eq!(merge3(&base, &base, &side), Ok(side.clone()));
            prop_assert_eq!(merge3(&base, &side, &side), Ok(side));
        }
    }
}
