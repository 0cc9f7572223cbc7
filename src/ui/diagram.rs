//! The TCP state diagram view: the drawing from `assets/tcp-states.txt` with
//! the live count of TCP sockets in each state's box, the selected
//! connection's state highlighted, and a legend line.

use super::Theme;
use super::views::render_title;
use crate::app::{App, STRIP_STATES};
use crate::model::diagram::{self, Piece};
use crate::model::{Proto, TcpState};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

/// The state to highlight and why: the selected TCP connection's, or else
/// the one under the state strip's cursor.
pub fn highlighted(app: &App) -> (TcpState, &'static str) {
    match app.selected_socket() {
        Some(s) if s.proto == Proto::Tcp => (s.state, "the selected connection's state"),
        _ => (
            STRIP_STATES[app.state_cursor.min(STRIP_STATES.len() - 1)],
            "the state strip's cursor (Tab, ←/→ in view 1)",
        ),
    }
}

pub fn render(frame: &mut Frame, app: &App, theme: &Theme, area: Rect) {
    let (state, why) = highlighted(app);
    let legend = format!(
        "[STATE n]: TCP sockets in that state now. Highlighted: {}, {why}.",
        state.kernel_name()
    );
    let legend_h = if legend.chars().count() > usize::from(area.width) {
        2
    } else {
        1
    };
    let [title, body, legend_area] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(legend_h),
    ])
    .areas(area);

    let lines = diagram::drawing();
    let height = usize::from(body.height);
    let scroll = app
        .views
        .diagram_scroll
        .min(lines.len().saturating_sub(height));
    let mut note = "│ live TCP counts".to_string();
    if app.filtered.is_some() {
        note.push_str(" of the filter");
    }
    if lines.len() > height {
        note.push_str(" (↑↓ scroll)");
    }
    render_title(frame, app, theme, title, note);

    let counts = &app.views.tcp_counts;
    let placed = diagram::place(&lines, |s| u64::from(counts.get(s)));
    let text: Vec<Line> = placed
        .into_iter()
        .skip(scroll)
        .take(height)
        .map(|pieces| {
            Line::from(
                pieces
                    .into_iter()
                    .map(|p| match p {
                        Piece::Text(t) => Span::raw(t),
                        Piece::Box { state: s, text } => {
                            let style = if s == state {
                                theme.selected().add_modifier(Modifier::BOLD)
                            } else if s.is_trouble() && counts.get(s) > 0 {
                                theme.trouble()
                            } else {
                                ratatui::style::Style::new()
                            };
                            Span::styled(text, style)
                        }
                    })
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    frame.render_widget(Paragraph::new(text), body);
    frame.render_widget(
        Paragraph::new(Span::styled(legend, theme.dim())).wrap(Wrap { trim: true }),
        legend_area,
    );
}
