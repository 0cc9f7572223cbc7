//! The monitor's behaviour on fixture snapshots: keys in, state out.

use crate::ui_harness;

use ui_harness::{STATS, fixture_app as app, press, typed};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use sockscope::app::{App, Effect, Event, Focus, Mode};
use sockscope::model::view::{Grouping, Row, RowKey};
use sockscope::model::{Snapshot, TcpState, fixture};
use std::sync::Arc;
use std::time::Duration;

fn selected_pid(app: &App) -> Option<u32> {
    match app.rows.get(app.cursor) {
        Some(Row::Process(g)) => g.pid,
        _ => panic!("not on a process row"),
    }
}

#[test]
fn q_and_ctrl_c_quit() {
    let mut a = app();
    assert_eq!(press(&mut a, KeyCode::Char('q')), vec![Effect::Quit]);
    let mut a = app();
    let fx = a.handle(Event::Key(KeyEvent::new(
        KeyCode::Char('c'),
        KeyModifiers::CONTROL,
    )));
    assert_eq!(fx, vec![Effect::Quit]);
    assert_eq!(a.handle(Event::Terminate), vec![Effect::Quit]);
}

#[test]
fn filter_applies_live_enter_keeps_it_esc_cancels_it() {
    let mut a = app();
    press(&mut a, KeyCode::Char('/'));
    assert_eq!(a.mode, Mode::Filter);
    typed(&mut a, "nginx");
    assert_eq!(a.rows.len(), 1, "applies while typing");
    press(&mut a, KeyCode::Enter);
    assert_eq!(a.mode, Mode::Normal);
    assert_eq!(a.filter.text(), "nginx");

    press(&mut a, KeyCode::Char('/'));
    typed(&mut a, "x");
    press(&mut a, KeyCode::Esc);
    assert_eq!(
        a.filter.text(),
        "nginx",
        "Esc restores the filter from before the prompt"
    );

    press(&mut a, KeyCode::Esc);
    assert!(a.filter.is_empty(), "Esc in the table clears the filter");
    assert_eq!(a.rows.len(), 5);
}

#[test]
fn a_bad_term_shows_an_error_and_keeps_the_last_good_filter() {
    let mut a = app();
    press(&mut a, KeyCode::Char('/'));
    typed(&mut a, "6800 state:nope");
    assert!(a.prompt_error.as_deref().unwrap().contains("state:nope"));
    // `6800 state` (a bare word) was the last text that parsed while typing.
    assert_eq!(a.filter.text(), "6800 state");
    press(&mut a, KeyCode::Enter);
    assert!(a.status.as_deref().unwrap().contains("state:nope"));
    assert!(
        a.filter.is_empty(),
        "Enter on a bad term keeps the filter from before the prompt"
    );

    press(&mut a, KeyCode::Char('/'));
    typed(&mut a, "nginx");
    press(&mut a, KeyCode::Enter);
    press(&mut a, KeyCode::Char('/'));
    typed(&mut a, " port:x");
    press(&mut a, KeyCode::Enter);
    assert_eq!(a.filter.text(), "nginx");
}

#[test]
fn any_key_closes_the_help() {
    let mut a = app();
    press(&mut a, KeyCode::Char('?'));
    assert_eq!(a.mode, Mode::Help);
    press(&mut a, KeyCode::Char('x'));
    assert_eq!(a.mode, Mode::Normal);
    press(&mut a, KeyCode::Char('?'));
    assert_eq!(press(&mut a, KeyCode::Char('q')), vec![Effect::Quit]);
}

#[test]
fn grouping_cycles_through_every_view() {
    let mut a = app();
    let mut seen = vec![a.grouping];
    for _ in 0..4 {
        press(&mut a, KeyCode::Char('g'));
        seen.push(a.grouping);
    }
    assert_eq!(
        seen,
        [
            Grouping::Process,
            Grouping::Port,
            Grouping::Remote,
            Grouping::Flat,
            Grouping::Process
        ]
    );
}

#[test]
fn sort_keys_change_column_and_direction() {
    let mut a = app();
    assert_eq!(a.sort(), (3, true), "by process: TOTAL, largest first");
    press(&mut a, KeyCode::Char('s'));
    assert_eq!(a.sort(), (4, true));
    press(&mut a, KeyCode::Char('S'));
    press(&mut a, KeyCode::Char('S'));
    assert_eq!(a.sort(), (2, false), "USER is text: A to Z");
    press(&mut a, KeyCode::Char('r'));
    assert_eq!(a.sort(), (2, true));
    press(&mut a, KeyCode::Char('S'));
    press(&mut a, KeyCode::Char('S'));
    assert_eq!(a.sort(), (0, true), "PID");
    let pids: Vec<Option<u32>> = a
        .rows
        .iter()
        .map(|r| match r {
            Row::Process(g) => g.pid,
            _ => None,
        })
        .collect();
    assert_eq!(pids, [Some(5000), Some(4242), Some(1000), Some(700), None]);
}

#[test]
fn enter_drills_into_a_process_and_back_returns_to_it() {
    let mut a = app();
    press(&mut a, KeyCode::Down);
    let pid = selected_pid(&a).unwrap();
    press(&mut a, KeyCode::Enter);
    assert_eq!(a.grouping, Grouping::Flat);
    assert!(!a.rows.is_empty());
    for r in &a.rows {
        let s = r.socket(&a.snapshot).unwrap();
        assert!(s.owners.iter().any(|o| o.pid == pid));
    }
    press(&mut a, KeyCode::Enter);
    assert_eq!(a.mode, Mode::Detail, "Enter on a connection inspects it");
    press(&mut a, KeyCode::Esc);
    assert_eq!(a.mode, Mode::Normal);
    press(&mut a, KeyCode::Backspace);
    assert_eq!(a.grouping, Grouping::Process);
    assert_eq!(
        selected_pid(&a),
        Some(pid),
        "selection restored after going back"
    );
}

