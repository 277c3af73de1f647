//! Typed values: how values are turned into bytes and back.
//!
//! Every typed accessor (`get_as`, `put_as`, ...) goes through a [`Codec`].
//! The default is [`Postcard`] (compact, fast); [`Json`] is available for
//! values other tools read. A custom codec implements [`Codec`] and is
//! passed to the `*_with` accessors, or chosen for a whole [`Db`] through
//! [`DefaultCodec`] when it is one of the built-ins.
//!
//! A typed read consumes the whole value or fails: bytes left over after
//! the decoded value mean the value is not of the type asked for (postcard
//! alone would read a `u64` from the first byte of the string `"hello"`).
//! The error, [`Error::Codec`], names the key and the Rust type.
//!
//! [`Db`]: crate::Db

use std::any::type_name;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};

/// Turns typed values into bytes and back.
///
/// A typed read consumes the whole value or fails: bytes left over after
/// the decoded value mean the value is not of the type asked for. (Postcard
/// alone would read a `u64` from the first byte of the string `"hello"`;
/// [`Postcard`] here refuses.) The facade's error, [`Error::Codec`], names
/// the key and the Rust type.
///
/// A custom codec, used through the `*_with` accessors: postcard behind a
/// format byte.
///
/// ```
/// use kvgit::{Codec, Postcard};
/// use serde::{de::DeserializeOwned, Serialize};
///
/// struct Tagged;
///
/// impl Codec for Tagged {
///     fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, String> {
///         let mut bytes = vec![1u8];
///         bytes.extend(Postcard.encode(value)?);
///         Ok(bytes)
///     }
///     fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, String> {
///         match bytes.split_first() {
///             Some((1, rest)) => Postcard.decode(rest),
///             _ => Err("not format 1".into()),
///         }
///     }
/// }
///
/// let db = kvgit::Db::memory();
/// let main = db.branch("main")?;
/// let mut tx = main.transaction()?;
/// tx.put_with(&Tagged, "point", &(3u8, 4u8))?;
/// tx.commit()?;
/// assert_eq!(main.get("point")?, Some(vec![1, 3, 4]));
/// assert_eq!(main.get_with::<_, (u8, u8)>(&Tagged, "point")?, Some((3, 4)));
/// main.put("raw", "x")?;
/// assert!(main.get_with::<_, (u8, u8)>(&Tagged, "raw").is_err());
/// # Ok::<(), kvgit::Error>(())
/// ```
pub trait Codec: Send + Sync {
    /// Encodes a value.
    ///
    /// ```
    /// use kvgit::{Codec, Postcard};
    /// assert_eq!(Postcard.encode(&300u32)?, vec![0xac, 0x02]); // a varint
    /// assert_eq!(Postcard.encode("hi")?, vec![2, b'h', b'i']); // length first
    /// # Ok::<(), String>(())
    /// ```
    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, String>;
    /// Decodes a value. It must use all of `bytes`: a value followed by
    /// anything else is an error, not that value.
    ///
    /// ```
    /// use kvgit::{Codec, Postcard};
    /// let bytes = Postcard.encode(&(7u8, "seven"))?;
    /// assert_eq!(Postcard.decode::<(u8, String)>(&bytes)?, (7, "seven".to_string()));
    /// // Bytes left over: not a `u8`, even though it starts like one.
    /// assert!(Postcard.decode::<u8>(&bytes).is_err());
    /// # Ok::<(), String>(())
    /// ```
    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, String>;
}

/// The postcard codec (the default): compact binary, integers as varints.
///
/// ```
/// use kvgit::{Codec, Postcard};
/// let db = kvgit::Db::memory(); // postcard is the default codec
/// let main = db.branch("main")?;
/// main.put_as("n", &1u64)?;
/// assert_eq!(main.get("n")?, Some(Postcard.encode(&1u64).expect("encodes")));
/// assert_eq!(main.get_with::<_, u64>(&Postcard, "n")?, Some(1));
/// # Ok::<(), kvgit::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Postcard;

