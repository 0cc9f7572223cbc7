//! The counters, sysctls and diagram views drawn to ratatui's TestBackend
//! from a fixture snapshot and a history of synthetic kernel counters with
//! fixed timestamps: what a user sees at 80×24 and 120×40, with no wall
//! clock and no live system involved.

use crate::ui_harness;

use ui_harness::{STATS, new_app, press as key, render, screen as text};

use crossterm::event::KeyCode;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::{Color, Modifier};
use sockscope::app::{App, Event, View};
use sockscope::model::{Snapshot, TcpState, fixture};
use sockscope::ui::Theme;
use std::sync::Arc;
use std::time::Duration;

/// Counter values per sample: ListenOverflows and RetransSegs rise,
/// TCPTimeouts stays flat, two counters that are not pinned rise, and
/// CurrEstab (a gauge) moves.
const SAMPLES: [[(&str, u64); 9]; 4] = [
    [
        ("TcpExt.ListenOverflows", 0),
        ("TcpExt.ListenDrops", 0),
        ("Tcp.RetransSegs", 100),
        ("Tcp.OutSegs", 1000),
        ("Tcp.InSegs", 900),
        ("TcpExt.TCPTimeouts", 3),
        ("TcpExt.DelayedACKs", 10),
        ("TcpExt.TCPHPHits", 0),
        ("Tcp.CurrEstab", 5),
    ],
    [
        ("TcpExt.ListenOverflows", 0),
        ("TcpExt.ListenDrops", 0),
        ("Tcp.RetransSegs", 103),
        ("Tcp.OutSegs", 1500),
        ("Tcp.InSegs", 1350),
        ("TcpExt.TCPTimeouts", 3),
        ("TcpExt.DelayedACKs", 20),
        ("TcpExt.TCPHPHits", 100),
        ("Tcp.CurrEstab", 6),
    ],
    [
        ("TcpExt.ListenOverflows", 5),
        ("TcpExt.ListenDrops", 5),
        ("Tcp.RetransSegs", 110),
        ("Tcp.OutSegs", 2100),
        ("Tcp.InSegs", 1900),
        ("TcpExt.TCPTimeouts", 3),
        ("TcpExt.DelayedACKs", 35),
        ("TcpExt.TCPHPHits", 300),
        ("Tcp.CurrEstab", 8),
    ],
    [
        ("TcpExt.ListenOverflows", 12),
        ("TcpExt.ListenDrops", 13),
        ("Tcp.RetransSegs", 111),
        ("Tcp.OutSegs", 2600),
        ("Tcp.InSegs", 2350),
        ("TcpExt.TCPTimeouts", 3),
        ("TcpExt.DelayedACKs", 50),
        ("TcpExt.TCPHPHits", 600),
        ("Tcp.CurrEstab", 7),
    ],
];

const SYSCTLS: [(&str, &str); 19] = [
    ("net.core.somaxconn", "4096"),
    ("net.ipv4.tcp_max_syn_backlog", "2048"),
    ("net.ipv4.tcp_syncookies", "1"),
    ("net.ipv4.tcp_abort_on_overflow", "0"),
    ("net.ipv4.tcp_synack_retries", "5"),
    ("net.ipv4.tcp_syn_retries", "6"),
    ("net.ipv4.tcp_syn_linear_timeouts", "4"),
    ("net.ipv4.ip_local_port_range", "32768 60999"),
    ("net.ipv4.tcp_tw_reuse", "2"),
    ("net.ipv4.tcp_max_tw_buckets", "262144"),
    ("net.ipv4.tcp_fin_timeout", "60"),
    ("net.ipv4.tcp_max_orphans", "131072"),
    ("net.ipv4.tcp_orphan_retries", "0"),
    ("net.ipv4.tcp_retries2", "15"),
    ("net.ipv4.tcp_keepalive_time", "7200"),
    ("net.ipv4.tcp_keepalive_intvl", "75"),
    ("net.ipv4.tcp_keepalive_probes", "9"),
    ("net.ipv4.tcp_timestamps", "1"),
    ("net.core.netdev_max_backlog", "1000"),
];

/// The fixture with every collected sysctl, sockstat, listener backlogs
/// (nginx's accept queue full) and the counters of sample `i`, taken `i`
/// seconds after the fixture's time.
fn sample(i: usize) -> Snapshot {
    let mut snap = fixture::small();
    snap.advance(Duration::from_secs(i as u64));
    for (k, v) in SYSCTLS {
        snap.system.sysctls.insert(k.into(), v.into());
    }
    snap.system.sockstat.insert("TCP.tw".into(), 1);
    snap.system.sockstat.insert("TCP.orphan".into(), 0);
    for (k, v) in SAMPLES[i] {
        snap.system.counters.insert(k.into(), v);
    }
    for s in snap
        .sockets
        .iter_mut()
        .filter(|s| s.state == TcpState::Listen)
    {
        (s.send_q, s.recv_q) = if s.local.port() == 80 {
            (511, 512)
        } else {
            (4096, 0)
        };
    }
    snap
}

