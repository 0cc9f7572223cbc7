//! Drawing: `draw(frame, &App)`, one function per screen region. Pure: reads
//! the app, never changes it, never reads the system.
//!
//! ```text
//! ┌──────────────────────────────────────────────────────────────┐
//! │ header: host, kernel, interval, sample age, totals, owners   │ 1 line
//! │ most severe finding (or "no problems found")                 │ 1 line
//! │ state strip: ESTAB  SYN_RECV  FIN_WAIT2 ... count Δ spark    │ 3 lines
//! │ ─ by process · filter · sort ─────────────────────────────── │
//! │ main table                                                   │ rest
//! │ detail pane (tall terminals, or Enter on a connection)       │ 12 lines
//! │ status: prompt, message or key hints                         │ 1 line
//! └──────────────────────────────────────────────────────────────┘
//! ```
//!
//! The other views (keys 2-5: findings, counters, sysctls, diagram) draw in
//! `body`, the rows of the state strip, table and detail pane.

mod counters;
mod detail;
mod diagram;
mod dialog;
mod finding;
mod findings;
mod header;
mod help;
mod states;
mod status;
mod sysctls;
mod table;
pub mod theme;
mod transitions;
mod views;

use crate::app::{App, Mode, View};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::Paragraph;
pub use theme::Theme;

/// Below this the screen says so instead of drawing a broken layout.
pub const MIN_WIDTH: u16 = 40;
pub const MIN_HEIGHT: u16 = 10;
/// From this height on, the detail pane is always visible under the table.
pub const DETAIL_SPLIT_HEIGHT: u16 = 34;
const DETAIL_HEIGHT: u16 = 13;

/// The regions of the main screen for a terminal of this size.
pub struct Regions {
    pub header: Rect,
    pub finding: Rect,
    pub states: Rect,
    pub table: Rect,
    pub detail: Option<Rect>,
    pub status: Rect,
    /// Where views other than the socket table draw: strip, table and detail.
    pub body: Rect,
}

pub fn regions(area: Rect) -> Regions {
    let detail_h = if area.height >= DETAIL_SPLIT_HEIGHT {
        DETAIL_HEIGHT
    } else {
        0
    };
    let [header, finding, states, table, detail, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(3),
        Constraint::Min(3),
        Constraint::Length(detail_h),
        Constraint::Length(1),
    ])
    .areas(area);
    Regions {
        header,
        finding,
        states,
        table,
        detail: (detail_h > 0).then_some(detail),
        status,
        body: states.union(table).union(detail),
    }
}

/// Rows of data the table shows in a terminal of this height.
pub fn table_rows(width: u16, height: u16) -> usize {
    // The table has a title line and a column header line.
    usize::from(
        regions(Rect::new(0, 0, width, height))
            .table
            .height
            .saturating_sub(2),
    )
    .max(1)
}

pub fn draw(frame: &mut Frame, app: &App, theme: &Theme) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let msg = format!(
            "terminal too small ({}x{}); need {MIN_WIDTH}x{MIN_HEIGHT}",
            area.width, area.height
        );
        frame.render_widget(
            Paragraph::new(Line::from(msg)).wrap(ratatui::widgets::Wrap { trim: true }),
            area,
        );
        return;
    }
    let r = regions(area);
    header::render(frame, app, theme, r.header);
    finding::render(frame, app, theme, r.finding);
    if app.view == View::Sockets {
        states::render(frame, app, theme, r.states);
        table::render(frame, app, theme, r.table);
        if let Some(d) = r.detail {
            detail::render(frame, app, theme, d, false);
        }
    } else {
        views::render(frame, app, theme, r.body);
    }
    status::render(frame, app, theme, r.status);
    match app.mode {
        Mode::Help => help::render(frame, app, theme, area),
        Mode::Detail => {
            let [_, body, _] = Layout::vertical([
                Constraint::Length(1),
                Constraint::Min(1),
                Constraint::Length(1),
            ])
            .areas(area);
            detail::render(frame, app, theme, body, true);
        }
        Mode::Kill | Mode::Destroy => dialog::render(frame, app, theme, area),
        Mode::Normal | Mode::Filter | Mode::Jump => {}
    }
}
