//! The detail pane: everything about the selected connection or group, and
//! what its state means.

use super::Theme;
use crate::app::App;
use crate::model::explain::explain;
use crate::model::history::Rate;
use crate::model::holders;
use crate::model::socket::format_addr;
use crate::model::view::{Row, format_age, format_bytes_rate};
use crate::model::{Snapshot, Socket, TimerKind};
use crate::sanitize::clean;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use unicode_width::UnicodeWidthChar;

pub fn render(frame: &mut Frame, app: &App, theme: &Theme, area: Rect, overlay: bool) {
    let lines = match app.rows.get(app.cursor) {
        Some(Row::Conn(i)) => connection_lines(app, &app.snapshot.sockets[*i], theme),
        Some(row) => group_lines(app, row, theme),
        None => vec![Line::from("nothing selected")],
    };
    let title = if overlay {
        " connection (Esc to close) "
    } else {
        " detail "
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .title(Span::styled(title, theme.title()));
    if overlay {
        frame.render_widget(Clear, area);
    }
    let inner = usize::from(area.width.saturating_sub(2));
    let mut lines: Vec<Line> = lines.into_iter().flat_map(|l| hang(l, inner, 8)).collect();
    let height = usize::from(area.height.saturating_sub(2));
    let hidden = lines.len().saturating_sub(height);
    let scroll = if overlay {
        usize::from(app.detail_scroll).min(hidden)
    } else {
        0
    };
    let block = if overlay && hidden > 0 {
        // What ↑↓ can still show.
        let mut marks = Vec::new();
        if scroll > 0 {
            marks.push(format!("↑{scroll}"));
        }
        if scroll < hidden {
            marks.push(format!("↓{} more", hidden - scroll));
        }
        block.title_bottom(Span::styled(
            format!(" {} (↑↓) ", marks.join(" ")),
            theme.dim(),
        ))
    } else {
        block
    };
    if !overlay && hidden > 0 && height > 0 {
        // The side pane does not scroll: say where the rest is.
        lines.truncate(height - 1);
        lines.push(Line::from(Span::styled(
            format!("… {} more lines: Enter shows them (↑↓ scroll)", hidden + 1),
            theme.dim(),
        )));
    }
    let p = Paragraph::new(lines)
        .block(block)
        .scroll((scroll as u16, 0));
    frame.render_widget(p, area);
}

/// Wraps a line at word boundaries to `width` columns; continuation lines are
/// indented by `indent` so they read as part of their field, not a new one.
pub fn hang(line: Line<'_>, width: usize, indent: usize) -> Vec<Line<'static>> {
    let cells: Vec<(char, Style)> = line
        .spans
        .iter()
        .flat_map(|sp| sp.content.chars().map(move |c| (c, sp.style)))
        .collect();
    if width <= indent + 8 {
        let text: String = cells.iter().map(|(c, _)| c).collect();
        return vec![Line::from(text)];
    }
    let mut out = Vec::new();
    let mut start = 0;
    let mut first = true;
    while start < cells.len() {
        let room = if first { width } else { width - indent };
        // Find the furthest end that fits, preferring a break at a space.
        let (mut end, mut used, mut last_space) = (start, 0, None);
        while end < cells.len() {
            let w = cells[end].0.width().unwrap_or(0);
            if used + w > room {
                break;
            }
            if cells[end].0 == ' ' {
                last_space = Some(end);
            }
            used += w;
            end += 1;
        }
        if end < cells.len()
            && let Some(sp) = last_space.filter(|&sp| sp > start)
        {
            end = sp + 1;
        }
        let end = end.max(start + 1);
        let mut spans: Vec<Span<'static>> = Vec::new();
        if !first {
            spans.push(Span::raw(" ".repeat(indent)));
        }
        for (c, style) in &cells[start..end] {
            match spans.last_mut() {
                Some(last) if last.style == *style => last.content.to_mut().push(*c),
                _ => spans.push(Span::styled(c.to_string(), *style)),
            }
        }
        out.push(Line::from(spans));
        start = end;
        first = false;
    }
    if out.is_empty() {
        out.push(Line::from(""));
    }
    out
}

fn kv<'a>(key: &'a str, value: String, theme: &Theme) -> Vec<Span<'a>> {
    vec![Span::styled(key, theme.dim()), Span::raw(value)]
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// `in 3.4K/s  out 12M/s  ▁▂▅█`: throughput from tcp_info byte counters,
/// with a sparkline of in + out over the last samples.
fn range_of_rates(totals: &[u64], width: usize) -> String {
    let tail = &totals[totals.len().saturating_sub(width)..];
    match (tail.iter().min(), tail.iter().max()) {
        (Some(a), Some(b)) if a != b => {
            format!("{}–{}/s", format_bytes_rate(*a), format_bytes_rate(*b))
        }
        _ => String::new(),
    }
}

fn rate_text(rate: Rate, series: &[Rate]) -> String {
    let totals: Vec<u64> = series.iter().map(Rate::total).collect();
    format!(
        "in {}/s  out {}/s  {} {}",
        format_bytes_rate(rate.in_bps),
        format_bytes_rate(rate.out_bps),
        crate::model::view::sparkline_text(&totals, 40),
        // The sparkline is scaled min..max: say what its ends are.
        range_of_rates(&totals, 40)
    )
}

fn ms_ago(ms: u32) -> String {
    format_age(std::time::Duration::from_millis(u64::from(ms)))
}

fn connection_lines<'a>(app: &'a App, s: &'a Socket, theme: &Theme) -> Vec<Line<'a>> {
    let snap: &Snapshot = &app.snapshot;
    let state_style = if s.state.is_trouble() {
        theme.trouble()
    } else {
        theme.title()
    };
    let seen = app.history.age(&s.key(), snap.monotonic);
    // A lower bound is only sockscope's own uptime: say so, so it is not
    // read as the connection's age next to tcp_info's "last send 4m ago".
    let age = seen.map_or("?".to_string(), |(d, lower)| {
        if lower {
            format!("at least {} (since sockscope started)", format_age(d))
        } else {
            format_age(d)
        }
    });
    let mut lines = vec![Line::from(vec![
        Span::styled(s.state.kernel_name(), state_style),
        Span::raw(format!(
            "  {} {} → {}   in this state for {age}",
            s.proto.name(),
            format_addr(&s.local),
            format_addr(&s.remote)
        )),
    ])];
    if let Some(ns) = snap.namespaces.get(s.netns) {
        lines.push(Line::from(kv(
            "netns   ",
            crate::sanitize::clean(&ns.describe()).into_owned(),
            theme,
        )));
    }
    let queue = snap.holders().listener_of(snap, s);
    if let Some(l) = queue {
        let holders: Vec<String> = holders::pids(&l.owners)
            .map(|p| match snap.process(p) {
                Some(proc_) => format!("{} {p}", clean(&proc_.name)),
                None => p.to_string(),
            })
            .collect();
        lines.push(Line::from(kv(
            "queue   ",
            format!(
                "accept queue of {}, {}: the kernel completed the handshake; the program has not accept()ed it, so it has no descriptor yet",
                format_addr(&l.local),
                if holders.is_empty() { "no visible holder".to_string() } else { holders.join(", ") }
            ),
            theme,
        )));
    } else if let Some(why) = holders::why_none(snap, s) {
        let text = match why {
            holders::NoHolder::Unseen if !snap.attribution.as_root => {
                "unknown: its process's fd table is not readable (run as root to see other users' processes)".to_string()
            }
            w => format!("none: {}", w.reason()),
        };
        lines.push(Line::from(kv("owners  ", text, theme)));
    }
    let shared = holders::pids(&s.owners).count();
    if shared > 1 {
        lines.push(Line::from(kv(
            "shared  ",
            format!("held by {shared} processes: it is freed only when every one of them closes it or exits"),
            theme,
        )));
    }
    for o in queue.map_or(&s.owners[..], |l| &l.owners[..]) {
        let text = match snap.process(o.pid) {
            Some(p) => format!(
                "pid {} fd {} {} ({}) — {}",
                o.pid,
                o.fd,
                clean(&p.name),
                clean(p.user.as_deref().unwrap_or("?")),
                clean(&p.cmdline)
            ),
            None => format!("pid {} fd {}", o.pid, o.fd),
        };
        let key = if queue.is_some() {
            "listen  "
        } else {
            "owner   "
        };
        lines.push(Line::from(kv(key, text, theme)));
    }
    let timer = match s.timer {
        None => "none".to_string(),
        Some(t) => {
            let kind = match t.kind {
                TimerKind::Retransmit => "retransmit",
                TimerKind::Keepalive => "keepalive",
                TimerKind::TimeWait => "time-wait",
                TimerKind::ZeroWindowProbe => "zero-window probe",
            };
            match t.expires_ms {
                Some(ms) => format!(
                    "{kind} in {}",
                    format_age(std::time::Duration::from_millis(ms))
                ),
                // The kernel does not say for TIME_WAIT; Linux keeps it
                // 60 s (TCP_TIMEWAIT_LEN) from when it began.
                None if t.kind == TimerKind::TimeWait => match seen {
                    Some((d, lower)) => {
                        let left = std::time::Duration::from_secs(60).saturating_sub(d);
                        let bound = if lower { "at most " } else { "" };
                        format!("{kind}, {bound}{} left", format_age(left))
                    }
                    None => kind.to_string(),
                },
                None => kind.to_string(),
            }
        }
    };
    let listening = s.state == crate::model::TcpState::Listen;
    lines.push(Line::from(kv(
        "queues  ",
        if listening {
            // For a listener the kernel reports the accept queue and its backlog.
            format!(
                "accept queue {} waiting, backlog {}   uid {} inode {}",
                s.recv_q, s.send_q, s.uid, s.inode
            )
        } else {
            format!(
                "recv {}  send {}   timer {timer}   retransmits {}   uid {} inode {}",
                s.recv_q, s.send_q, s.retransmits, s.uid, s.inode
            )
        },
        theme,
    )));
    match &s.tcp_info {
        // A listener's tcp_info (rtt, bytes, last send) describes no connection.
        _ if listening => {}
        Some(i) => {
            lines.push(Line::from(kv(
                "tcp     ",
                format!(
                    "rtt {:.2} ms ±{:.2}  retrans {}/{}  lost {}  unacked {}  cwnd {}",
                    f64::from(i.rtt_us) / 1000.0,
                    f64::from(i.rttvar_us) / 1000.0,
                    i.retransmits,
                    i.total_retrans,
                    i.lost,
                    i.unacked,
                    i.snd_cwnd
                ),
                theme,
            )));
            lines.push(Line::from(kv(
                "        ",
                format!(
                    "in {}  out {}  last send {} ago  last recv {} ago  last ack {} ago",
                    bytes(i.bytes_received),
                    bytes(i.bytes_acked),
                    ms_ago(i.last_data_sent_ms),
                    ms_ago(i.last_data_recv_ms),
                    ms_ago(i.last_ack_recv_ms)
                ),
                theme,
            )));
        }
        None if s.proto == crate::model::Proto::Tcp => lines.push(Line::from(kv(
            "tcp     ",
            "no tcp_info for this socket".into(),
            theme,
        ))),
        None => {}
    }
    if let Some(rate) = app.history.conn_rate(&s.key()) {
        let series = app.history.conn_rate_series(&s.key());
        lines.push(Line::from(kv("rate    ", rate_text(rate, &series), theme)));
    }
    let e = explain(s.state);
    lines.push(Line::from(kv("what    ", e.happened.clone(), theme)));
    lines.push(Line::from(kv("closed  ", e.closed_first.clone(), theme)));
    lines.push(Line::from(kv("waits   ", e.waits_for.clone(), theme)));
    lines.push(Line::from(kv("ends    ", e.ends.clone(), theme)));
    lines
}

fn group_lines<'a>(app: &'a App, row: &'a Row, theme: &Theme) -> Vec<Line<'a>> {
    let snap = &app.snapshot;
    let (title, counts) = match row {
        Row::Process(g) => {
            let t = match g.pid.and_then(|p| snap.process(p)) {
                Some(p) => format!(
                    "pid {} {} ({}) — {}",
                    p.pid,
                    clean(&p.name),
                    clean(p.user.as_deref().unwrap_or("?")),
                    clean(&p.cmdline)
                ),
                None if g.pid.is_none() => {
                    "sockets no process holds (TIME_WAIT, orphans) or whose owner is not visible"
                        .into()
                }
                None => format!("pid {}", g.pid.unwrap_or_default()),
            };
            (t, g.counts)
        }
        Row::Port(g) => (
            format!(
                "{} port {} — {} processes",
                g.proto.name(),
                g.port,
                g.pids.len()
            ),
            g.counts,
        ),
        Row::Netns(g) => (
            match snap.namespaces.get(g.netns) {
                Some(ns) => format!("{} — {} processes", clean(&ns.describe()), g.pids.len()),
                None => format!("host network namespace — {} processes", g.pids.len()),
            },
            g.counts,
        ),
        Row::Remote(g) => (
            format!(
                "remote host {} — local ports {:?}",
                g.host,
                g.local_ports.iter().take(12).collect::<Vec<_>>()
            ),
            g.counts,
        ),
        Row::Conn(_) => unreachable!("connections have their own pane"),
    };
    let mut lines = vec![Line::from(Span::styled(title, theme.title()))];
    let states: Vec<String> = counts
        .nonzero()
        .map(|(s, n)| format!("{} {n}", s.kernel_name()))
        .collect();
    lines.push(Line::from(kv("states  ", states.join("  "), theme)));
    lines.push(Line::from(Span::styled(
        "Enter lists these connections.",
        theme.dim(),
    )));
    if let Row::Process(g) = row {
        if g.pid.is_none() {
            for (why, n) in app.no_holder_reasons() {
                lines.push(Line::from(kv(
                    "why     ",
                    format!("{n}: {}", why.reason()),
                    theme,
                )));
            }
        }
        if let Some((other, n)) = g.shared_with {
            let name = snap.process(other).map(|p| clean(&p.name).into_owned());
            lines.push(Line::from(kv(
                "shared  ",
                format!(
                    "shares {n} of {} with {}{}{}: those are freed only when both close them or exit",
                    g.counts.total(),
                    other,
                    name.map_or(String::new(), |n| format!(" {n}")),
                    if g.shared > n { format!(" ({} shared in all)", g.shared) } else { String::new() },
                ),
                theme,
            )));
        }
        if g.queued > 0 {
            lines.push(Line::from(kv(
                "queue   ",
                format!(
                    "{} of them wait in the accept queue of its listeners (not accept()ed yet)",
                    g.queued
                ),
                theme,
            )));
        }
        if let Some(p) = g.pid.and_then(|p| snap.process(p))
            && p.closed_sockets > 0
        {
            lines.push(Line::from(kv(
                "closed  ",
                format!("{} descriptors of TCP sockets already closed (in no socket table): only close() or exit frees them", p.closed_sockets),
                theme,
            )));
        }
        if let Some(svc) = g
            .pid
            .and_then(|p| snap.holders().service_of(p))
            .filter(|s| s.is_shared())
        {
            let pids: Vec<String> = svc.pids.iter().take(8).map(u32::to_string).collect();
            lines.push(Line::from(kv(
                "service ",
                format!(
                    "{} pids {}{} (they hold sockets in common){}",
                    clean(svc.name.as_deref().unwrap_or("?")),
                    pids.join(", "),
                    if svc.pids.len() > 8 {
                        format!(" and {} more", svc.pids.len() - 8)
                    } else {
                        String::new()
                    },
                    if svc.ports.is_empty() {
                        String::new()
                    } else {
                        format!(
                            ", listening on {}",
                            svc.ports
                                .iter()
                                .map(u16::to_string)
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    },
                ),
                theme,
            )));
        }
        let trend = app.history.process_trend(g.pid);
        let range = crate::model::format::sparkline_range(&trend, 60);
        let change = crate::model::view::change_text(&trend, app.history.trend_span(trend.len()));
        lines.push(Line::from(kv(
            "trend   ",
            format!(
                "{} {range} sockets, {change}",
                crate::model::view::sparkline_text(&trend, 60)
            ),
            theme,
        )));
        if let Some(rate) = app.history.process_rate(g.pid) {
            let series = app.history.process_rate_series(g.pid);
            lines.push(Line::from(kv("rate    ", rate_text(rate, &series), theme)));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::hang;
    use ratatui::text::Line;

    fn texts(lines: Vec<Line>) -> Vec<String> {
        lines
            .iter()
            .map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect())
            .collect()
    }

    #[test]
    fn long_fields_wrap_under_their_value_at_word_breaks() {
        let l = Line::from("ends    Only when the program closes the socket or exits");
        assert_eq!(
            texts(hang(l, 30, 8)),
            [
                "ends    Only when the program ",
                "        closes the socket or ",
                "        exits"
            ]
        );
    }

    #[test]
    fn short_lines_and_long_words_survive() {
        assert_eq!(texts(hang(Line::from("short"), 30, 8)), ["short"]);
        let long = "x".repeat(50);
        let out = texts(hang(Line::from(long.clone()), 30, 8));
        assert_eq!(out.concat().replace(' ', ""), long);
    }
}
