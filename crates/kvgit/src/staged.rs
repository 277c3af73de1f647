//! [`Staged`]: a transaction's staged writes, sorted by key.
//!
//! A bulk load stages its keys in order, and an ordered map pays a search
//! from its root for each of them (about half of a 1M-key load through
//! one transaction went there). So the writes live in two parts: an
//! ordered map, and after it a run of entries appended in increasing key
//! order, each greater than every key of the map. A write that extends
//! the run is a push; any other write goes to the map (the run moving
//! into it first when the key falls inside the run's span). Reads see
//! both parts as one sorted map.

use std::collections::BTreeMap;
use std::ops::{Bound, RangeBounds};

/// A staged write: `None` deletes the key.
pub(crate) type Write = Option<Vec<u8>>;

/// The staged writes of a transaction, sorted by key.
#[derive(Clone, Debug, Default)]
pub(crate) struct Staged {
    map: BTreeMap<Vec<u8>, Write>,
    /// Keys strictly increasing, each greater than every key of `map`.
    run: Vec<(Vec<u8>, Write)>,
}

impl Staged {
    /// Stages `value` for `key`, replacing an earlier write of it.
    pub(crate) fn insert(&mut self, key: Vec<u8>, value: Write) {
        let extends = match self.run.last() {
            Some((last, _)) => key > *last,
            None => self
                .map
                .last_key_value()
                .is_none_or(|(last, _)| key > *last),
        };
        if extends {
            self.run.push((key, value));
            return;
        }
        match self.run.first() {
            Some((first, _)) if key >= *first => {
                match self.run.binary_search_by(|(k, _)| k.as_slice().cmp(&key)) {
                    Ok(i) => self.run[i].1 = value,
                    Err(_) => {
                        self.spill();
                        self.map.insert(key, value);
                    }
                }
            }
            _ => {
                self.map.insert(key, value);
            }
        }
    }

    /// Moves the run into the map.
    fn spill(&mut self) {
        let run = std::mem::take(&mut self.run);
        self.map.extend(run);
    }

    /// The index of `key` in the run, if it is there.
    fn in_run(&self, key: &[u8]) -> Option<usize> {
        match self.run.first() {
            Some((first, _)) if key >= first.as_slice() => self
                .run
                .binary_search_by(|(k, _)| k.as_slice().cmp(key))
                .ok(),
            _ => None,
        }
    }

    /// The staged write of `key`, if any.
    pub(crate) fn get(&self, key: &[u8]) -> Option<&Write> {
        match self.in_run(key) {
            Some(i) => Some(&self.run[i].1),
            None => self.map.get(key),
        }
    }

    /// True if `key` has a staged write.
    pub(crate) fn contains_key(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// Forgets the staged write of `key`; returns it with its key.
    pub(crate) fn remove_entry(&mut self, key: &[u8]) -> Option<(Vec<u8>, Write)> {
        match self.in_run(key) {
            Some(i) => Some(self.run.remove(i)),
            None => self.map.remove_entry(key),
        }
    }

    /// Forgets the staged write of `key`.
    pub(crate) fn remove(&mut self, key: &[u8]) {
        self.remove_entry(key);
    }

    /// True if nothing is staged.
    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty() && self.run.is_empty()
    }

