//! The top line: where we are and how fresh the data is.

use super::Theme;
use crate::app::{App, format_interval};
use crate::sanitize::clean;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

pub fn render(frame: &mut Frame, app: &App, theme: &Theme, area: Rect) {
    let snap = &app.snapshot;
    let mut spans = vec![Span::styled("sockscope", theme.title())];
    let mut push = |text: String, style| {
        spans.push(Span::styled(" │ ", theme.dim()));
        spans.push(Span::styled(text, style));
    };
    if !app.host.is_empty() {
        push(clean(&app.host).into_owned(), Default::default());
    }
    if !app.kernel.is_empty() && area.width >= 100 {
        push(format!("Linux {}", clean(&app.kernel)), theme.dim());
    }
    let interval = app.stats.map_or(app.interval, |s| s.interval);
    let mut every = format!("every {}", format_interval(interval));
    if interval > app.interval {
        every.push_str(" (auto)");
    }
    if let Some(s) = app.stats {
        every.push_str(&format!(", took {}ms", s.took.as_millis()));
    }
    push(every, Default::default());
    let age = app
        .clock
        .duration_since(snap.taken_at)
        .map(|d| format!("{:.1}s ago", d.as_secs_f64()))
        .unwrap_or_else(|_| "now".into());
    if app.stats.is_some() {
        push(age, theme.dim());
    }
    push(format!("{} sockets", snap.sockets.len()), Default::default());
    match snap.attribution.unreadable_processes {
        0 => push("all owners visible".into(), theme.good()),
        _ => push(
            format!("{} unattributed (not root)", snap.attribution.unattributed_sockets),
            theme.warn(),
        ),
    }
    if app.paused {
        push("PAUSED".into(), theme.trouble());
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}
