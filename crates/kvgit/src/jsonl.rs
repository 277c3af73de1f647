//! JSON lines: entries as text, one `{"key": K, "value": V}` object per
//! line, the format of `kvgit export` and `kvgit import`.
//!
//! K and V are JSON strings when the bytes are UTF-8, and otherwise
//! objects `{"base64": "..."}` holding the bytes in standard base64 (with
//! padding). [`export`] writes every entry of a snapshot in key order;
//! [`import`] stages every entry of a text on a [`Transaction`], all or
//! nothing, and the caller commits it.
//!
//! ```
//! use kvgit::jsonl::{self, ExportOptions, ImportOptions};
//!
//! let db = kvgit::Db::memory();
//! let main = db.branch("main")?;
//! let mut tx = main.transaction()?;
//! let text = "{\"key\": \"a\", \"value\": \"1\"}\n{\"key\": \"b\", \"value\": {\"base64\": \"/w==\"}}\n";
//! let report = jsonl::import(&mut tx, text.as_bytes(), ImportOptions::default())?;
//! assert_eq!(report.entries, 2);
//! tx.commit()?;
//! assert_eq!(main.get("b")?.as_deref(), Some(&[0xff][..]));
//!
//! let mut out = Vec::new();
//! jsonl::export(&main.snapshot()?, &mut out, ExportOptions::default())?;
//! assert_eq!(out, b"{\"key\":\"a\",\"value\":\"1\"}\n{\"key\":\"b\",\"value\":{\"base64\":\"/w==\"}}\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Lines are read with a bound: a line longer than [`MAX_LINE_LEN`] (more
//! than the largest valid entry can take) is refused with its number
//! before it is held in memory, however long it is.

use std::io::{self, BufRead, Write};

use base64::Engine;
use kvgit_core::{MAX_KEY_LEN, MAX_VALUE_LEN};
use serde_json::{json, Value};

use crate::{Snapshot, Transaction};

/// Bytes a line may hold beyond its key and value: the braces, the field
/// names, quotes, `{"base64": ...}` wrappers and whitespace around them.
const LINE_SLACK: usize = 64 << 10;

/// The longest line [`import`] reads by default: the largest key and the
/// largest value, each written with the longest escape JSON has for one
/// byte (6 bytes: `\u0001`), plus 64 KiB for the syntax around them.
/// About 1.5 GiB; base64 (4 bytes for 3) stays far below it.
pub const MAX_LINE_LEN: usize = 6 * (MAX_KEY_LEN + MAX_VALUE_LEN as usize) + LINE_SLACK;

/// A progress callback: called with the report so far.
pub type LineProgress<'a, R> = Box<dyn FnMut(&R) + 'a>;

/// What [`import`] has read: reported after every line, and returned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Lines read, blank ones included.
    pub lines: u64,
    /// Bytes read, line ends included.
    pub bytes: u64,
    /// Entries staged (a later line for the same key counts again).
    pub entries: u64,
}

/// Options of [`import`].
pub struct ImportOptions<'a> {
    /// Called after every line with what has been read so far (e.g. to
    /// draw a progress bar).
    pub progress: Option<LineProgress<'a, ImportReport>>,
    /// Lines longer than this many bytes (without the line end) are
    /// refused unread. Default: [`MAX_LINE_LEN`], which every valid entry
    /// fits; lowering it bounds the memory one line takes.
    pub max_line_len: usize,
}

impl Default for ImportOptions<'_> {
    fn default() -> Self {
        ImportOptions {
            progress: None,
            max_line_len: MAX_LINE_LEN,
        }
    }
}

impl std::fmt::Debug for ImportOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportOptions")
            .field("progress", &self.progress.as_ref().map(|_| "FnMut"))
            .field("max_line_len", &self.max_line_len)
            .finish()
    }
}

/// Why [`import`] refused its input. Nothing was staged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// A line is not a valid entry.
    #[error("line {line}: {reason}")]
    BadLine {
        /// The line's number, from 1.
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A line is longer than any valid entry; it was not read into memory.
    #[error("line {line}: longer than the largest valid entry ({max} bytes)")]
    LineTooLong {
        /// The line's number, from 1.
        line: u64,
        /// The limit it exceeds ([`ImportOptions::max_line_len`]).
        max: usize,
    },
    /// Reading the input failed.
    #[error("reading line {line}: {source}")]
    Read {
        /// The number of the line being read, from 1.
        line: u64,
        /// The reader's error.
        source: io::Error,
    },
}

impl ImportError {
    /// The number of the line the error is about, from 1.
    ///
    /// ```
    /// use kvgit::jsonl::{import, ImportOptions};
    /// let main = kvgit::Db::memory().branch("main")?;
    /// let mut tx = main.transaction()?;
    /// let text = "{\"key\": \"a\", \"value\": \"1\"}\nnot json\n";
    /// let err = import(&mut tx, text.as_bytes(), ImportOptions::default()).unwrap_err();
    /// assert_eq!(err.line(), 2);
    /// assert!(!tx.has_changes()); // all or nothing
    /// # Ok::<(), kvgit::Error>(())
    /// ```
    pub fn line(&self) -> u64 {
        match self {
            ImportError::BadLine { line, .. }
            | ImportError::LineTooLong { line, .. }
            | ImportError::Read { line, .. } => *line,
        }
    }
}

