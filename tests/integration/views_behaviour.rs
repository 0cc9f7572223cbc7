//! View switching and scrolling in the live monitor: keys in, state out, on
//! fixture snapshots.

use crate::ui_harness;

use ui_harness::{STATS, fixture_app as app, press};

use crossterm::event::KeyCode;
use sockscope::app::keymap::Keymap;
use sockscope::app::{App, Effect, Event, Mode, View};
use sockscope::model::view::Grouping;
use sockscope::model::{Filter, TcpState, counter_rows, diagram, fixture};
use std::sync::Arc;
use std::time::Duration;

/// Moves the findings view's cursor to the first finding of `kind`.
fn select_finding(a: &mut App, kind: &str) {
    press(a, KeyCode::Char('2'));
    press(a, KeyCode::Home);
    let at = a
        .findings
        .iter()
        .position(|f| f.kind.name() == kind)
        .unwrap_or_else(|| panic!("no {kind} in {:#?}", a.findings));
    for _ in 0..at {
        press(a, KeyCode::Down);
    }
    assert_eq!(a.selected_finding().unwrap().kind.name(), kind);
}

#[test]
fn enter_on_a_finding_replaces_the_filter_with_its_own_and_esc_comes_back_to_the_findings_view() {
    let mut a = app();
    // A filter that does not show the finding's sockets.
    press(&mut a, KeyCode::Char('/'));
    ui_harness::typed(&mut a, "nginx");
    press(&mut a, KeyCode::Enter);
    select_finding(&mut a, "close_wait_leak");
    let count = a.selected_finding().unwrap().count as usize;
    let cursor = a.views.findings.cursor;
    press(&mut a, KeyCode::Enter);
    assert_eq!(a.view, View::Sockets);
    assert_eq!(a.grouping, Grouping::Flat);
    assert_eq!(
        a.filter.text(),
        "pid:1000 state:close-wait",
        "replaced, not added to"
    );
    assert!(a.drill.is_empty());
    assert_eq!(a.jumped_from.as_ref().unwrap().label, "close_wait_leak");
    assert_eq!(a.rows.len(), count);
    assert_eq!(a.cursor, 0);
    for r in &a.rows {
        let s = r.socket(&a.snapshot).unwrap();
        assert_eq!(s.state, TcpState::CloseWait);
        assert_eq!(s.owners[0].pid, 1000);
    }
    // Esc goes back to the findings view, as it was, with the old filter.
    press(&mut a, KeyCode::Esc);
    assert_eq!(a.view, View::Findings);
    assert_eq!(a.views.findings.cursor, cursor);
    assert_eq!(a.selected_finding().unwrap().kind.name(), "close_wait_leak");
    assert_eq!(a.filter.text(), "nginx");
    assert!(a.jumped_from.is_none());
}

#[test]
fn the_selected_finding_stays_selected_when_the_list_reorders() {
    let mut a = app();
    select_finding(&mut a, "fin_wait2");
    // redis's leak grows past 100: a warning, now sorted above fin_wait2.
    let mut snap = fixture::small();
    snap.advance(Duration::from_secs(1));
    for i in 0..120u32 {
        snap.sockets.push(fixture::socket(
            sockscope::model::Proto::Tcp,
            TcpState::CloseWait,
            "10.0.0.1:6800",
            &format!("10.0.3.3:{}", 20000 + i),
            5000 + u64::from(i),
            999,
            &[(1000, 50 + i)],
        ));
    }
    a.handle(Event::Snapshot(Arc::new(snap), STATS));
    assert_eq!(a.findings[0].kind.name(), "close_wait_leak");
    assert_eq!(a.selected_finding().unwrap().kind.name(), "fin_wait2");
}

#[test]
fn keys_1_to_5_select_the_views() {
    let mut a = app();
    assert_eq!(a.view, View::Sockets);
    for (key, view) in [
        ('3', View::Counters),
        ('4', View::Sysctls),
        ('5', View::Diagram),
        ('2', View::Findings),
        ('1', View::Sockets),
    ] {
        assert!(press(&mut a, KeyCode::Char(key)).is_empty());
        assert_eq!(a.view, view, "after {key}");
    }
}

