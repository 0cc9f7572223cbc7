//! The views other than the socket table: the line of view tabs they share,
//! and which renderer draws the body.
//!
//! ```text
//! │ header                                                       │
//! │ 1 sockets  2 findings [3 counters] 4 sysctls  5 diagram │ …  │ title
//! │ the view's body: counters, sysctls, diagram or findings      │
//! │ status: key hints                                            │
//! ```

use super::Theme;
use crate::app::{App, View};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use unicode_width::UnicodeWidthStr;

pub fn render(frame: &mut Frame, app: &App, theme: &Theme, area: Rect) {
    match app.view {
        View::Counters => super::counters::render(frame, app, theme, area),
        View::Sysctls => super::sysctls::render(frame, app, theme, area),
        View::Diagram => super::diagram::render(frame, app, theme, area),
        View::Findings => super::findings::render(frame, app, theme, area),
        View::Transitions => super::transitions::render(frame, app, theme, area),
        // The socket table is drawn region by region in `ui::draw`.
        View::Sockets => {}
    }
}

/// The first key bound to a view's action, as the help writes it.
fn view_key(app: &App, view: View) -> String {
    app.keymap
        .keys(view.action())
        .first()
        .map(|k| k.label())
        .unwrap_or_default()
}

/// `1-6` when the views have their default keys, otherwise each view's key.
pub fn keys_hint(app: &App) -> String {
    let keys: Vec<String> = View::ALL.iter().map(|&v| view_key(app, v)).collect();
    if keys == ["1", "2", "3", "4", "5", "6"] {
        "1-6".to_string()
    } else {
        keys.join("/")
    }
}

/// The view tabs (the active one in reverse video and brackets, so it shows
/// without colour), then `extra` as far as it fits.
fn title_line<'a>(app: &App, theme: &Theme, extra: Vec<Span<'a>>) -> Line<'a> {
    let mut spans = Vec::new();
    for v in View::ALL {
        let key = view_key(app, v);
        if v == app.view {
            spans.push(Span::styled(
                format!("[{key} {}]", v.title()),
                theme.selected().add_modifier(Modifier::BOLD),
            ));
        } else {
            spans.push(Span::styled(format!(" {key} "), theme.title()));
            spans.push(Span::styled(format!("{} ", v.title()), theme.dim()));
        }
    }
    if !extra.is_empty() {
        spans.push(Span::raw(" "));
    }
    spans.extend(extra);
    Line::from(spans)
}

/// Draws the view tabs on `area`, with `note` dimmed after them.
pub fn render_title(frame: &mut Frame, app: &App, theme: &Theme, area: Rect, note: String) {
    let line = title_line(app, theme, vec![Span::styled(note, theme.dim())]);
    frame.render_widget(ratatui::widgets::Paragraph::new(line), area);
}

/// Word-wraps plain text to `width` columns (at least 1 line, long words cut),
/// first fit, so lines fill as far as they can.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let opts = textwrap::Options::new(width.max(1))
        .wrap_algorithm(textwrap::WrapAlgorithm::FirstFit)
        .break_words(true);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    textwrap::wrap(&text, opts)
        .into_iter()
        .map(|l| l.into_owned())
        .collect()
}

/// Cuts `text` to `width` columns, ending in `…` when it was longer.
pub fn fit(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_string();
    }
    let mut out = String::new();
    for c in text.chars() {
        if out.width() + 1 >= width {
            break;
        }
        out.push(c);
    }
    if width > 0 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_breaks_at_spaces_and_cuts_long_words() {
        assert_eq!(wrap("aa bb cc", 5), ["aa bb", "cc"]);
        assert_eq!(wrap("abcdefgh", 3), ["abc", "def", "gh"]);
        assert_eq!(wrap("", 10), [""]);
    }

    #[test]
    fn fit_marks_cut_text() {
        assert_eq!(fit("short", 10), "short");
        assert_eq!(fit("TcpExt.TCPMemoryPressuresChrono", 10), "TcpExt.TC…");
        assert_eq!(fit("abc", 0), "");
    }
}
