//! The command line, declared with clap.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// A versioned key-value store with git's model: inspect and edit a store
/// by hand, or script against it.
///
/// Revisions (REV) are a branch name, a tag name, `HEAD` (the current
/// branch), a remote-tracking branch (remotes/origin/main or origin/main),
/// or a commit id in full or as a unique prefix of at least 4 hex digits;
/// each may be followed, as in git, by `~N` (the Nth first-parent
/// ancestor; `~` is `~1`) and `^N` (the Nth parent; `^` is `^1`), as in
/// `main~2` or `HEAD^2`.
#[derive(Debug, Parser)]
#[command(name = "kvgit", version, max_term_width = 100)]
pub struct Args {
    /// The store: a directory (the embedded store), or a PostgreSQL URL
    /// such as postgres://user:password@host:5432/database (a store shared
    /// by many processes and hosts; its tables are created by init).
    #[arg(long, global = true, env = "KVGIT_STORE", default_value = "./.kvgit")]
    pub store: PathBuf,
    /// The branch that commands read from and write to (default: the
    /// current branch set by `kvgit switch`, else main).
    #[arg(long, global = true, env = "KVGIT_BRANCH")]
    pub branch: Option<String>,
    /// Colour the output of log and diff: auto (when standard output is a
    /// terminal and NO_COLOR is unset), always or never.
    #[arg(
        long,
        global = true,
        value_name = "WHEN",
        num_args = 0..=1,
        require_equals = true,
        default_value = "auto",
        default_missing_value = "always"
    )]
    pub color: ColorWhen,
    /// The kvgit program that serves a store for `file://` and ssh
    /// remotes (default: this program for `file://`, `kvgit` on the
    /// remote host's PATH for ssh). The ssh client and its options come
    /// from KVGIT_SSH_COMMAND (default `ssh`).
    #[arg(long, global = true, env = "KVGIT_REMOTE_BIN", value_name = "PATH")]
    pub remote_kvgit: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new store with an empty branch
    ///
    /// An error if a store exists at --store.
    Init {
        /// The embedded store to make: kvgit's journal (one append-only
        /// file: a durable commit writes its new objects once and syncs
        /// once), or a sled database (the format of earlier versions).
        #[arg(long, value_enum, default_value = "journal")]
        engine: EngineArg,
    },
    /// Set a key in one commit
    ///
    /// VALUE is read from standard input when absent. Prints the new head.
    Put {
        /// The key.
        key: OsString,
        /// The value; read from standard input when absent.
        value: Option<OsString>,
        /// The commit message.
        #[arg(short, long)]
        message: Option<String>,
    },
    /// Write a key's raw value to standard output
    ///
    /// A key with no value exits 1.
    Get {
        /// The key.
        key: OsString,
        /// Read at this revision instead of the branch head.
        #[arg(long, value_name = "REV", conflicts_with = "remote")]
        at: Option<String>,
        /// Read the key of the --branch branch of the store at URL, with a
        /// Merkle proof checked here: only the proof and the value travel.
        #[arg(long, value_name = "URL", requires = "verify")]
        remote: Option<String>,
        /// With --remote: check the value's proof against the remote
        /// branch's head (always done; the flag says so).
        #[arg(long, requires = "remote")]
        verify: bool,
    },
    /// Delete a key in one commit
    ///
    /// Prints the new head; a key with no value exits 1.
    Rm {
        /// The key.
        key: OsString,
        /// The commit message.
        #[arg(short, long)]
        message: Option<String>,
    },
    /// List keys, one per line, sorted
    Ls {
        /// Only keys starting with this.
        prefix: Option<OsString>,
        /// List at this revision instead of the branch head.
        #[arg(long, value_name = "REV")]
        at: Option<String>,
        /// A JSON array of keys (strings, or {"base64": ...} for other
        /// bytes, as in `export`).
        #[arg(long)]
        json: bool,
        /// If another process holds the store, wait up to SECONDS (default
        /// 30) for it instead of failing at once.
        #[arg(
            long,
            value_name = "SECONDS",
            num_args = 0..=1,
            require_equals = true,
            default_missing_value = "30"
        )]
        wait: Option<u64>,
    },
    /// List the commits reachable from the branch head
    ///
    /// Newest first, one per line: id, time (RFC 3339, UTC), first line of
    /// the message.
    Log {
        /// Start from this revision (a branch, tag, commit id or
        /// remote-tracking branch such as origin/main) instead of --branch.
        #[arg(value_name = "REV")]
        rev: Option<String>,
        /// Show at most N commits.
        #[arg(short = 'n', long = "max-count", value_name = "N")]
        n: Option<usize>,
        /// Draw the commit graph (merges have two parents) in ASCII.
        #[arg(long, conflicts_with = "json")]
        graph: bool,
        /// A JSON array of commits.
        #[arg(long)]
        json: bool,
        /// One short line per commit: the abbreviated id (the shortest
        /// unique prefix, at least 7 hex digits) and the message's first
        /// line.
        #[arg(long, conflicts_with = "json")]
        oneline: bool,
    },
    /// Show one commit
    ///
    /// Its id, parents, height, time, metadata, key count, value bytes and
    /// message.
    Show {
        /// The commit (branch, tag or id).
        #[arg(value_name = "REV")]
        rev: String,
        /// A JSON object.
        #[arg(long)]
        json: bool,
    },
    /// List the commits where a key changed
    ///
    /// The branch's first-parent line, newest first, each with the value's
    /// size then or `deleted`.
    History {
        /// The key.
        key: OsString,
        /// A JSON array.
        #[arg(long)]
        json: bool,
    },
    /// List the keys that differ between two revisions
    ///
    /// One line per key, sorted: `A key` (added in B), `D key` (removed in
    /// B), `M key` (modified). With -p, each key's old and new values too.
    Diff {
        /// The old revision.
        #[arg(value_name = "A")]
        a: String,
        /// The new revision.
        #[arg(value_name = "B")]
        b: String,
        /// A JSON array of {"change", "key", "old", "new"} (values as in
        /// `export`).
        #[arg(long)]
        json: bool,
        /// Show the old and new values (`-` old, `+` new, as `git diff`).
        #[arg(short = 'p', long = "patch", conflicts_with = "json")]
        patch: bool,
    },
    /// Create, list or delete branches
    ///
    /// `branch NAME` creates NAME at the --branch head (or at --at REV);
    /// `branch` or `branch --list` lists the branches with their heads (`*`
    /// marks --branch); `branch -d NAME` deletes NAME (the --branch branch
    /// itself only with --force).
    ///
    /// New names are 1 to 200 ASCII letters, digits and `- _ . /`; `HEAD`,
    /// names containing `..`, names starting with `refs/`, `heads/`, `tags/`
    /// or `remotes/`, and names of 4 to 64 hex digits (which read as a
    /// commit id) are refused.
    Branch {
        /// The branch to create (or delete with -d).
        name: Option<String>,
        /// Create the branch at this revision.
        #[arg(long, value_name = "REV", requires = "name", conflicts_with = "delete")]
        at: Option<String>,
        /// List the branches with their heads.
        #[arg(short, long, conflicts_with_all = ["name", "delete"])]
        list: bool,
        /// With --list: list the remote-tracking branches (remotes/R/B).
        #[arg(short, long, requires = "list")]
        remotes: bool,
        /// Delete branch NAME (its commits stay until a sweep).
        #[arg(short = 'd', long, requires = "name")]
        delete: bool,
        /// With -d: delete NAME even if it is the --branch branch (the one
        /// commands default to).
        #[arg(short, long, requires = "delete")]
        force: bool,
        /// With --list: a JSON array of {"name", "head"}.
        #[arg(long)]
        json: bool,
    },
    /// Move the --branch head to a revision, whatever it held
    Reset {
        /// The commit to move to.
        #[arg(value_name = "REV")]
        rev: String,
    },
    /// Merge a branch, tag or commit into a branch
    ///
    /// Merges FROM into the --branch (or --into) branch: a fast-forward when
    /// possible, else a merge commit with two parents. Keys changed
    /// differently on both sides need a merge function (--counter, --lww);
    /// unresolved ones stop the merge, which changes nothing, and are all
    /// listed.
    Merge {
        /// What to merge in.
        from: String,
        /// The branch to merge into (default: --branch).
        #[arg(long, value_name = "BRANCH")]
        into: Option<String>,
        /// Merge this key as a counter of decimal integers (ours + theirs -
        /// base); a value ending in `/` covers every key under that prefix.
        #[arg(long, value_name = "KEY_OR_PREFIX")]
        counter: Vec<String>,
        /// Merge this key by last writer wins (the later commit's value); a
        /// value ending in `/` covers every key under that prefix.
        #[arg(long, value_name = "KEY_OR_PREFIX")]
        lww: Vec<String>,
        /// A JSON object {"strategy", "head", "resolved"}.
        #[arg(long)]
        json: bool,
    },
    /// Shrink the branch to a low water when it is above a high water
    ///
    /// If the branch holds more than --high value bytes, drop its coldest
    /// keys (least recently used; ties: largest first) down to --low and
    /// start the branch again from a fresh root commit of the survivors.
    /// Keys whose last `/` component starts with `__` are never dropped.
    /// `kvgit sweep` then frees the space.
    ///
    /// Dropping keys asks first on a terminal; elsewhere it needs --yes.
    /// After a rebase, the `kvgit reset` command that undoes it is printed
    /// (it works until the next sweep).
    Gc {
        /// The high water: bytes, or with a K, M, G suffix (powers of 1024;
        /// KB, MB, GB are powers of 1000).
        #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
        high: u64,
        /// The low water (default: 80% of --high).
        #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
        low: Option<u64>,
        /// List the keys that would be dropped (coldest first, with their
        /// sizes), and move no branch (the planned commit is written, and
        /// left for `kvgit sweep`).
        #[arg(long)]
        dry_run: bool,
        /// Drop keys without asking.
        #[arg(short, long)]
        yes: bool,
        /// A JSON object (the dropped keys under "dropped").
        #[arg(long)]
        json: bool,
    },
    /// Delete every object that no branch or tag reaches
    Sweep {
        /// Count what would be freed without deleting anything.
        #[arg(long)]
        dry_run: bool,
        /// On a PostgreSQL store: keep unreachable objects written, and
        /// commits that refs held, within this many seconds (default:
        /// 3600), so that other processes' in-flight commits are safe.
        #[arg(long, value_name = "SECONDS")]
        grace: Option<u64>,
        /// A JSON object of the counts.
        #[arg(long)]
        json: bool,
    },
    /// Show the size of the branch and of the store
    ///
    /// Keys and value bytes of the branch; objects, commits, branches, tags
    /// and size on disk of the store.
    Stats {
        /// A JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Write every entry as JSON lines
    ///
    /// One line per entry, in key order: {"key": K, "value": V}.
    ///
    /// K and V are JSON strings when the bytes are UTF-8, and otherwise
    /// objects {"base64": "..."} holding the bytes in standard base64
    /// (with padding). `kvgit import` reads the same format.
    Export {
        /// Export at this revision instead of the branch head.
        #[arg(long, value_name = "REV")]
        at: Option<String>,
    },
    /// Put the entries of a JSON lines file on the branch in one commit
    ///
    /// Reads FILE (`-`: standard input) as written by `export` and prints the
    /// new head. Entries are added or replaced; other keys stay.
    ///
    /// Each line is {"key": K, "value": V} where K and V are JSON strings
    /// (taken as UTF-8 bytes) or {"base64": "..."} objects for other bytes.
    /// A later line for the same key wins. Blank lines are skipped. A bad
    /// line (or one longer than the largest valid entry could be) stops the
    /// import with its number, and nothing changes.
    Import {
        /// The file, or `-` for standard input.
        file: PathBuf,
        /// The commit message.
        #[arg(short, long)]
        message: Option<String>,
    },
    /// Copy a store: every branch, with remote origin set to SOURCE
    ///
    /// SOURCE is a store path, file:///path (served by a local `kvgit serve`
    /// process), ssh://[user@]host[:port]/path or host:path (over the system
    /// ssh client, running `kvgit serve --stdio PATH` there), or a
    /// postgres:// URL. DIR is the new store (a directory or a postgres://
    /// URL).
    Clone {
        /// Where to copy from.
        source: String,
        /// The new store.
        dir: PathBuf,
        /// Copy only the last N commits of each branch (and their trees).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        depth: Option<u32>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Manage the store's remotes
    Remote {
        #[command(subcommand)]
        action: RemoteAction,
    },
    /// Fetch branches of a remote into remotes/REMOTE/BRANCH
    ///
    /// No local branch moves; `merge remotes/REMOTE/BRANCH` (or `pull`)
    /// merges one in.
    Fetch {
        /// The remote (default: origin).
        remote: Option<String>,
        /// The branches (default: all of the remote's).
        branches: Vec<String>,
        /// Fetch only the last N commits of each branch.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        depth: Option<u32>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Fetch a branch of a remote and merge it into the --branch branch
    Pull {
        /// The remote (default: origin).
        remote: Option<String>,
        /// The remote's branch (default: --branch).
        branch: Option<String>,
        /// Merge this key as a counter (see merge).
        #[arg(long, value_name = "KEY_OR_PREFIX")]
        counter: Vec<String>,
        /// Merge this key by last writer wins (see merge).
        #[arg(long, value_name = "KEY_OR_PREFIX")]
        lww: Vec<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Send a branch to a remote and move the remote's branch to it
    ///
    /// The remote branch moves by compare-and-swap from the head last
    /// fetched from it; a push that is not a fast-forward is refused (pull
    /// first) unless --force.
    Push {
        /// The remote (default: origin).
        remote: Option<String>,
        /// The local branch (default: --branch); the remote's branch of the
        /// same name moves.
        branch: Option<String>,
        /// Move the remote branch even if it has commits this one lacks.
        #[arg(short, long)]
        force: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Serve the store at PATH on standard input and output
    ///
    /// What `file://` and ssh remotes run on the serving side.
    Serve {
        /// Speak the protocol on standard input and output (required).
        #[arg(long, required = true)]
        stdio: bool,
        /// The store.
        path: PathBuf,
        /// Before a pushed branch moves, run CMD (with `sh -c`) with
        /// {"ref", "old", "new", "forced", "changed_keys"} as JSON on its
        /// standard input; a non-zero exit refuses the push, and its
        /// standard error is shown to the pusher.
        #[arg(long, value_name = "CMD")]
        pre_receive: Option<String>,
        /// Refuse every push.
        #[arg(long)]
        read_only: bool,
    },
    /// Check the store's integrity
    ///
    /// Walks every branch and tag, every commit they reach, every tree node
    /// and blob, and checks that each exists, decodes and hashes to its id.
    /// Lists each problem on standard error and exits 1 if there is any.
    Verify {
        /// A JSON object {"ok", "problems", counts...} on standard output.
        #[arg(long)]
        json: bool,
    },
    /// Create, list or delete tags
    ///
    /// `tag NAME [REV]` tags REV (default: the --branch head) as NAME, an
    /// immutable name; `tag` or `tag --list` lists the tags with their
    /// commits; `tag -d NAME` deletes NAME.
    Tag {
        /// The tag to create (or delete with -d).
        name: Option<String>,
        /// The commit to tag (default: the --branch head).
        #[arg(value_name = "REV", requires = "name", conflicts_with = "delete")]
        rev: Option<String>,
        /// List the tags with their commits.
        #[arg(short, long, conflicts_with_all = ["name", "delete"])]
        list: bool,
        /// Delete tag NAME (its commits stay until a sweep if nothing else
        /// reaches them).
        #[arg(short = 'd', long, requires = "name")]
        delete: bool,
        /// With --list: a JSON array of {"name", "commit"}.
        #[arg(long)]
        json: bool,
    },
    /// Make BRANCH the current branch (the default of --branch)
    ///
    /// Stored in the store, so every later command without --branch (or
    /// KVGIT_BRANCH) uses it.
    Switch {
        /// The branch.
        #[arg(value_name = "BRANCH")]
        name: String,
        /// Create BRANCH at the current branch's head first.
        #[arg(short, long)]
        create: bool,
    },
    /// Show the current branch, where it comes from, and its head
    Status {
        /// A JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Edit a key's value in $VISUAL or $EDITOR, and commit it if changed
    ///
    /// As `git commit` without -m: an empty file or a failing editor
    /// aborts, and nothing changes. A key with no value starts empty (so
    /// saving it empty aborts too).
    Edit {
        /// The key.
        key: OsString,
        /// The commit message.
        #[arg(short, long)]
        message: Option<String>,
    },
    /// Print a shell completion script
    ///
    /// For bash: `source <(kvgit completions bash)`, or save it under
    /// /etc/bash_completion.d/ (or ~/.local/share/bash-completion/completions/kvgit).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) on standard output
    ///
    /// `kvgit man | man -l -` shows it; save it as kvgit.1 in a man
    /// directory to install it.
    Man,
    /// Give the space of swept objects back to the file system
    ///
    /// A sweep deletes unreachable objects, but the embedded store keeps
    /// their space until it is compacted: this rewrites the store to hold
    /// only live data (crash-safe; other commands wait meanwhile). Run it
    /// after `kvgit sweep`. A PostgreSQL store reclaims space by itself
    /// (VACUUM): there it does nothing.
    Compact {
        /// A JSON object of the sizes.
        #[arg(long)]
        json: bool,
    },
}

impl Command {
    /// False for the commands that never use a branch (`init`, `clone`,
    /// `remote`, `fetch`, `serve`, `sweep`, `compact`, completions, the
    /// man page): they do not read the store's current branch.
    pub fn uses_branch(&self) -> bool {
        !matches!(
            self,
            Command::Init { .. }
                | Command::Completions { .. }
                | Command::Man
                | Command::Clone { .. }
                | Command::Remote { .. }
                | Command::Fetch { .. }
                | Command::Serve { .. }
                | Command::Sweep { .. }
                | Command::Compact { .. }
        )
    }

    /// True for the commands that only read the store (through
    /// `Ctx::open_read_only`): they reuse the open made to read the
    /// current branch.
    pub fn only_reads(&self) -> bool {
        matches!(
            self,
            Command::Get { remote: None, .. }
                | Command::Ls { .. }
                | Command::Log { .. }
                | Command::Show { .. }
                | Command::Diff { .. }
                | Command::History { .. }
                | Command::Export { .. }
                | Command::Verify { .. }
                | Command::Stats { .. }
                | Command::Status { .. }
        )
    }
}

/// `kvgit init --engine`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EngineArg {
    /// kvgit's journal (the default).
    Journal,
    /// A sled database.
    Sled,
}

impl From<EngineArg> for kvgit::Engine {
    fn from(e: EngineArg) -> Self {
        match e {
            EngineArg::Journal => kvgit::Engine::Journal,
            EngineArg::Sled => kvgit::Engine::Sled,
        }
    }
}

/// When to colour the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorWhen {
    /// When standard output is a terminal and NO_COLOR is unset.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// `kvgit remote` actions.
#[derive(Debug, Subcommand)]
pub enum RemoteAction {
    /// Add a remote (or change its URL)
    Add {
        /// Its name.
        name: String,
        /// Its URL (as for clone).
        url: String,
    },
    /// Remove a remote and its remote-tracking branches
    #[command(alias = "rm")]
    Remove {
        /// Its name.
        name: String,
    },
    /// List the remotes: name and URL
    List {
        /// A JSON array of {"name", "url"}.
        #[arg(long)]
        json: bool,
    },
}

/// Parses a byte count: digits with an optional unit (B; K, M, G, T and
/// KiB.. as powers of 1024; KB, MB, GB, TB as powers of 1000).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a byte count (e.g. 1048576, 512K, 64MiB, 2GB)"))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        other => return Err(format!("unknown unit {other:?} in {s:?}")),
    };
    n.checked_mul(factor)
        .ok_or_else(|| format!("{s:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn byte_counts() {
        assert_eq!(parse_bytes("1000"), Ok(1000));
        assert_eq!(parse_bytes("4K"), Ok(4096));
        assert_eq!(parse_bytes("2MiB"), Ok(2 << 20));
        assert_eq!(parse_bytes("3gb"), Ok(3_000_000_000));
        assert!(parse_bytes("").is_err());
        assert!(parse_bytes("12X").is_err());
        assert!(parse_bytes("-1").is_err());
        assert!(parse_bytes("99999999999T").is_err());
    }
}
