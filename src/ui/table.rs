//! The main table: the current grouping's rows, sorted, with the selection.

use super::Theme;
use crate::app::{App, Focus};
use crate::model::view::{self, Column};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table};

/// Which columns fit in `width`: the `used` ones, less the least important
/// until they do.
pub fn fit_columns(columns: &[Column], width: u16, used: &[bool]) -> Vec<usize> {
    let mut keep: Vec<usize> = (0..columns.len())
        .filter(|&i| used.get(i).copied().unwrap_or(true))
        .collect();
    let need = |keep: &[usize]| keep.iter().map(|&i| columns[i].width + 1).sum::<u16>();
    while need(&keep) > width {
        let Some((pos, _)) = keep
            .iter()
            .enumerate()
            .filter(|(_, i)| columns[**i].priority > 0)
            .max_by_key(|(pos, i)| (columns[**i].priority, *pos))
        else {
            break;
        };
        keep.remove(pos);
    }
    keep
}

pub fn render(frame: &mut Frame, app: &App, theme: &Theme, area: Rect) {
    let [title_area, body] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(area);
    // What the rows were built with (a very large view may be rebuilding).
    let columns = view::columns(app.shown_grouping);
    let (sort_col, desc) = app.shown_sort;

    let mut title = vec![Span::styled(
        format!(" {} ", app.shown_grouping.title()),
        theme.title(),
    )];
    if let Some(origin) = &app.jumped_from {
        title.push(Span::styled(format!("› {} ", origin.label), theme.title()));
    }
    for d in &app.drill {
        title.push(Span::styled(format!("› {} ", d.label), theme.title()));
    }
    if !app.filter.is_empty() {
        title.push(Span::styled(
            format!("│ filter: {} ", app.filter.text()),
            theme.warn(),
        ));
    }
    title.push(Span::styled(
        format!(
            "│ {} rows │ sort: {} {}",
            app.rows.len(),
            columns[sort_col].title,
            if desc { "↓" } else { "↑" }
        ),
        theme.dim(),
    ));
    if app.building() {
        // A very large view is being rebuilt: these rows are the last ones.
        title.push(Span::styled(" │ updating", theme.dim()));
    }
    // The other views' keys, when the line has room for them.
    let views = format!(" │ {} views", super::views::keys_hint(app));
    if Line::from(title.clone()).width() + views.chars().count() <= usize::from(area.width) {
        title.push(Span::styled(views, theme.dim()));
    }
    let height = usize::from(body.height.saturating_sub(1)).max(1);
    let offset = view::visible_offset(app.offset, app.cursor, height, app.rows.len());
    // Rows scrolled away above are said, first, where a cut line keeps it.
    if offset > 0 {
        title.insert(1, Span::styled(format!("↑{offset} above "), theme.warn()));
    }
    frame.render_widget(Paragraph::new(Line::from(title)), title_area);

    let ctx = app.ctx();
    let used: Vec<bool> = (0..columns.len())
        .map(|i| !columns[i].optional || view::column_used(&app.rows, i, &ctx))
        .collect();
    let keep = fit_columns(columns, body.width, &used);
    let header = Row::new(keep.iter().map(|&i| {
        let c = &columns[i];
        let mark = if i == sort_col {
            if desc { "↓" } else { "↑" }
        } else {
            ""
        };
        Cell::from(align(&format!("{}{mark}", c.title), c.width, c.numeric))
    }))
    .style(theme.header());

    let rows = app
        .rows
        .iter()
        .enumerate()
        .skip(offset)
        .take(height)
        .map(|(i, row)| {
            let cells = view::cells(row, &ctx);
            let mut style = if row.trouble(&app.snapshot) {
                theme.trouble()
            } else {
                Style::new()
            };
            if i == app.cursor && app.focus == Focus::Table {
                style = style.patch(theme.selected());
            }
            Row::new(
                keep.iter()
                    .map(|&c| Cell::from(align(&cells[c], columns[c].width, columns[c].numeric))),
            )
            .style(style)
        });
    let widths: Vec<Constraint> = keep
        .iter()
        .enumerate()
        .map(|(pos, &i)| {
            // The last column takes what is left.
            if pos + 1 == keep.len() {
                Constraint::Min(columns[i].width)
            } else {
                Constraint::Length(columns[i].width)
            }
        })
        .collect();
    let table = Table::new(rows, widths).header(header).column_spacing(1);
    frame.render_widget(table, body);
    if app.rows.is_empty() {
        let msg = if app.snapshot.sockets.is_empty() {
            "collecting…"
        } else {
            "no sockets match the filter (Esc clears it)"
        };
        let [_, line, _] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(1),
            Constraint::Min(0),
        ])
        .areas(body);
        frame.render_widget(
            Paragraph::new(Span::styled(format!("  {msg}"), theme.dim())),
            line,
        );
    }
}

/// Right-aligns numbers; text is clipped by its cell.
fn align(text: &str, width: u16, numeric: bool) -> String {
    use unicode_width::UnicodeWidthStr;
    let w = usize::from(width);
    if numeric && text.width() < w {
        format!("{text:>w$}")
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::view::{Grouping, columns};

    #[test]
    fn narrow_terminals_drop_the_least_important_columns() {
        let cols = columns(Grouping::Process);
        let all = fit_columns(cols, 300, &[]);
        assert_eq!(all.len(), cols.len());
        let narrow = fit_columns(cols, 60, &[]);
        let titles: Vec<&str> = narrow.iter().map(|&i| cols[i].title).collect();
        assert!(
            titles.contains(&"PID") && titles.contains(&"CLOSE_WAIT") && titles.contains(&"TOTAL")
        );
        assert!(!titles.contains(&"OTHER"));
        let needed: u16 = narrow.iter().map(|&i| cols[i].width + 1).sum();
        assert!(needed <= 60);
    }
}
