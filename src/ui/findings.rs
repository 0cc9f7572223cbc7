//! The findings view: every current finding, most severe first, and the
//! selected one's explanation and next step. Enter shows its sockets.
//!
//! ```text
//!  1 sockets [2 findings] 3 counters ... │ 1 critical, 0 warning, 2 info
//! │ CRITICAL close_wait_leak  python3 (pid 448) holds 134 ...     │ list
//! │ info     fin_wait2        134 sockets in FIN_WAIT2 ...        │
//! ├───────────────────────────────────────────────────────────────┤
//! │ since 03:12:04 or earlier (5m ago)                            │ detail
//! │ The peers closed these connections ...                        │
//! │ Next: ...                                                     │
//! └───────────────────────────────────────────────────────────────┘
//! ```

use super::Theme;
use super::detail::hang;
use crate::app::App;
use crate::model::findings::{Finding, Severity, format_clock};
use crate::model::view::format_age;
use crate::sanitize::clean;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

pub fn label(sev: Severity, theme: &Theme) -> (&'static str, Style) {
    match sev {
        Severity::Critical => ("CRITICAL", theme.trouble()),
        Severity::Warning => ("WARNING", theme.warn().add_modifier(Modifier::BOLD)),
        Severity::Info => ("info", theme.dim()),
    }
}

/// Rows the list shows in a body of this height.
pub fn list_rows(findings: usize, height: u16) -> usize {
    let half = usize::from(height.saturating_sub(2)) / 2;
    findings.clamp(1, half.max(1))
}

pub fn render(frame: &mut Frame, app: &App, theme: &Theme, area: Rect) {
    let findings = &app.findings;
    let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
    let [title, inner] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
    let note = format!(
        "│ {} critical, {} warning, {} info │ Enter: its sockets",
        count(Severity::Critical),
        count(Severity::Warning),
        count(Severity::Info)
    );
    super::views::render_title(frame, app, theme, title, note);
    if findings.is_empty() {
        let text = if app.history.samples().is_empty() {
            " waiting for the first sample"
        } else {
            " No problems found on this machine."
        };
        frame.render_widget(Paragraph::new(Span::styled(text, theme.dim())), inner);
        return;
    }
    let rows = list_rows(findings.len(), inner.height);
    let [list, rule, detail] = Layout::vertical([
        Constraint::Length(rows as u16),
        Constraint::Length(1),
        Constraint::Min(0),
    ])
    .areas(inner);
    let pos = app.views.findings;
    let cursor = pos.cursor.min(findings.len() - 1);
    let offset = crate::model::view::visible_offset(pos.offset, cursor, rows, findings.len());
    let lines: Vec<Line> = findings
        .iter()
        .enumerate()
        .skip(offset)
        .take(rows)
        .map(|(i, f)| {
            let (text, style) = label(f.severity, theme);
            let mut line = Line::from(vec![
                Span::styled(format!("{text:<9}"), style),
                Span::raw(format!("{:<19}", f.kind.name())),
                Span::raw(clean(&f.summary).into_owned()),
            ]);
            if i == cursor {
                line = line.style(theme.selected());
            }
            line
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), list);
    frame.render_widget(
        Block::default()
            .borders(Borders::TOP)
            .border_style(theme.dim()),
        rule,
    );
    let f = &findings[cursor];
    let width = usize::from(detail.width);
    let lines: Vec<Line> = detail_lines(f, app, theme)
        .into_iter()
        .flat_map(|l| hang(l, width, 6))
        .collect();
    frame.render_widget(Paragraph::new(lines), detail);
}

fn detail_lines<'a>(f: &'a Finding, app: &App, theme: &Theme) -> Vec<Line<'a>> {
    let mut lines = Vec::new();
    if let Some(seen) = f.first_seen {
        let age = app
            .snapshot
            .taken_at
            .duration_since(seen)
            .unwrap_or_default();
        let bound = if f.first_seen_exact {
            ""
        } else {
            " or earlier"
        };
        lines.push(Line::from(vec![
            Span::styled("since ", theme.dim()),
            Span::raw(format!(
                "{}{bound} ({} ago)",
                format_clock(seen),
                format_age(age)
            )),
        ]));
    }
    if let Some(g) = &f.growth {
        lines.push(Line::from(vec![
            Span::styled("trend ", theme.dim()),
            Span::raw(g.describe()),
        ]));
    }
    // The filter before the long texts: on a small screen it stays in view.
    if !f.filter.is_empty() {
        lines.push(Line::from(vec![
            Span::styled("show  ", theme.dim()),
            Span::raw(format!("Enter filters the sockets: {}", clean(&f.filter))),
        ]));
    }
    lines.push(Line::from(vec![
        Span::styled("why   ", theme.dim()),
        Span::raw(clean(&f.message).into_owned()),
    ]));
    lines.push(Line::from(vec![
        Span::styled("next  ", theme.dim()),
        Span::raw(clean(&f.next_step).into_owned()),
    ]));
    lines
}
