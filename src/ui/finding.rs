//! The line under the header: the most severe current finding, always in
//! view, or that nothing was found.

use super::Theme;
use crate::app::App;
use crate::sanitize::clean;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

pub fn render(frame: &mut Frame, app: &App, theme: &Theme, area: Rect) {
    let Some(top) = app.findings.first() else {
        let text = if app.history.samples().is_empty() {
            "waiting for the first sample"
        } else {
            "no problems found"
        };
        frame.render_widget(Paragraph::new(Span::styled(text, theme.dim())), area);
        return;
    };
    let (label, style) = super::findings::label(top.severity, theme);
    // The count goes first: a long summary is cut at the right edge.
    let mut spans = vec![Span::styled(format!("{label} "), style)];
    if app.findings.len() > 1 {
        spans.push(Span::styled(
            format!("1/{} ", app.findings.len()),
            theme.dim(),
        ));
    }
    spans.push(Span::raw(clean(&top.summary).into_owned()));
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}
