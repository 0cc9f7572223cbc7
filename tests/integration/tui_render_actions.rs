//! The kill dialog, the destroy confirmation and the read-only header drawn
//! to ratatui's TestBackend from the fixture snapshot, at 80×24.

use crate::ui_harness;

use ui_harness::{app_with, press as key, render, screen};

use crossterm::event::KeyCode;
use sockscope::act::plan::SshSession;
use sockscope::app::{App, CollectStats, Event};
use sockscope::model::fixture;
use sockscope::ui::Theme;
use std::sync::Arc;
use std::time::Duration;

fn app() -> App {
    let snap = fixture::small();
    let clock = snap.taken_at + Duration::from_millis(300);
    let mut app = app_with(snap);
    app.clock = clock;
    app
}

fn text(app: &App, w: u16, h: u16) -> String {
    screen(&render(app, w, h, Theme::mono()))
}

#[test]
fn kill_dialog_at_80x24() {
    let mut app = app();
    key(&mut app, KeyCode::Char('k'));
    key(&mut app, KeyCode::Down);
    let t = text(&app, 80, 24);
    for needle in [
        "1000",
        "redis-server *:6800",
        "3 held, 2 in CLOSE_WAIT",
        "SIGTERM",
        "SIGKILL",
        "SIGHUP",
        "SIGINT",
        "Esc cancel",
    ] {
        assert!(t.contains(needle), "{needle} missing:\n{t}");
    }
    insta::assert_snapshot!(t);
}

#[test]
fn kill_dialog_warns_about_the_ssh_session() {
    let mut app = app();
    app.ssh = SshSession::parse("127.0.0.1 51000 127.0.0.1 6800");
    key(&mut app, KeyCode::Char('k'));
    let t = text(&app, 80, 24);
    assert!(
        t.contains("holds your SSH session (from 127.0.0.1:51000)"),
        "{t}"
    );
}

#[test]
fn destroy_confirmation_lists_the_tuples_at_80x24() {
    let mut app = app();
    key(&mut app, KeyCode::Char('x'));
    let t = text(&app, 80, 24);
    // The process row's listener is spared, and the dialog says so.
    assert!(t.contains("destroy 2 sockets"), "{t}");
    assert!(
        t.contains("tcp 127.0.0.1:6800 127.0.0.1:51000 CLOSE_WAIT"),
        "{t}"
    );
    assert!(t.contains("1 listener left out"), "{t}");
    assert!(t.contains("Their 2 descriptors stay open"), "{t}");
    insta::assert_snapshot!(t);
}

#[test]
fn a_long_destroy_list_scrolls_and_says_how_many_more() {
    let mut snap = fixture::small();
    let base = snap.sockets[1].clone();
    for i in 0..300u16 {
        let mut s = base.clone();
        s.inode = 1000 + u64::from(i);
        s.cookie = s.inode;
        s.remote.set_port(40000 + i);
        snap.sockets.push(s);
    }
    let mut app = app();
    app.handle(Event::Snapshot(
        Arc::new(snap),
        CollectStats {
            took: Duration::ZERO,
            interval: Duration::from_secs(1),
        },
    ));
    key(&mut app, KeyCode::Char('x'));
    let t = text(&app, 80, 24);
    assert!(t.contains("destroy 302 sockets"), "{t}");
    assert!(t.contains("1–13 of 302, and 289 more"), "{t}");
    key(&mut app, KeyCode::End);
    let t = text(&app, 80, 24);
    assert!(t.contains("290–302 of 302") && !t.contains("more"), "{t}");
}

#[test]
fn hostile_names_in_the_kill_dialog_are_drawn_without_control_characters() {
    let mut snap = fixture::small();
    let p = snap.processes.get_mut(&1000).unwrap();
    p.name = "ev\x1b]0;x\x07il".into();
    p.cmdline = "a\nb\u{202e}c".into();
    let mut app = app();
    app.handle(Event::Snapshot(
        Arc::new(snap),
        CollectStats {
            took: Duration::ZERO,
            interval: Duration::from_secs(1),
        },
    ));
    key(&mut app, KeyCode::Char('k'));
    let t = text(&app, 80, 24);
    assert!(
        !t.chars()
            .any(|c| sockscope::sanitize::is_unsafe(c) && c != '\n')
    );
    assert!(t.contains("ev?]0;x?il") && t.contains("a?b?c"), "{t}");
}

#[test]
fn read_only_is_in_the_header() {
    let mut app = app();
    app.read_only = true;
    let t = text(&app, 80, 24);
    assert!(
        t.lines()
            .next()
            .unwrap()
            .starts_with("sockscope │ READ-ONLY │"),
        "{t}"
    );
}
