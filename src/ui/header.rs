//! The top line: where we are and how fresh the data is; in a replay, that
//! it is one, the frame's time and where it is in the recording.

use super::Theme;
use crate::app::replay::Replay;
use crate::app::{App, format_interval};
use crate::replay::{format_speed, position};
use crate::sanitize::clean;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

pub fn render(frame: &mut Frame, app: &App, theme: &Theme, area: Rect) {
    // Items in order of importance; each is shown only if it still fits.
    let items = match &app.replay {
        Some(replay) => replay_items(app, replay, theme),
        None => live_items(app, theme),
    };
    let mut spans = vec![Span::styled("sockscope", theme.title())];
    let mut used = "sockscope".len();
    for (text, style) in items {
        let need = 3 + text.chars().count();
        // Items are in order of importance: once one does not fit, stop.
        if used + need > usize::from(area.width) {
            break;
        }
        used += need;
        spans.push(Span::styled(" │ ", theme.dim()));
        spans.push(Span::styled(text, style));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// How many other network namespaces are in view, with their sockets:
/// `+12 netns (340 sockets)`, in the warning colour when some could not be
/// read. None when there are none.
fn namespaces(app: &App, theme: &Theme) -> Option<(String, Style)> {
    let spaces = &app.snapshot.namespaces;
    if spaces.is_empty() && spaces.unreadable == 0 {
        return None;
    }
    let sockets: usize = spaces.list.values().map(|n| n.sockets).sum();
    let unread = spaces.list.values().filter(|n| n.error.is_some()).count() + spaces.unreadable;
    let mut text = format!(
        "+{} netns ({sockets} socket{}",
        spaces.list.len(),
        if sockets == 1 { "" } else { "s" }
    );
    if unread > 0 {
        text.push_str(&format!(", {unread} unreadable)"));
        return Some((text, theme.warn()));
    }
    text.push(')');
    Some((text, Style::new()))
}

/// Time since the shown sample, on the draw's clock.
fn since_sample(app: &App) -> std::time::Duration {
    app.clock
        .duration_since(app.snapshot.taken_at)
        .unwrap_or_default()
}

fn live_items(app: &App, theme: &Theme) -> Vec<(String, Style)> {
    let snap = &app.snapshot;
    let mut items: Vec<(String, Style)> = Vec::new();
    if app.stats.is_some() {
        items.push((sockets(snap.sockets.len()), Style::new()));
        // `auto` fell back to /proc/net: say so before anything else fades.
        if snap.source_note.is_some() {
            items.push((
                "netlink failed: /proc/net, no cookies".into(),
                theme.trouble(),
            ));
        }
        items.push(owners(app, theme));
        if let Some(t) = &app.trace
            && t.lost > 0
        {
            items.push((format!("dropped {} events", t.lost), theme.trouble()));
        }
    } else {
        // Nothing collected yet (or every collection failed): no count and
        // no "all owners visible" to contradict the status line.
        items.push(("no sample yet".into(), theme.dim()));
    }
    if app.paused {
        items.insert(0, ("PAUSED".into(), theme.trouble()));
    }
    if app.read_only {
        items.insert(0, ("READ-ONLY".into(), theme.warn()));
    }
    if app.recording.is_some() {
        items.insert(0, ("REC".into(), theme.trouble()));
    }
    let interval = app.stats.map_or(app.interval, |s| s.interval);
    let mut every = format!("every {}", format_interval(interval));
    if interval > app.interval {
        every.push_str(" (auto)");
    }
    items.push((every, Style::new()));
    if app.stats.is_some() {
        let age = app
            .clock
            .duration_since(snap.taken_at)
            .map(|d| format!("{:.1}s ago", d.as_secs_f64()))
            .unwrap_or_else(|_| "now".into());
        items.push((age, theme.dim()));
    }
    if let Some(at) = snap.reused_table {
        // Nothing moved in the kernel's counters since that dump.
        let old = snap.monotonic.saturating_sub(at) + since_sample(app);
        items.push((
            format!("idle, table {:.0}s old", old.as_secs_f64()),
            theme.dim(),
        ));
    }
    if let Some(parts) = app.parts {
        // The trouble states are the sample's age; the rest is older.
        items.push((
            format!(
                "ESTAB {:.0}s old, every {}",
                (parts.established_age + since_sample(app)).as_secs_f64(),
                format_interval(parts.full_interval)
            ),
            theme.dim(),
        ));
    }
    // After the interval and the sample's age: at 80 columns those stay.
    if app.stats.is_some()
        && let Some(ns) = namespaces(app, theme)
    {
        items.push(ns);
    }
    if !app.host.is_empty() {
        items.push((clean(&app.host).into_owned(), Style::new()));
    }
    if let Some(s) = app.stats {
        items.push((format!("took {}ms", s.took.as_millis()), theme.dim()));
    }
    if !app.kernel.is_empty() {
        items.push((format!("Linux {}", clean(&app.kernel)), theme.dim()));
    }
    items
}

/// `REPLAY paused 1x`, the frame's local date and time, `+2m05s / 1h00m00s`,
/// the sockets, the recorded host, `frame 126/3601`. No sample age: the
/// frame is as old as the recording.
fn replay_items(app: &App, replay: &Replay, theme: &Theme) -> Vec<(String, Style)> {
    let marker = theme
        .warn()
        .add_modifier(Modifier::REVERSED | Modifier::BOLD);
    let Some(status) = &replay.status else {
        return vec![("REPLAY loading".into(), marker)];
    };
    let state = if status.playing { "playing" } else { "paused" };
    // To the nearest second: frames taken a few ms before the second (as
    // collection jitters) show the second they belong to.
    let rounded = status.time + std::time::Duration::from_millis(500);
    let time = jiff::Timestamp::try_from(rounded)
        .map(|ts| {
            ts.to_zoned_datetime(replay.tz.clone())
                .strftime("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|_| "?".into());
    let mut items = vec![
        (
            format!("REPLAY {state} {}", format_speed(status.speed)),
            marker,
        ),
        (time, Style::new().add_modifier(Modifier::BOLD)),
        (position(status), Style::new()),
        (sockets(app.snapshot.sockets.len()), Style::new()),
    ];
    if !app.host.is_empty() {
        items.push((clean(&app.host).into_owned(), Style::new()));
    }
    items.push((
        format!("frame {}/{}", status.index + 1, status.frames),
        theme.dim(),
    ));
    items.push(owners(app, theme));
    if !app.kernel.is_empty() {
        items.push((format!("Linux {}", clean(&app.kernel)), theme.dim()));
    }
    items
}

/// Whether every socket's owner could be seen.
fn owners(app: &App, theme: &Theme) -> (String, Style) {
    let snap = &app.snapshot;
    match snap.attribution.unreadable_processes {
        0 if snap.attribution.hidden_pids => (
            format!(
                "{} unattributed: /proc hidepid=",
                sockets(snap.attribution.unattributed_sockets)
            ),
            theme.warn(),
        ),
        0 if snap.attribution.unattributed_sockets == 0 => {
            ("all owners visible".into(), theme.good())
        }
        // Every table was read, yet some sockets have no owner: a thread's
        // private fd table, the kernel, or a socket that changed hands.
        0 => (
            format!(
                "{} without visible owner",
                sockets(snap.attribution.unattributed_sockets)
            ),
            theme.warn(),
        ),
        _ => (
            if snap.attribution.as_root {
                // Root, yet some fd tables are closed (pid 1 in a sandbox, LSMs).
                format!(
                    "{} without visible owner",
                    sockets(snap.attribution.unattributed_sockets)
                )
            } else {
                format!(
                    "{} unattributed: not root",
                    sockets(snap.attribution.unattributed_sockets)
                )
            },
            theme.warn(),
        ),
    }
}

fn sockets(n: usize) -> String {
    if n == 1 {
        "1 socket".into()
    } else {
        format!("{n} sockets")
    }
}
