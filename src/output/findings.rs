//! `diagnose` output: findings as text for people, or `{"findings": [...]}`.

use super::json::SafeFormatter;
use crate::model::findings::{Finding, Severity, format_clock};
use crate::model::view::format_age;
use crate::sanitize::clean;
use serde::Serialize;
use std::io::{self, Write};
use std::time::{Duration, SystemTime};

/// What the run looked at, printed with the findings.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    /// Seconds between the first and the last sample.
    pub sampled_for_s: f64,
    pub samples: usize,
    /// Sockets the filter selected in the last sample.
    pub sockets: usize,
    pub filter: String,
    #[serde(skip)]
    pub taken_at: SystemTime,
    /// What the kernel's transitions counted over the window (live only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transitions: Option<super::transitions::Report>,
}

#[derive(Serialize)]
struct Document<'a> {
    worst: Option<Severity>,
    #[serde(flatten)]
    run: &'a Run,
    findings: &'a [Finding],
}

pub fn write_json<W: Write>(out: W, run: &Run, findings: &[Finding]) -> io::Result<()> {
    let mut out = io::BufWriter::new(out);
    let doc = Document {
        worst: crate::model::findings::worst(findings),
        run,
        findings,
    };
    let mut ser = serde_json::Serializer::with_formatter(&mut out, SafeFormatter);
    doc.serialize(&mut ser).map_err(io::Error::other)?;
    out.write_all(b"\n")?;
    out.flush()
}

/// Text width for wrapping: the terminal's, or 100 columns.
pub fn width() -> usize {
    crossterm::terminal::size()
        .map(|(w, _)| usize::from(w))
        .unwrap_or(100)
        .clamp(40, 120)
}

fn label(sev: Severity, color: bool) -> String {
    let text = match sev {
        Severity::Critical => "CRITICAL",
        Severity::Warning => "WARNING",
        Severity::Info => "info",
    };
    match (color, sev) {
        (true, Severity::Critical) => format!("\x1b[1;31m{text}\x1b[0m"),
        (true, Severity::Warning) => format!("\x1b[1;33m{text}\x1b[0m"),
        _ => text.to_string(),
    }
}

/// Every string from another process (names, in messages too) is cleaned of
/// control characters before it is written.
pub fn write_text<W: Write>(
    out: W,
    run: &Run,
    findings: &[Finding],
    width: usize,
    color: bool,
) -> io::Result<()> {
    let mut out = io::BufWriter::new(out);
    let scope = if run.filter.is_empty() {
        String::new()
    } else {
        format!(" matching `{}`", clean(&run.filter))
    };
    let over = format!(
        "{} sockets{scope}, {} samples over {:.1} s",
        run.sockets, run.samples, run.sampled_for_s
    );
    if findings.is_empty() {
        writeln!(out, "No problems found ({over}).")?;
        if let Some(t) = &run.transitions {
            t.write_text(&mut out)?;
        }
        return out.flush();
    }
    let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
    writeln!(
        out,
        "{} findings: {} critical, {} warning, {} info ({over}).",
        findings.len(),
        count(Severity::Critical),
        count(Severity::Warning),
        count(Severity::Info)
    )?;
    let body = width.saturating_sub(2).max(30);
    for f in findings {
        writeln!(out)?;
        writeln!(
            out,
            "{} {}: {}",
            label(f.severity, color),
            f.kind.name(),
            clean(&f.summary)
        )?;
        if let Some(seen) = f.first_seen {
            let age = run.taken_at.duration_since(seen).unwrap_or(Duration::ZERO);
            let bound = if f.first_seen_exact {
                ""
            } else {
                " or earlier"
            };
            writeln!(
                out,
                "  since {}{bound} ({} ago)",
                format_clock(seen),
                format_age(age)
            )?;
        }
        for (name, text) in [("", &f.message), ("Next: ", &f.next_step)] {
            let text = format!("{name}{}", clean(text));
            let opts = textwrap::Options::new(body)
                .initial_indent("  ")
                .subsequent_indent("  ");
            for line in textwrap::wrap(&text, opts) {
                writeln!(out, "{line}")?;
            }
        }
        if !f.filter.is_empty() {
            writeln!(out, "  Sockets: sockscope snapshot {}", clean(&f.filter))?;
        }
    }
    if let Some(t) = &run.transitions {
        t.write_text(&mut out)?;
    }
    out.flush()
}
