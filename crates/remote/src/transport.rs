//! Connections to a remote: in process, through a child process
//! (`kvgit serve --stdio PATH`), or through `ssh`; and remote URLs.

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use kvgit_core::Repo;

use crate::error::{Error, Result};
use crate::protocol::{Channel, Message};
use crate::serve::{serve, ServeOptions};

/// Where a remote store is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoteUrl {
    /// A store directory on this machine, opened directly.
    Path(PathBuf),
    /// `file:///path`: a store on this machine, served by a child
    /// `kvgit serve --stdio PATH` (the protocol, without ssh).
    File(PathBuf),
    /// `ssh://[user@]host[:port]/path` or `[user@]host:path`: a store on
    /// another machine, served by `kvgit serve --stdio PATH` run through
    /// the system `ssh` client.
    Ssh {
        /// The login name, if given.
        user: Option<String>,
        /// The host.
        host: String,
        /// The port, if given.
        port: Option<u16>,
        /// The store's path on the host.
        path: String,
    },
    /// `postgres://...`: a shared store, opened directly.
    Postgres(String),
}

impl std::str::FromStr for RemoteUrl {
    type Err = Error;

    fn from_str(url: &str) -> Result<Self> {
        let bad = |reason: &str| Error::BadUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        if url.is_empty() {
            return Err(bad("empty"));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(RemoteUrl::Postgres(url.to_string()));
        }
        if let Some(path) = url.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(bad(
                    "a file:// URL takes an absolute path (file:///srv/store)",
                ));
            }
            return Ok(RemoteUrl::File(PathBuf::from(path)));
        }
        if let Some(rest) = url.strip_prefix("ssh://") {
            let (authority, path) = rest
                .split_once('/')
                .ok_or_else(|| bad("an ssh:// URL needs a path after the host"))?;
            let (user, hostport) = match authority.rsplit_once('@') {
                Some((user, hostport)) => (Some(user.to_string()), hostport),
                None => (None, authority),
            };
            let (host, port) = match hostport.rsplit_once(':') {
                Some((host, port)) => (
                    host,
                    Some(
                        port.parse::<u16>()
                            .map_err(|_| bad("the port is not a number"))?,
                    ),
                ),
                None => (hostport, None),
            };
            check_host(host).map_err(&bad)?;
            if user
                .as_deref()
                .is_some_and(|u| u.is_empty() || u.starts_with('-'))
            {
                return Err(bad("invalid user name"));
            }
            if path.is_empty() {
                return Err(bad("an ssh:// URL needs a path after the host"));
            }
            return Ok(RemoteUrl::Ssh {
                user,
                host: host.to_string(),
                port,
                path: format!("/{path}"),
            });
        }
        if url.contains("://") {
            return Err(bad(
                "unknown scheme (file://, ssh:// and postgres:// are known)",
            ));
        }
        // scp form: [user@]host:path, where host has no '/' (so that a
        // local path with a ':' after a '/' stays a path).
        if let Some((authority, path)) = url.split_once(':') {
            if !authority.contains('/') && !authority.is_empty() {
                let (user, host) = match authority.rsplit_once('@') {
                    Some((user, host)) => (Some(user.to_string()), host),
                    None => (None, authority),
                };
                check_host(host).map_err(&bad)?;
                if path.is_empty() {
                    return Err(bad("host:path needs a path"));
                }
                return Ok(RemoteUrl::Ssh {
                    user,
                    host: host.to_string(),
                    port: None,
                    path: path.to_string(),
                });
            }
        }
        Ok(RemoteUrl::Path(PathBuf::from(url)))
    }
}

fn check_host(host: &str) -> std::result::Result<(), &'static str> {
    if host.is_empty() {
        return Err("no host");
    }
    // Never an option to ssh.
    if host.starts_with('-') {
        return Err("a host cannot start with '-'");
    }
    if !host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'[' | b']' | b':'))
    {
        return Err("invalid characters in the host");
    }
    Ok(())
}