fn app_with_history() -> App {
    let mut app = new_app();
    for i in 0..SAMPLES.len() {
        app.handle(Event::Snapshot(Arc::new(sample(i)), STATS));
    }
    app.clock = sample(SAMPLES.len() - 1).taken_at + Duration::from_millis(300);
    app
}

fn app_in(view: char) -> App {
    let mut app = app_with_history();
    key(&mut app, KeyCode::Char(view));
    app
}

/// The cells of the first screen line containing `needle`, from its start.
fn cells_of<'a>(term: &'a Terminal<TestBackend>, needle: &str) -> Vec<&'a ratatui::buffer::Cell> {
    let buf = term.backend().buffer();
    for y in 0..buf.area.height {
        let line: String = (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect();
        if let Some(byte) = line.find(needle) {
            let x = line[..byte].chars().count() as u16;
            return (x..x + needle.chars().count() as u16)
                .map(|x| &buf[(x, y)])
                .collect();
        }
    }
    panic!("{needle:?} not on screen:\n{}", text(term));
}

#[test]
fn counters_view_at_80x24() {
    let t = text(&render(&app_in('3'), 80, 24, Theme::mono()));
    assert!(t.contains("[3 counters]"), "{t}");
    assert!(
        t.contains("!TcpExt.ListenOverflows"),
        "rising bad counter marked: {t}"
    );
    insta::assert_snapshot!(t);
}

#[test]
fn counters_view_at_120x40_lists_the_other_counters_that_rose() {
    let mut app = app_in('3');
    key(&mut app, KeyCode::End);
    let t = text(&render(&app, 120, 40, Theme::mono()));
    assert!(t.contains("other counters that rose"), "{t}");
    let hp = t.find("TcpExt.TCPHPHits").expect("TCPHPHits listed");
    let ack = t.find("TcpExt.DelayedACKs").expect("DelayedACKs listed");
    assert!(hp < ack, "faster counter first:\n{t}");
    assert!(
        !t.contains("Tcp.CurrEstab"),
        "a gauge is not a counter:\n{t}"
    );
    assert!(
        t.contains("TcpExt.DelayedACKs: not described here"),
        "meaning line of the last row:\n{t}"
    );
    insta::assert_snapshot!(t);
}

#[test]
fn counters_view_explains_the_counter_under_the_cursor() {
    let app = app_in('3');
    let t = text(&render(&app, 80, 24, Theme::mono()));
    assert!(
        t.contains("TcpExt.ListenOverflows: SYNs and handshake-completing ACKs dropped"),
        "{t}"
    );
}

#[test]
fn sysctls_view_at_80x24() {
    let t = text(&render(&app_in('4'), 80, 24, Theme::mono()));
    assert!(
        t.contains("!net.core.somaxconn"),
        "full accept queue flagged: {t}"
    );
    assert!(t.contains("accept queue full: :80 nginx"), "{t}");
    insta::assert_snapshot!(t);
}

#[test]
fn sysctls_view_at_120x40() {
    let mut app = app_in('4');
    for _ in 0..8 {
        key(&mut app, KeyCode::Down); // tcp_tw_reuse
    }
    let t = text(&render(&app, 120, 40, Theme::mono()));
    assert!(t.contains("net.ipv4.tcp_tw_reuse = 2"), "{t}");
    assert!(t.contains("Never use tcp_tw_recycle"), "{t}");
    insta::assert_snapshot!(t);
}

#[test]
fn diagram_view_at_80x24() {
    let t = text(&render(&app_in('5'), 80, 24, Theme::mono()));
    assert!(
        t.contains("[CLOSE_WAIT    2]"),
        "live count in the box: {t}"
    );
    assert!(t.contains("[LISTEN        2]"), "{t}");
    assert!(t.contains("[CLOSE         0]"), "UDP is not counted: {t}");
    insta::assert_snapshot!(t);
}

#[test]
fn diagram_view_at_120x40() {
    let t = text(&render(&app_in('5'), 120, 40, Theme::mono()));
    assert!(t.contains("Highlighted: CLOSE_WAIT"), "{t}");
    insta::assert_snapshot!(t);
}

