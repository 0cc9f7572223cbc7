//! The transitions view drawn to ratatui's TestBackend from a fixture and a
//! hand-made window of transitions: the port table, the last transitions
//! with their durations, the filter, the note when they are not followed,
//! narrow terminals and hostile names.

use crate::ui_harness::{STATS, new_app, press, render, screen, typed};
use crossterm::event::KeyCode;
use sockscope::app::{App, Event, View};
use sockscope::engine::Analyzer;
use sockscope::model::{Snapshot, fixture};
use sockscope::trace::{PortKey, Stats, Status, TraceSample, Transition, Window};
use sockscope::ui::Theme;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

fn window(snap: &Snapshot) -> Window {
    let mut w = Window {
        from: snap.monotonic - Duration::from_secs(60),
        to: snap.monotonic,
        ..Window::default()
    };
    let s = Stats {
        opened: 120,
        closed: 120,
        closed_peer: 120,
        lifetimes_us: vec![20_000; 120],
        ..Stats::default()
    };
    w.total = s.clone();
    w.by_port.insert(
        PortKey {
            port: 6800,
            local: true,
        },
        s,
    );
    w
}

fn transition(
    snap: &Snapshot,
    local: &str,
    remote: &str,
    old: u8,
    new: u8,
    after_ms: u64,
    pid: Option<u32>,
) -> Transition {
    Transition {
        at: snap.monotonic - Duration::from_secs(1),
        local: local.parse().unwrap(),
        remote: remote.parse().unwrap(),
        old,
        new,
        after: Some(Duration::from_millis(after_ms)),
        pid,
        port: None,
    }
}

/// An app showing the fixture with `trace` as its transitions.
fn app_with_trace(snap: Snapshot, trace: TraceSample) -> App {
    let mut app = new_app();
    let a = Analyzer::new().digest(Arc::new(snap), Some(STATS), None);
    let mut a = (*a).clone();
    a.trace = Some(Arc::new(trace));
    app.handle(Event::Analysis(Arc::new(a)));
    app
}

fn followed(snap: &Snapshot) -> TraceSample {
    let w = window(snap);
    let recent: VecDeque<Transition> = [
        transition(snap, "127.0.0.1:8080", "127.0.0.1:41000", 1, 4, 5, None),
        transition(
            snap,
            "127.0.0.1:6800",
            "127.0.0.1:40000",
            8,
            9,
            300,
            Some(1000),
        ),
    ]
    .into();
    TraceSample {
        status: Status::On,
        window: w.clone(),
        minute: w,
        recent: Arc::new(recent),
        ..TraceSample::off("")
    }
}

#[test]
fn the_view_shows_each_port_and_the_last_transitions_with_their_durations() {
    let snap = fixture::small();
    let trace = followed(&snap);
    let mut app = app_with_trace(snap, trace);
    press(&mut app, KeyCode::Char('6'));
    assert_eq!(app.view, View::Transitions);
    let s = screen(&render(&app, 120, 40, Theme::mono()));
    let port_row = s
        .lines()
        .find(|l| l.starts_with(":6800"))
        .unwrap_or_else(|| panic!("{s}"));
    assert!(port_row.contains("redis-server (1000)"), "{port_row}");
    assert!(port_row.contains(" 2.0 "), "120 in 60 s: {port_row}");
    assert!(port_row.contains("20ms"), "median lifetime: {port_row}");
    assert!(
        s.contains("CLOSE_WAIT → LAST_ACK after 300ms redis-server (1000)"),
        "{s}"
    );
    assert!(s.contains("ESTABLISHED → FIN_WAIT1 after 5.0ms"), "{s}");
    // The filter applies to the list as to the table.
    typed(&mut app, "/6800");
    press(&mut app, KeyCode::Enter);
    press(&mut app, KeyCode::Char('6'));
    let s = screen(&render(&app, 120, 40, Theme::mono()));
    assert!(s.contains("CLOSE_WAIT → LAST_ACK"), "{s}");
    assert!(!s.contains("FIN_WAIT1"), "port 8080 is filtered out: {s}");
}

#[test]
fn not_followed_says_why_in_the_view_and_once_on_the_status_line() {
    let snap = fixture::small();
    let off = TraceSample::off("perf_event_open was refused (Permission denied)");
    let mut app = app_with_trace(snap.clone(), off.clone());
    assert!(
        app.status
            .as_deref()
            .is_some_and(|s| s.contains("perf_event_open was refused")),
        "{:?}",
        app.status
    );
    press(&mut app, KeyCode::Char('6'));
    let s = screen(&render(&app, 80, 24, Theme::mono()));
    assert!(
        s.contains("Transitions are not followed: perf_event_open was refused"),
        "{s}"
    );
    // A second sample does not say it again.
    let a = Analyzer::new().digest(Arc::new(snap), Some(STATS), None);
    let mut a = (*a).clone();
    a.trace = Some(Arc::new(off));
    app.status = None;
    app.handle(Event::Analysis(Arc::new(a)));
    assert_eq!(app.status, None);
}

#[test]
fn narrow_terminals_and_hostile_names_are_drawn_safely() {
    let mut snap = fixture::small();
    snap.processes.get_mut(&1000).unwrap().name = "evil\u{1b}]0;owned\u{7}\u{1b}[2J".into();
    let trace = followed(&snap);
    let mut app = app_with_trace(snap, trace);
    press(&mut app, KeyCode::Char('6'));
    for (w, h) in [(40, 20), (80, 24), (120, 40)] {
        let s = screen(&render(&app, w, h, Theme::mono()));
        assert!(
            !s.contains('\u{1b}') && !s.contains('\u{7}'),
            "{w}x{h}: {s}"
        );
        assert!(s.contains("evil"), "{w}x{h}: the name, cleaned: {s}");
    }
}
