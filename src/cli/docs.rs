//! The system tool's surface generated from the CLI definition itself:
//! `sockscope completions SHELL` (clap_complete) and `sockscope man`
//! (clap_mangen), so neither can drift from the flags the binary accepts.

use super::{Cli, FILTER_HELP};
use crate::app::keymap::{Action, Keymap};
use clap::CommandFactory;
use std::io::Write;

/// The shells `sockscope completions` writes for.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// The completion script for `shell`.
pub fn completions(shell: Shell, out: &mut dyn Write) {
    use clap_complete::{Shell as S, generate};
    let mut cmd = Cli::command();
    let shell = match shell {
        Shell::Bash => S::Bash,
        Shell::Zsh => S::Zsh,
        Shell::Fish => S::Fish,
    };
    generate(shell, &mut cmd, "sockscope", out);
}

/// The whole manual page, sockscope(1), in roff: the top-level command, one
/// section per subcommand, then the filter language, keys, exit status,
/// files and environment.
pub fn man_page(out: &mut dyn Write) -> std::io::Result<()> {
    let cmd = Cli::command();
    let man = clap_mangen::Man::new(cmd.clone()).date(env!("SOCKSCOPE_DATE"));
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    // clap_mangen would point at sockscope-snapshot(1) and so on; this page
    // has a section per subcommand instead.
    writeln!(out, ".SH COMMANDS")?;
    for sub in cmd.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
        writeln!(
            out,
            ".TP\n\\fBsockscope {}\\fR\n{} (see SOCKSCOPE {} below)",
            sub.get_name(),
            roff_text(&about),
            sub.get_name().to_uppercase()
        )?;
    }
    for sub in cmd.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        let name = format!("sockscope {}", sub.get_name());
        writeln!(out, ".SH \"{}\"", name.to_uppercase())?;
        let sub_man = clap_mangen::Man::new(sub.clone().bin_name(&name));
        let mut body = Vec::new();
        sub_man.render_synopsis_section(&mut body)?;
        sub_man.render_description_section(&mut body)?;
        sub_man.render_options_section(&mut body)?;
        // A subcommand's own sections nest under its heading.
        let body = String::from_utf8_lossy(&body).replace("\n.SH ", "\n.SS ");
        let body = body
            .strip_prefix(".SH ")
            .map_or(body.clone(), |rest| format!(".SS {rest}"));
        out.write_all(body.as_bytes())?;
        // The filter language is in its own section; the rest of an after_help is the subcommand's.
        if let Some(after) = sub.get_after_help().map(|h| h.to_string())
            && after != FILTER_HELP
        {
            writeln!(out, ".SS Notes")?;
            verbatim(out, &after)?;
        }
    }
    writeln!(out, ".SH \"FILTER LANGUAGE\"")?;
    writeln!(
        out,
        "The monitor, snapshot, diagnose, kill and destroy take the same filter terms."
    )?;
    let filter = FILTER_HELP
        .split("\n\nExit status")
        .next()
        .unwrap_or(FILTER_HELP);
    verbatim(out, filter)?;
    keys(out)?;
    writeln!(out, ".SH \"EXIT STATUS\"")?;
    for (code, meaning) in [
        (
            "0",
            "success (diagnose: nothing at warning level; serve: stopped by Ctrl-C or SIGTERM).",
        ),
        (
            "1",
            "a run-time failure (diagnose: a finding at warning level or worse; serve: cannot listen).",
        ),
        (
            "2",
            "a usage error: a bad flag or filter term, an action refused (--read-only, no terminal to ask on, a whole-table selection without --all); diagnose: any error.",
        ),
    ] {
        writeln!(out, ".TP\n{code}\n{}", roff_text(meaning))?;
    }
    writeln!(out, ".SH FILES")?;
    writeln!(
        out,
        ".TP\n\\fI$XDG_CONFIG_HOME/sockscope/config.toml\\fR (usually \\fI~/.config/sockscope/config.toml\\fR)\n{}",
        roff_text(
            "Key bindings: a [keys] table of action = [keys]. An action listed gets exactly the keys given; a key bound to two actions is an error."
        )
    )?;
    writeln!(
        out,
        ".TP\n\\fI/usr/share/doc/sockscope/examples/keymap.toml\\fR\n{}",
        roff_text("The default bindings and the key names, a starting point for config.toml.")
    )?;
    writeln!(out, ".SH ENVIRONMENT")?;
    for (var, meaning) in [
        ("XDG_CONFIG_HOME, HOME", "where config.toml is looked for."),
        (
            "NO_COLOR",
            "when set and not empty, no colour; everything stays readable.",
        ),
        ("TERM", "vt100 turns colour off too."),
        (
            "SSH_CONNECTION",
            "this SSH session's own connection, which kill and destroy ask twice about (and refuse with --yes unless --own-ssh).",
        ),
    ] {
        writeln!(out, ".TP\n\\fB{var}\\fR\n{}", roff_text(meaning))?;
    }
    writeln!(
        out,
        ".SH \"SEE ALSO\"\n\\fBss\\fR(8), \\fBnstat\\fR(8), \\fBlsof\\fR(8)"
    )?;
    man.render_version_section(out)?;
    Ok(())
}

/// Every action of the default keymap, its keys and what it does.
fn keys(out: &mut dyn Write) -> std::io::Result<()> {
    let keymap = Keymap::defaults();
    writeln!(out, ".SH KEYS")?;
    writeln!(
        out,
        "{}",
        roff_text(
            "The live monitor's and replay's default keys; see FILES to change them. The name in parentheses is the action's name in config.toml."
        )
    )?;
    for action in Action::ALL {
        writeln!(
            out,
            ".TP\n\\fB{}\\fR ({})\n{}",
            roff_text(&keymap.label(action)),
            action.name(),
            roff_text(action.describe())
        )?;
    }
    Ok(())
}

/// Text set as is, in a no-fill block.
fn verbatim(out: &mut dyn Write, text: &str) -> std::io::Result<()> {
    writeln!(out, ".PP\n.nf")?;
    for line in text.lines() {
        writeln!(out, "{}", roff_text(line))?;
    }
    writeln!(out, ".fi")
}

/// `text` made safe for a roff text line: backslashes escaped, non-ASCII
/// (`←`) as groff's `\[u2190]` so the page needs no preconv, and a line that
/// would start with `.` or `'` (a request) guarded.
fn roff_text(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => escaped.push_str("\\e"),
            '-' => escaped.push_str("\\-"),
            c if c.is_ascii() => escaped.push(c),
            c => escaped.push_str(&format!("\\[u{:04X}]", u32::from(c))),
        }
    }
    let text = escaped;
    if text.starts_with('.') || text.starts_with('\'') {
        format!("\\&{text}")
    } else {
        text
    }
}
