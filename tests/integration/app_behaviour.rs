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
    // Not even q acts: it only closes the help (the next q quits).
    press(&mut a, KeyCode::Char('?'));
    assert_eq!(press(&mut a, KeyCode::Char('q')), vec![]);
    assert_eq!(a.mode, Mode::Normal);
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
    snap.advance(Duration::from_secs(1));
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
    snap.advance(Duration::from_secs(1));
    snap.sockets.truncate(2);
    a.handle(Event::Snapshot(Arc::new(snap), STATS));
    assert_eq!(a.snapshot.sockets.len(), 8, "view frozen");
    assert_eq!(
        a.history.samples().len(),
        1,
        "the shown history is frozen too"
    );
    let pending = a.pending.as_ref().expect("the newer sample waits");
    assert_eq!(pending.history.samples().len(), 2, "history still recorded");
    press(&mut a, KeyCode::Char('p'));
    assert_eq!(
        a.snapshot.sockets.len(),
        2,
        "unpause shows the newest sample"
    );
    assert_eq!(
        a.history.samples().len(),
        2,
        "with the history recorded meanwhile"
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

#[test]
fn the_prompt_opens_with_the_filter_selected_typing_replaces_it_and_a_cursor_key_edits_it() {
    let mut a = app();
    press(&mut a, KeyCode::Char('/'));
    typed(&mut a, "6800");
    press(&mut a, KeyCode::Enter);
    press(&mut a, KeyCode::Char('/'));
    assert_eq!(a.prompt, "6800");
    assert!(a.prompt_selected);
    typed(&mut a, "nginx");
    assert_eq!(a.prompt, "nginx", "typing replaced the selected filter");
    assert_eq!(a.filter.text(), "nginx");
    press(&mut a, KeyCode::Enter);

    press(&mut a, KeyCode::Char('/'));
    press(&mut a, KeyCode::Right);
    assert!(!a.prompt_selected);
    typed(&mut a, " tcp");
    assert_eq!(a.prompt, "nginx tcp", "after a cursor key, typing adds");
    press(&mut a, KeyCode::Esc);
    assert_eq!(a.filter.text(), "nginx");

    // Backspace on the selected filter clears it.
    press(&mut a, KeyCode::Char('/'));
    press(&mut a, KeyCode::Backspace);
    assert_eq!(a.prompt, "");
    assert!(a.filter.is_empty());
}

#[test]
fn a_new_filter_puts_the_cursor_on_the_first_row() {
    let mut a = app();
    press(&mut a, KeyCode::End);
    assert_eq!(a.cursor, a.rows.len() - 1, "on (no owner), the last row");
    press(&mut a, KeyCode::Char('/'));
    typed(&mut a, "6800");
    assert_eq!(a.cursor, 0);
    press(&mut a, KeyCode::Enter);
    assert_eq!(
        selected_pid(&a),
        Some(1000),
        "the leaking process, not (no owner)"
    );
}

#[test]
fn htop_function_keys_work_and_an_unbound_key_says_so() {
    let mut a = app();
    press(&mut a, KeyCode::F(1));
    assert_eq!(a.mode, Mode::Help);
    press(&mut a, KeyCode::F(1));
    press(&mut a, KeyCode::F(3));
    assert_eq!(a.mode, Mode::Filter);
    press(&mut a, KeyCode::Esc);
    press(&mut a, KeyCode::F(4));
    assert_eq!(a.mode, Mode::Filter);
    press(&mut a, KeyCode::Esc);
    let before = a.sort();
    press(&mut a, KeyCode::F(6));
    assert_ne!(a.sort(), before, "F6 sorts by the next column");
    assert_eq!(press(&mut a, KeyCode::F(10)), vec![Effect::Quit]);

    assert!(press(&mut a, KeyCode::Char('z')).is_empty());
    let status = a.status.clone().unwrap_or_default();
    assert!(status.starts_with("z: no action"), "{status}");
    assert!(status.contains("F1"), "{status}");
}

#[test]
fn under_a_filter_the_strip_and_the_finding_line_follow_it_and_count_what_is_elsewhere() {
    let mut a = app();
    assert!(a.filtered.is_none());
    press(&mut a, KeyCode::Char('/'));
    typed(&mut a, "nginx");
    press(&mut a, KeyCode::Enter);
    let f = a.filtered.as_ref().expect("a filter is in force");
    assert_eq!(f.counts.get(TcpState::CloseWait), 0);
    let machine = a
        .snapshot
        .sockets
        .iter()
        .filter(|s| s.state == TcpState::CloseWait)
        .count();
    assert!(machine > 0);
    assert_eq!(
        a.counts.get(TcpState::CloseWait) as usize,
        machine,
        "the machine's"
    );
    assert_eq!(a.strip_counts().get(TcpState::Listen), 1);
    assert!(
        a.line_findings()
            .iter()
            .all(|f| f.kind.name() != "close_wait_leak"),
        "redis's leak is not nginx's: {:#?}",
        a.line_findings()
    );
    assert!(a.findings_elsewhere() >= 1, "redis's leak is elsewhere");
    press(&mut a, KeyCode::Esc);
    assert!(a.filtered.is_none());
    assert_eq!(a.findings_elsewhere(), 0);
}

#[test]
fn a_paste_into_the_filter_prompt_rebuilds_the_rows_once_not_once_per_key() {
    let keys = |text: &str| -> Vec<Event> {
        text.chars()
            .map(|c| Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)))
            .collect()
    };
    let pasted = "port:6800 state:cw  ";
    assert_eq!(pasted.len(), 20);
    let mut a = app();
    press(&mut a, KeyCode::Char('/'));
    let before = a.rebuilds;
    // What the loop finds queued after a paste: twenty keys in one batch.
    a.handle_batch(keys(pasted));
    assert_eq!(a.rebuilds, before + 1, "one rebuild for the batch");
    assert_eq!(a.filter.text(), "port:6800 state:cw");
    assert!(!a.rows.is_empty());
    let shown = a.rows.len();
    // The same keys one at a time rebuild as they go (and end the same).
    let mut b = app();
    press(&mut b, KeyCode::Char('/'));
    let before = b.rebuilds;
    typed(&mut b, pasted);
    assert!(b.rebuilds > before + 10, "{} rebuilds", b.rebuilds - before);
    assert_eq!(b.rows.len(), shown);
    // A key that is not typing in the prompt sees the rows of the keys
    // before it: Enter, then j moves on the filtered rows.
    let mut c = app();
    press(&mut c, KeyCode::Char('/'));
    let mut batch = keys("nginx");
    batch.push(Event::Key(KeyEvent::new(
        KeyCode::Enter,
        KeyModifiers::NONE,
    )));
    c.handle_batch(batch);
    assert_eq!(c.mode, Mode::Normal);
    assert_eq!(c.rows.len(), 1, "filtered before the prompt closed");
}
