//! The monitor drawn to ratatui's TestBackend from fixed fixture snapshots:
//! what a user sees at 80×24 and 200×50, with no wall clock involved.

use crate::ui_harness;

use ui_harness::{STATS, new_app, press as key, render, screen as text};

use crossterm::event::KeyCode;
use sockscope::app::keymap::Keymap;
use sockscope::app::{App, CollectStats, Event};
use sockscope::model::{Filter, fixture};
use sockscope::ui::{self, Theme};
use std::sync::Arc;
use std::time::Duration;

fn app_with_fixture() -> App {
    let mut app = new_app();
    let stats = STATS;
    let mut snap = fixture::small();
    let first = snap.clone();
    app.handle(Event::Snapshot(Arc::new(first), stats));
    // A second sample one second later with one more CLOSE_WAIT: deltas and sparklines move.
    snap.advance(Duration::from_secs(1));
    let mut extra = snap.sockets[1].clone();
    extra.inode = 105;
    extra.remote.set_port(51001);
    extra.owners[0].fd = 10;
    snap.sockets.push(extra);
    app.handle(Event::Snapshot(Arc::new(snap.clone()), stats));
    app.clock = snap.taken_at + Duration::from_millis(300);
    app
}

#[test]
fn main_screen_at_80x24() {
    let app = app_with_fixture();
    insta::assert_snapshot!(text(&render(&app, 80, 24, Theme::mono())));
}

#[test]
fn main_screen_at_200x50_has_the_detail_pane() {
    let app = app_with_fixture();
    let t = text(&render(&app, 200, 50, Theme::mono()));
    assert!(t.contains("┌ detail"), "{t}");
    insta::assert_snapshot!(t);
}

#[test]
fn flat_view_filtered_to_the_leak_at_80x24() {
    let mut app = app_with_fixture();
    key(&mut app, KeyCode::Char('/'));
    for c in "6800 cw".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    key(&mut app, KeyCode::Enter);
    key(&mut app, KeyCode::Char('g'));
    key(&mut app, KeyCode::Char('g'));
    key(&mut app, KeyCode::Char('g'));
    insta::assert_snapshot!(text(&render(&app, 80, 24, Theme::mono())));
}

#[test]
fn connection_detail_explains_close_wait() {
    let mut app = app_with_fixture();
    key(&mut app, KeyCode::Enter); // drill into redis-server
    key(&mut app, KeyCode::Enter); // inspect its first connection (CLOSE_WAIT sorts first)
    let t = text(&render(&app, 100, 30, Theme::mono()));
    assert!(t.contains("CLOSE_WAIT"), "{t}");
    assert!(t.contains("call close()"), "{t}");
    insta::assert_snapshot!(t);
}

#[test]
fn help_lists_every_action() {
    let mut app = app_with_fixture();
    key(&mut app, KeyCode::Char('?'));
    // It must fit 80x24: every action's keys are on screen.
    let t = text(&render(&app, 80, 24, Theme::mono()));
    // The replay's keys are in the replay's help (tests/replay_app.rs).
    ui_harness::assert_help_lists_keys(&t, &app.keymap, &sockscope::app::keymap::Action::REPLAY);
    assert!(t.contains("state:cw"), "filter syntax shown:\n{t}");
}

#[test]
fn filter_prompt_shows_a_bad_term_and_keeps_the_previous_filter() {
    let mut app = app_with_fixture();
    key(&mut app, KeyCode::Char('/'));
    for c in "6800 state:bogus".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    let t = text(&render(&app, 120, 24, Theme::mono()));
    assert!(t.contains("bad filter term `state:bogus`"), "{t}");
    assert!(
        t.contains("filter: 6800"),
        "previous good filter still in force: {t}"
    );
}

#[test]
fn hostile_process_names_are_drawn_without_control_characters() {
    let mut app = App::new(
        Keymap::defaults(),
        Filter::default(),
        Duration::from_secs(1),
    );
    let mut snap = fixture::small();
    snap.processes.get_mut(&1000).unwrap().name = "ev\x1b]0;x\x07\u{9b}2J\u{202e}il".into();
    snap.processes.get_mut(&1000).unwrap().cmdline = "a\nb\rc".into();
    app.handle(Event::Snapshot(
        Arc::new(snap),
        CollectStats {
            took: Duration::ZERO,
            interval: Duration::from_secs(1),
        },
    ));
    let term = render(&app, 200, 50, Theme::mono());
    let buf = term.backend().buffer();
    for cell in buf.content() {
        assert!(
            !cell.symbol().chars().any(sockscope::sanitize::is_unsafe),
            "unsafe {:?}",
            cell.symbol()
        );
    }
    assert!(text(&term).contains("ev?]0;x??2J?il"));
}

#[test]
fn every_size_down_to_1x1_draws_without_panic() {
    let app = app_with_fixture();
    for (w, h) in [
        (1, 1),
        (2, 1),
        (10, 3),
        (39, 9),
        (40, 10),
        (41, 11),
        (80, 24),
        (33, 100),
        (250, 8),
    ] {
        let t = text(&render(&app, w, h, Theme::mono()));
        if w < ui::MIN_WIDTH || h < ui::MIN_HEIGHT {
            assert!(
                w < 10 || t.contains("too small") || t.contains("terminal"),
                "{w}x{h}: {t}"
            );
        } else {
            assert!(t.starts_with("sockscope"), "{w}x{h}: {t}");
        }
    }
}