    /// The staged writes in key order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&Vec<u8>, &Write)> {
        self.map.iter().chain(self.run.iter().map(|(k, v)| (k, v)))
    }

    /// The staged keys in order.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &Vec<u8>> {
        self.iter().map(|(k, _)| k)
    }

    /// The staged writes with keys in `range`, in key order. Like
    /// `BTreeMap::range`, panics on a range whose start is after its end.
    pub(crate) fn range<R: RangeBounds<[u8]>>(
        &self,
        range: R,
    ) -> impl Iterator<Item = (&Vec<u8>, &Write)> {
        let start = match range.start_bound() {
            Bound::Included(s) => self.run.partition_point(|(k, _)| k.as_slice() < s),
            Bound::Excluded(s) => self.run.partition_point(|(k, _)| k.as_slice() <= s),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(e) => self.run.partition_point(|(k, _)| k.as_slice() <= e),
            Bound::Excluded(e) => self.run.partition_point(|(k, _)| k.as_slice() < e),
            Bound::Unbounded => self.run.len(),
        };
        let run = &self.run[start.min(end)..end];
        self.map
            .range::<[u8], R>(range)
            .chain(run.iter().map(|(k, v)| (k, v)))
    }

    /// The staged writes, sorted by key, leaving nothing staged.
    pub(crate) fn take(&mut self) -> Vec<(Vec<u8>, Write)> {
        let Staged { map, run } = std::mem::take(self);
        let mut all: Vec<(Vec<u8>, Write)> = Vec::with_capacity(map.len() + run.len());
        all.extend(map);
        all.extend(run);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn k(s: &str) -> Vec<u8> {
        s.as_bytes().to_vec()
    }

    #[test]
    fn ordered_writes_extend_the_run_and_read_back() {
        let mut s = Staged::default();
        for key in ["a", "b", "c"] {
            s.insert(k(key), Some(k(key)));
        }
        assert!(s.map.is_empty());
        assert_eq!(s.run.len(), 3);
        s.insert(k("b"), None); // replaced in place
        assert_eq!(s.get(b"b"), Some(&None));
        s.insert(k("bb"), Some(k("x"))); // inside the run: spilled
        assert!(s.run.is_empty());
        let keys: Vec<&Vec<u8>> = s.keys().collect();
        assert_eq!(keys, [&k("a"), &k("b"), &k("bb"), &k("c")]);
    }

    proptest! {
        /// Whatever the order of writes and removals, the staged writes
        /// read as an ordered map would: point reads, ranges, the sorted
        /// list a commit takes.
        #[test]
        fn reads_as_an_ordered_map(
            ops in proptest::collection::vec((0u8..3, 0u8..40, any::<bool>()), 0..200),
            lo in 0u8..45,
            len in 0u8..45,
        ) {
            let mut s = Staged::default();
            let mut model: BTreeMap<Vec<u8>, Write> = BTreeMap::new();
            for (op, key, some) in ops {
                let key = vec![b'k', key];
                if op == 0 {
                    s.remove(&key);
                    model.remove(&key);
                } else {
                    let value = some.then(|| key.clone());
                    s.insert(key.clone(), value.clone());
                    model.insert(key, value);
                }
                prop_assert_eq!(s.is_empty(), model.is_empty());
            }
            for key in 0u8..45 {
                let key = vec![b'k', key];
                prop_assert_eq!(s.get(&key), model.get(&key));
                prop_assert_eq!(s.contains_key(&key), model.contains_key(&key));
            }
            let (a, b) = (vec![b'k', lo], vec![b'k', lo.saturating_add(len)]);
            let got: Vec<_> = s.range::<(Bound<&[u8]>, Bound<&[u8]>)>((Bound::Included(&a), Bound::Excluded(&b))).collect();
            let want: Vec<_> = model.range::<[u8], _>((Bound::Included(&a[..]), Bound::Excluded(&b[..]))).collect();
            prop_assert_eq!(got, want);
            let got: Vec<_> = s.range::<(Bound<&[u8]>, Bound<&[u8]>)>((Bound::Excluded(&a), Bound::Included(&b))).collect();
            let want: Vec<_> = model.range::<[u8], _>((Bound::Excluded(&a[..]), Bound::Included(&b[..]))).collect();
            prop_assert_eq!(got, want);
            let all: Vec<_> = s.iter().collect();
            let want: Vec<_> = model.iter().collect();
            prop_assert_eq!(all, want);
            prop_assert_eq!(s.take(), model.into_iter().collect::<Vec<_>>());
            prop_assert!(s.is_empty());
        }
    }
}
