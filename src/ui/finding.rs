//! The line under the header: the most severe current finding, always in
//! view, or that nothing was found.

use super::Theme;
use crate::app::App;
use crate::app::keymap::Action;
use crate::sanitize::clean;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

pub fn render(frame: &mut Frame, app: &App, theme: &Theme, area: Rect) {
    // Under a filter, the filter's findings; the rest are counted at the end.
    let findings = app.line_findings();
    let elsewhere = app.findings_elsewhere();
    let more = (elsewhere > 0).then(|| {
        let key = app
            .keymap
            .keys(Action::ViewFindings)
            .first()
            .map(|k| k.label())
            .unwrap_or_default();
        format!(" +{elsewhere} more elsewhere: view {key}")
    });
    let Some(top) = findings.first() else {
        let text = if app.history.samples().is_empty() {
            "waiting for the first sample"
        } else if app.filtered.is_some() {
            "no problems found in the filter"
        } else {
            "no problems found"
        };
        let mut spans = vec![Span::styled(text, theme.dim())];
        if let Some(more) = more {
            spans.push(Span::styled(more, theme.warn()));
        }
        frame.render_widget(Paragraph::new(Line::from(spans)), area);
        return;
    };
    let (label, style) = super::findings::label(top.severity, theme);
    // The count goes first; the summary is shortened at a word to leave
    // room for what is elsewhere.
    let mut spans = vec![Span::styled(format!("{label} "), style)];
    if findings.len() > 1 {
        spans.push(Span::styled(format!("1/{} ", findings.len()), theme.dim()));
    }
    let used: usize =
        Line::from(spans.clone()).width() + more.as_deref().map_or(0, |m| m.chars().count());
    let room = usize::from(area.width).saturating_sub(used);
    spans.push(Span::raw(shorten_at_word(&clean(&top.summary), room)));
    if let Some(more) = more {
        spans.push(Span::styled(more, theme.warn()));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// `text` in at most `width` columns, cut after a whole word and marked
/// with `…` when it does not fit; never cut mid-word (a word longer than
/// the whole width is the one exception).
pub fn shorten_at_word(text: &str, width: usize) -> String {
    use unicode_width::UnicodeWidthStr;
    if text.width() <= width {
        return text.to_string();
    }
    let budget = width.saturating_sub(1);
    let mut out = String::new();
    for word in text.split(' ') {
        let candidate = if out.is_empty() {
            word.to_string()
        } else {
            format!("{out} {word}")
        };
        if candidate.width() > budget {
            break;
        }
        out = candidate;
    }
    let out = out.trim_end_matches([',', ';', ':']);
    if out.is_empty() {
        // One long word: cut it, there is nothing better.
        let mut cut = String::new();
        for c in text.chars() {
            if (cut.clone() + &c.to_string()).width() > budget {
                break;
            }
            cut.push(c);
        }
        return format!("{cut}…");
    }
    format!("{out}…")
}

#[cfg(test)]
mod tests {
    use super::shorten_at_word;

    #[test]
    fn long_lines_are_shortened_after_a_whole_word() {
        let s = "sleep (pid 42) holds 64 sockets in CLOSE_WAIT on port 6800, growing by 15/min";
        assert_eq!(shorten_at_word(s, 200), s);
        assert_eq!(shorten_at_word(s, 30), "sleep (pid 42) holds 64…");
        assert_eq!(
            shorten_at_word(s, 64),
            "sleep (pid 42) holds 64 sockets in CLOSE_WAIT on port 6800…"
        );
        assert_eq!(shorten_at_word("abcdefghij", 5), "abcd…");
    }
}