/// Reads JSON lines from `input` and stages each entry on `tx` (a later
/// line for the same key wins; other keys stay). Blank lines are skipped.
/// All or nothing: on an error nothing is staged. Keys and values are
/// checked against the store's limits here, so a bad one is reported with
/// its line.
///
/// ```
/// use kvgit::jsonl::{import, ImportOptions};
/// let main = kvgit::Db::memory().branch("main")?;
/// let mut tx = main.transaction()?;
/// let text = "{\"key\": \"user/alice\", \"value\": \"admin\"}\n\n{\"key\": \"raw\", \"value\": {\"base64\": \"AAE=\"}}\n";
/// let mut lines_seen = 0;
/// let options = ImportOptions {
///     progress: Some(Box::new(|report: &kvgit::jsonl::ImportReport| lines_seen = report.lines)),
///     ..ImportOptions::default()
/// };
/// let report = import(&mut tx, text.as_bytes(), options)?;
/// assert_eq!((report.lines, report.entries), (3, 2));
/// assert_eq!(lines_seen, 3);
/// tx.message("import");
/// tx.commit()?;
/// assert_eq!(main.get("raw")?, Some(vec![0, 1]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn import(
    tx: &mut Transaction,
    mut input: impl BufRead,
    mut options: ImportOptions<'_>,
) -> Result<ImportReport, ImportError> {
    let mut report = ImportReport::default();
    let mut entries = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        let number = report.lines + 1;
        let read = match read_line(&mut input, &mut line, options.max_line_len) {
            Ok(Some(read)) => read,
            Ok(None) => break,
            Err(ReadError::TooLong) => {
                return Err(ImportError::LineTooLong {
                    line: number,
                    max: options.max_line_len,
                })
            }
            Err(ReadError::Io(source)) => {
                return Err(ImportError::Read {
                    line: number,
                    source,
                })
            }
        };
        report.lines = number;
        report.bytes += read as u64;
        if !line.iter().all(u8::is_ascii_whitespace) {
            let entry = parse_entry(&line).map_err(|reason| ImportError::BadLine {
                line: number,
                reason,
            })?;
            entries.push(entry);
            report.entries += 1;
        }
        if let Some(progress) = options.progress.as_mut() {
            progress(&report);
        }
    }
    for (key, value) in entries {
        tx.put(key, value);
    }
    Ok(report)
}

/// What [`export`] has written: reported after every entry, and returned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportReport {
    /// Entries written.
    pub entries: u64,
    /// Bytes written.
    pub bytes: u64,
}

/// Options of [`export`].
#[derive(Default)]
pub struct ExportOptions<'a> {
    /// Called after every entry with what has been written so far.
    pub progress: Option<LineProgress<'a, ExportReport>>,
}

impl std::fmt::Debug for ExportOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportOptions")
            .field("progress", &self.progress.as_ref().map(|_| "FnMut"))
            .finish()
    }
}

/// Why [`export`] stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// Reading the snapshot failed.
    #[error(transparent)]
    Store(#[from] crate::Error),
    /// Writing the output failed.
    #[error("writing the export: {0}")]
    Write(#[source] io::Error),
}

/// Writes every entry of `snapshot` to `out` as a line
/// `{"key": K, "value": V}`, in key order. `out` is not flushed.
///
/// ```
/// use kvgit::jsonl::{export, ExportOptions};
/// let main = kvgit::Db::memory().branch("main")?;
/// main.put("b", "2")?;
/// main.put("a", "1")?;
/// let mut out = Vec::new();
/// let report = export(&main.snapshot()?, &mut out, ExportOptions::default())?;
/// assert_eq!(report.entries, 2);
/// assert_eq!(
///     String::from_utf8(out)?,
///     "{\"key\":\"a\",\"value\":\"1\"}\n{\"key\":\"b\",\"value\":\"2\"}\n"
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn export(
    snapshot: &Snapshot,
    mut out: impl Write,
    mut options: ExportOptions<'_>,
) -> Result<ExportReport, ExportError> {
    let mut report = ExportReport::default();
    for entry in snapshot.range::<std::ops::RangeFull>(..) {
        let (key, value) = entry?;
        let mut line =
            serde_json::to_vec(&json!({ "key": to_json(&key), "value": to_json(&value) }))
                .map_err(|e| ExportError::Write(io::Error::other(e)))?;
        line.push(b'\n');
        out.write_all(&line).map_err(ExportError::Write)?;
        report.entries += 1;
        report.bytes += line.len() as u64;
        if let Some(progress) = options.progress.as_mut() {
            progress(&report);
        }
    }
    Ok(report)
}

/// Bytes as the format writes them: a JSON string if they are UTF-8,
/// else `{"base64": "..."}`.
///
/// ```
/// use kvgit::jsonl::to_json;
/// assert_eq!(to_json(b"text"), serde_json::json!("text"));
/// assert_eq!(to_json(&[0xff]), serde_json::json!({"base64": "/w=="}));
/// ```
pub fn to_json(bytes: &[u8]) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(s) => Value::String(s.to_string()),
        Err(_) => json!({ "base64": base64::engine::general_purpose::STANDARD.encode(bytes) }),
    }
}

