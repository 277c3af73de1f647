//! `kvgit log`, `show` and `history`: reading commits.

use std::collections::HashSet;
use std::ffi::OsString;
use std::io::Write;

use anyhow::Result;
use kvgit::{CommitId, CommitInfo};
use serde_json::{json, Value};

use crate::cmd::arg_bytes;
use crate::output::{lossy, paint, painted, stdout, write_json};
use crate::store::{resolve, Ctx};
use crate::time::rfc3339;

/// Lists the commits reachable from the branch head (or from `rev`),
/// newest first.
pub fn log(
    ctx: &Ctx,
    n: Option<usize>,
    graph: bool,
    json: bool,
    oneline: bool,
    rev: Option<String>,
) -> Result<()> {
    let db = ctx.open_read_only()?;
    let start = match &rev {
        Some(rev) => resolve(&db, rev)?,
        None => ctx.branch(&db)?.head()?,
    };
    let mut out = stdout();
    let mut lanes = Graph::default();
    let mut listed = Vec::new();
    // Where a shallow clone cut the history: shown (the walk stops there).
    let shallow: HashSet<CommitId> = db.shallow_commits()?.into_iter().collect();
    let walk = kvgit::advanced::repo(&db).log(&[start]);
    for item in walk.take(n.unwrap_or(usize::MAX)) {
        let (id, commit) = item?;
        let info = CommitInfo { id, commit };
        let at_cut = shallow.contains(&info.id);
        let line = match oneline {
            true => oneline_summary(&db, &info)?,
            false => summary(&info),
        };
        if json {
            listed.push(commit_json(&info));
        } else if graph {
            let (before, prefix, after) = lanes.row(info.id, info.parents());
            for line in before {
                writeln!(out, "{}", line.trim_end())?;
            }
            writeln!(out, "{} {line}", prefix.trim_end())?;
            for line in after {
                writeln!(out, "{}", line.trim_end())?;
            }
        } else {
            writeln!(out, "{line}")?;
        }
        if at_cut && !json {
            writeln!(
                out,
                "(shallow: the history before {} was not fetched)",
                info.id.short(12)
            )?;
        }
    }
    if json {
        write_json(&mut out, &Value::Array(listed))?;
    }
    out.flush()?;
    Ok(())
}

/// Prints one commit in full.
pub fn show(ctx: &Ctx, rev: &str, json: bool) -> Result<()> {
    let db = ctx.open_read_only()?;
    let id = resolve(&db, rev)?;
    let snapshot = db.checkout(&id)?;
    let info = snapshot.info()?;
    let mut out = stdout();
    if json {
        let mut value = commit_json(&info);
        value["root"] = json!(info.commit.root.to_hex());
        value["keys"] = json!(snapshot.len());
        value["value_bytes"] = json!(snapshot.value_bytes());
        write_json(&mut out, &value)?;
    } else {
        let parents: Vec<String> = info.parents().iter().map(CommitId::to_hex).collect();
        writeln!(out, "commit      {}", info.id)?;
        writeln!(
            out,
            "parents     {}",
            if parents.is_empty() {
                "(none: a root commit)".to_string()
            } else {
                parents.join(" ")
            }
        )?;
        writeln!(out, "height      {}", info.commit.height)?;
        writeln!(out, "time        {}", rfc3339(info.commit.time_micros))?;
        writeln!(out, "keys        {}", snapshot.len())?;
        writeln!(out, "value bytes {}", snapshot.value_bytes())?;
        for (k, v) in info.metadata() {
            writeln!(out, "meta        {k} = {v}")?;
        }
        writeln!(out)?;
        for line in info.message().lines() {
            writeln!(out, "    {line}")?;
        }
    }
    out.flush()?;
    Ok(())
}

/// Lists the commits on the branch's first-parent line where a key
/// changed, newest first.
pub fn history(ctx: &Ctx, key: OsString, json: bool) -> Result<()> {
    let key = arg_bytes(key);
    let db = ctx.open_read_only()?;
    let branch = ctx.branch(&db)?;
    let mut out = stdout();
    let mut listed = Vec::new();
    for entry in branch.key_history(&key)? {
        let (info, value) = entry?;
        let size = value.as_ref().map(|v| v.len());
        if json {
            let mut v = commit_json(&info);
            v["size"] = json!(size);
            v["deleted"] = json!(size.is_none());
            listed.push(v);
        } else {
            let what = match size {
                Some(1) => "1 byte".to_string(),
                Some(n) => format!("{n} bytes"),
                None => "deleted".to_string(),
            };
            writeln!(
                out,
                "{} {} {what} {}",
                info.id,
                rfc3339(info.commit.time_micros),
                first_line(info.message())
            )?;
        }
    }
    if json {
        write_json(&mut out, &Value::Array(listed))?;
    }
    out.flush()?;
    Ok(())
}

/// `log --oneline`'s line: the abbreviated id and the message's first
/// line.
fn oneline_summary(db: &kvgit::Db, info: &CommitInfo) -> Result<String> {
    let id = crate::rev::abbrev(db, &info.id)?;
    Ok(format!(
        "{} {}",
        painted(paint::ID, &id),
        first_line(info.message())
    ))
}