impl Codec for Postcard {
    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, String> {
        postcard::to_stdvec(value).map_err(|e| e.to_string())
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, String> {
        let (value, rest) = postcard::take_from_bytes(bytes).map_err(|e| e.to_string())?;
        if rest.is_empty() {
            Ok(value)
        } else {
            Err(format!(
                "{} of its {} bytes are left over after the value",
                rest.len(),
                bytes.len()
            ))
        }
    }
}

/// The JSON codec (feature `json`, on by default).
///
/// ```
/// use kvgit::Json;
/// let db = kvgit::Db::memory();
/// let main = db.branch("main")?;
/// let mut tx = main.transaction()?;
/// tx.put_with(&Json, "tags", &["a", "b"])?;
/// tx.commit()?;
/// assert_eq!(main.get("tags")?.as_deref(), Some(&br#"["a","b"]"#[..]));
/// assert_eq!(
///     main.get_with::<_, Vec<String>>(&Json, "tags")?,
///     Some(vec!["a".to_string(), "b".to_string()])
/// );
/// # Ok::<(), kvgit::Error>(())
/// ```
#[cfg(feature = "json")]
#[derive(Clone, Copy, Debug, Default)]
pub struct Json;

#[cfg(feature = "json")]
impl Codec for Json {
    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, String> {
        serde_json::to_vec(value).map_err(|e| e.to_string())
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, String> {
        // `from_slice` fails on anything but whitespace after the value.
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }
}

/// The codec a [`Db`](crate::Db) uses for `get_as` / `put_as`.
///
/// ```
/// use kvgit::{Db, DefaultCodec};
/// let db = Db::builder().codec(DefaultCodec::Json).memory();
/// let main = db.branch("main")?;
/// main.put_as("n", &42u32)?; // stored as JSON text
/// assert_eq!(main.get("n")?.as_deref(), Some(&b"42"[..]));
/// assert_eq!(main.get_as::<u32>("n")?, Some(42));
/// # Ok::<(), kvgit::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum DefaultCodec {
    /// [`Postcard`].
    #[default]
    Postcard,
    /// [`Json`].
    #[cfg(feature = "json")]
    Json,
}

impl Codec for DefaultCodec {
    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, String> {
        match self {
            DefaultCodec::Postcard => Postcard.encode(value),
            #[cfg(feature = "json")]
            DefaultCodec::Json => Json.encode(value),
        }
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, String> {
        match self {
            DefaultCodec::Postcard => Postcard.decode(bytes),
            #[cfg(feature = "json")]
            DefaultCodec::Json => Json.decode(bytes),
        }
    }
}

/// Encodes `value` (of key `key`) with `codec`; the error names the key
/// and the type.
pub(crate) fn encode_for<C: Codec + ?Sized, T: Serialize + ?Sized>(
    codec: &C,
    key: &[u8],
    value: &T,
) -> Result<Vec<u8>> {
    codec.encode(value).map_err(|message| Error::Codec {
        key: String::from_utf8_lossy(key).into_owned(),
        message: format!("cannot encode a {}: {message}", type_name::<T>()),
    })
}

/// Decodes the value of `key` with `codec`: every typed read of the facade
/// passes here. The error names the key and the type.
pub(crate) fn decode_for<C: Codec + ?Sized, T: DeserializeOwned>(
    codec: &C,
    key: &[u8],
    bytes: &[u8],
) -> Result<T> {
    decode_as(codec, bytes).map_err(|message| Error::Codec {
        key: String::from_utf8_lossy(key).into_owned(),
        message,
    })
}

/// Decodes `bytes` with `codec`; the error names the type. Shared by
/// [`decode_for`] and the typed merge functions.
pub(crate) fn decode_as<C: Codec + ?Sized, T: DeserializeOwned>(
    codec: &C,
    bytes: &[u8],
) -> Result<T, String> {
    codec.decode(bytes).map_err(|message| {
        format!(
            "the value does not decode as {}: {message}",
            type_name::<T>()
        )
    })
}