#[test]
fn esc_and_backspace_return_to_the_socket_table() {
    let mut a = app();
    press(&mut a, KeyCode::Char('/'));
    for c in "nginx".chars() {
        press(&mut a, KeyCode::Char(c));
    }
    press(&mut a, KeyCode::Enter);
    for back in [KeyCode::Esc, KeyCode::Backspace] {
        press(&mut a, KeyCode::Char('4'));
        press(&mut a, back);
        assert_eq!(a.view, View::Sockets, "{back:?} leaves the view");
        assert_eq!(
            a.filter.text(),
            "nginx",
            "{back:?} from a view does not also clear the filter"
        );
    }
    press(&mut a, KeyCode::Esc);
    assert!(
        a.filter.is_empty(),
        "in the table, Esc clears the filter as before"
    );
}

#[test]
fn arrows_move_the_counters_cursor_within_its_rows() {
    let mut a = app();
    a.page = 5;
    press(&mut a, KeyCode::Char('3'));
    let len = counter_rows::table(&a.history.counters).rows.len();
    assert!(len > 10, "{len} rows");
    press(&mut a, KeyCode::Down);
    press(&mut a, KeyCode::Down);
    assert_eq!(a.views.counters.cursor, 2);
    press(&mut a, KeyCode::PageDown);
    assert_eq!(a.views.counters.cursor, 7);
    assert_eq!(
        a.views.counters.offset, 3,
        "scrolled to keep the cursor on the page"
    );
    press(&mut a, KeyCode::End);
    assert_eq!(a.views.counters.cursor, len - 1);
    press(&mut a, KeyCode::Down);
    assert_eq!(a.views.counters.cursor, len - 1, "stops at the last row");
    press(&mut a, KeyCode::PageUp);
    assert_eq!(a.views.counters.cursor, len - 6);
    press(&mut a, KeyCode::Home);
    assert_eq!((a.views.counters.cursor, a.views.counters.offset), (0, 0));
    press(&mut a, KeyCode::Up);
    assert_eq!(a.views.counters.cursor, 0, "stops at the first row");
}

#[test]
fn sysctls_cursor_stops_at_the_last_sysctl() {
    let mut a = app();
    press(&mut a, KeyCode::Char('4'));
    for _ in 0..20 {
        press(&mut a, KeyCode::Down);
    }
    assert_eq!(
        a.views.sysctls.cursor,
        a.snapshot.system.sysctls.len() - 1,
        "the fixture has 4 sysctls"
    );
}

#[test]
fn the_diagram_scrolls_only_when_the_screen_is_shorter_than_it() {
    let mut a = app();
    press(&mut a, KeyCode::Char('5'));
    a.page = 30; // a tall terminal: the whole drawing fits
    press(&mut a, KeyCode::End);
    assert_eq!(a.views.diagram_scroll, 0);
    a.page = 5; // 8 rows for the drawing
    press(&mut a, KeyCode::Down);
    press(&mut a, KeyCode::Down);
    assert_eq!(a.views.diagram_scroll, 2);
    press(&mut a, KeyCode::End);
    assert_eq!(a.views.diagram_scroll, diagram::drawing().len() - 8);
    press(&mut a, KeyCode::Home);
    assert_eq!(a.views.diagram_scroll, 0);
}

#[test]
fn each_view_keeps_its_position_and_the_table_keeps_its_selection() {
    let mut a = app();
    press(&mut a, KeyCode::Down);
    let table_cursor = a.cursor;
    press(&mut a, KeyCode::Char('3'));
    press(&mut a, KeyCode::Down);
    press(&mut a, KeyCode::Down);
    press(&mut a, KeyCode::Char('4'));
    press(&mut a, KeyCode::Down);
    press(&mut a, KeyCode::Char('3'));
    assert_eq!(a.views.counters.cursor, 2);
    assert_eq!(a.views.sysctls.cursor, 1);
    press(&mut a, KeyCode::Char('1'));
    assert_eq!(
        a.cursor, table_cursor,
        "arrows in the views did not move the table"
    );
}

