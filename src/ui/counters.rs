//! The kernel counters view, like `nstat`: per-second rates of the snmp and
//! netstat counters. Pinned counters first, then every other one that rose;
//! the meaning of the counter under the cursor at the bottom.
//!
//! ```text
//! │ tabs │ rates /s over 2m                                           │
//! │  COUNTER                      NOW/s 1MIN/s        TOTAL RATE HISTORY │
//! │ !TcpExt.ListenOverflows          12    3.4         1234 ▁▁▃█       │
//! │   other counters that rose, fastest first                         │
//! │ TcpExt.ListenOverflows: SYNs and ACKs dropped because ...         │ up to 4 lines
//! ```

use super::Theme;
use super::views::{fit, render_title, wrap};
use crate::app::App;
use crate::model::counter_rows::{self, CounterRow, format_rate};
use crate::model::format::sparkline_from_zero as sparkline_text;
use crate::model::view::{compact_number, format_age, visible_offset};
use crate::sanitize::clean;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

const NAME_W: usize = 31;
const RATE_W: usize = 7;
const TOTAL_W: usize = 13;

/// Which columns fit: (total, history width).
fn columns(width: usize) -> (bool, usize) {
    let base = 1 + NAME_W + 2 * (1 + RATE_W);
    let with_total = base + 1 + TOTAL_W;
    if width < with_total {
        (false, 0)
    } else {
        (true, width.saturating_sub(with_total + 1))
    }
}

fn total_text(total: Option<u64>) -> String {
    match total {
        None => "-".into(),
        Some(n) if n.to_string().len() <= TOTAL_W => n.to_string(),
        Some(n) => compact_number(n),
    }
}

fn row_line(
    app: &App,
    row: &CounterRow,
    width: usize,
    style: Style,
    theme: &Theme,
) -> Line<'static> {
    let (with_total, spark_w) = columns(width);
    let marker = if row.rising_bad() { "!" } else { " " };
    let mut text = format!(
        "{marker}{:<NAME_W$} {:>RATE_W$} {:>RATE_W$}",
        fit(&clean(&row.name), NAME_W),
        format_rate(row.rate),
        format_rate(row.average),
    );
    if with_total {
        text.push_str(&format!(" {:>TOTAL_W$}", total_text(row.total)));
    }
    let mut spans = vec![Span::styled(text, style)];
    if spark_w > 0 {
        let series = app.counters_in_view().0.rate_series(&row.name);
        let spark_style = if row.rising_bad() {
            theme.trouble()
        } else {
            theme.dim()
        };
        spans.push(Span::styled(" ", style));
        spans.push(Span::styled(
            format!("{:<spark_w$}", sparkline_text(&series, spark_w)),
            spark_style.patch(style),
        ));
    }
    Line::from(spans)
}

pub fn render(frame: &mut Frame, app: &App, theme: &Theme, area: Rect) {
    let width = usize::from(area.width);
    let (counters, netns) = app.counters_in_view();
    let table = counter_rows::table(counters);
    let cursor = app
        .views
        .counters
        .cursor
        .min(table.rows.len().saturating_sub(1));
    let selected = table.rows.get(cursor);

    let meaning = selected.map(|r| {
        let name = clean(&r.name).into_owned();
        let text = r
            .meaning()
            .map(str::to_string)
            .unwrap_or_else(|| "not described here; see Documentation/networking/snmp_counter.rst in the kernel source.".into());
        wrap(&format!("{name}: {text}"), width)
    });
    let meaning_h = meaning.as_ref().map_or(0, |m| m.len().min(4)) as u16;
    let [title, header, body, bottom] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(meaning_h),
    ])
    .areas(area);

    let mut note = if counters.len() < 2 {
        "│ rates from the second sample on".to_string()
    } else if netns.is_some() {
        format!("│ rates /s over {} samples", counters.len())
    } else {
        format!("│ rates /s over {}", format_age(app.history.span()))
    };
    if let Some(name) = netns {
        note = format!("│ netns {} {note}", clean(name));
    }
    render_title(frame, app, theme, title, note);

    let (with_total, spark_w) = columns(width);
    let mut head = format!(
        " {:<NAME_W$} {:>RATE_W$} {:>RATE_W$}",
        "COUNTER", "NOW/s", "1MIN/s"
    );
    if with_total {
        head.push_str(&format!(" {:>TOTAL_W$}", "TOTAL"));
    }
    if spark_w > 0 {
        head.push_str(&format!(" {:<spark_w$}", fit("RATE HISTORY", spark_w)));
    }
    frame.render_widget(Paragraph::new(Span::styled(head, theme.header())), header);

    // Display lines: the pinned rows, a separator, the other rows.
    let separator = if table.rows.len() > table.pinned_len {
        "  other counters that rose, fastest first"
    } else {
        "  no other counter rose during the kept history"
    };
    let line_of = |i: usize| if i < table.pinned_len { i } else { i + 1 };
    let total_lines = table.rows.len() + 1;
    let height = usize::from(body.height);
    // Fill the screen: the stored offset may come from a shorter page.
    let stored = app
        .views
        .counters
        .offset
        .min(total_lines.saturating_sub(height));
    let offset = visible_offset(stored, line_of(cursor), height, total_lines);
    let mut lines = Vec::with_capacity(height);
    for display in offset..(offset + height).min(total_lines) {
        if display == table.pinned_len {
            lines.push(Line::from(Span::styled(separator, theme.dim())));
            continue;
        }
        let i = if display < table.pinned_len {
            display
        } else {
            display - 1
        };
        let row = &table.rows[i];
        let mut style = if row.rising_bad() {
            theme.trouble()
        } else {
            Style::new()
        };
        if i == cursor {
            style = style.patch(theme.selected());
        }
        lines.push(row_line(app, row, width, style, theme));
    }
    frame.render_widget(Paragraph::new(lines), body);

    if let Some(meaning) = meaning {
        let lines: Vec<Line> = meaning
            .into_iter()
            .take(usize::from(meaning_h))
            .map(|l| Line::from(Span::raw(l)))
            .collect();
        frame.render_widget(Paragraph::new(lines), bottom);
    }
}
