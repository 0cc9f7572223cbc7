//! The top line: where we are and how fresh the data is.

use super::Theme;
use crate::app::{App, format_interval};
use crate::sanitize::clean;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

pub fn render(frame: &mut Frame, app: &App, theme: &Theme, area: Rect) {
    let snap = &app.snapshot;
    // Items in order of importance; each is shown only if it still fits.
    let mut items: Vec<(String, Style)> = Vec::new();
    items.push((sockets(snap.sockets.len()), Style::new()));
    match snap.attribution.unreadable_processes {
        0 => items.push(("all owners visible".into(), theme.good())),
        _ => items.push((
            if snap.attribution.as_root {
                // Root, yet some fd tables are closed (pid 1 in a sandbox, LSMs).
                format!(
                    "{} without visible owner",
                    sockets(snap.attribution.unattributed_sockets)
                )
            } else {
                format!(
                    "{} unattributed: not root",
                    sockets(snap.attribution.unattributed_sockets)
                )
            },
            theme.warn(),
        )),
    }
    if app.paused {
        items.insert(0, ("PAUSED".into(), theme.trouble()));
    }
    if app.read_only {
        items.insert(0, ("READ-ONLY".into(), theme.warn()));
    }
    if app.recording.is_some() {
        items.insert(0, ("REC".into(), theme.trouble()));
    }
    let interval = app.stats.map_or(app.interval, |s| s.interval);
    let mut every = format!("every {}", format_interval(interval));
    if interval > app.interval {
        every.push_str(" (auto)");
    }
    items.push((every, Style::new()));
    if app.stats.is_some() {
        let age = app
            .clock
            .duration_since(snap.taken_at)
            .map(|d| format!("{:.1}s ago", d.as_secs_f64()))
            .unwrap_or_else(|_| "now".into());
        items.push((age, theme.dim()));
    }
    if !app.host.is_empty() {
        items.push((clean(&app.host).into_owned(), Style::new()));
    }
    if let Some(s) = app.stats {
        items.push((format!("took {}ms", s.took.as_millis()), theme.dim()));
    }
    if !app.kernel.is_empty() {
        items.push((format!("Linux {}", clean(&app.kernel)), theme.dim()));
    }

    let mut spans = vec![Span::styled("sockscope", theme.title())];
    let mut used = "sockscope".len();
    for (text, style) in items {
        let need = 3 + text.chars().count();
        // Items are in order of importance: once one does not fit, stop.
        if used + need > usize::from(area.width) {
            break;
        }
        used += need;
        spans.push(Span::styled(" │ ", theme.dim()));
        spans.push(Span::styled(text, style));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn sockets(n: usize) -> String {
    if n == 1 {
        "1 socket".into()
    } else {
        format!("{n} sockets")
    }
}
