//! `kvgit clone`, `remote`, `fetch`, `pull`, `push`, `serve`,
//! `get --remote` and `branch --list --remotes`: sharing a store between
//! machines.

use std::ffi::OsString;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use indicatif::ProgressBar;
use kvgit::merge::{Counter, LastWriterWins};
use kvgit::remote::{
    ConnectOptions, FetchOptions, PushOptions, PushUpdate, RemoteUrl, Report, ServeOptions,
    TransferProgress,
};
use serde_json::{json, Value};

use crate::args::RemoteAction;
use crate::cmd::arg_bytes;
use crate::output::{json_bytes, lossy, stdout, write_json};
use crate::store::{display, open_db, Ctx};

/// The remote used when none is named.
const ORIGIN: &str = "origin";

/// How to reach `url`: the serving program (`--remote-kvgit`, else this
/// program for `file://`, else `kvgit` on the remote PATH) and the ssh
/// client (`KVGIT_SSH_COMMAND`, split on white space; default `ssh`).
fn connect_options(ctx: &Ctx, url: &str) -> Result<ConnectOptions> {
    let mut options = ConnectOptions::default();
    let parsed: RemoteUrl = url.parse().map_err(|e| anyhow!("{e}"))?;
    match &ctx.remote_kvgit {
        Some(program) => options.serve_program = program.clone(),
        None => {
            if matches!(parsed, RemoteUrl::File(_)) {
                let exe = std::env::current_exe()
                    .context("finding this kvgit program to serve a file:// URL")?;
                options.serve_program = exe.to_string_lossy().into_owned();
            }
        }
    }
    if let Ok(command) = std::env::var("KVGIT_SSH_COMMAND") {
        let mut words = command.split_whitespace().map(str::to_string);
        if let Some(program) = words.next() {
            options.ssh_program = program;
            options.ssh_args = words.collect();
        }
    }
    Ok(options)
}

/// A spinner counting received objects and bytes, and the callback that
/// moves it.
fn progress_bar(what: &'static str) -> ProgressBar {
    let pb = crate::progress::spinner("objects");
    pb.set_message(what);
    pb
}

fn on_progress<'a>(pb: &'a ProgressBar, what: &'static str) -> impl FnMut(&TransferProgress) + 'a {
    move |p: &TransferProgress| {
        pb.set_position(p.objects);
        pb.set_message(format!("{what} ({})", human_bytes(p.bytes)));
    }
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{n} B"),
        _ => format!("{value:.1} {}", UNITS[unit]),
    }
}

fn id_json(id: Option<kvgit::CommitId>) -> Value {
    id.map_or(Value::Null, |id| Value::String(id.to_hex()))
}

/// A transfer report as JSON.
fn report_json(report: &Report) -> Value {
    json!({
        "objects_received": report.objects_received,
        "bytes_received": report.bytes_received,
        "objects_sent": report.objects_sent,
        "bytes_sent": report.bytes_sent,
        "wire_bytes_received": report.wire_bytes_received,
        "wire_bytes_sent": report.wire_bytes_sent,
        "round_trips": report.round_trips,
        "refs": report.refs.iter().map(|r| json!({
            "name": r.name,
            "old": id_json(r.old),
            "new": id_json(r.new),
        })).collect::<Vec<_>>(),
        "shallow": report.shallow.iter().map(|id| id.to_hex()).collect::<Vec<_>>(),
    })
}

/// Prints a report: as JSON, or its counts and refs.
fn print_report(verb: &str, report: &Report, json: bool, extra: Option<Value>) -> Result<()> {
    let mut out = stdout();
    if json {
        let mut value = report_json(report);
        if let (Some(Value::Object(more)), Value::Object(map)) = (extra, &mut value) {
            map.extend(more);
        }
        write_json(&mut out, &value)?;
    } else {
        if report.objects_received > 0 {
            writeln!(
                out,
                "{verb}: received {} objects ({})",
                report.objects_received,
                human_bytes(report.bytes_received)
            )?;
        }
        if report.objects_sent > 0 {
            writeln!(
                out,
                "{verb}: sent {} objects ({})",
                report.objects_sent,
                human_bytes(report.bytes_sent)
            )?;
        }
        for r in &report.refs {
            match (r.old, r.new) {
                (None, Some(new)) => writeln!(out, "{} created at {}", r.name, new.short(12))?,
                (Some(old), Some(new)) => {
                    writeln!(out, "{} {}..{}", r.name, old.short(12), new.short(12))?
                }
                (_, None) => writeln!(out, "{} deleted", r.name)?,
            }
        }
        if !report.shallow.is_empty() {
            writeln!(
                out,
                "shallow: history cut below {} commit{}",
                report.shallow.len(),
                if report.shallow.len() == 1 { "" } else { "s" }
            )?;
        }
        // A pull says what its merge did instead.
        if report.is_up_to_date() && verb != "pull" {
            writeln!(out, "{verb}: up to date")?;
        }
    }
    out.flush()?;
    Ok(())
}

