//! The help overlay: every key, from the keymap in force. A replay shows its
//! own keys instead of those that act on the live system; the live monitor
//! leaves the replay's out.

use super::Theme;
use crate::app::App;
use crate::app::keymap::Action;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

pub fn render(frame: &mut Frame, app: &App, theme: &Theme, area: Rect) {
    // Movement keys share lines so the whole help fits in 80x24.
    let replay = app.replay.is_some();
    let grouped = [
        (
            &[
                Action::Up,
                Action::Down,
                Action::PageUp,
                Action::PageDown,
                Action::Home,
                Action::End,
            ][..],
            "move",
        ),
        (
            &[Action::Left, Action::Right][..],
            "previous/next state (strip) or sort column (table)",
        ),
        (
            &[Action::Slower, Action::Faster][..],
            "longer / shorter refresh interval",
        ),
        (
            &[
                Action::StepBack,
                Action::StepForward,
                Action::PlaySlower,
                Action::PlayFaster,
            ][..],
            "one frame back / forward, slower / faster playback",
        ),
        (
            &[Action::ReplayStart, Action::ReplayEnd][..],
            "first / last frame of the recording",
        ),
        (
            &[Action::ExportCsv, Action::ExportJson][..],
            "write the view (every row after the filter) to CSV / JSON",
        ),
        (
            &[
                Action::ViewSockets,
                Action::ViewFindings,
                Action::ViewCounters,
                Action::ViewSysctls,
                Action::ViewDiagram,
                Action::ViewTransitions,
            ][..],
            "views: sockets findings counters sysctls diagram transitions",
        ),
    ];
    // Only the keys that do something here (every key must fit in 80x24).
    let shown = |a: &Action| {
        if replay {
            !Action::LIVE.contains(a)
        } else {
            !Action::REPLAY.contains(a)
        }
    };
    let mut lines: Vec<Line> = Action::ALL
        .iter()
        .filter(|a| shown(a) && !grouped.iter().any(|(g, _)| g.contains(a)))
        .map(|&a| {
            let what = match a {
                // Each mode says only its half (a line must not wrap: 80x24).
                Action::Pause if replay => "play / pause the replay",
                Action::Pause => "pause the view (collection goes on into history)",
                _ => a.describe().trim_start_matches("replay: "),
            };
            Line::from(vec![
                Span::styled(format!("{:>16}  ", app.keymap.label(a)), theme.title()),
                Span::raw(what),
            ])
        })
        .collect();
    for (actions, what) in grouped {
        if !actions.iter().all(shown) {
            continue;
        }
        // Each action's first key, then their second keys: `{ } Ctrl-Home Ctrl-End`.
        let depth = actions.iter().map(|&a| app.keymap.keys(a).len()).max();
        let keys: Vec<String> = (0..depth.unwrap_or(0))
            .flat_map(|rank| {
                actions
                    .iter()
                    .filter_map(move |&a| app.keymap.keys(a).get(rank).map(|k| k.label()))
            })
            .collect();
        lines.push(Line::from(vec![
            Span::styled(format!("{:>16}  ", keys.join(" ")), theme.title()),
            Span::raw(what),
        ]));
    }
    // A blank line before the filter syntax, when there is room for it
    // (every key must fit in 80x24).
    if lines.len() + 2 + 2 < usize::from(area.height) {
        lines.push(Line::from(""));
    }
    lines.push(Line::from(Span::styled(
        "Filter: 6800 port:N lport:N rport:N pid:N proc:NAME user:U",
        theme.dim(),
    )));
    lines.push(Line::from(Span::styled(
        "        state:cw|est|tw|fw2|listen addr:IP/CIDR proto:tcp family:6 !term",
        theme.dim(),
    )));
    let w = area.width.min(90);
    let h = area.height.min(lines.len() as u16 + 2);
    let popup = Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    );
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::ALL)
                .title(Span::styled(" keys (any key closes) ", theme.title())),
        ),
        popup,
    );
}