fn summary(info: &CommitInfo) -> String {
    format!(
        "{} {} {}",
        painted(paint::ID, &info.id.to_hex()),
        rfc3339(info.commit.time_micros),
        first_line(info.message())
    )
}

fn first_line(message: &str) -> String {
    let line = message.lines().next().unwrap_or("");
    lossy(line.as_bytes()).into_owned()
}

fn commit_json(info: &CommitInfo) -> Value {
    json!({
        "id": info.id.to_hex(),
        "parents": info.parents().iter().map(CommitId::to_hex).collect::<Vec<_>>(),
        "height": info.commit.height,
        "time": rfc3339(info.commit.time_micros),
        "time_micros": info.commit.time_micros,
        "message": info.message(),
        "metadata": info.metadata(),
    })
}

/// The lanes of `log --graph`: lane `j` is drawn in column `2 * j` and
/// holds the commit expected next on that line of history. Commits come
/// in an order where every child precedes its parents (by height), so each
/// commit after the first already sits in a lane.
#[derive(Default)]
struct Graph {
    lanes: Vec<CommitId>,
}

impl Graph {
    /// The lines drawn before the commit's row (lanes joining into it), the
    /// row's prefix, and the lines after (lanes opening for a merge's
    /// second parent, or closing after a root).
    fn row(&mut self, id: CommitId, parents: &[CommitId]) -> (Vec<String>, String, Vec<String>) {
        let mut before = Vec::new();
        let mut after = Vec::new();
        let mut at: Vec<usize> = (0..self.lanes.len())
            .filter(|&j| self.lanes[j] == id)
            .collect();
        if at.is_empty() {
            self.lanes.push(id);
            at.push(self.lanes.len() - 1);
        }
        let i = at[0];
        // Several children lead here: fold their lanes into lane i, the
        // rightmost first.
        for &k in at[1..].iter().rev() {
            let mut line = self.blank();
            for j in 0..k {
                line[2 * j] = '|';
            }
            for c in line.iter_mut().take(2 * k - 1).skip(2 * i + 1).step_by(2) {
                *c = '_';
            }
            for j in k..self.lanes.len() {
                line[2 * j - 1] = '/';
            }
            before.push(line.into_iter().collect());
            self.lanes.remove(k);
        }
        let mut row = self.blank();
        for j in 0..self.lanes.len() {
            row[2 * j] = if j == i { '*' } else { '|' };
        }
        let prefix: String = row.into_iter().collect();
        match parents {
            [] => {
                self.lanes.remove(i);
                if i < self.lanes.len() {
                    let mut line = self.blank();
                    for j in 0..i {
                        line[2 * j] = '|';
                    }
                    for j in i..self.lanes.len() {
                        line[2 * j + 1] = '/';
                    }
                    after.push(line.into_iter().collect());
                }
            }
            [first, rest @ ..] => {
                self.lanes[i] = *first;
                if let Some(second) = rest.first() {
                    let mut line = self.blank();
                    line.extend([' ', ' ']);
                    for j in 0..=i {
                        line[2 * j] = '|';
                    }
                    line[2 * i + 1] = '\\';
                    for j in i + 1..self.lanes.len() {
                        line[2 * j + 1] = '\\';
                    }
                    after.push(line.into_iter().collect());
                    self.lanes.insert(i + 1, *second);
                }
            }
        }
        (before, prefix, after)
    }

    fn blank(&self) -> Vec<char> {
        vec![' '; 2 * self.lanes.len()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> CommitId {
        kvgit::advanced::ObjectId([n; 32])
    }

    /// Draws a DAG given as (commit, parents) in log order.
    fn draw(dag: &[(u8, &[u8])]) -> String {
        let mut g = Graph::default();
        let mut out = String::new();
        for (c, parents) in dag {
            let parents: Vec<CommitId> = parents.iter().map(|&p| id(p)).collect();
            let (before, prefix, after) = g.row(id(*c), &parents);
            for l in before {
                out.push_str(l.trim_end());
                out.push('\n');
            }
            out.push_str(&format!("{prefix}{c}").replace(' ', "."));
            out.push('\n');
            for l in after {
                out.push_str(l.trim_end());
                out.push('\n');
            }
        }
        out
    }

    #[test]
    fn a_merge_opens_and_closes_a_lane() {
        // 5 = merge(4, 3); 4 -> 2; 3 -> 2; 2 -> 1; 1 root.
        let drawn = draw(&[(5, &[4, 3]), (4, &[2]), (3, &[2]), (2, &[1]), (1, &[])]);
        assert_eq!(drawn, "*.5\n|\\\n*.|.4\n|.*.3\n|/\n*.2\n*.1\n");
    }

    #[test]
    fn a_straight_line_is_one_lane() {
        assert_eq!(draw(&[(3, &[2]), (2, &[1]), (1, &[])]), "*.3\n*.2\n*.1\n");
    }

    #[test]
    fn distant_lanes_fold_across_others() {
        // 9 = merge(8, 7); 8 = merge(6, 5); 6, 5 and 7 all lead to 1.
        let drawn = draw(&[
            (9, &[8, 7]),
            (8, &[6, 5]),
            (7, &[1]),
            (6, &[1]),
            (5, &[1]),
            (1, &[]),
        ]);
        assert!(drawn.contains("|_|/"), "{drawn}");
        assert!(drawn.ends_with("*.1\n"), "{drawn}");
    }
}