/// `kvgit clone SOURCE DIR`.
pub fn clone(ctx: &Ctx, source: &str, dir: &Path, depth: Option<u32>, json: bool) -> Result<()> {
    let connect = connect_options(ctx, source)?;
    if crate::store::is_store(dir) {
        let db = open_db(dir)?;
        if !db.branches()?.is_empty() {
            bail!(
                "cannot clone into {}: a store with branches is there already",
                display(dir)
            );
        }
    } else if dir.exists()
        && !crate::store::is_url(dir)
        && std::fs::read_dir(dir).map(|mut d| d.next().is_some())?
    {
        bail!(
            "cannot clone into {}: the directory is not empty",
            dir.display()
        );
    }
    let pb = progress_bar("receiving objects");
    let mut progress = on_progress(&pb, "receiving objects");
    let options = FetchOptions {
        depth,
        connect,
        progress: Some(&mut progress),
    };
    let result = kvgit::Db::clone_from_with(source, dir, options);
    pb.finish_and_clear();
    let (_db, report) = result.with_context(|| format!("cannot clone {source}"))?;
    print_report("clone", &report, json, None)
}

/// `kvgit remote add|remove|list`.
pub fn remote(ctx: &Ctx, action: RemoteAction) -> Result<()> {
    match action {
        RemoteAction::Add { name, url } => {
            let db = ctx.open()?;
            db.add_remote(&name, &url)?;
            crate::outln!("added remote {name} at {url}")?;
        }
        RemoteAction::Remove { name } => {
            let db = ctx.open()?;
            db.remove_remote(&name)?;
            crate::outln!("removed remote {name}")?;
        }
        RemoteAction::List { json } => {
            let db = ctx.open_read_only()?;
            let mut out = stdout();
            let remotes = db.remotes()?;
            if json {
                let list: Vec<Value> = remotes
                    .iter()
                    .map(|(name, url)| json!({"name": name, "url": url}))
                    .collect();
                write_json(&mut out, &Value::Array(list))?;
            } else {
                for (name, url) in remotes {
                    writeln!(out, "{name}\t{url}")?;
                }
            }
            out.flush()?;
        }
    }
    Ok(())
}

/// `kvgit fetch [REMOTE] [BRANCH...]`.
pub fn fetch(
    ctx: &Ctx,
    remote: Option<String>,
    branches: &[String],
    depth: Option<u32>,
    json: bool,
) -> Result<()> {
    let db = ctx.open()?;
    let remote = db.remote(remote.as_deref().unwrap_or(ORIGIN))?;
    let connect = connect_options(ctx, remote.url())?;
    let pb = progress_bar("receiving objects");
    let mut progress = on_progress(&pb, "receiving objects");
    let options = FetchOptions {
        depth,
        connect,
        progress: Some(&mut progress),
    };
    let result = remote.fetch(branches, options);
    pb.finish_and_clear();
    let report = result.with_context(|| format!("cannot fetch from {}", remote.name()))?;
    print_report("fetch", &report, json, None)
}

/// `kvgit pull [REMOTE] [BRANCH]`: fetch, then merge into `--branch`.
pub fn pull(
    ctx: &Ctx,
    remote: Option<String>,
    branch: Option<String>,
    counters: &[String],
    lww: &[String],
    json: bool,
) -> Result<()> {
    let db = ctx.open()?;
    for key in counters {
        crate::cmd::merge::register(&db, key, Counter);
    }
    for key in lww {
        crate::cmd::merge::register(&db, key, LastWriterWins);
    }
    let local = ctx.branch(&db)?;
    let remote_name = remote.unwrap_or_else(|| ORIGIN.to_string());
    let remote_branch = branch.unwrap_or_else(|| ctx.branch.clone());
    let remote = db.remote(&remote_name)?;
    let connect = connect_options(ctx, remote.url())?;
    let pb = progress_bar("receiving objects");
    let mut progress = on_progress(&pb, "receiving objects");
    let options = FetchOptions {
        connect,
        progress: Some(&mut progress),
        ..Default::default()
    };
    let result = local.pull_branch(&remote_name, &remote_branch, options);
    pb.finish_and_clear();
    let pulled = match result {
        Ok(pulled) => pulled,
        Err(kvgit::Error::Conflicts(conflicts)) => {
            let keys: Vec<String> = conflicts
                .iter()
                .map(|c| lossy(&c.key).into_owned())
                .collect();
            bail!(
                "pull of {remote_name}/{remote_branch} into {} stopped by conflicting keys: {} \
                 (the fetch is kept in remotes/{remote_name}/{remote_branch}; merge it with \
                 --counter or --lww)",
                local.name(),
                keys.join(", ")
            );
        }
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!("cannot pull from {remote_name}")))
        }
    };
    let merge = &pulled.merge;
    let strategy = format!("{:?}", merge.strategy);
    let extra = json!({
        "merge": {
            "strategy": strategy,
            "head": merge.head.to_hex(),
            "merge_commit": id_json(merge.merge_commit),
            "resolved": merge.resolved.iter().map(|k| json_bytes(k)).collect::<Vec<_>>(),
        }
    });
    print_report("pull", &pulled.fetch, json, Some(extra))?;
    if !json {
        let name = local.name();
        match merge.strategy {
            kvgit::Strategy::NoOp => {
                crate::outln!("{name} is already up to date at {}", merge.head)?
            }
            kvgit::Strategy::FastForward => {
                crate::outln!("fast-forwarded {name} to {}", merge.head)?
            }
            _ => crate::outln!(
                "merged {remote_name}/{remote_branch} into {name}: {}",
                merge.head
            )?,
        }
    }
    Ok(())
}