#[test]
fn table_keys_do_nothing_in_other_views() {
    let mut a = app();
    let before = (a.grouping, a.sort(), a.focus);
    press(&mut a, KeyCode::Char('3'));
    for k in ['g', 's', 'S', 'r'] {
        press(&mut a, KeyCode::Char(k));
    }
    press(&mut a, KeyCode::Tab);
    press(&mut a, KeyCode::Left);
    press(&mut a, KeyCode::Enter);
    assert_eq!((a.grouping, a.sort(), a.focus), before);
    assert_eq!(a.grouping, Grouping::Process);
    assert_eq!((a.view, a.mode), (View::Counters, Mode::Normal));
}

#[test]
fn slash_in_a_view_opens_the_filter_on_the_socket_table() {
    let mut a = app();
    press(&mut a, KeyCode::Char('5'));
    press(&mut a, KeyCode::Char('/'));
    assert_eq!((a.view, a.mode), (View::Sockets, Mode::Filter));
}

#[test]
fn help_quit_and_pause_work_in_every_view() {
    for view in ['2', '3', '4', '5'] {
        let mut a = app();
        press(&mut a, KeyCode::Char(view));
        press(&mut a, KeyCode::Char('?'));
        assert_eq!(a.mode, Mode::Help);
        press(&mut a, KeyCode::Char('x'));
        assert_eq!(a.mode, Mode::Normal);
        assert_ne!(a.view, View::Sockets, "closing the help stays in the view");
        press(&mut a, KeyCode::Char('p'));
        assert!(a.paused);
        assert_eq!(press(&mut a, KeyCode::Char('q')), vec![Effect::Quit]);
    }
}

#[test]
fn the_diagram_counts_tcp_sockets_only_and_follows_new_samples() {
    let mut a = app();
    press(&mut a, KeyCode::Char('5'));
    // The fixture's unconnected UDP socket is CLOSE in the strip's counts.
    assert_eq!(a.counts.get(TcpState::Close), 1);
    assert_eq!(a.views.tcp_counts.get(TcpState::Close), 0);
    assert_eq!(a.views.tcp_counts.get(TcpState::CloseWait), 2);
    let mut snap = fixture::small();
    snap.advance(Duration::from_secs(1));
    snap.sockets.retain(|s| s.state != TcpState::CloseWait);
    a.handle(Event::Snapshot(Arc::new(snap), STATS));
    assert_eq!(a.views.tcp_counts.get(TcpState::CloseWait), 0);
}

#[test]
fn rebinding_a_view_key_works() {
    let km = Keymap::load(Some(("[keys]\nview_diagram = [\"d\"]\n", "cfg"))).unwrap();
    let mut a = App::new(km, Filter::default(), Duration::from_secs(1));
    press(&mut a, KeyCode::Char('5'));
    assert_eq!(a.view, View::Sockets, "5 is no longer bound");
    press(&mut a, KeyCode::Char('d'));
    assert_eq!(a.view, View::Diagram);
}

#[test]
fn act_keys_in_a_view_ask_for_the_socket_table_instead_of_acting() {
    let mut a = app();
    press(&mut a, KeyCode::Char('3'));
    for k in ['k', 'x', 'e', 'E', 'y'] {
        assert!(press(&mut a, KeyCode::Char(k)).is_empty(), "{k}");
        assert_eq!(a.mode, Mode::Normal, "{k} opened nothing");
        assert!(
            a.status.as_deref().is_some_and(|s| s.contains("press 1")),
            "{k}: {:?}",
            a.status
        );
    }
    assert_eq!(a.view, View::Counters);
}
