//! The transitions view: what the kernel's TCP tracepoints saw between the
//! refreshes, like `tcpstates`/`tcplife`, grouped and filtered.
//!
//! ```text
//! │ tabs │ last minute                                                     │
//! │ 120 opened/s 120 closed/s (here 0 peer 120 reset 0 failed 0) ...  ▁▃█ │
//! │  PORT    PROCESS        OPEN/s CLOSE/s HERE PEER  RST FAIL  P50   P99 │
//! │ :6800    python3 (42)      120     120    0 7200    0    0 20ms  31ms │
//! │ last transitions, newest first (the filter applies)                   │
//! │ -0.4s 127.0.0.1:6800 → 127.0.0.1:40001 CLOSE_WAIT → LAST_ACK 300ms  … │
//! ```

use super::Theme;
use super::views::{fit, render_title, wrap};
use crate::app::App;
use crate::model::findings::transitions::stand_in;
use crate::model::format::{duration_short, sparkline_from_zero};
use crate::model::{Owner, Socket, TcpState};
use crate::sanitize::clean;
use crate::trace::{PortKey, Stats, Status, Transition};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

fn state_name(n: u8) -> &'static str {
    TcpState::from_kernel(n).map_or("?", |s| s.kernel_name())
}

/// A socket standing for one transition (in its new state), for the filter.
fn as_socket(t: &Transition) -> Socket {
    let mut s = stand_in(
        PortKey {
            port: t.local.port(),
            local: true,
        },
        t.pid,
        TcpState::from_kernel(t.new).unwrap_or(TcpState::Close),
    );
    s.local = t.local;
    s.remote = t.remote;
    s.family = if t.local.is_ipv6() {
        crate::model::Family::V6
    } else {
        crate::model::Family::V4
    };
    s.owners = t.pid.map(|pid| Owner { pid, fd: 0 }).into_iter().collect();
    s
}

fn who(app: &App, pid: Option<u32>) -> String {
    match pid {
        Some(pid) => match app.snapshot.process(pid) {
            Some(p) => format!("{} ({pid})", clean(&p.name)),
            None => format!("pid {pid}"),
        },
        None => String::new(),
    }
}

fn per_sec(n: u64, secs: f64) -> String {
    let r = n as f64 / secs.max(1.0);
    if r >= 10.0 || r == 0.0 {
        format!("{r:.0}")
    } else {
        format!("{r:.1}")
    }
}

fn ms(d: Option<std::time::Duration>) -> String {
    d.map(duration_short).unwrap_or_else(|| "-".into())
}

