//! Merge functions over typed values: closures that see decoded values,
//! and the integer built-ins ([`Counter`], [`Max`], [`Min`]), which read
//! integers written either as decimal text or with `put_as`.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::marker::PhantomData;

use kvgit_merge::{parse_integer, MergeFn, Resolution};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec::{decode_as, Codec, DefaultCodec, Postcard};

/// How the integers of one merge are written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum IntForm {
    /// Decimal text (`put(key, "100")`, and the JSON codec's integers).
    Text,
    /// A postcard `i64` (`put_as(key, &100i64)` with the default codec).
    Postcard,
}

/// The form the present values of one merge share: text if every one is
/// decimal text, else postcard if every one is a whole postcard `i64`.
/// `None` if they share neither. One rule for all three sides, so a value
/// that both forms can read (a single byte `0`..`9`) is read like the
/// others.
fn int_form(values: &[Option<&[u8]>]) -> Option<IntForm> {
    let present = || values.iter().flatten();
    if present().all(|v| parse_integer(v).is_some()) {
        Some(IntForm::Text)
    } else if present().all(|v| Postcard.decode::<i64>(v).is_ok()) {
        Some(IntForm::Postcard)
    } else {
        None
    }
}

/// Reads `v` in `form` (absent = `None`). The form was chosen because
/// every value reads in it.
fn int_in(form: IntForm, v: Option<&[u8]>) -> Option<i64> {
    let v = v?;
    match form {
        IntForm::Text => parse_integer(v),
        IntForm::Postcard => Postcard.decode(v).ok(),
    }
}

/// Adds up concurrent increments: ours + theirs - base (absent = 0), on
/// integers written as decimal text (`put(key, "100")`, or any value with
/// the JSON codec) or with `put_as` in the default codec (a postcard
/// `i64`). The result is written in the same form as the values.
///
/// The form is decided per merge, from all three values: text if they are
/// all decimal text, else the codec. So a value that both read (a single
/// byte `0`..`9`, which postcard reads as an integer from -29 to 28) is
/// taken as text when every value of the merge is such a byte. Values in
/// neither form, or of two different forms, are a conflict with the
/// reason, as is a result that overflows `i64`.
///
/// A counter is also merged when both sides reach the same value: two
/// writers that each add 1 to 100 both write 101, and the merge gives 102.
///
/// ```
/// use kvgit::merge::Counter;
/// let db = kvgit::Db::memory();
/// db.merge_fns().set("hits", Counter);
/// let main = db.branch("main")?;
/// main.put_as("hits", &100i64)?;
/// let mut a = main.transaction()?;
/// let mut b = main.transaction()?;
/// a.put_as("hits", &115i64)?;
/// b.put_as("hits", &120i64)?;
/// a.commit()?;
/// b.commit()?;
/// assert_eq!(main.get_as::<i64>("hits")?, Some(135));
/// # Ok::<(), kvgit::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Counter;

impl MergeFn for Counter {
    fn merge(
        &self,
        key: &[u8],
        base: Option<&[u8]>,
        ours: Option<&[u8]>,
        theirs: Option<&[u8]>,
    ) -> Resolution {
        match int_form(&[base, ours, theirs]) {
            Some(IntForm::Postcard) => {
                let [b, o, t] = [base, ours, theirs]
                    .map(|v| i128::from(int_in(IntForm::Postcard, v).unwrap_or(0)));
                match i64::try_from(o + t - b) {
                    Ok(sum) => match Postcard.encode(&sum) {
                        Ok(bytes) => Resolution::Value(bytes),
                        Err(e) => Resolution::conflict(format!("counter: {e}")),
                    },
                    Err(_) => {
                        Resolution::conflict(format!("counter: {o} + {t} - {b} overflows i64"))
                    }
                }
            }
            // Text, or neither: the text counter (its reasons name the
            // value that is no integer).
            _ => kvgit_merge::Counter.merge(key, base, ours, theirs),
        }
    }

    fn merge_equal_changes(&self) -> bool {
        true
    }
}

/// The greater of ours and theirs: integers (decimal text, or `put_as`
/// values in the default codec, read as for [`Counter`]) compare as
/// numbers, anything else as bytes. An absent side is no candidate. The
/// winner keeps its bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Max;

impl MergeFn for Max {
    fn merge(
        &self,
        key: &[u8],
        base: Option<&[u8]>,
        ours: Option<&[u8]>,
        theirs: Option<&[u8]>,
    ) -> Resolution {
        match pick_codec_int(ours, theirs, Ordering::Greater) {
            Some(r) => r,
            None => kvgit_merge::Max.merge(key, base, ours, theirs),
        }
    }
}