#[test]
fn drilling_into_the_no_owner_row_lists_time_wait() {
    let mut a = app();
    while selected_pid(&a).is_some() {
        press(&mut a, KeyCode::Down);
    }
    press(&mut a, KeyCode::Enter);
    assert_eq!(a.rows.len(), 1);
    assert_eq!(a.selected_socket().unwrap().state, TcpState::TimeWait);
}

#[test]
fn state_strip_focus_filters_by_a_state() {
    let mut a = app();
    press(&mut a, KeyCode::Tab);
    assert_eq!(a.focus, Focus::States);
    press(&mut a, KeyCode::Enter); // CLOSE_WAIT is preselected
    assert_eq!(a.rows.len(), 1, "one process holds CLOSE_WAIT");
    assert_eq!(selected_pid(&a), Some(1000));
    press(&mut a, KeyCode::Esc);
    assert_eq!(a.rows.len(), 5);
}

#[test]
fn selection_is_kept_by_key_across_refreshes_that_reorder_rows() {
    let mut a = app();
    press(&mut a, KeyCode::Char('g'));
    press(&mut a, KeyCode::Char('g'));
    press(&mut a, KeyCode::Char('g')); // flat
    press(&mut a, KeyCode::Down);
    press(&mut a, KeyCode::Down);
    let before = a.selected_key().cloned().unwrap();
    // New sample: two sockets that sort before it appear, one that sorted before it is gone.
    let mut snap: Snapshot = fixture::small();
    snap.taken_at += Duration::from_secs(1);
    snap.sockets.remove(1);
    for port in [40000, 40001] {
        let mut s = snap.sockets[1].clone();
        s.inode = u64::from(port);
        s.remote.set_port(port);
        snap.sockets.insert(0, s);
    }
    a.handle(Event::Snapshot(Arc::new(snap), STATS));
    let after = a.rows[a.cursor].key(&a.snapshot);
    assert_eq!(after, before);
    assert!(matches!(after, RowKey::Conn(_)));
}

#[test]
fn pause_freezes_the_view_but_history_keeps_growing() {
    let mut a = app();
    press(&mut a, KeyCode::Char('p'));
    assert!(a.paused);
    let mut snap = fixture::small();
    snap.taken_at += Duration::from_secs(1);
    snap.sockets.truncate(2);
    a.handle(Event::Snapshot(Arc::new(snap), STATS));
    assert_eq!(a.snapshot.sockets.len(), 8, "view frozen");
    assert_eq!(a.history.samples().len(), 2, "history still recorded");
    press(&mut a, KeyCode::Char('p'));
    assert_eq!(
        a.snapshot.sockets.len(),
        2,
        "unpause shows the newest sample"
    );
}

#[test]
fn plus_and_minus_change_the_interval() {
    let mut a = app();
    assert_eq!(
        press(&mut a, KeyCode::Char('+')),
        vec![Effect::SetInterval(Duration::from_secs(2))]
    );
    press(&mut a, KeyCode::Char('-'));
    assert_eq!(
        press(&mut a, KeyCode::Char('-')),
        vec![Effect::SetInterval(Duration::from_millis(500))]
    );
    assert_eq!(
        press(&mut a, KeyCode::Char('-')),
        vec![Effect::SetInterval(Duration::from_millis(500))],
        "floor"
    );
}

#[test]
fn reverse_dns_is_requested_once_per_address_and_only_when_on() {
    let mut a = app();
    press(&mut a, KeyCode::Char('g'));
    assert!(
        press(&mut a, KeyCode::Char('g')).is_empty(),
        "off by default"
    );
    let fx = press(&mut a, KeyCode::Char('n'));
    let Some(Effect::Resolve(ips)) = fx.first() else {
        panic!("{fx:?}")
    };
    assert!(ips.contains(&"10.0.0.9".parse().unwrap()));
    a.handle(Event::Resolved(
        "10.0.0.9".parse().unwrap(),
        Some("client.example".into()),
    ));
    a.handle(Event::Snapshot(Arc::new(fixture::small()), STATS));
    let again = a.handle(Event::Snapshot(Arc::new(fixture::small()), STATS));
    assert!(again.is_empty(), "no repeated lookups: {again:?}");
    let cells = sockscope::model::view::cells(&a.rows[a.cursor], &a.ctx());
    assert!(
        a.rows
            .iter()
            .any(|r| sockscope::model::view::cells(r, &a.ctx())[0].contains("client.example")),
        "{cells:?}"
    );
}

#[test]
fn key_releases_are_ignored() {
    let mut a = app();
    let mut ev = KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE);
    ev.kind = crossterm::event::KeyEventKind::Release;
    assert!(a.handle(Event::Key(ev)).is_empty());
}

#[test]
fn the_view_scrolls_only_when_the_cursor_leaves_the_page() {
    let mut a = app();
    a.page = 3;
    for _ in 0..3 {
        press(&mut a, KeyCode::Char('g'));
    }
    assert_eq!(a.rows.len(), 8, "flat view of the fixture");
    for _ in 0..5 {
        press(&mut a, KeyCode::Down);
    }
    assert_eq!(
        (a.cursor, a.offset),
        (5, 3),
        "scrolled so row 5 is the last visible"
    );
    press(&mut a, KeyCode::Up);
    assert_eq!(
        (a.cursor, a.offset),
        (4, 3),
        "moving up inside the page does not scroll"
    );
    press(&mut a, KeyCode::Home);
    assert_eq!((a.cursor, a.offset), (0, 0));
}
