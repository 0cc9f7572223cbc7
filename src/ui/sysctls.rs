//! The sysctls view: every collected sysctl with its value and live context,
//! and for the one under the cursor what it affects and what to do.
//!
//! ```text
//! │ tabs │ 19 sysctls                                                 │
//! │  NAME                             VALUE        NOW               │
//! │ !net.ipv4.tcp_max_tw_buckets      131072       TIME_WAIT 120k (91%) │ list
//! │ net.ipv4.tcp_max_tw_buckets = 131072                              │
//! │ TIME_WAIT now 120000 of 131072 (91%).                             │ detail
//! │ Affects: ...                                                      │
//! │ Advice: ...                                                       │
//! ```

use super::Theme;
use super::views::{fit, render_title, wrap};
use crate::app::App;
use crate::model::sysctl_advice::{self, Level, SysctlItem};
use crate::model::view::visible_offset;
use crate::sanitize::clean;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

const NAME_W: usize = 32;
const VALUE_W: usize = 12;

fn level_style(level: Level, theme: &Theme) -> Style {
    match level {
        Level::Info => Style::new(),
        Level::Warn => theme.warn(),
        Level::Trouble => theme.trouble(),
    }
}

/// The detail of one sysctl, wrapped to `width`.
fn detail_lines(item: &SysctlItem, width: usize, theme: &Theme) -> Vec<Line<'static>> {
    let mut lines = vec![Line::from(Span::styled(
        fit(
            &format!("{} = {}", clean(&item.name), clean(&item.value)),
            width,
        ),
        theme.title(),
    ))];
    if let Some(c) = &item.context {
        let style = level_style(c.level, theme);
        lines.extend(
            wrap(&c.detail, width)
                .into_iter()
                .map(|l| Line::from(Span::styled(l, style))),
        );
    }
    match item.doc {
        Some(doc) => {
            for (label, text) in [("Affects", &doc.affects), ("Advice", &doc.advice)] {
                lines.extend(
                    wrap(&format!("{label}: {text}"), width)
                        .into_iter()
                        .map(|l| Line::from(Span::raw(l))),
                );
            }
        }
        None => lines.push(Line::from(Span::styled(
            "No notes for this sysctl.",
            theme.dim(),
        ))),
    }
    lines
}

pub fn render(frame: &mut Frame, app: &App, theme: &Theme, area: Rect) {
    let width = usize::from(area.width);
    // The filtered namespace's own sysctls, or the host's.
    let (counters, netns_name) = app.counters_in_view();
    let netns = app
        .netns_counters
        .as_ref()
        .map_or(crate::model::HOST_NETNS, |(ns, _)| *ns);
    let items = sysctl_advice::assess_in(&app.snapshot, netns, counters);
    let cursor = app.views.sysctls.cursor.min(items.len().saturating_sub(1));
    let detail = items
        .get(cursor)
        .map(|item| detail_lines(item, width, theme))
        .unwrap_or_default();

    // The list keeps at least 5 rows (or all of them); the detail gets the rest.
    let avail = usize::from(area.height.saturating_sub(2));
    let list_min = items.len().clamp(1, 5);
    let list_h = avail
        .saturating_sub(detail.len())
        .max(list_min)
        .min(items.len().max(1));
    let [title, header, list, detail_area] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(list_h as u16),
        Constraint::Min(0),
    ])
    .areas(area);

    let mut note = if items.is_empty() {
        "│ no sysctls read (collecting…)".to_string()
    } else {
        format!("│ {} sysctls", items.len())
    };
    if let Some(name) = netns_name {
        note = format!("│ netns {} {note}", crate::sanitize::clean(name));
    }
    render_title(frame, app, theme, title, note);
    let now_w = width.saturating_sub(1 + NAME_W + 1 + VALUE_W + 1);
    frame.render_widget(
        Paragraph::new(Span::styled(
            format!(
                " {:<NAME_W$} {:<VALUE_W$} {:<now_w$}",
                "SYSCTL", "VALUE", "NOW"
            ),
            theme.header(),
        )),
        header,
    );

    let height = usize::from(list.height);
    // Fill the list: the stored offset may come from a shorter page.
    let stored = app
        .views
        .sysctls
        .offset
        .min(items.len().saturating_sub(height));
    let offset = visible_offset(stored, cursor, height, items.len());
    let rows: Vec<Line> = items
        .iter()
        .enumerate()
        .skip(offset)
        .take(height)
        .map(|(i, item)| {
            let level = item.context.as_ref().map_or(Level::Info, |c| c.level);
            // `!` marks what needs a look, with or without colour.
            let marker = if level > Level::Info { "!" } else { " " };
            let mut style = level_style(level, theme);
            if i == cursor {
                style = style.patch(theme.selected());
            }
            let short = item.context.as_ref().map_or("", |c| c.short.as_str());
            Line::from(Span::styled(
                format!(
                    "{marker}{:<NAME_W$} {:<VALUE_W$} {:<now_w$}",
                    fit(&clean(&item.name), NAME_W),
                    fit(&clean(&item.value), VALUE_W),
                    fit(short, now_w),
                ),
                style,
            ))
        })
        .collect();
    frame.render_widget(Paragraph::new(rows), list);
    frame.render_widget(Paragraph::new(detail), detail_area);
}