/// The smaller of ours and theirs, compared as for [`Max`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Min;

impl MergeFn for Min {
    fn merge(
        &self,
        key: &[u8],
        base: Option<&[u8]>,
        ours: Option<&[u8]>,
        theirs: Option<&[u8]>,
    ) -> Resolution {
        match pick_codec_int(ours, theirs, Ordering::Less) {
            Some(r) => r,
            None => kvgit_merge::Min.merge(key, base, ours, theirs),
        }
    }
}

/// For two present values in the postcard form: the one `want` picks,
/// compared as numbers (ties by bytes). `None`: not that case.
fn pick_codec_int(
    ours: Option<&[u8]>,
    theirs: Option<&[u8]>,
    want: Ordering,
) -> Option<Resolution> {
    let (o, t) = (ours?, theirs?);
    if int_form(&[ours, theirs]) != Some(IntForm::Postcard) {
        return None;
    }
    let (x, y) = (
        int_in(IntForm::Postcard, ours)?,
        int_in(IntForm::Postcard, theirs)?,
    );
    let winner = if x.cmp(&y).then_with(|| o.cmp(t)) == want {
        o
    } else {
        t
    };
    Some(Resolution::Value(winner.to_vec()))
}

/// What a typed merge function decides for a key.
///
/// ```
/// use kvgit::merge::{typed, Merged};
/// let db = kvgit::Db::memory();
/// // Both sides' values added up, a negative total deletes the key, and
/// // anything involving a deletion is left to a person.
/// db.merge_fns().set("stock", typed(|_key, base: Option<i64>, ours, theirs| {
///     match (base, ours, theirs) {
///         (Some(b), Some(o), Some(t)) if o + t - b < 0 => Merged::Delete,
///         (Some(b), Some(o), Some(t)) => Merged::Value(o + t - b),
///         _ => Merged::Conflict("stock deleted on one side".into()),
///     }
/// }));
/// let main = db.branch("main")?;
/// main.put_as("stock", &5i64)?;
/// let mut a = main.transaction()?;
/// let mut b = main.transaction()?;
/// a.put_as("stock", &2i64)?; // sold 3
/// b.put_as("stock", &1i64)?; // sold 4
/// a.commit()?;
/// b.commit()?; // 2 + 1 - 5 < 0: deleted
/// assert!(!main.contains("stock")?);
/// # Ok::<(), kvgit::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Merged<T> {
    /// The key takes this value.
    Value(T),
    /// The key is deleted.
    Delete,
    /// The values cannot be merged: the key is a conflict, for this reason.
    Conflict(String),
}

/// A merge function over decoded values (see [`typed`]).
///
/// ```
/// use kvgit::merge::{typed, Merged, Typed};
/// // `typed` returns a `Typed`, which is a `MergeFn`; register it on a store.
/// let concat = typed(|_key, _base, ours: Option<String>, theirs: Option<String>| {
///     Merged::Value(format!("{}{}", ours.unwrap_or_default(), theirs.unwrap_or_default()))
/// });
/// kvgit::Db::memory().merge_fns().set("log", concat);
/// ```
pub struct Typed<C, T, F> {
    codec: C,
    f: F,
    accumulates: bool,
    _values: PhantomData<fn() -> T>,
}

/// A merge function written as a closure over values decoded with the
/// default codec (postcard): `(key, base, ours, theirs) -> Merged<T>`.
/// A value that does not decode (as a whole: see
/// [`Codec::decode`](crate::Codec::decode)) makes
/// the key a conflict, with a reason naming the side and the type.
///
/// ```
/// use kvgit::merge::{typed, Merged};
/// let db = kvgit::Db::memory();
/// // Keep the longest name.
/// db.merge_fns().set("name", typed(|_key, _base, ours: Option<String>, theirs: Option<String>| {
///     match (ours, theirs) {
///         (Some(a), Some(b)) => Merged::Value(if a.len() >= b.len() { a } else { b }),
///         (Some(v), None) | (None, Some(v)) => Merged::Value(v),
///         (None, None) => Merged::Delete,
///     }
/// }));
/// ```
pub fn typed<T, F>(f: F) -> Typed<DefaultCodec, T, F>
where
    F: Fn(&[u8], Option<T>, Option<T>, Option<T>) -> Merged<T> + Send + Sync,
{
    typed_with(DefaultCodec::Postcard, f)
}