pub fn render(frame: &mut Frame, app: &App, theme: &Theme, area: Rect) {
    let width = usize::from(area.width);
    let height = usize::from(area.height);
    if height == 0 {
        return;
    }
    let [title, body] = ratatui::layout::Layout::vertical([
        ratatui::layout::Constraint::Length(1),
        ratatui::layout::Constraint::Min(0),
    ])
    .areas(area);
    let trace = match &app.trace {
        Some(t) if t.status.is_on() => t,
        other => {
            render_title(frame, app, theme, title, "│ not followed".into());
            let why = match other.as_ref().map(|t| &t.status) {
                Some(Status::Off(why)) if !why.is_empty() => clean(why).into_owned(),
                _ => "this sample has no transitions (a recording made without them)".into(),
            };
            let text = format!(
                "Transitions are not followed: {why}. They need root, or CAP_PERFMON with \
                 access to tracefs, or kernel.perf_event_paranoid = -1; everything else works \
                 from the refreshes alone."
            );
            let lines: Vec<Line> = wrap(&text, width).into_iter().map(Line::from).collect();
            frame.render_widget(Paragraph::new(lines), body);
            return;
        }
    };
    let m = &trace.minute;
    let secs = m.span().as_secs_f64();
    let filtered = !app.effective.is_empty();
    render_title(
        frame,
        app,
        theme,
        title,
        format!(
            "│ last {:.0}s{}",
            secs,
            if filtered { ", filtered" } else { "" }
        ),
    );
    let mut lines: Vec<Line> = Vec::new();
    let t = &m.total;
    let trend: Vec<u64> = trace.points.iter().map(|p| p.opened).collect();
    let mut total = format!(
        "{} opened/s, {} closed/s (here first {}, peer {}, reset {}, failed {}), resets {}/s sent {}/s received",
        per_sec(t.opened, secs),
        per_sec(t.closed, secs),
        t.closed_local,
        t.closed_peer,
        t.closed_reset,
        t.failed,
        per_sec(t.resets_sent, secs),
        per_sec(t.resets_received, secs),
    );
    if trace.lost > 0 {
        total.push_str(&format!(", {} events DROPPED", trace.lost));
    }
    let spark = sparkline_from_zero(&trend, 12.min(width / 6));
    let room = width.saturating_sub(spark.chars().count() + 1);
    lines.push(Line::from(vec![
        Span::raw(fit(&total, room)),
        Span::raw(" "),
        Span::styled(spark, theme.title()),
    ]));
    // Ports, most opened first, as many as half the body allows.
    let mut ports: Vec<(&PortKey, &Stats)> = m
        .by_port
        .iter()
        .filter(|(k, _)| {
            let pid = if k.local {
                app.snapshot.holders().listener_holder(k.port)
            } else {
                None
            };
            !filtered
                || [TcpState::Established, TcpState::CloseWait, TcpState::Close]
                    .into_iter()
                    .any(|st| {
                        app.effective
                            .matches(&stand_in(**k, pid, st), &app.snapshot)
                    })
        })
        .collect();
    ports.sort_by(|a, b| b.1.opened.cmp(&a.1.opened).then(a.0.cmp(b.0)));
    let body_h = usize::from(body.height);
    let port_rows = ports
        .len()
        .min(body_h.saturating_sub(4) / 2)
        .max(1.min(ports.len()));
    lines.push(Line::styled(
        fit(
            &format!(
                "{:<8} {:<22} {:>6} {:>7} {:>5} {:>5} {:>5} {:>5} {:>6} {:>6} {:>5} {:>5}  TREND",
                "PORT",
                "PROCESS",
                "OPEN/s",
                "CLOSE/s",
                "HERE",
                "PEER",
                "RST",
                "FAIL",
                "P50",
                "P99",
                "CW+",
                "CW-"
            ),
            width,
        ),
        theme.header(),
    ));
    for (k, s) in ports.iter().take(port_rows) {
        let port = if k.local {
            format!(":{}", k.port)
        } else {
            format!("→:{}", k.port)
        };
        let pid = if k.local {
            app.snapshot.holders().listener_holder(k.port)
        } else {
            None
        };
        let spark = trace
            .port_points
            .get(k)
            .map(|v| sparkline_from_zero(&v.iter().copied().collect::<Vec<_>>(), 10))
            .unwrap_or_default();
        let row = format!(
            "{:<8} {:<22} {:>6} {:>7} {:>5} {:>5} {:>5} {:>5} {:>6} {:>6} {:>5} {:>5}  {}",
            port,
            fit(&who(app, pid), 22),
            per_sec(s.opened, secs),
            per_sec(s.closed, secs),
            s.closed_local,
            s.closed_peer,
            s.closed_reset,
            s.failed,
            ms(s.lifetime_percentile(50.0)),
            ms(s.lifetime_percentile(99.0)),
            s.entered(TcpState::CloseWait),
            s.left(TcpState::CloseWait),
            spark
        );
        let style = if s.resets_sent > 0 || s.closed_reset + s.failed > 0 {
            theme.warn()
        } else {
            Style::new()
        };
        lines.push(Line::styled(fit(&row, width), style));
    }
    if ports.is_empty() {
        lines.push(Line::styled(
            "(no connections opened or closed)",
            theme.dim(),
        ));
    }
    lines.push(Line::styled(
        fit(
            "last transitions, newest first (↑↓ scroll; the filter applies)",
            width,
        ),
        theme.dim(),
    ));
    let now = app.snapshot.monotonic;
    let shown = body_h.saturating_sub(lines.len());
    let recent = trace
        .recent
        .iter()
        .rev()
        .filter(|t| !filtered || app.effective.matches(&as_socket(t), &app.snapshot))
        .skip(app.views.transitions_scroll)
        .take(shown);
    let mut any = false;
    for tr in recent {
        any = true;
        let ago = now.saturating_sub(tr.at);
        let after = tr
            .after
            .map(|d| format!(" after {}", duration_short(d)))
            .unwrap_or_default();
        let line = format!(
            "-{:.1}s {} → {} {} → {}{after} {}",
            ago.as_secs_f64(),
            tr.local,
            tr.remote,
            state_name(tr.old),
            state_name(tr.new),
            who(app, tr.pid)
        );
        let style = match TcpState::from_kernel(tr.new) {
            Some(TcpState::CloseWait) => theme.warn(),
            _ => Style::new(),
        };
        lines.push(Line::styled(fit(&line, width), style));
    }
    if !any {
        lines.push(Line::styled(
            if trace.recent.is_empty() {
                "(none yet; a replay does not keep single transitions)"
            } else {
                "(none matches the filter)"
            },
            theme.dim(),
        ));
    }
    frame.render_widget(Paragraph::new(lines), body);
}