/// The local wall-clock time in `since HH:MM:SS` depends on the machine's
/// time zone: masked so snapshots are the same everywhere.
fn mask_clock(t: &str) -> String {
    t.lines()
        .map(|l| match l.strip_prefix("since ") {
            Some(rest) if rest.len() >= 8 => format!("since hh:mm:ss{}", &rest[8..]),
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn findings_view_lists_findings_and_explains_the_selected_one_at_80x24() {
    let app = app_in('2');
    let t = text(&render(&app, 80, 24, Theme::mono()));
    assert!(t.contains("[2 findings]"), "{t}");
    // nginx's full accept queue with ListenOverflows rising comes first.
    assert_eq!(app.findings[0].kind.name(), "listen_queue_full");
    assert!(t.contains("CRITICAL listen_queue_full"), "{t}");
    assert!(t.contains("why   The listener on"), "{t}");
    insta::assert_snapshot!(t);
}

#[test]
fn findings_view_at_120x40() {
    let mut app = app_in('2');
    key(&mut app, KeyCode::Down);
    let t = mask_clock(&text(&render(&app, 120, 40, Theme::mono())));
    assert!(t.contains("since hh:mm:ss or earlier (3s ago)"), "{t}");
    insta::assert_snapshot!(t);
}

#[test]
fn diagram_highlights_the_selected_connections_state() {
    let mut app = app_with_history();
    for _ in 0..3 {
        key(&mut app, KeyCode::Char('g')); // one row per connection
    }
    key(&mut app, KeyCode::Home);
    let state = app.selected_socket().unwrap().state;
    key(&mut app, KeyCode::Char('5'));
    let term = render(&app, 120, 40, Theme::mono());
    let name = state.kernel_name();
    for cell in cells_of(&term, &format!("[{name}")) {
        assert!(
            cell.modifier.contains(Modifier::REVERSED),
            "{name} box not highlighted:\n{}",
            text(&term)
        );
    }
    assert!(text(&term).contains(&format!(
        "Highlighted: {name}, the selected connection's state"
    )));
    // Another state's box is not highlighted.
    let other = if state == TcpState::Listen {
        "[TIME_WAIT"
    } else {
        "[LISTEN"
    };
    assert!(
        cells_of(&term, other)
            .iter()
            .all(|c| !c.modifier.contains(Modifier::REVERSED))
    );
}

#[test]
fn monochrome_views_use_no_colour_but_still_mark_what_matters() {
    for view in ['3', '4', '5'] {
        let term = render(&app_in(view), 80, 24, Theme::mono());
        for cell in term.backend().buffer().content() {
            assert_eq!(cell.fg, Color::Reset, "colour in mono theme, view {view}");
            assert_eq!(cell.bg, Color::Reset, "colour in mono theme, view {view}");
        }
        // The active tab is in reverse video.
        let tab = match view {
            '3' => "[3 counters]",
            '4' => "[4 sysctls]",
            _ => "[5 diagram]",
        };
        assert!(
            cells_of(&term, tab)
                .iter()
                .all(|c| c.modifier.contains(Modifier::REVERSED))
        );
    }
    let counters = render(&app_in('3'), 80, 24, Theme::mono());
    // Row 0 is selected (reverse); the rising ListenDrops row is bold.
    assert!(
        cells_of(&counters, "!TcpExt.ListenDrops")
            .iter()
            .all(|c| c.modifier.contains(Modifier::BOLD))
    );
    assert!(
        cells_of(&counters, "TcpExt.TCPTimeouts")
            .iter()
            .all(|c| !c.modifier.contains(Modifier::BOLD)),
        "a flat counter is plain"
    );
    let diagram = render(&app_in('5'), 80, 24, Theme::mono());
    assert!(
        cells_of(&diagram, "[CLOSE_WAIT")
            .iter()
            .all(|c| c.modifier.contains(Modifier::REVERSED))
    );
    assert!(
        cells_of(&diagram, "[FIN_WAIT2")
            .iter()
            .all(|c| c.modifier.contains(Modifier::BOLD)),
        "trouble state with sockets is bold"
    );
}

#[test]
fn colour_theme_draws_rising_bad_counters_in_red() {
    let term = render(&app_in('3'), 80, 24, Theme { color: true });
    assert!(
        cells_of(&term, "!TcpExt.ListenDrops")
            .iter()
            .all(|c| c.fg == Color::Red)
    );
}

#[test]
fn main_screen_title_shows_the_view_keys() {
    let app = app_with_history();
    assert_eq!(app.view, View::Sockets);
    let t = text(&render(&app, 80, 24, Theme::mono()));
    assert!(t.contains("│ 1-6 views"), "{t}");
}

#[test]
fn every_view_draws_at_every_size_without_panic() {
    for view in ['2', '3', '4', '5'] {
        let app = app_in(view);
        for (w, h) in [
            (40, 10),
            (41, 11),
            (60, 15),
            (80, 24),
            (250, 10),
            (40, 100),
            (300, 80),
        ] {
            let t = text(&render(&app, w, h, Theme::mono()));
            assert!(t.starts_with("sockscope"), "{view} at {w}x{h}: {t}");
        }
    }
}
