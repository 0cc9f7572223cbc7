//! The state strip: one cell per TCP state with its count, change and history.

use super::Theme;
use crate::app::{App, Focus, STRIP_STATES};
use crate::model::group;
use crate::model::view::{is_trouble, sparkline_text};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

pub fn render(frame: &mut Frame, app: &App, theme: &Theme, area: Rect) {
    let counts = group::by_state(&app.snapshot.sockets);
    let cells =
        Layout::horizontal([Constraint::Ratio(1, STRIP_STATES.len() as u32); STRIP_STATES.len()])
            .split(area);
    for (i, (&state, &cell)) in STRIP_STATES.iter().zip(cells.iter()).enumerate() {
        let n = counts.get(state);
        let delta = app.history.delta(state);
        let alarming = is_trouble(state) && n > 0;
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
        let delta_text = match delta {
            0 => String::new(),
            d if d > 0 => format!(" +{d}"),
            d => format!(" {d}"),
        };
        let delta_style = if delta > 0 && is_trouble(state) {
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
                    if alarming {
                        format!("!{n}")
                    } else {
                        n.to_string()
                    },
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

fn truncate(s: &str, w: usize) -> String {
    s.chars().take(w).collect()
}
