//! The state strip: one cell per TCP state with its count, change and history.

use super::Theme;
use crate::app::{App, Focus, STRIP_STATES};
use crate::model::view::sparkline_text;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

pub fn render(frame: &mut Frame, app: &App, theme: &Theme, area: Rect) {
    let counts = &app.counts;
    let cells =
        Layout::horizontal([Constraint::Ratio(1, STRIP_STATES.len() as u32); STRIP_STATES.len()])
            .split(area);
    for (i, (&state, &cell)) in STRIP_STATES.iter().zip(cells.iter()).enumerate() {
        let n = counts.get(state);
        let delta = app.history.delta(state);
        let alarming = state.is_trouble() && n > 0;
        let w = usize::from(cell.width.saturating_sub(1));
        let mut label_style = if alarming {
            theme.trouble()
        } else {
            theme.header()
        };
        if app.focus == Focus::States && app.state_cursor == i {
            label_style = label_style.patch(theme.selected());
        }
        let label = state.short_name();
        // Narrow cells get compact numbers, then lose the delta: never run
        // two cells' numbers together.
        let count_text = |compact: bool| {
            let n = if compact {
                compact_number(u64::from(n))
            } else {
                n.to_string()
            };
            if alarming { format!("!{n}") } else { n }
        };
        let delta_text = |compact: bool| {
            let d = if compact {
                compact_number(delta.unsigned_abs())
            } else {
                delta.unsigned_abs().to_string()
            };
            match delta {
                0 => String::new(),
                x if x > 0 => format!(" +{d}"),
                _ => format!(" -{d}"),
            }
        };
        let (count_text, delta_text) = [(false, true), (true, true), (true, false)]
            .into_iter()
            .map(|(compact, with_delta)| {
                let d = if with_delta {
                    delta_text(compact)
                } else {
                    String::new()
                };
                (count_text(compact), d)
            })
            .find(|(c, d)| c.chars().count() + d.chars().count() <= w)
            .unwrap_or_else(|| (count_text(true), String::new()));
        let delta_style = if delta > 0 && state.is_trouble() {
            theme.trouble()
        } else {
            theme.dim()
        };
        let series = app.history.state_series(state);
        let lines = vec![
            Line::from(Span::styled(truncate(label, w), label_style)),
            Line::from(vec![
                // The `!` makes trouble visible without colour.
                Span::styled(
                    truncate(&count_text, w),
                    if alarming {
                        theme.trouble()
                    } else {
                        Style::new()
                    },
                ),
                Span::styled(delta_text, delta_style),
            ]),
            Line::from(Span::styled(
                sparkline_text(&series, w),
                if alarming {
                    theme.trouble()
                } else {
                    theme.dim()
                },
            )),
        ];
        frame.render_widget(Paragraph::new(lines), cell);
    }
}

pub use crate::model::view::compact_number;

fn truncate(s: &str, w: usize) -> String {
    s.chars().take(w).collect()
}

#[cfg(test)]
mod tests {
    use super::compact_number;

    #[test]
    fn compact_numbers_fit_four_columns() {
        assert_eq!(compact_number(9999), "9999");
        assert_eq!(compact_number(100_000), "100k");
        assert_eq!(compact_number(1_234_567), "1.2M");
        for n in [0, 5, 12_345, 999_999, 9_999_999, 123_456_789] {
            assert!(compact_number(n).len() <= 4, "{n}");
        }
    }
}
