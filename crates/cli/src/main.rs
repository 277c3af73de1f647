//! `kvgit`: the command line of the kvgit versioned key-value store.
//!
//! This crate is flags and glue: `args` declares the command line, each
//! module under `cmd` runs one command (or a small group) through the
//! `kvgit` facade, and `main` parses, dispatches and turns any error into
//! one line on standard error and a non-zero exit.
//!
//! Standard output is written only through `output` (never `println!`,
//! which panics when the reader has gone): a closed pipe ends a command
//! quietly with the status of its work.

#![deny(clippy::print_stdout, clippy::print_stderr)]

mod args;
mod cmd;
mod output;
mod progress;
mod rev;
mod store;
mod time;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use crate::args::{Args, Command};
use crate::store::Ctx;

fn main() -> ExitCode {
    quiet_panics();
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(err) => return usage_error(&err),
    };
    output::set_color(args.color);
    let branch = cmd::switch::default_branch(&args.store, args.branch, &args.command);
    let ctx = Ctx {
        store: args.store,
        branch,
        remote_kvgit: args.remote_kvgit,
    };
    rev::set_head(&ctx.branch);
    // Only a command that only reads reuses the open made to read the
    // current branch.
    if !args.command.only_reads() {
        store::release_read_only();
    }
    let result = match args.command {
        Command::Init { engine } => cmd::init::run(&ctx, engine.into()),
        Command::Put {
            key,
            value,
            message,
        } => cmd::kv::put(&ctx, key, value, message),
        Command::Get {
            key,
            remote: Some(url),
            ..
        } => cmd::remote::get_verified(&ctx, &url, key),
        Command::Get { key, at, .. } => cmd::kv::get(&ctx, key, at),
        Command::Rm { key, message } => cmd::kv::rm(&ctx, key, message),
        Command::Ls {
            prefix,
            at,
            json,
            wait,
        } => cmd::kv::ls(&ctx, prefix, at, json, wait),
        Command::Log {
            n,
            graph,
            json,
            oneline,
            rev,
        } => cmd::log::log(&ctx, n, graph, json, oneline, rev),
        Command::Show { rev, json } => cmd::log::show(&ctx, &rev, json),
        Command::History { key, json } => cmd::log::history(&ctx, key, json),
        Command::Diff { a, b, json, patch } => cmd::diff::run(&ctx, &a, &b, json, patch),
        Command::Branch {
            list,
            remotes: true,
            json,
            ..
        } if list => cmd::remote::list_tracking(&ctx, json),
        Command::Branch {
            name,
            at,
            list,
            delete,
            force,
            json,
            ..
        } => cmd::branch::branch(
            &ctx,
            name,
            at,
            list,
            cmd::branch::Delete { delete, force },
            json,
        ),
        Command::Reset { rev } => cmd::branch::reset(&ctx, &rev),
        Command::Merge {
            from,
            into,
            counter,
            lww,
            json,
        } => cmd::merge::run(&ctx, &from, into, &counter, &lww, json),
        Command::Gc {
            high,
            low,
            dry_run,
            yes,
            json,
        } => cmd::gc::gc(&ctx, high, low, cmd::gc::Confirm { dry_run, yes }, json),
        Command::Sweep {
            dry_run,
            grace,
            json,
        } => cmd::gc::sweep(&ctx, dry_run, grace, json),
        Command::Stats { json } => cmd::stats::run(&ctx, json),
        Command::Export { at } => cmd::transfer::export(&ctx, at),
        Command::Import { file, message } => cmd::transfer::import(&ctx, &file, message),
        Command::Verify { json } => cmd::verify::run(&ctx, json),
        Command::Tag {
            name,
            rev,
            list: _,
            delete,
            json,
        } => cmd::tag::run(&ctx, name, rev, delete, json),
        Command::Switch { name, create } => cmd::switch::switch(&ctx, &name, create),
        Command::Status { json } => cmd::switch::status(&ctx, json),
        Command::Edit { key, message } => cmd::edit::run(&ctx, key, message),
        Command::Completions { shell } => cmd::completions::completions(shell),
        Command::Man => cmd::completions::man(),
        Command::Compact { json } => cmd::gc::compact(&ctx, json),
        Command::Clone {
            source,
            dir,
            depth,
            json,
        } => cmd::remote::clone(&ctx, &source, &dir, depth, json),
        Command::Remote { action } => cmd::remote::remote(&ctx, action),
        Command::Fetch {
            remote,
            branches,
            depth,
            json,
        } => cmd::remote::fetch(&ctx, remote, &branches, depth, json),
        Command::Pull {
            remote,
            branch,
            counter,
            lww,
            json,
        } => cmd::remote::pull(&ctx, remote, branch, &counter, &lww, json),
        Command::Push {
            remote,
            branch,
            force,
            json,
        } => cmd::remote::push(&ctx, remote, branch, force, json),
        Command::Serve {
            path,
            pre_receive,
            read_only,
            ..
        } => cmd::remote::serve(&path, pre_receive, read_only),
    };
    // Closed before the process reports and exits (a read-only copy is
    // removed when its `Db` is dropped).
    store::release_read_only();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => report(&err),
    }
}