/// The inverse of [`to_json`]: the bytes of a JSON string, or of a
/// `{"base64": "..."}` object; an error saying what is wrong otherwise.
///
/// ```
/// use kvgit::jsonl::from_json;
/// assert_eq!(from_json(&serde_json::json!("text")), Ok(b"text".to_vec()));
/// assert_eq!(from_json(&serde_json::json!({"base64": "/w=="})), Ok(vec![0xff]));
/// assert!(from_json(&serde_json::json!(42)).is_err());
/// ```
pub fn from_json(value: &Value) -> Result<Vec<u8>, String> {
    match value {
        Value::String(s) => Ok(s.as_bytes().to_vec()),
        Value::Object(map) => match (map.len(), map.get("base64")) {
            (1, Some(Value::String(encoded))) => base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|e| format!("bad base64 ({e})")),
            _ => Err("an object must be {\"base64\": \"...\"} and nothing else".to_string()),
        },
        _ => Err("must be a string or {\"base64\": \"...\"}".to_string()),
    }
}

/// One line: `{"key": K, "value": V}` with the key and value within the
/// store's limits.
fn parse_entry(line: &[u8]) -> Result<(Vec<u8>, Vec<u8>), String> {
    let v: Value = serde_json::from_slice(line).map_err(|e| format!("not valid JSON ({e})"))?;
    let Value::Object(map) = &v else {
        return Err("expected an object {\"key\": ..., \"value\": ...}".to_string());
    };
    let field = |name: &str| -> Result<Vec<u8>, String> {
        let raw = map
            .get(name)
            .ok_or_else(|| format!("no \"{name}\" field"))?;
        from_json(raw).map_err(|e| format!("{name}: {e}"))
    };
    let (key, value) = (field("key")?, field("value")?);
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(format!(
            "key of {} bytes: keys must be 1 to {MAX_KEY_LEN} bytes",
            key.len()
        ));
    }
    if value.len() as u64 > MAX_VALUE_LEN {
        return Err(format!(
            "value of {} bytes: values must be at most {MAX_VALUE_LEN} bytes",
            value.len()
        ));
    }
    Ok((key, value))
}

enum ReadError {
    TooLong,
    Io(io::Error),
}

/// Reads one line into `buf`, without its `\n`; the bytes consumed
/// (line end included), or `None` at the end of the input. A line of more
/// than `max` bytes is [`ReadError::TooLong`] as soon as that is known:
/// at most `max` bytes of it are ever held.
fn read_line(
    input: &mut impl BufRead,
    buf: &mut Vec<u8>,
    max: usize,
) -> Result<Option<usize>, ReadError> {
    let mut consumed = 0;
    loop {
        let available = match input.fill_buf() {
            Ok(available) => available,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ReadError::Io(e)),
        };
        if available.is_empty() {
            return Ok((consumed > 0).then_some(consumed));
        }
        let (chunk, used, done) = match available.iter().position(|&b| b == b'\n') {
            Some(end) => (&available[..end], end + 1, true),
            None => (available, available.len(), false),
        };
        let needed = buf.len() + chunk.len();
        if needed > max {
            return Err(ReadError::TooLong);
        }
        if needed > buf.capacity() {
            // Doubling, but never past the limit.
            let target = (buf.capacity() * 2).max(needed).min(max);
            buf.reserve_exact(target - buf.len());
        }
        buf.extend_from_slice(chunk);
        input.consume(used);
        consumed += used;
        if done {
            return Ok(Some(consumed));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip_through_json() {
        for bytes in [&b""[..], b"plain", "caf\u{e9}".as_bytes(), &[0xff, 0, 0x80]] {
            assert_eq!(from_json(&to_json(bytes)), Ok(bytes.to_vec()));
        }
        assert!(to_json(&[0xff]).get("base64").is_some());
        assert!(from_json(&json!(3)).is_err());
        assert!(from_json(&json!({"base64": 1})).is_err());
        assert!(from_json(&json!({"base64": "AA==", "x": 1})).is_err());
        assert!(from_json(&json!({"base64": "!!"})).is_err());
    }

    #[test]
    fn lines_are_read_within_a_bound() {
        let mut input = &b"ab\ncdef\n\nxyz"[..];
        let mut buf = Vec::new();
        let mut lines = Vec::new();
        loop {
            buf.clear();
            match read_line(&mut input, &mut buf, 3) {
                Ok(Some(n)) => lines.push((String::from_utf8(buf.clone()).unwrap(), n)),
                Ok(None) => break,
                Err(ReadError::TooLong) => {
                    lines.push(("too long".into(), 0));
                    break;
                }
                Err(ReadError::Io(e)) => panic!("{e}"),
            }
        }
        assert_eq!(lines, [("ab".to_string(), 3), ("too long".to_string(), 0)]);
        assert!(buf.capacity() <= 3, "{}", buf.capacity());
    }
}
