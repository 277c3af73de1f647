//! How bytes, ids and JSON reach standard output: every write goes
//! through [`Stdout`] (or [`line`], the `outln!` macro), which returns I/O
//! errors instead of panicking as `println!` does, and marks a closed pipe
//! so that `main` ends the command quietly (see [`stdout_closed`]).

use std::borrow::Cow;
use std::fmt;
use std::io::{self, BufWriter, StdoutLock, Write};

use serde_json::Value;

/// Writes one line to standard output, flushed, like `println!` but
/// returning an [`io::Error`] (marked as standard output's) instead of
/// panicking.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::line(format_args!($($arg)*))
    };
}

/// Buffered standard output whose errors say they are standard output's.
/// Flush it before returning: dropping it flushes too, but drops errors.
pub struct Stdout(BufWriter<StdoutLock<'static>>);

/// Buffered standard output.
pub fn stdout() -> Stdout {
    Stdout(BufWriter::new(io::stdout().lock()))
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf).map_err(mark)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_all(buf).map_err(mark)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush().map_err(mark)
    }
}

/// One line on standard output, flushed at once (see [`outln!`]).
pub fn line(args: fmt::Arguments<'_>) -> io::Result<()> {
    let mut out = stdout();
    out.write_fmt(args)?;
    out.write_all(b"\n")?;
    out.flush()
}

/// True if `err` comes from writing to a standard output whose reader
/// has gone (`kvgit log | head`): the command did its work, and ends
/// quietly, as git does. Other broken pipes (a lost database connection)
/// are errors.
pub fn stdout_closed(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .and_then(io::Error::get_ref)
            .and_then(|inner| inner.downcast_ref::<StdoutError>())
            .is_some_and(|e| e.source.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// A failed write to standard output.
#[derive(Debug)]
struct StdoutError {
    source: io::Error,
}

impl fmt::Display for StdoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot write to standard output: {}", self.source)
    }
}

impl std::error::Error for StdoutError {}

/// `e`, marked as standard output's (once).
fn mark(e: io::Error) -> io::Error {
    if e.get_ref().is_some_and(|inner| inner.is::<StdoutError>()) {
        return e;
    }
    io::Error::new(e.kind(), StdoutError { source: e })
}

/// Bytes as text for people: invalid UTF-8 shown with replacement
/// characters.
pub fn lossy(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// Bytes as JSON, as `export` writes them: a string if they are UTF-8,
/// else `{"base64": "..."}`.
pub fn json_bytes(bytes: &[u8]) -> Value {
    kvgit::jsonl::to_json(bytes)
}

/// Writes `value` as one line of JSON.
pub fn write_json(out: &mut impl Write, value: &Value) -> io::Result<()> {
    // Serialized first, so that every error is the writer's io::Error.
    let mut bytes = serde_json::to_vec(value).map_err(io::Error::other)?;
    bytes.push(b'\n');
    out.write_all(&bytes)
}

/// Whether standard output is coloured, decided once by [`set_color`].
static COLOR: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// Decides once whether to colour standard output, as git does: `always`
/// and `never` say so; `auto` colours when standard output is a terminal,
/// `NO_COLOR` is unset or empty and `TERM` is not `dumb`.
pub fn set_color(when: crate::args::ColorWhen) {
    use crate::args::ColorWhen;
    use std::io::IsTerminal;
    let on = match when {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
                && io::stdout().is_terminal()
        }
    };
    let _ = COLOR.set(on);
}

/// True if standard output is coloured.
pub fn color_on() -> bool {
    COLOR.get().copied().unwrap_or(false)
}

/// The colours of the output, git's: ids yellow, additions green,
/// removals red, modified keys cyan.
pub mod paint {
    use anstyle::{AnsiColor, Style};

    /// A commit id.
    pub const ID: Style = AnsiColor::Yellow.on_default();
    /// An added key or value.
    pub const ADDED: Style = AnsiColor::Green.on_default();
    /// A removed key or value.
    pub const REMOVED: Style = AnsiColor::Red.on_default();
    /// A modified key.
    pub const MODIFIED: Style = AnsiColor::Cyan.on_default();
}

/// `text` in `style` when colour is on, else as it is.
pub fn painted(style: anstyle::Style, text: &str) -> String {
    if color_on() {
        format!("{style}{text}{style:#}")
    } else {
        text.to_string()
    }
}
