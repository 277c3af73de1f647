//! [`KeyFile`]: one key's value as a file inside a transaction (gitkv's
//! `open()`).

use std::io::{self, Read, Seek, SeekFrom, Write};

use crate::error::Result;
use crate::tx::Transaction;

/// How [`Transaction::open`] opens a key.
///
/// ```
/// use std::io::{Read, Seek, SeekFrom, Write};
/// use kvgit::OpenMode;
///
/// let db = kvgit::Db::memory();
/// let main = db.branch("main")?;
/// main.put("log", "a")?;
/// let mut tx = main.transaction()?;
/// tx.open("log", OpenMode::Append)?.write_all(b"b")?; // "ab"
/// let mut f = tx.open("log", OpenMode::ReadWrite)?;
/// f.write_all(b"A")?; // overwrites from position 0: "Ab"
/// f.seek(SeekFrom::Start(0))?;
/// let mut s = String::new();
/// f.read_to_string(&mut s)?;
/// assert_eq!(s, "Ab");
/// drop(f);
/// tx.open("log", OpenMode::Write)?; // truncates, even without a write
/// assert_eq!(tx.get("log")?.as_deref(), Some(&b""[..]));
/// let mut s = String::new();
/// tx.open("missing", OpenMode::Read)?.read_to_string(&mut s)?; // empty
/// assert_eq!(s, "");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// Read the current value (missing: empty); writes are errors.
    Read,
    /// Start empty (truncate); write from the start.
    Write,
    /// Start from the current value; writes go to the end.
    Append,
    /// Start from the current value at position 0; read, write and seek.
    ReadWrite,
}

/// A key's value as a file: `io::Read`, `io::Write` and `io::Seek` over an
/// in-memory copy. When the handle is dropped (or [`KeyFile::close`]d)
/// after a write, the new contents are staged in the transaction: they are
/// committed with it and discarded with it.
///
/// ```
/// use std::io::{Read, Write};
/// use kvgit::OpenMode;
///
/// let db = kvgit::Db::memory();
/// let main = db.branch("main")?;
/// let mut tx = main.transaction()?;
/// {
///     let mut f = tx.open("notes.txt", OpenMode::Write)?;
///     writeln!(f, "first line")?;
/// }
/// {
///     let mut f = tx.open("notes.txt", OpenMode::Append)?;
///     writeln!(f, "second line")?;
/// }
/// tx.commit()?;
/// let mut text = String::new();
/// main.transaction()?.open("notes.txt", OpenMode::Read)?.read_to_string(&mut text)?;
/// assert_eq!(text, "first line\nsecond line\n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct KeyFile<'tx> {
    tx: &'tx mut Transaction,
    key: Vec<u8>,
    data: Vec<u8>,
    pos: usize,
    mode: OpenMode,
    dirty: bool,
}

impl Transaction {
    /// Opens `key` as a file (see [`KeyFile`]).
    ///
    /// ```
    /// use std::io::Write;
    /// use kvgit::OpenMode;
    ///
    /// let db = kvgit::Db::memory();
    /// let main = db.branch("main")?;
    /// let mut tx = main.transaction()?;
    /// tx.open("notes.txt", OpenMode::Write)?.write_all(b"hello")?;
    /// assert!(tx.is_staged("notes.txt")); // staged when the file was dropped
    /// tx.commit()?;
    /// assert_eq!(main.get("notes.txt")?.as_deref(), Some(&b"hello"[..]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(&mut self, key: impl AsRef<[u8]>, mode: OpenMode) -> Result<KeyFile<'_>> {
        let key = key.as_ref().to_vec();
        let data = match mode {
            OpenMode::Write => Vec::new(),
            _ => self.get(&key)?.unwrap_or_default(),
        };
        let pos = if mode == OpenMode::Append {
            data.len()
        } else {
            0
        };
        Ok(KeyFile {
            tx: self,
            key,
            data,
            pos,
            mode,
            // Opening for writing creates the key even if nothing is written.
            dirty: mode == OpenMode::Write,
        })
    }
}

impl KeyFile<'_> {
    /// The current contents.
    ///
    /// ```
    /// use std::io::Write;
    /// use kvgit::OpenMode;
    ///
    /// let db = kvgit::Db::memory();
    /// let main = db.branch("main")?;
    /// main.put("k", "abc")?;
    /// let mut tx = main.transaction()?;
    /// let mut f = tx.open("k", OpenMode::Append)?;
    /// assert_eq!(f.contents(), b"abc");
    /// f.write_all(b"def")?;
    /// assert_eq!(f.contents(), b"abcdef");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn contents(&self) -> &[u8] {
        &self.data
    }

    /// Truncates (or zero-extends) the contents to `len` bytes.
    ///
    /// ```
    /// use kvgit::OpenMode;
    ///
    /// let db = kvgit::Db::memory();
    /// let main = db.branch("main")?;
    /// main.put("k", "abcdef")?;
    /// let mut tx = main.transaction()?;
    /// let mut f = tx.open("k", OpenMode::ReadWrite)?;
    /// f.set_len(3)?;
    /// assert_eq!(f.contents(), b"abc");
    /// f.set_len(5)?; // zero-extends
    /// assert_eq!(f.contents(), b"abc\0\0");
    /// drop(f);
    /// // Read-only handles refuse.
    /// assert!(tx.open("k", OpenMode::Read)?.set_len(0).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_len(&mut self, len: usize) -> io::Result<()> {
        self.check_writable()?;
        self.data.resize(len, 0);
        self.dirty = true;
        Ok(())
    }

    /// Stages the contents now and closes the handle.
    ///
    /// ```
    /// use std::io::Write;
    /// use kvgit::OpenMode;
    ///
    /// let db = kvgit::Db::memory();
    /// let main = db.branch("main")?;
    /// let mut tx = main.transaction()?;
    /// let mut f = tx.open("k", OpenMode::Write)?;
    /// f.write_all(b"v")?;
    /// f.close(); // the same as dropping it: the contents are staged now
    /// assert_eq!(tx.get("k")?.as_deref(), Some(&b"v"[..]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close(self) {
        // Drop stages.
    }

    fn check_writable(&self) -> io::Result<()> {
        if self.mode == OpenMode::Read {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "key opened for reading only",
            ));
        }
        Ok(())
    }
}

impl Read for KeyFile<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let rest = self.data.get(self.pos..).unwrap_or_default();
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.pos += n;
        Ok(n)
    }
}

impl Write for KeyFile<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.check_writable()?;
        if self.mode == OpenMode::Append {
            self.pos = self.data.len();
        }
        let end = self.pos + buf.len();
        if self.data.len() < end {
            self.data.resize(end, 0);
        }
        self.data[self.pos..end].copy_from_slice(buf);
        self.pos = end;
        self.dirty = true;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for KeyFile<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let len = self.data.len() as i128;
        let target = match to {
            SeekFrom::Start(n) => i128::from(n),
            SeekFrom::End(d) => len + i128::from(d),
            SeekFrom::Current(d) => self.pos as i128 + i128::from(d),
        };
        let pos = usize::try_from(target)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        self.pos = pos;
        Ok(pos as u64)
    }
}

impl Drop for KeyFile<'_> {
    fn drop(&mut self) {
        if self.dirty {
            let data = std::mem::take(&mut self.data);
            self.tx.staged_mut().insert(self.key.clone(), Some(data));
        }
    }
}