/// How [`Connection::open`] starts a server.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// The program that serves a store on the far side (`file://` and
    /// ssh): run as `PROGRAM serve --stdio PATH`. Default `kvgit`.
    pub serve_program: String,
    /// The ssh client. Default `ssh`.
    pub ssh_program: String,
    /// Extra arguments for ssh (before the host), e.g. `-i KEY`.
    pub ssh_args: Vec<String>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            serve_program: "kvgit".into(),
            ssh_program: "ssh".into(),
            ssh_args: Vec::new(),
        }
    }
}

/// A protocol session with a remote store.
pub struct Connection {
    pub(crate) ch: Channel,
    child: Option<Child>,
    server: Option<JoinHandle<Result<()>>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("ch", &self.ch)
            .field("child", &self.child.as_ref().map(Child::id))
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// A session over any reader and writer, with a server at the other
    /// end.
    pub fn new(
        reader: impl Read + Send + 'static,
        writer: impl Write + Send + 'static,
    ) -> Result<Self> {
        Ok(Connection {
            ch: Channel::new(
                Box::new(BufReader::with_capacity(1 << 16, reader)),
                Box::new(BufWriter::with_capacity(1 << 16, writer)),
            )?,
            child: None,
            server: None,
        })
    }

    /// A session with `repo` served by a thread of this process (a store
    /// opened directly: a path, a PostgreSQL URL, a memory store in tests).
    pub fn in_process(repo: Repo, options: ServeOptions) -> Result<Self> {
        let (client_w, server_r) = pipe();
        let (server_w, client_r) = pipe();
        let server = std::thread::Builder::new()
            .name("kvgit-serve".into())
            .spawn(move || serve(&repo, server_r, server_w, &options))?;
        let mut conn = Connection::new(client_r, client_w)?;
        conn.server = Some(server);
        Ok(conn)
    }

    /// A session with a server started as a child process whose stdin and
    /// stdout carry the protocol (its stderr is the caller's).
    pub fn spawn(mut command: Command) -> Result<Self> {
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let program = command.get_program().to_string_lossy().into_owned();
        let mut child = command
            .spawn()
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot run {program}: {e}")))?;
        let stdin = child.stdin.take().expect("stdin was piped");
        let stdout = child.stdout.take().expect("stdout was piped");
        let mut conn = Connection::new(stdout, stdin)?;
        conn.child = Some(child);
        Ok(conn)
    }

    /// The command that serves `url` (`file://` and ssh URLs; `None` for
    /// stores opened directly).
    pub fn command(url: &RemoteUrl, options: &ConnectOptions) -> Option<Command> {
        match url {
            RemoteUrl::File(path) => {
                let mut cmd = Command::new(&options.serve_program);
                cmd.arg("serve").arg("--stdio").arg(path);
                Some(cmd)
            }
            RemoteUrl::Ssh {
                user,
                host,
                port,
                path,
            } => {
                let mut cmd = Command::new(&options.ssh_program);
                cmd.args(&options.ssh_args);
                if let Some(port) = port {
                    cmd.arg("-p").arg(port.to_string());
                }
                let target = match user {
                    Some(user) => format!("{user}@{host}"),
                    None => host.clone(),
                };
                // ssh passes one command line to the remote shell: quote.
                cmd.arg("--").arg(target).arg(format!(
                    "{} serve --stdio {}",
                    shell_quote(&options.serve_program),
                    shell_quote(path)
                ));
                Some(cmd)
            }
            RemoteUrl::Path(_) | RemoteUrl::Postgres(_) => None,
        }
    }

    /// Connects to `url`: spawns the server for `file://` and ssh URLs;
    /// for a store opened directly (a path, PostgreSQL) `open` opens it and
    /// a thread serves it.
    pub fn open(
        url: &RemoteUrl,
        options: &ConnectOptions,
        open: &dyn Fn(&RemoteUrl) -> Result<Repo>,
    ) -> Result<Self> {
        match Connection::command(url, options) {
            Some(cmd) => Connection::spawn(cmd),
            None => Connection::in_process(open(url)?, ServeOptions::default()),
        }
    }

    /// The channel (for protocol-level tests and tools).
    pub fn channel(&mut self) -> &mut Channel {
        &mut self.ch
    }