#[test]
fn monochrome_theme_uses_no_colour_but_marks_trouble() {
    let app = app_with_fixture();
    let term = render(&app, 80, 24, Theme::mono());
    for cell in term.backend().buffer().content() {
        assert_eq!(
            cell.fg,
            ratatui::style::Color::Reset,
            "colour in mono theme"
        );
    }
    assert!(
        text(&term).contains("!3 +1"),
        "trouble marker without colour"
    );
}

/// Opens the connection detail of the first flat-view row in `state`.
fn inspect_first(app: &mut App, state: sockscope::model::TcpState) {
    while app.grouping != sockscope::model::view::Grouping::Flat {
        key(app, KeyCode::Char('g'));
    }
    key(app, KeyCode::Home);
    let at = app
        .rows
        .iter()
        .position(|r| r.socket(&app.snapshot).is_some_and(|s| s.state == state))
        .unwrap_or_else(|| panic!("no {state:?} row"));
    for _ in 0..at {
        key(app, KeyCode::Down);
    }
    key(app, KeyCode::Enter);
}

#[test]
fn a_listeners_detail_shows_its_accept_queue_and_no_connection_figures() {
    let mut app = app_with_fixture();
    inspect_first(&mut app, sockscope::model::TcpState::Listen);
    let t = text(&render(&app, 100, 30, Theme::mono()));
    assert!(t.contains("LISTEN"), "{t}");
    assert!(t.contains("accept queue"), "{t}");
    assert!(
        !t.contains("rtt "),
        "no tcp_info figures for a listener:\n{t}"
    );
    assert!(!t.contains("last send"), "{t}");
}

#[test]
fn a_time_wait_timer_says_how_long_it_has_left_and_the_age_says_what_it_counts() {
    // As netlink reports it: a TIME_WAIT timer without its expiry.
    let mut snap = fixture::small();
    for s in &mut snap.sockets {
        if s.state == sockscope::model::TcpState::TimeWait {
            s.timer = Some(sockscope::model::Timer {
                kind: sockscope::model::TimerKind::TimeWait,
                expires_ms: None,
            });
        }
    }
    let mut app = new_app();
    app.handle(Event::Snapshot(Arc::new(snap.clone()), STATS));
    snap.advance(Duration::from_secs(1));
    app.handle(Event::Snapshot(Arc::new(snap), STATS));
    inspect_first(&mut app, sockscope::model::TcpState::TimeWait);
    let t = text(&render(&app, 120, 30, Theme::mono()));
    // There since the first sample: sockscope's uptime is all it knows.
    assert!(t.contains("(since sockscope started)"), "{t}");
    assert!(t.contains("time-wait, at most 59s left"), "{t}");
}

#[test]
fn a_detail_taller_than_the_screen_scrolls_and_says_what_is_left() {
    let mut app = app_with_fixture();
    inspect_first(&mut app, sockscope::model::TcpState::CloseWait);
    let t = text(&render(&app, 80, 14, Theme::mono()));
    assert!(t.contains("more (↑↓)"), "{t}");
    for _ in 0..50 {
        key(&mut app, KeyCode::Down);
    }
    let t = text(&render(&app, 80, 14, Theme::mono()));
    assert!(
        t.contains("with the listener."),
        "the end of the text:\n{t}"
    );
    assert!(!t.contains("more (↑↓)"), "{t}");
}

#[test]
fn rows_scrolled_away_above_are_marked_in_the_title() {
    let mut app = app_with_fixture();
    while app.grouping != sockscope::model::view::Grouping::Flat {
        key(&mut app, KeyCode::Char('g'));
    }
    let t = text(&render(&app, 80, 13, Theme::mono()));
    assert!(!t.contains(" above"), "{t}");
    key(&mut app, KeyCode::End);
    let t = text(&render(&app, 80, 13, Theme::mono()));
    let title = t.lines().find(|l| l.contains("connections")).unwrap();
    assert!(title.contains(" above"), "{t}");
    assert!(title.contains('↑'), "{t}");
}

/// A sample whose table was reused (the kernel's counters stood still)
/// says so in the header, with the table's age.
#[test]
fn the_header_says_when_the_table_is_an_idle_machines_reused_one() {
    let header = |snap: sockscope::model::Snapshot| {
        let mut app = new_app();
        app.handle(Event::Snapshot(Arc::new(snap), STATS));
        let t = text(&render(&app, 200, 50, Theme::mono()));
        t.lines().next().unwrap().to_string()
    };
    let mut snap = fixture::small();
    snap.reused_table = Some(snap.monotonic - Duration::from_secs(3));
    let reused = header(snap);
    assert!(reused.contains("idle, table 3s old"), "{reused}");
    let fresh = header(fixture::small());
    assert!(!fresh.contains("idle"), "{fresh}");
}
