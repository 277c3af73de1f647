//! `kvgit completions SHELL` and `kvgit man`: generated from the clap
//! declaration of the command line, so they never drift from it.

use std::io::Write;

use anyhow::Result;
use clap::CommandFactory;

use crate::args::Args;
use crate::output::stdout;

/// Prints the completion script for `shell`.
pub fn completions(shell: clap_complete::Shell) -> Result<()> {
    let mut command = Args::command();
    let mut out = stdout();
    // Generated into memory first: clap_complete panics on a write error.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "kvgit", &mut script);
    out.write_all(&script)?;
    out.flush()?;
    Ok(())
}

/// Prints the manual page, in roff, with a section per command.
pub fn man() -> Result<()> {
    let command = Args::command();
    let mut page = Vec::new();
    let man = clap_mangen::Man::new(command.clone());
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    man.render_options_section(&mut page)?;
    page.extend_from_slice(b".SH COMMANDS\n");
    for sub in command.get_subcommands() {
        let name = sub.get_name();
        let about = sub
            .get_long_about()
            .or(sub.get_about())
            .map(|a| a.to_string())
            .unwrap_or_default();
        page.extend_from_slice(format!(".TP\n\\fBkvgit {name}\\fR\n").as_bytes());
        for (i, para) in about.split("\n\n").enumerate() {
            if i > 0 {
                page.extend_from_slice(b".IP\n");
            }
            page.extend_from_slice(roff_text(para).as_bytes());
            page.push(b'\n');
        }
    }
    man.render_version_section(&mut page)?;
    let mut out = stdout();
    out.write_all(&page)?;
    out.flush()?;
    Ok(())
}

/// `text` as one roff line: backslashes and dashes escaped, and a
/// leading `\&` so that it never starts with a control character.
fn roff_text(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    format!("\\&{}", line.replace('\\', "\\e").replace('-', "\\-"))
}