/// Like [`typed`], with values decoded by `codec`.
///
/// ```
/// use kvgit::merge::{typed_with, Merged};
/// use kvgit::Json;
/// let db = kvgit::Db::memory();
/// // Values written as JSON; keep the longer list.
/// db.merge_fns().set("list", typed_with(Json, |_key, _base, ours: Option<Vec<u32>>, theirs| {
///     match (ours, theirs) {
///         (Some(o), Some(t)) => Merged::Value(if o.len() >= t.len() { o } else { t }),
///         (Some(v), None) | (None, Some(v)) => Merged::Value(v),
///         (None, None) => Merged::Delete,
///     }
/// }));
/// let main = db.branch("main")?;
/// let mut a = main.transaction()?;
/// let mut b = main.transaction()?;
/// a.put_with(&Json, "list", &vec![1, 2])?;
/// b.put_with(&Json, "list", &vec![3, 4, 5])?;
/// a.commit()?;
/// b.commit()?;
/// assert_eq!(main.get("list")?.as_deref(), Some(&b"[3,4,5]"[..]));
/// # Ok::<(), kvgit::Error>(())
/// ```
pub fn typed_with<C, T, F>(codec: C, f: F) -> Typed<C, T, F>
where
    F: Fn(&[u8], Option<T>, Option<T>, Option<T>) -> Merged<T> + Send + Sync,
{
    Typed {
        codec,
        f,
        accumulates: false,
        _values: PhantomData,
    }
}

impl<C, T, F> Typed<C, T, F> {
    /// Also call the function when both sides changed the key to the same
    /// value (needed when values accumulate changes, as counters do).
    ///
    /// ```
    /// use kvgit::merge::{typed, Merged};
    /// let db = kvgit::Db::memory();
    /// // A counter by hand: two writers that both add 1 to 100 both write 101,
    /// // and without `accumulating` the shared value 101 would be kept as is.
    /// db.merge_fns().set("n", typed(|_key, base: Option<u32>, ours: Option<u32>, theirs: Option<u32>| {
    ///     let (b, o, t) = (base.unwrap_or(0), ours.unwrap_or(0), theirs.unwrap_or(0));
    ///     Merged::Value(o + t - b)
    /// }).accumulating());
    /// let main = db.branch("main")?;
    /// main.put_as("n", &100u32)?;
    /// let mut a = main.transaction()?;
    /// let mut b = main.transaction()?;
    /// a.put_as("n", &101u32)?;
    /// b.put_as("n", &101u32)?;
    /// a.commit()?;
    /// b.commit()?;
    /// assert_eq!(main.get_as::<u32>("n")?, Some(102));
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn accumulating(mut self) -> Self {
        self.accumulates = true;
        self
    }
}

impl<C, T, F> MergeFn for Typed<C, T, F>
where
    C: Codec,
    T: Serialize + DeserializeOwned,
    F: Fn(&[u8], Option<T>, Option<T>, Option<T>) -> Merged<T> + Send + Sync,
{
    fn merge(
        &self,
        key: &[u8],
        base: Option<&[u8]>,
        ours: Option<&[u8]>,
        theirs: Option<&[u8]>,
    ) -> Resolution {
        let decode = |side: &str, v: Option<&[u8]>| -> Result<Option<T>, String> {
            v.map(|b| decode_as::<C, T>(&self.codec, b))
                .transpose()
                .map_err(|e| format!("{side}: {e}"))
        };
        let values = (|| {
            Ok::<_, String>((
                decode("base", base)?,
                decode("ours", ours)?,
                decode("theirs", theirs)?,
            ))
        })();
        let (b, o, t) = match values {
            Ok(v) => v,
            Err(reason) => return Resolution::Conflict(Some(reason)),
        };
        match (self.f)(key, b, o, t) {
            Merged::Value(v) => match self.codec.encode(&v) {
                Ok(bytes) => Resolution::Value(bytes),
                Err(e) => Resolution::Conflict(Some(format!("merged value does not encode: {e}"))),
            },
            Merged::Delete => Resolution::Delete,
            Merged::Conflict(reason) => Resolution::Conflict(Some(reason)),
        }
    }

    fn merge_equal_changes(&self) -> bool {
        self.accumulates
    }
}