/// Prints `err` as one line on standard error; the exit code is 1. A
/// closed standard output (`kvgit log | head`, `kvgit put k v | head -c0`)
/// ends the command quietly with exit code 0: output is written only after
/// the command's work is done (a write has landed), so the status says so
/// and a script that retries on failure does not apply it twice.
fn report(err: &anyhow::Error) -> ExitCode {
    if output::stdout_closed(err) {
        return ExitCode::SUCCESS;
    }
    let _ = writeln!(std::io::stderr(), "kvgit: {}", error_line(err));
    ExitCode::FAILURE
}

/// `err` and its causes as one line: each cause's `Display` (never
/// `Debug`) after a colon, skipped when the text so far already says it
/// (errors that print their source), line breaks folded into spaces.
fn error_line(err: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if message.contains(text.trim()) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    let lines: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let mut line = lines.join(" ");
    if disk_full(err, &line) {
        line.push_str(" (the disk is full: free some space, then run the command again)");
    }
    line
}

/// True if `err` comes from a full disk (ENOSPC), as an `io::Error` in
/// the chain or as its text in a message.
fn disk_full(err: &anyhow::Error, line: &str) -> bool {
    const ENOSPC: i32 = 28;
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.raw_os_error() == Some(ENOSPC))
    }) || line.contains("No space left on device")
}

/// Help and version go out as clap renders them; a usage error becomes one
/// line on standard error, with exit code 2.
fn usage_error(err: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let code = u8::try_from(err.exit_code()).unwrap_or(2);
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = err.print();
        return ExitCode::from(code);
    }
    let rendered = err.render().to_string();
    // The first paragraph says what is wrong; usage and hints follow.
    let paragraph: Vec<&str> = rendered
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    let first = paragraph.join(" ");
    let message = first.strip_prefix("error: ").unwrap_or(&first);
    // Clap's suggestions ("a similar subcommand exists: 'log'"), as git's,
    // on the same line.
    let mut tips = usage_tips(&rendered);
    if tips.is_empty() && err.kind() == ErrorKind::InvalidSubcommand {
        tips.extend(similar_subcommands(err));
    }
    tips.push("see kvgit --help".to_string());
    let _ = writeln!(std::io::stderr(), "kvgit: {message} ({})", tips.join("; "));
    ExitCode::from(code)
}

/// The `tip:` lines of clap's rendered error: the similar subcommand or
/// argument it suggests, and how to pass a value that looks like a flag.
fn usage_tips(rendered: &str) -> Vec<String> {
    rendered
        .lines()
        .map(str::trim)
        .filter_map(|l| l.strip_prefix("tip: "))
        .map(str::to_string)
        .collect()
}

/// Git's suggestion for a mistyped command that clap's similarity misses
/// (a swap of two letters, as `lgo` for `log`): the commands at most two
/// edits away (insertions, deletions, substitutions, swaps of adjacent
/// letters) and fewer than the typed word has letters, the closest only.
fn similar_subcommands(err: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue};
    let Some(ContextValue::String(typed)) = err.get(ContextKind::InvalidSubcommand) else {
        return None;
    };
    let command = <Args as clap::CommandFactory>::command();
    let typed: Vec<char> = typed.chars().collect();
    let scored: Vec<(usize, &str)> = command
        .get_subcommands()
        .map(|c| {
            let name = c.get_name();
            (
                edit_distance(&typed, &name.chars().collect::<Vec<_>>()),
                name,
            )
        })
        .filter(|&(d, _)| d <= 2 && d < typed.len())
        .collect();
    let best = scored.iter().map(|&(d, _)| d).min()?;
    let names: Vec<String> = scored
        .iter()
        .filter(|&&(d, _)| d == best)
        .map(|(_, name)| format!("'{name}'"))
        .collect();
    match names.as_slice() {
        [] => None,
        [one] => Some(format!("a similar subcommand exists: {one}")),
        many => Some(format!("similar subcommands exist: {}", many.join(", "))),
    }
}

/// The optimal string alignment distance between `a` and `b`.
fn edit_distance(a: &[char], b: &[char]) -> usize {
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    d[0] = (0..=b.len()).collect();
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// A panic is a bug, but the user still gets one line, not a backtrace.
fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".to_string());
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let _ = writeln!(
            std::io::stderr(),
            "kvgit: internal error: {what}{place} (please report it)"
        );
    }));
}

#[cfg(test)]
mod tests {
    use super::{edit_distance, error_line};

    #[test]
    fn a_swap_of_two_letters_is_one_edit() {
        let d = |a: &str, b: &str| {
            edit_distance(
                &a.chars().collect::<Vec<_>>(),
                &b.chars().collect::<Vec<_>>(),
            )
        };
        assert_eq!(d("lgo", "log"), 1);
        assert_eq!(d("brnch", "branch"), 1);
        assert_eq!(d("log", "log"), 0);
        assert_eq!(d("xyz", "log"), 3);
    }

    /// An error that prints its source, as thiserror's `{0}` with `#[from]`.
    #[derive(Debug)]
    struct Wrapping(std::io::Error);

    impl std::fmt::Display for Wrapping {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "i/o error: {}", self.0)
        }
    }

    impl std::error::Error for Wrapping {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn errors_are_one_display_line_each_cause_once() {
        let full = std::io::Error::from_raw_os_error(28);
        let err = anyhow::Error::new(Wrapping(full)).context("committing the import\nto main");
        let line = error_line(&err);
        assert_eq!(
            line,
            "committing the import to main: i/o error: No space left on device (os error 28) \
             (the disk is full: free some space, then run the command again)"
        );
        assert!(!line.contains("StorageFull"), "{line}");
    }
}