    /// Ends the session: says goodbye and waits for the server to finish.
    pub fn close(mut self) -> Result<()> {
        let _ = self.ch.send(&Message::Bye);
        let _ = self.ch.flush();
        self.finish()
    }

    fn finish(&mut self) -> Result<()> {
        if let Some(server) = self.server.take() {
            match server.join() {
                Ok(result) => result?,
                Err(_) => return Err(Error::Remote("the serving thread panicked".into())),
            }
        }
        if let Some(mut child) = self.child.take() {
            let status = child.wait()?;
            if !status.success() {
                return Err(Error::Remote(format!("the server exited with {status}")));
            }
        }
        Ok(())
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // A session that ends without `close` (an error on either side):
        // hang up, so the serving thread sees the end of its input (or a
        // failed write) and stops, then wait for it. Until it has stopped
        // it holds the served store open (a sled store's lock), so a next
        // session could not open it.
        if let Some(server) = self.server.take() {
            self.ch.hang_up();
            let _ = server.join();
        }
        // A child is killed and waited for so that it is reaped.
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Quotes `s` for a POSIX shell.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// An in-process pipe: a writer and a reader joined by a bounded channel of
/// chunks. Dropping the writer ends the reader's stream; a write after the
/// reader is gone fails with `BrokenPipe`.
pub fn pipe() -> (PipeWriter, PipeReader) {
    let (tx, rx) = sync_channel(64);
    (
        PipeWriter { tx },
        PipeReader {
            rx,
            chunk: Vec::new(),
            pos: 0,
        },
    )
}

/// The writing end of [`pipe`].
#[derive(Debug)]
pub struct PipeWriter {
    tx: SyncSender<Vec<u8>>,
}

/// The reading end of [`pipe`].
#[derive(Debug)]
pub struct PipeReader {
    rx: Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    pos: usize,
}

impl Write for PipeWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.tx.send(buf.to_vec()).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the reader is gone")
        })?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Read for PipeReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos >= self.chunk.len() {
            match self.rx.recv() {
                Ok(chunk) => {
                    self.chunk = chunk;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> RemoteUrl {
        s.parse().unwrap()
    }

    #[test]
    fn urls_parse_into_their_transports() {
        assert_eq!(parse("/srv/store"), RemoteUrl::Path("/srv/store".into()));
        assert_eq!(parse("rel/store"), RemoteUrl::Path("rel/store".into()));
        assert_eq!(parse("./a:b"), RemoteUrl::Path("./a:b".into()));
        assert_eq!(parse("file:///srv/s"), RemoteUrl::File("/srv/s".into()));
        assert_eq!(
            parse("ssh://alice@example.com:2222/srv/s"),
            RemoteUrl::Ssh {
                user: Some("alice".into()),
                host: "example.com".into(),
                port: Some(2222),
                path: "/srv/s".into()
            }
        );
        assert_eq!(
            parse("ssh://h/s"),
            RemoteUrl::Ssh {
                user: None,
                host: "h".into(),
                port: None,
                path: "/s".into()
            }
        );
        assert_eq!(
            parse("bob@h:stores/s"),
            RemoteUrl::Ssh {
                user: Some("bob".into()),
                host: "h".into(),
                port: None,
                path: "stores/s".into()
            }
        );
        assert_eq!(
            parse("postgres://u@db/kv"),
            RemoteUrl::Postgres("postgres://u@db/kv".into())
        );
        for bad in [
            "",
            "file://rel",
            "ssh://h",
            "ssh://-oProxy=x/s",
            "ssh://h:port/s",
            "http://x/y",
            "-x:path",
            "h:",
        ] {
            assert!(bad.parse::<RemoteUrl>().is_err(), "{bad}");
        }
    }

    #[test]
    fn ssh_commands_quote_the_remote_command() {
        let url = parse("ssh://u@h:22/srv/it's");
        let cmd = Connection::command(&url, &ConnectOptions::default()).unwrap();
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "-p",
                "22",
                "--",
                "u@h",
                "'kvgit' serve --stdio '/srv/it'\\''s'"
            ]
        );
    }
}