/// A counter over typed `i64` values: ours + theirs - base (absent = 0).
/// [`Counter`] reads `put_as` values too; this one reads only values in
/// the default codec.
///
/// ```
/// # #![allow(deprecated)]
/// let db = kvgit::Db::memory();
/// db.merge_fns().set("hits", kvgit::merge::typed_counter());
/// let main = db.branch("main")?;
/// main.put_as("hits", &100i64)?;
/// let mut a = main.transaction()?;
/// let mut b = main.transaction()?;
/// a.put_as("hits", &115i64)?;
/// b.put_as("hits", &120i64)?;
/// a.commit()?;
/// b.commit()?;
/// assert_eq!(main.get_as::<i64>("hits")?, Some(135));
/// # Ok::<(), kvgit::Error>(())
/// ```
#[deprecated(note = "use `kvgit::merge::Counter`, which reads `put_as` values too")]
pub fn typed_counter() -> impl MergeFn {
    typed(
        |_, base: Option<i64>, ours: Option<i64>, theirs: Option<i64>| {
            let sum = ours
                .unwrap_or(0)
                .checked_add(theirs.unwrap_or(0))
                .and_then(|s| s.checked_sub(base.unwrap_or(0)));
            match sum {
                Some(v) => Merged::Value(v),
                None => Merged::Conflict("counter overflows i64".into()),
            }
        },
    )
    .accumulating()
}

/// The greater of the two sides' typed values (absent sides ignored).
///
/// ```
/// let db = kvgit::Db::memory();
/// db.merge_fns().set("best", kvgit::merge::typed_max::<u32>());
/// let main = db.branch("main")?;
/// main.put_as("best", &10u32)?;
/// let mut a = main.transaction()?;
/// let mut b = main.transaction()?;
/// a.put_as("best", &30u32)?;
/// b.put_as("best", &20u32)?;
/// a.commit()?;
/// b.commit()?;
/// assert_eq!(main.get_as::<u32>("best")?, Some(30));
/// # Ok::<(), kvgit::Error>(())
/// ```
pub fn typed_max<T>() -> impl MergeFn
where
    T: Ord + Serialize + DeserializeOwned + 'static,
{
    typed(
        |_, _, ours: Option<T>, theirs: Option<T>| match ours.max(theirs) {
            Some(v) => Merged::Value(v),
            None => Merged::Delete,
        },
    )
}

/// The smaller of the two sides' typed values (absent sides ignored).
///
/// ```
/// let db = kvgit::Db::memory();
/// db.merge_fns().set("first_seen", kvgit::merge::typed_min::<String>());
/// let main = db.branch("main")?;
/// let mut a = main.transaction()?;
/// let mut b = main.transaction()?;
/// a.put_as("first_seen", "2024-05-02")?;
/// b.put_as("first_seen", "2024-04-30")?;
/// a.commit()?;
/// b.commit()?;
/// assert_eq!(main.get_as::<String>("first_seen")?.as_deref(), Some("2024-04-30"));
/// # Ok::<(), kvgit::Error>(())
/// ```
pub fn typed_min<T>() -> impl MergeFn
where
    T: Ord + Serialize + DeserializeOwned + 'static,
{
    typed(
        |_, _, ours: Option<T>, theirs: Option<T>| match (ours, theirs) {
            (Some(a), Some(b)) => Merged::Value(a.min(b)),
            (Some(v), None) | (None, Some(v)) => Merged::Value(v),
            (None, None) => Merged::Delete,
        },
    )
}

/// Set union over typed sets: base plus both sides' additions minus both
/// sides' removals.
///
/// ```
/// use std::collections::BTreeSet;
/// let db = kvgit::Db::memory();
/// db.merge_fns().set("tags", kvgit::merge::typed_set_union::<String>());
/// let main = db.branch("main")?;
/// let set = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
/// main.put_as("tags", &set(&["a", "b"]))?;
/// let mut a = main.transaction()?;
/// let mut b = main.transaction()?;
/// a.put_as("tags", &set(&["a", "b", "c"]))?; // added c
/// b.put_as("tags", &set(&["b", "d"]))?; // removed a, added d
/// a.commit()?;
/// b.commit()?;
/// assert_eq!(main.get_as::<BTreeSet<String>>("tags")?, Some(set(&["b", "c", "d"])));
/// # Ok::<(), kvgit::Error>(())
/// ```
pub fn typed_set_union<T>() -> impl MergeFn
where
    T: Ord + Clone + Serialize + DeserializeOwned + 'static,
{
    typed(
        |_, base: Option<BTreeSet<T>>, ours: Option<BTreeSet<T>>, theirs: Option<BTreeSet<T>>| {
            let base = base.unwrap_or_default();
            let ours = ours.unwrap_or_default();
            let theirs = theirs.unwrap_or_default();
            let removed: BTreeSet<T> = base
                .iter()
                .filter(|x| !ours.contains(*x) || !theirs.contains(*x))
                .cloned()
                .collect();
            let merged: BTreeSet<T> = base
                .iter()
                .chain(ours.iter())
                .chain(theirs.iter())
                .filter(|x| !removed.contains(*x))
                .cloned()
                .collect();
            Merged::Value(merged)
        },
    )
}