/// `kvgit push [REMOTE] [BRANCH] [--force]`.
pub fn push(
    ctx: &Ctx,
    remote: Option<String>,
    branch: Option<String>,
    force: bool,
    json: bool,
) -> Result<()> {
    let db = ctx.open()?;
    let name = branch.unwrap_or_else(|| ctx.branch.clone());
    let local = crate::store::existing_branch(&db, &name)?;
    let remote_name = remote.unwrap_or_else(|| ORIGIN.to_string());
    let remote = db.remote(&remote_name)?;
    let connect = connect_options(ctx, remote.url())?;
    let pb = progress_bar("sending objects");
    let shown = pb.clone();
    let options = PushOptions {
        force,
        connect,
        progress: Some(Arc::new(move |p: &TransferProgress| {
            shown.set_position(p.objects);
            shown.set_message(format!("sending objects ({})", human_bytes(p.bytes)));
        })),
        ..Default::default()
    };
    let result = local.push(&remote_name, options);
    pb.finish_and_clear();
    let report = result.with_context(|| format!("cannot push {name} to {remote_name}"))?;
    print_report("push", &report, json, None)
}

/// `kvgit branch --list --remotes`.
pub fn list_tracking(ctx: &Ctx, json: bool) -> Result<()> {
    let db = ctx.open_read_only()?;
    let mut out = stdout();
    let branches = db.remote_branches()?;
    if json {
        let list: Vec<Value> = branches
            .iter()
            .map(|(r, b, head)| json!({"name": format!("{r}/{b}"), "head": head.to_hex()}))
            .collect();
        write_json(&mut out, &Value::Array(list))?;
    } else {
        for (remote, branch, head) in branches {
            writeln!(out, "remotes/{remote}/{branch} {head}")?;
        }
    }
    out.flush()?;
    Ok(())
}

/// `kvgit get --remote URL KEY --verify`: the value with its proof, only.
pub fn get_verified(ctx: &Ctx, url: &str, key: OsString) -> Result<()> {
    let key = arg_bytes(key);
    let connect = connect_options(ctx, url)?;
    let proven = kvgit::remote::get_verified(url, &ctx.branch, &key, &connect)
        .with_context(|| format!("cannot read {:?} from {url}", lossy(&key)))?;
    match proven.value {
        Some(value) => {
            let mut out = stdout();
            out.write_all(&value)?;
            out.flush()?;
            Ok(())
        }
        None => bail!(
            "no key {:?} on branch {} at {url} (proven absent at commit {})",
            lossy(&key),
            ctx.branch,
            proven.commit
        ),
    }
}

/// `kvgit serve --stdio PATH`: the protocol on standard input and output.
pub fn serve(path: &Path, pre_receive: Option<String>, read_only: bool) -> Result<()> {
    let ctx = Ctx {
        store: path.to_path_buf(),
        branch: String::new(),
        remote_kvgit: None,
    };
    let db = ctx.open()?;
    let mut options = ServeOptions {
        read_only,
        ..Default::default()
    };
    if let Some(command) = pre_receive {
        options.pre_receive = Some(Arc::new(move |update: &PushUpdate| {
            run_pre_receive(&command, update)
        }));
    }
    db.serve(std::io::stdin(), std::io::stdout(), &options)?;
    Ok(())
}

/// Runs the pre-receive command with the update as JSON on its standard
/// input; its standard output goes to our standard error (our standard
/// output carries the protocol).
fn run_pre_receive(command: &str, update: &PushUpdate) -> std::result::Result<(), String> {
    let input = json!({
        "ref": update.name,
        "old": id_json(update.old),
        "new": update.new.to_hex(),
        "forced": update.forced,
        "changed_keys": update.changed_keys.iter().map(|k| json_bytes(k)).collect::<Vec<_>>(),
    });
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run the pre-receive command {command:?}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A command that does not read its input may close it early.
        let _ = stdin.write_all(input.to_string().as_bytes());
        let _ = stdin.write_all(b"\n");
    }
    let output = child
        .wait_with_output()
        .map_err(|e| format!("the pre-receive command failed: {e}"))?;
    let _ = std::io::stderr().write_all(&output.stdout);
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
    Err(match stderr.is_empty() {
        true => format!("the pre-receive command exited with {}", output.status),
        false => stderr,
    })
}
