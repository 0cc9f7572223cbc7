//! The state strip: one cell per TCP state with its count, change and history.

use super::Theme;
use crate::app::{App, Focus, STRIP_STATES};
use crate::model::format::sparkline_range;
use crate::model::view::sparkline_text;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

pub fn render(frame: &mut Frame, app: &App, theme: &Theme, area: Rect) {
    // Under a filter the strip counts what the table shows, "64 of 138"
    // when there is room (the machine's count after "of").
    let counts = app.strip_counts();
    let filtered = app.filtered.as_ref();
    let cells =
        Layout::horizontal([Constraint::Ratio(1, STRIP_STATES.len() as u32); STRIP_STATES.len()])
            .split(area);
    for (i, (&state, &cell)) in STRIP_STATES.iter().zip(cells.iter()).enumerate() {
        let n = counts.get(state);
        let machine = app.counts.get(state);
        let delta = filtered.map_or_else(|| app.history.delta(state), |f| f.delta(state));
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
        let count_text = |compact: bool, of: &str| {
            let n = if compact {
                compact_number(u64::from(n))
            } else {
                n.to_string()
            };
            if alarming {
                format!("!{n}{of}")
            } else {
                format!("{n}{of}")
            }
        };
        let of_long = format!(" of {machine}");
        let of_short = format!("/{}", compact_number(u64::from(machine)));
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
        let ofs: &[&str] = if filtered.is_some() && machine > 0 {
            &[&of_long, &of_short, ""]
        } else {
            &[""]
        };
        let (count_text, delta_text) = ofs
            .iter()
            .flat_map(|of| {
                [(false, true), (true, true), (true, false)].map(move |(c, d)| (of, c, d))
            })
            .map(|(of, compact, with_delta)| {
                let d = if with_delta {
                    delta_text(compact)
                } else {
                    String::new()
                };
                (count_text(compact, of), d)
            })
            .find(|(c, d)| c.chars().count() + d.chars().count() <= w)
            .unwrap_or_else(|| (count_text(true, ""), String::new()));
        let delta_style = if delta > 0 && state.is_trouble() {
            theme.trouble()
        } else {
            theme.dim()
        };
        let series = filtered.map_or_else(
            || app.history.state_series(state),
            |f| f.state_series(state),
        );
        // The sparkline is scaled min..max: its range goes beside it when
        // there is room.
        let range = sparkline_range(&series, w);
        let any = series.iter().any(|&v| v > 0);
        let (spark_w, range) = if w >= range.chars().count() + 4 && series.len() > 1 && any {
            let spark_w = w - range.chars().count() - 1;
            // The range of what is drawn (a shorter tail may have a narrower one).
            let range = sparkline_range(&series, spark_w);
            (spark_w, format!(" {range}"))
        } else {
            (w, String::new())
        };
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
            Line::from(vec![
                Span::styled(
                    sparkline_text(&series, spark_w),
                    if alarming {
                        theme.trouble()
                    } else {
                        theme.dim()
                    },
                ),
                Span::styled(range, theme.dim()),
            ]),
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
